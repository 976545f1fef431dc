//! The simulation loop: the real engine under virtual time, fed with the
//! scenario's traffic.
//!
//! One iteration: webhooks due by now are ingested (one batch, as a
//! receiver would group-commit them), due cancellations are made, the queue
//! is sampled at each new simulated minute, then **one claim round** of the
//! engine runs ([`Engine::run_once`]) under [`VirtualTime::drive`], which
//! moves the clock through the round's handler latencies and retry
//! backoffs. When a round finds nothing due, the clock jumps to the next
//! event: a webhook, a cancellation, or the queue's next due item (a
//! delivery check, a step deferred by an open circuit breaker). Traffic ends
//! at the scenario's end; the run goes on for [`DRAIN`] so that retries and
//! deferred steps finish, and while orders wait on the packing floor; then
//! the store is read back for the report. Each simulated minute's store
//! writes are one group commit ([`GroupCommit`]): durable once per minute,
//! not once per call.
//!
//! The engine runs with external events on: orders stop in the state that
//! waits for the carrier, and the packing floor ([`crate::fulfil`]) moves
//! them on (pickup, delivery, the platform's auto-cancellation) as its
//! capacity and the clock allow; its next event is one of the loop's.
//!
//! In **wall-clock mode** the engine runs on the system clock with no
//! service latency: the orders (re-timed to start now) are ingested in
//! batches as fast as the engine absorbs them, to measure throughput.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::actions::{ActionType, ExecutorConfig};
use creatorflow::machine::Machine;
use creatorflow::model::Priority;
use creatorflow::rules::RulePack;
use creatorflow::store::{GroupCommit, OrderId, OrderStore, QueueStore, TenantScope};
use creatorflow::{AnyStore, Clock, Engine, EngineBuilder, SystemClock};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::faults::Services;
use super::fulfil::{Fulfilment, Policy};
use super::report::{
    Actions, Breaker, EngineWork, Lane, Orders, Pct, Report, Series, Service, SpikeTruth,
};
use super::scenario::Scenario;
use super::score::{DetectionLog, ScoringEnricher, score};
use super::traffic::{Traffic, peak_in_window};
use super::vclock::{VirtualSleeper, VirtualTime};

/// How long the run continues after the traffic ends.
pub const DRAIN: TimeDelta = TimeDelta::hours(2);
/// The tenant the simulation's orders belong to.
pub const TENANT: &str = "sim";
/// An idle worker notices work that became due (a step deferred by a
/// breaker, a delivery check) within this time when webhooks keep arriving.
pub const POLL: TimeDelta = TimeDelta::seconds(60);
/// Orders per ingest batch in wall-clock mode.
const WALL_BATCH: usize = 500;

/// The least wall time between two group commits of a run: a simulated
/// minute takes a few milliseconds, and every commit waits for the disk
/// (`synchronous=full`), so a commit a minute would spend a fifth of the
/// run in `fsync`. A crash loses at most this much work, which the run
/// would redo anyway.
const GROUP_WALL: std::time::Duration = std::time::Duration::from_millis(25);

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] creatorflow::StoreError),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(#[from] creatorflow::EngineError),
    /// The engine could not be built.
    #[error("engine: {0}")]
    Build(#[from] creatorflow::BuildError),
    /// The engine waited on something other than virtual time.
    #[error(transparent)]
    Stalled(#[from] super::vclock::Stalled),
    /// The store already holds a simulation.
    #[error(
        "the store already holds orders of tenant `{TENANT}` from an earlier simulation; use a fresh store (or the default, which is recreated on each run)"
    )]
    NotFresh,
}

/// Virtual (simulated) or wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Simulated time: a day in seconds, deterministic on the memory store.
    Virtual,
    /// Real time: throughput of the engine and the store.
    Wall,
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed.
    pub seed: u64,
    /// The store, opened by the caller.
    pub store_kind: String,
    /// Virtual or wall-clock time.
    pub mode: Mode,
    /// The rule pack.
    pub rules: RulePack,
    /// The order workflow.
    pub machine: Machine,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Who is packed first when packing capacity is short.
    pub policy: Policy,
}

/// Runs `scenario` on `store` and returns the report.
pub async fn run(scenario: &Scenario, store: AnyStore, opts: Options) -> Result<Report, SimError> {
    let wall = Instant::now();
    if !store.list_orders(TENANT, None, 1).await?.is_empty() {
        return Err(SimError::NotFresh);
    }
    let mut traffic = Traffic::generate(scenario, opts.seed);
    let shift = match opts.mode {
        Mode::Virtual => TimeDelta::zero(),
        Mode::Wall => {
            let now = SystemClock.now();
            now - scenario.start
        }
    };
    if shift != TimeDelta::zero() {
        retime(&mut traffic, shift);
    }
    let start = scenario.start + shift;
    let end = scenario.end() + shift;
    let vt = VirtualTime::new(start);
    let virtual_time = opts.mode == Mode::Virtual;
    let mut fulfil = Fulfilment::new(
        scenario,
        opts.policy,
        &traffic.product_ids,
        start,
        opts.seed,
    );
    let services = Services::new(scenario, &vt, opts.seed, virtual_time, fulfil.stockroom());
    let mut handlers = services.registry.clone();
    if virtual_time && let Some(label) = handlers.get(&ActionType::GenerateShippingLabel).cloned() {
        handlers.register(ActionType::GenerateShippingLabel, fulfil.label_hook(label));
    }
    let log = Arc::new(Mutex::new(DetectionLog::default()));
    let mut enricher = ScoringEnricher::new(log.clone());
    for (p, at, q) in &traffic.warmup {
        let product = &traffic.product_ids[*p as usize];
        creatorflow::viral::Enricher::record(&mut enricher, product, "", *at + shift, *q);
    }
    let mut builder = EngineBuilder::new(store)
        .rules(opts.rules.clone())
        .machine(opts.machine.clone())
        .handlers(handlers)
        .enricher(Box::new(enricher))
        .tenant(TENANT)
        .serve_all_tenants(false)
        // The store was checked fresh above, and only this engine ingests.
        .sole_ingester(true)
        .worker_name("simulator")
        .executor_config(ExecutorConfig {
            seed: opts.seed,
            ..ExecutorConfig::default()
        });
    builder = match opts.mode {
        // The packing floor moves orders out of `label_generated` (pickup)
        // and `shipped` (delivery): see `fulfil`.
        Mode::Virtual => builder
            .clock(vt.clock())
            .sleeper(Arc::new(VirtualSleeper(vt.clone())))
            .external_events(true),
        Mode::Wall => builder
            .clock(Arc::new(SystemClock))
            .delivery_check_every(TimeDelta::days(30))
            .delivery_confirmation(|_, _| false),
    };
    let engine = builder.build()?;

    let total_secs = (end + DRAIN - start).num_seconds().max(1) as u64;
    let bar = progress_bar(
        opts.progress,
        total_secs,
        virtual_time,
        traffic.orders.len(),
    );
    let mut st = LoopState::new(start, &traffic);
    let loop_started = Instant::now();
    match opts.mode {
        Mode::Virtual => {
            virtual_loop(&engine, &vt, &traffic, end, &mut st, &mut fulfil, &bar).await?
        }
        Mode::Wall => wall_loop(&engine, &traffic, &mut st, &bar).await?,
    }
    bar.finish_and_clear();
    let loop_secs = loop_started.elapsed().as_secs_f64();
    let clock_end = match opts.mode {
        Mode::Virtual => vt.now(),
        Mode::Wall => end,
    };

    // ---- read back ------------------------------------------------------
    let mut lanes: BTreeMap<String, Lane> = Priority::ALL
        .iter()
        .map(|p| (p.as_str().to_owned(), Lane::default()))
        .collect();
    let mut waits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut ships: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut stored = 0u64;
    let mut after: Option<OrderId> = None;
    let mut pre_ship = 0u64;
    let mut shipped = 0u64;
    let mut manual = 0u64;
    let machine = engine.machine().clone();
    // When each order's webhook first reached the shop: its first step's
    // wait counts from there (lookups only; never iterated).
    let mut first_delivery: std::collections::HashMap<&str, i64> =
        std::collections::HashMap::with_capacity(traffic.orders.len());
    for d in traffic.deliveries.iter().filter(|d| !d.duplicate) {
        first_delivery.insert(
            traffic.orders[d.order as usize].tiktok_order_id.as_str(),
            d.at_ms,
        );
    }
    loop {
        let page = engine.store().list_orders(TENANT, after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        // The page's histories in one read (not one per order).
        let ids: Vec<OrderId> = page.iter().map(|o| o.id).collect();
        let histories = engine.store().histories(TENANT, &ids).await?;
        for (o, history) in page.iter().zip(&histories) {
            stored += 1;
            let state = o.order.current_state.as_str();
            *by_state.entry(state.to_owned()).or_default() += 1;
            let lane_name = o.order.priority.as_str().to_owned();
            if let Some(l) = lanes.get_mut(&lane_name) {
                l.orders += 1;
            }
            let def = machine.state(state);
            let status = def.map(|d| d.automation_status);
            let terminal = def.is_some_and(|d| d.terminal);
            match status {
                Some(creatorflow::model::AutomationStatus::ManualReview) => manual += 1,
                Some(creatorflow::model::AutomationStatus::Shipped) => shipped += 1,
                _ if !terminal => pre_ship += 1,
                _ => {}
            }
            let mut due = first_delivery
                .get(o.order.tiktok_order_id.as_str())
                .and_then(|ms| DateTime::from_timestamp_millis(*ms))
                .map_or(o.order.created_at, |t| t.max(o.order.created_at));
            let mut clean = true;
            let mut shipped_once = false;
            for e in history {
                let began = e.at - TimeDelta::milliseconds(e.duration_ms as i64);
                let from_shipped = machine.state(e.from.as_str()).is_some_and(|d| {
                    d.automation_status == creatorflow::model::AutomationStatus::Shipped
                });
                if e.automated && clean && !from_shipped {
                    let w = (began - due).num_milliseconds().max(0) as u64;
                    waits.entry(lane_name.clone()).or_default().push(w);
                }
                // Shipped: the first step into a Shipped or Delivered state,
                // as the store's dashboard counts it (`store::Dashboard`).
                if !shipped_once
                    && machine
                        .state(e.to.as_str())
                        .is_some_and(|d| d.automation_status.is_shipped())
                {
                    shipped_once = true;
                    let t = (e.at - o.order.created_at).num_milliseconds().max(0) as u64;
                    ships.entry(lane_name.clone()).or_default().push(t);
                }
                if !e.automated || e.error_message.is_some() {
                    clean = false;
                }
                due = e.at;
            }
        }
        if page.len() < 500 {
            break;
        }
    }
    for (name, lane) in lanes.iter_mut() {
        lane.queue_wait_ms = Pct::of(waits.get_mut(name).map_or(&mut [][..], |v| &mut v[..]));
        lane.time_to_ship_ms = Pct::of(ships.get_mut(name).map_or(&mut [][..], |v| &mut v[..]));
        lane.max_queue_depth = st.max_depth.get(name).copied().unwrap_or(0);
    }
    let queue = engine
        .store()
        .queue_summary(TenantScope::Tenant(TENANT), clock_end)
        .await?;
    let items = queue.due.values().sum::<u64>() + queue.leased + queue.scheduled;
    let pre_ship_with_work = items.saturating_sub(shipped).min(pre_ship);
    let generated = traffic.orders.len() as u64;
    let lost = generated.saturating_sub(stored) + (pre_ship - pre_ship_with_work);

    let stats = engine.executor().stats();
    let rules = engine
        .rule_stats()
        .into_iter()
        .map(|r| (r.rule, r.success_count))
        .collect();
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner));
    let viral_detection = super::score::DETECTORS
        .iter()
        .map(|name| {
            let eps = log.detectors.get(name).cloned().unwrap_or_default();
            ((*name).to_owned(), score(&traffic.spikes, &eps))
        })
        .collect();
    let times: Vec<i64> = traffic
        .orders
        .iter()
        .map(|o| o.created_at.timestamp_millis())
        .collect();
    let mut by_product: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for o in &traffic.orders {
        by_product
            .entry(&o.product_id)
            .or_default()
            .push(o.created_at.timestamp_millis());
    }
    let peak_product = by_product
        .values()
        .map(|v| peak_in_window(v, 3_600_000))
        .max()
        .unwrap_or(0);
    let service_stats = services
        .stats
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let services_report = services
        .models
        .iter()
        .map(|m| {
            let name = m.name();
            (
                name.to_owned(),
                Service {
                    stats: service_stats.get(name).copied().unwrap_or_default(),
                    outages: m.outages().to_vec(),
                },
            )
        })
        .collect();
    let breakers = st
        .breakers
        .iter()
        .filter(|(_, b)| !b.open_periods.is_empty())
        .map(|(k, b)| (k.clone(), b.clone()))
        .collect();
    Ok(Report {
        scenario: scenario.name.clone(),
        description: scenario.description.clone(),
        seed: opts.seed,
        mode: match opts.mode {
            Mode::Virtual => "virtual",
            Mode::Wall => "wall",
        },
        store: opts.store_kind,
        simulated_seconds: (clock_end - start).num_milliseconds() as f64 / 1000.0,
        wall_seconds: wall.elapsed().as_secs_f64(),
        orders: Orders {
            generated,
            ingested: stored,
            duplicates_ignored: st.known,
            lost,
            by_final_state: by_state,
            deliveries: st.delivered,
            refused: st.refused,
            in_flight: shipped + pre_ship_with_work,
            manual_review: manual,
            cancel_requests: st.cancel_requests,
            cancel_refused: st.cancel_refused,
        },
        peak_orders_per_hour: peak_in_window(&times, 3_600_000),
        peak_product_orders_per_hour: peak_product,
        lanes,
        viral_detection,
        rules,
        actions: Actions {
            attempts: stats.attempts,
            retries: stats.retries,
            failures: stats.failures,
            circuit_opened: stats.circuit_opened,
        },
        breakers,
        services: services_report,
        spikes: traffic
            .spikes
            .iter()
            .map(|s| SpikeTruth {
                product_id: s.product_id.clone(),
                start: s.start,
                end: s.end,
            })
            .collect(),
        engine: EngineWork {
            rounds: st.rounds,
            claimed: st.claimed,
            recorded: st.recorded,
            lost_races: st.lost_races,
            orders_per_wall_second: if loop_secs > 0.0 {
                (generated as f64 / loop_secs * 10.0).round() / 10.0
            } else {
                0.0
            },
        },
        series: Series {
            start: Some(start),
            arrivals_per_minute: traffic.per_minute.clone(),
            queue_depth: st.depth_series,
        },
        fulfilment: fulfil.report(clock_end),
    })
}

/// Moves every time of `traffic` by `shift` (wall-clock mode).
fn retime(traffic: &mut Traffic, shift: TimeDelta) {
    for o in &mut traffic.orders {
        o.created_at += shift;
        o.deadline = o.deadline.map(|d| d + shift);
    }
    let ms = shift.num_milliseconds();
    for d in &mut traffic.deliveries {
        d.at_ms += ms;
    }
    for c in &mut traffic.cancels {
        c.0 += ms;
    }
    for s in &mut traffic.spikes {
        s.start += shift;
        s.end += shift;
    }
}

fn progress_bar(enabled: bool, total: u64, virtual_time: bool, orders: usize) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (len, template) = if virtual_time {
        (
            total,
            "{spinner} simulated {msg} [{bar:40}] {percent}% ({elapsed} wall)",
        )
    } else {
        (
            orders as u64,
            "{spinner} ingested [{bar:40}] {pos}/{len} orders ({elapsed})",
        )
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The loop's running tallies.
struct LoopState {
    next_delivery: usize,
    next_cancel: usize,
    delivered_flags: Vec<bool>,
    known: u64,
    delivered: u64,
    refused: u64,
    cancel_requests: u64,
    cancel_refused: u64,
    rounds: u64,
    claimed: u64,
    recorded: u64,
    lost_races: u64,
    start: DateTime<Utc>,
    next_sample_minute: i64,
    max_depth: BTreeMap<String, u64>,
    depth_series: BTreeMap<String, Vec<u64>>,
    breakers: BTreeMap<String, Breaker>,
}

/// The breakers watched (action types behind the simulated services).
const WATCHED: [ActionType; 4] = [
    ActionType::CheckInventory,
    ActionType::ReserveInventory,
    ActionType::SelectCarrier,
    ActionType::GenerateShippingLabel,
];

impl LoopState {
    fn new(start: DateTime<Utc>, traffic: &Traffic) -> Self {
        LoopState {
            next_delivery: 0,
            next_cancel: 0,
            delivered_flags: vec![false; traffic.orders.len()],
            known: 0,
            delivered: 0,
            refused: 0,
            cancel_requests: 0,
            cancel_refused: 0,
            rounds: 0,
            claimed: 0,
            recorded: 0,
            lost_races: 0,
            start,
            next_sample_minute: 0,
            max_depth: BTreeMap::new(),
            depth_series: Priority::ALL
                .iter()
                .map(|p| (p.as_str().to_owned(), Vec::new()))
                .collect(),
            breakers: WATCHED
                .iter()
                .map(|k| {
                    (
                        k.as_str().to_owned(),
                        Breaker {
                            open_periods: Vec::new(),
                            final_state: "closed".into(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Ingests the deliveries due by `now_ms` (all if `None`, up to `limit`).
    async fn ingest_due(
        &mut self,
        engine: &Engine<AnyStore>,
        traffic: &Traffic,
        now_ms: Option<i64>,
        limit: usize,
    ) -> Result<usize, SimError> {
        let mut batch = Vec::new();
        while let Some(d) = traffic.deliveries.get(self.next_delivery) {
            if now_ms.is_some_and(|n| d.at_ms > n) || batch.len() >= limit {
                break;
            }
            batch.push(traffic.orders[d.order as usize].clone());
            self.delivered_flags[d.order as usize] = true;
            self.next_delivery += 1;
        }
        let n = batch.len();
        if n > 0 {
            let r = engine.ingest_many(batch).await?;
            self.delivered += n as u64;
            self.known += r.known as u64;
            self.refused += r.refused.len() as u64;
        }
        Ok(n)
    }

    /// Makes the cancellations due by `now_ms`.
    async fn cancel_due(
        &mut self,
        engine: &Engine<AnyStore>,
        vt: &Arc<VirtualTime>,
        traffic: &Traffic,
        now_ms: i64,
    ) -> Result<(), SimError> {
        while let Some(&(at, i)) = traffic.cancels.get(self.next_cancel) {
            if at > now_ms {
                break;
            }
            self.next_cancel += 1;
            if !self.delivered_flags[i as usize] {
                // The customer cancels an order the shop never heard of:
                // nothing to do (TikTok cancels it on its side).
                continue;
            }
            self.cancel_requests += 1;
            let o = &traffic.orders[i as usize];
            let Some(stored) = engine
                .store()
                .find_order(TENANT, &o.tiktok_order_id)
                .await?
            else {
                self.cancel_refused += 1;
                continue;
            };
            // The cancellation's rollbacks call the services: virtual time.
            match vt
                .drive(engine.cancel(stored.id, "customer request"))
                .await?
            {
                Ok(_) => {}
                Err(creatorflow::EngineError::Store(e)) if !e.is_conflict() => {
                    return Err(e.into());
                }
                // Already shipped, delivered or cancelled: the machine refuses.
                Err(_) => self.cancel_refused += 1,
            }
        }
        Ok(())
    }

    /// Samples the queue at each new simulated minute up to `now`. After an
    /// idle round nothing is due (the round would have claimed it) and no
    /// webhook arrived since, so the store is not asked.
    async fn sample(
        &mut self,
        engine: &Engine<AnyStore>,
        now: DateTime<Utc>,
        idle: bool,
    ) -> Result<Option<DateTime<Utc>>, SimError> {
        let minute = (now - self.start).num_minutes();
        if minute < self.next_sample_minute {
            return Ok(None);
        }
        let q = if idle {
            None
        } else {
            Some(
                engine
                    .store()
                    .queue_due(TenantScope::Tenant(TENANT), now)
                    .await?,
            )
        };
        for p in Priority::ALL {
            let name = p.as_str();
            let depth = q.as_ref().and_then(|q| q.due.get(p).copied()).unwrap_or(0);
            let series = self.depth_series.entry(name.to_owned()).or_default();
            while (series.len() as i64) <= minute {
                series.push(depth);
            }
            let m = self.max_depth.entry(name.to_owned()).or_default();
            *m = (*m).max(depth);
        }
        self.next_sample_minute = minute + 1;
        Ok(q.and_then(|q| q.next_run_at))
    }

    fn watch_breakers(&mut self, engine: &Engine<AnyStore>, now: DateTime<Utc>) {
        let breakers = engine.executor().breakers();
        for kind in &WATCHED {
            let open = breakers.state(kind).is_open();
            let Some(b) = self.breakers.get_mut(kind.as_str()) else {
                continue;
            };
            let was_open = b.final_state == "open";
            if open && !was_open {
                b.open_periods.push((now, None));
                b.final_state = "open".into();
            } else if !open && was_open {
                if let Some(last) = b.open_periods.last_mut() {
                    last.1 = Some(now);
                }
                b.final_state = "closed".into();
            }
        }
    }

    fn note_round(&mut self, round: &creatorflow::engine::Round) {
        self.rounds += 1;
        self.claimed += round.claimed.len() as u64;
        self.recorded += round.recorded as u64;
        self.lost_races += round.lost as u64;
        let mut per_lane: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, lane, _) in &round.claimed {
            *per_lane.entry(lane.as_str()).or_default() += 1;
        }
        for (lane, n) in per_lane {
            let m = self.max_depth.entry(lane.to_owned()).or_default();
            *m = (*m).max(n);
        }
    }
}

async fn virtual_loop(
    engine: &Engine<AnyStore>,
    vt: &Arc<VirtualTime>,
    traffic: &Traffic,
    end: DateTime<Utc>,
    st: &mut LoopState,
    fulfil: &mut Fulfilment,
    bar: &ProgressBar,
) -> Result<(), SimError> {
    let drained = end + DRAIN;
    // Orders still on the packing floor keep the run going, at most until
    // the platform has cancelled the last of them.
    let limit = drained + fulfil.patience();
    let mut idle = false;
    // The writes of whole simulated minutes are one group commit (see
    // `GroupCommit`): one durable commit per minute, or per several while
    // less than `GROUP_WALL` of wall time has passed, instead of several
    // per order. A failed run loses its open group, which it would redo
    // anyway.
    let store = engine.store();
    let mut group_minute = 0;
    let mut group_since = Instant::now();
    store.begin_group().await?;
    loop {
        let minute = (vt.now() - st.start).num_minutes();
        if minute > group_minute && group_since.elapsed() >= GROUP_WALL {
            store.commit_group().await?;
            store.begin_group().await?;
            group_minute = minute;
            group_since = Instant::now();
        }
        let now = vt.now();
        let now_ms = now.timestamp_millis();
        let ingested = st
            .ingest_due(engine, traffic, Some(now_ms), usize::MAX)
            .await?;
        let cancels = st.next_cancel;
        st.cancel_due(engine, vt, traffic, now_ms).await?;
        fulfil.work(engine, vt).await?;
        let quiet = idle && ingested == 0 && cancels == st.next_cancel;
        let sampled = st.sample(engine, now, quiet).await?;
        let round = vt.drive(engine.run_once()).await??;
        st.note_round(&round);
        st.watch_breakers(engine, vt.now());
        bar.set_position((vt.now() - st.start).num_seconds().max(0) as u64);
        bar.set_message(vt.now().format("%a %H:%M").to_string());
        idle = round.claimed.is_empty();
        if round.more {
            continue;
        }
        // Idle: jump to the next event. Like a worker polling every
        // `POLL`, the queue is only asked when its next due item is due
        // (deferred steps, delivery checks) if no webhook comes sooner.
        let next_delivery = traffic.deliveries.get(st.next_delivery).map(|d| d.at_ms);
        let next_cancel = traffic.cancels.get(st.next_cancel).map(|c| c.0);
        let soon = (vt.now() + POLL).timestamp_millis();
        let next_due = match sampled {
            Some(t) => Some(t),
            None if next_delivery.is_some_and(|d| d <= soon) => None,
            None => {
                engine
                    .store()
                    .queue_due(TenantScope::Tenant(TENANT), vt.now())
                    .await?
                    .next_run_at
            }
        };
        let next_event = [next_delivery, next_cancel]
            .into_iter()
            .flatten()
            .filter_map(DateTime::from_timestamp_millis)
            .chain(next_due)
            .chain(fulfil.next_event(vt.now()))
            .min();
        let stop = if fulfil.busy() { limit } else { drained };
        let Some(next) = next_event else { break };
        let next = next.max(vt.now() + TimeDelta::milliseconds(1));
        if next > stop {
            vt.advance_to(stop.max(vt.now()));
            break;
        }
        // Work that became due by itself (not a webhook) makes the queue
        // worth sampling again.
        if next_due.is_some_and(|d| d <= next) {
            idle = false;
        }
        vt.advance_to(next);
    }
    st.sample(engine, vt.now(), false).await?;
    store.commit_group().await?;
    Ok(())
}

async fn wall_loop(
    engine: &Engine<AnyStore>,
    traffic: &Traffic,
    st: &mut LoopState,
    bar: &ProgressBar,
) -> Result<(), SimError> {
    loop {
        let n = st.ingest_due(engine, traffic, None, WALL_BATCH).await?;
        bar.inc(n as u64);
        loop {
            let round = engine.run_once().await?;
            st.note_round(&round);
            if round.claimed.is_empty() {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    st.watch_breakers(engine, SystemClock.now());
    Ok(())
}
