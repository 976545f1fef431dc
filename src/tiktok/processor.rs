//! [`Processor`]: applies TikTok Shop events to the engines, one engine per
//! tenant, from the durable inbox or from reconciliation.
//!
//! Every command about an order first passes the stale-event guard
//! ([`Engine::note_external_event`]): an event older than the newest one
//! applied to that order is dropped, so an order never moves backwards.
//! A cancellation is final on TikTok Shop, so it is never stale and it
//! makes every later-arriving event of the order stale. Then:
//!
//! | command | effect |
//! |---|---|
//! | `Wait` (UNPAID, ON_HOLD) | nothing: the order must not be fulfilled yet |
//! | `Ingest` (AWAITING_SHIPMENT) | Get Order Detail, mapped to an `Order`, ingested (idempotent) |
//! | `Cancel` | [`Engine::cancel`] with its rollbacks; an order never ingested is just marked final |
//! | `ConfirmShipped` (IN_TRANSIT) | [`Engine::confirm_shipped`] (ingesting the order first if unknown) |
//! | `ConfirmDelivered` (DELIVERED, COMPLETED) | [`Engine::confirm_delivered`] (likewise) |
//! | `RefreshDetails`, `Acknowledge` | nothing (recorded as the entry's outcome) |
//!
//! Transient failures (the Order API unreachable, a database error) leave
//! the inbox entry pending: its lease lapses and it is processed again.
//! Every command is idempotent, so a retry does no harm.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use chrono::TimeDelta;
use serde::Serialize;

use super::api::{ApiOrder, ApiOrderError};
use super::client::{ApiError, OrderApi};
use super::event::{Command, Envelope, EventError, OrderStatus, StatusChange, command_for};
use crate::engine::external::External;
use crate::engine::{Engine, EngineError};
use crate::store::{InboxDone, InboxItem, OrderEvent, Store};

/// Why an event could not be applied.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The stored body no longer parses (permanent).
    #[error("stored body: {0}")]
    Event(#[from] EventError),
    /// The Order API failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The Order API's order cannot be mapped (permanent).
    #[error(transparent)]
    Mapping(#[from] ApiOrderError),
    /// The engine or the store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No engine serves this tenant.
    #[error("no engine for tenant `{tenant}`")]
    UnknownTenant {
        /// The tenant.
        tenant: String,
    },
}

impl ProcessError {
    /// Whether processing again later may succeed; otherwise the entry is
    /// marked processed with the error as its outcome (no poison loop).
    pub fn is_transient(&self) -> bool {
        match self {
            ProcessError::Api(e) => e.is_transient(),
            ProcessError::Engine(EngineError::Store(_)) => true,
            _ => false,
        }
    }

    /// Whether the store is away for now (not TikTok's API): what a round
    /// leaves undone for this reason is taken up by the next one.
    pub fn is_store_away(&self) -> bool {
        matches!(self, ProcessError::Engine(EngineError::Store(s)) if s.is_transient())
    }
}

/// What applying one command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// Nothing to do (other topics and statuses).
    Acknowledged,
    /// Older than an event already applied to the order: dropped.
    Stale,
    /// UNPAID / ON_HOLD: the order waits.
    Waiting,
    /// The order was ingested now.
    Ingested,
    /// The order was already known.
    Known,
    /// The order was cancelled (with rollbacks).
    Cancelled,
    /// Cancelled before it was ever ingested: marked final, nothing to undo.
    CancelledUnknown,
    /// Shipment or delivery confirmed: the order moved.
    Confirmed,
    /// The order already was there.
    Unchanged,
    /// The machine refused (e.g. a cancellation after delivery).
    Refused,
}

impl Applied {
    /// The snake_case name (`ingested`, `stale`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            Applied::Acknowledged => "acknowledged",
            Applied::Stale => "stale",
            Applied::Waiting => "waiting",
            Applied::Ingested => "ingested",
            Applied::Known => "known",
            Applied::Cancelled => "cancelled",
            Applied::CancelledUnknown => "cancelled_unknown",
            Applied::Confirmed => "confirmed",
            Applied::Unchanged => "unchanged",
            Applied::Refused => "refused",
        }
    }
}

/// Counters of a processor (since it started).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProcessorStats {
    /// Inbox entries processed (marked done).
    pub processed: u64,
    /// Entries left pending after a transient failure.
    pub retried: u64,
    /// Entries finished with a permanent error.
    pub failed: u64,
    /// Applied commands by outcome.
    pub outcomes: BTreeMap<String, u64>,
}

/// The rank of a command among events of the same second: a later stage
/// of TikTok's order flow ranks higher.
fn rank(cmd: &Command) -> u8 {
    match cmd {
        Command::Wait { .. } => 0,
        Command::Ingest { .. } | Command::RefreshDetails { .. } => 1,
        Command::ConfirmShipped { .. } => 2,
        Command::ConfirmDelivered { .. } => 3,
        _ => 4,
    }
}

/// The command an order as the Order API returns it calls for
/// (reconciliation), like [`command_for`] on a status-change webhook.
pub fn command_for_api_order(order: &ApiOrder) -> Command {
    let (order_id, update_time) = (
        order.id.clone(),
        order.update_time.unwrap_or(order.create_time),
    );
    let status = OrderStatus::parse(&order.status);
    let change = StatusChange {
        status: &status,
        on_hold: order.is_on_hold_order,
        order_id,
        update_time,
    };
    change.command("cancelled on TikTok Shop (reconciliation)", true)
}

/// Applies events to per-tenant engines; see the docs of `src/tiktok/processor.rs`.
pub struct Processor<S, A> {
    engines: BTreeMap<String, Engine<S>>,
    /// Shop id → tenant: the configured shops, and those connected while
    /// running (OAuth), hence behind a lock.
    shops: RwLock<HashMap<String, Arc<str>>>,
    api: Arc<A>,
    processed: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    outcomes: Mutex<BTreeMap<String, u64>>,
    /// Per tenant: what a round left undone because the store went away
    /// (see [`Stranded`]); the next round takes it up first.
    stranded: Mutex<HashMap<String, Stranded>>,
}

impl<S, A> std::fmt::Debug for Processor<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("tenants", &self.engines.keys().collect::<Vec<_>>())
            .field("shops", &self.shops)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Order ids per Get Order Detail call.
const DETAIL_IDS: usize = 50;

/// What a round of one tenant left undone because the store went away
/// (PostgreSQL restarting): the claimed entries it could not apply, still
/// under this processor's lease, and the outcomes it could not mark. The
/// next round (the loop retries with backoff) marks the outcomes and applies
/// the entries first, so an outage costs the time the store is away rather
/// than the rest of the lease. (An entry TikTok's API failed for waits for
/// its lease to lapse: that is the API's backoff.) Entries whose lease has lapsed meanwhile are
/// dropped here: the store hands them out again to whoever claims next.
#[derive(Default)]
struct Stranded {
    /// When the entries were claimed.
    claimed_at: Option<chrono::DateTime<chrono::Utc>>,
    items: Vec<InboxItem>,
    done: Vec<InboxDone>,
}

/// How many times a cancellation that lost a race with a worker is retried.
const CANCEL_ATTEMPTS: usize = 8;

/// How long a claimed inbox entry is leased to this processor.
const INBOX_LEASE: TimeDelta = TimeDelta::seconds(60);

impl<S: Store + 'static, A: OrderApi + 'static> Processor<S, A> {
    /// A processor calling `api`, with no tenants yet.
    pub fn new(api: Arc<A>) -> Self {
        Processor {
            engines: BTreeMap::new(),
            shops: RwLock::new(HashMap::new()),
            api,
            processed: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            outcomes: Mutex::new(BTreeMap::new()),
            stranded: Mutex::new(HashMap::new()),
        }
    }

    /// Serves the engine's tenant with `engine`.
    pub fn add_engine(&mut self, engine: Engine<S>) {
        self.engines.insert(engine.tenant().to_owned(), engine);
    }

    /// Routes the shop `shop_id` to `tenant` (also while running: a shop
    /// connected through TikTok's authorization).
    pub fn add_shop(&self, shop_id: &str, tenant: &str) {
        self.shops
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(shop_id.to_owned(), Arc::from(tenant));
    }

    /// The tenant of a shop, if configured or connected.
    pub fn tenant_of(&self, shop_id: &str) -> Option<Arc<str>> {
        self.shops
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(shop_id)
            .cloned()
    }

    /// The shops routed to `tenant`.
    pub fn shops_of(&self, tenant: &str) -> Vec<String> {
        let shops = self.shops.read().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<String> = shops
            .iter()
            .filter(|(_, t)| &***t == tenant)
            .map(|(s, _)| s.clone())
            .collect();
        v.sort();
        v
    }

    /// The tenant's engine.
    pub fn engine(&self, tenant: &str) -> Option<&Engine<S>> {
        self.engines.get(tenant)
    }

    /// The tenants served.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.engines.keys().map(String::as_str)
    }

    /// The Order API.
    pub fn api(&self) -> &A {
        &self.api
    }

    /// The counters.
    pub fn stats(&self) -> ProcessorStats {
        ProcessorStats {
            processed: self.processed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            outcomes: lock(&self.outcomes).clone(),
        }
    }

    fn engine_for(&self, tenant: &str) -> Result<&Engine<S>, ProcessError> {
        self.engines
            .get(tenant)
            .ok_or_else(|| ProcessError::UnknownTenant {
                tenant: tenant.to_owned(),
            })
    }

    async fn fetch(
        &self,
        tenant: &str,
        shop_id: &str,
        order_id: &str,
    ) -> Result<ApiOrder, ProcessError> {
        self.api
            .order_details(tenant, shop_id, &[order_id.to_owned()])
            .await?
            .into_iter()
            .find(|o| o.id == order_id)
            .ok_or_else(|| {
                ProcessError::Api(ApiError::NoSuchOrder {
                    order_id: order_id.to_owned(),
                })
            })
    }

    /// Applies one command for the tenant's shop `shop_id`. `known` is the
    /// order's details when the caller has them (reconciliation), saving a
    /// Get Order Detail call.
    pub async fn apply(
        &self,
        tenant: &str,
        shop_id: &str,
        cmd: &Command,
        known: Option<&ApiOrder>,
    ) -> Result<Applied, ProcessError> {
        let engine = self.engine_for(tenant)?;
        let applied = self.apply_to(engine, shop_id, cmd, known).await?;
        *lock(&self.outcomes)
            .entry(applied.as_str().to_owned())
            .or_default() += 1;
        Ok(applied)
    }

    async fn apply_to(
        &self,
        engine: &Engine<S>,
        shop_id: &str,
        cmd: &Command,
        known: Option<&ApiOrder>,
    ) -> Result<Applied, ProcessError> {
        let Some((order_id, time)) = cmd.order_and_time() else {
            return Ok(Applied::Acknowledged);
        };
        if matches!(cmd, Command::RefreshDetails { .. }) {
            // The stored order keeps the details it was ingested with.
            return Ok(Applied::Acknowledged);
        }
        if let Command::Cancel { reason, .. } = cmd {
            // Final: never stale, and everything after it is.
            engine
                .note_external_event(order_id, i64::MAX, rank(cmd))
                .await?;
            // A worker may move the order between our read and our write
            // (a conflict): read it again and cancel from where it is now.
            for _ in 0..CANCEL_ATTEMPTS {
                let o = match engine.find_by_tiktok_id(order_id).await? {
                    None => return Ok(Applied::CancelledUnknown),
                    Some(o) if o.terminal => return Ok(Applied::Unchanged),
                    Some(o) => o,
                };
                match engine.cancel(o.id, reason).await {
                    Ok(_) => return Ok(Applied::Cancelled),
                    Err(EngineError::Transition(_)) => return Ok(Applied::Refused),
                    Err(EngineError::Store(e)) if e.is_conflict() => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Applied::Refused);
        }
        if !engine
            .note_external_event(order_id, time, rank(cmd))
            .await?
        {
            return Ok(Applied::Stale);
        }
        if matches!(cmd, Command::Wait { .. }) {
            return Ok(Applied::Waiting);
        }
        let (order, created) = match engine.find_by_tiktok_id(order_id).await? {
            Some(o) => (o, false),
            None => {
                let details = match known {
                    Some(k) => k.clone(),
                    None => self.fetch(engine.tenant(), shop_id, order_id).await?,
                };
                match OrderStatus::parse(&details.status) {
                    OrderStatus::Unpaid | OrderStatus::OnHold => return Ok(Applied::Waiting),
                    _ if details.is_on_hold_order => return Ok(Applied::Waiting),
                    OrderStatus::Cancelled => {
                        engine.note_external_event(order_id, i64::MAX, 4).await?;
                        return Ok(Applied::CancelledUnknown);
                    }
                    _ => {}
                }
                let order = details.to_order(engine.tenant(), shop_id)?;
                let ingested = engine.ingest(order).await?;
                (ingested.order, ingested.created)
            }
        };
        let why = |status: &str| format!("confirmed by TikTok Shop ({status})");
        let external = match cmd {
            Command::Ingest { .. } => {
                return Ok(if created {
                    Applied::Ingested
                } else {
                    Applied::Known
                });
            }
            Command::ConfirmShipped { .. } => {
                engine.confirm_shipped(order.id, &why("IN_TRANSIT")).await?
            }
            Command::ConfirmDelivered { .. } => {
                engine
                    .confirm_delivered(order.id, &why("DELIVERED"))
                    .await?
            }
            _ => return Ok(Applied::Acknowledged),
        };
        Ok(match external {
            External::Moved { .. } => Applied::Confirmed,
            External::Unchanged(_) => Applied::Unchanged,
            _ => Applied::Refused,
        })
    }

    /// The batch path of [`Processor::drain_once`] for entries that only
    /// ingest, wait or acknowledge: one guard transaction, the missing
    /// details fetched per shop (up to 50 ids a call), one ingest
    /// transaction. Returns the entries to mark processed.
    async fn apply_batch(
        &self,
        engine: &Engine<S>,
        items: &[(InboxItem, String, Command)],
    ) -> Result<Vec<InboxDone>, ProcessError> {
        // Wait and Ingest pass the guard; each consumes one result below.
        let events: Vec<OrderEvent> = items
            .iter()
            .filter(|(_, _, c)| matches!(c, Command::Wait { .. } | Command::Ingest { .. }))
            .filter_map(|(_, _, c)| {
                c.order_and_time().map(|(id, time)| OrderEvent {
                    tiktok_order_id: id.to_owned(),
                    time,
                    rank: rank(c),
                })
            })
            .collect();
        let mut fresh = engine.note_external_events(&events).await?.into_iter();
        // Outcome per item; orders to ingest by shop.
        let mut outcome: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut wanted: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for (i, (_, shop, cmd)) in items.iter().enumerate() {
            let o = match cmd {
                Command::Acknowledge | Command::RefreshDetails { .. } => {
                    Some(Applied::Acknowledged)
                }
                Command::Wait { .. } if fresh.next() == Some(true) => Some(Applied::Waiting),
                Command::Ingest { order_id, .. } if fresh.next() == Some(true) => {
                    if !seen.insert(order_id.clone())
                        || engine.find_by_tiktok_id(order_id).await?.is_some()
                    {
                        Some(Applied::Known)
                    } else {
                        wanted
                            .entry(shop.clone())
                            .or_default()
                            .push((i, order_id.clone()));
                        None
                    }
                }
                _ => Some(Applied::Stale),
            };
            outcome.push(o.map(|a| a.as_str().to_owned()));
        }
        let mut orders = Vec::new();
        let mut slots = Vec::new();
        for (shop, list) in wanted {
            let mut found: HashMap<String, ApiOrder> = HashMap::new();
            for chunk in list.chunks(DETAIL_IDS) {
                let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
                for o in self.api.order_details(engine.tenant(), &shop, &ids).await? {
                    found.insert(o.id.clone(), o);
                }
            }
            for (i, id) in list {
                let Some(details) = found.remove(&id) else {
                    outcome[i] = Some(format!("error: {}", ApiError::NoSuchOrder { order_id: id }));
                    continue;
                };
                let waits = details.is_on_hold_order
                    || matches!(
                        OrderStatus::parse(&details.status),
                        OrderStatus::Unpaid | OrderStatus::OnHold
                    );
                if waits {
                    outcome[i] = Some(Applied::Waiting.as_str().to_owned());
                    continue;
                }
                if OrderStatus::parse(&details.status) == OrderStatus::Cancelled {
                    engine.note_external_event(&id, i64::MAX, 4).await?;
                    outcome[i] = Some(Applied::CancelledUnknown.as_str().to_owned());
                    continue;
                }
                match details.to_order(engine.tenant(), &shop) {
                    Ok(order) => {
                        orders.push(order);
                        slots.push(i);
                    }
                    Err(e) => outcome[i] = Some(format!("error: {e}")),
                }
            }
        }
        if !orders.is_empty() {
            let report = engine.ingest_many(orders).await?;
            let refused: HashMap<usize, String> = report.refused.into_iter().collect();
            for (k, i) in slots.into_iter().enumerate() {
                outcome[i] = Some(match refused.get(&k) {
                    Some(why) => format!("error: {why}"),
                    None => Applied::Ingested.as_str().to_owned(),
                });
            }
        }
        let mut counts = lock(&self.outcomes);
        let mut done = Vec::with_capacity(items.len());
        for ((item, _, _), o) in items.iter().zip(outcome) {
            let o = o.unwrap_or_else(|| "error: not applied".to_owned());
            if o.starts_with("error: ") {
                self.failed.fetch_add(1, Ordering::Relaxed);
            } else {
                *counts.entry(o.clone()).or_default() += 1;
            }
            done.push(InboxDone {
                id: item.id,
                attempt: item.attempt,
                outcome: o,
            });
        }
        Ok(done)
    }

    /// Processes one inbox entry; the outcome to record.
    pub async fn process_item(&self, item: &InboxItem) -> Result<String, ProcessError> {
        let envelope = Envelope::parse(&item.body)?;
        let cmd = command_for(&envelope);
        let applied = self
            .apply(&item.tenant, &envelope.shop_id, &cmd, None)
            .await?;
        Ok(applied.as_str().to_owned())
    }

    /// One round over every tenant: claims up to `limit` pending inbox
    /// entries each, processes them (entries of one order in order,
    /// different orders concurrently), and marks them processed. Returns
    /// how many entries were marked.
    pub async fn drain_once(self: &Arc<Self>, limit: usize) -> Result<usize, ProcessError> {
        let mut marked = 0;
        for (tenant, engine) in &self.engines {
            marked += self.drain_tenant(tenant, engine, limit).await?;
        }
        Ok(marked)
    }

    /// [`drain_once`](Self::drain_once) for one tenant: what the last round
    /// left undone ([`Stranded`]) first, then a new claim.
    async fn drain_tenant(
        self: &Arc<Self>,
        tenant: &str,
        engine: &Engine<S>,
        limit: usize,
    ) -> Result<usize, ProcessError> {
        let now = engine.now();
        let mut left = lock(&self.stranded).remove(tenant).unwrap_or_default();
        if left.claimed_at.is_some_and(|at| now - at >= INBOX_LEASE) {
            left.items.clear();
        }
        let mut marked = 0;
        if !left.done.is_empty() {
            match engine.store().inbox_done(tenant, &left.done, now).await {
                Ok(results) => {
                    marked += self.count_marked(&results);
                    left.done.clear();
                }
                Err(e) => {
                    self.strand(tenant, left);
                    return Err(EngineError::from(e).into());
                }
            }
        }
        let claimed = match engine
            .store()
            .inbox_claim(tenant, limit, INBOX_LEASE, now)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                self.strand(tenant, left);
                return Err(EngineError::from(e).into());
            }
        };
        // A retried entry claimed again (its lease lapsed): the new claim wins.
        // (Only after an outage: a round with nothing left over builds nothing.)
        let mut items = std::mem::take(&mut left.items);
        if !items.is_empty() {
            let again: std::collections::HashSet<i64> = claimed.iter().map(|i| i.id).collect();
            items.retain(|i| !again.contains(&i.id));
        }
        let claimed_at = if items.is_empty() {
            now
        } else {
            left.claimed_at.unwrap_or(now)
        };
        items.extend(claimed);
        if items.is_empty() {
            return Ok(marked);
        }
        // Group by order (the body's order id, or the entry itself).
        let mut groups: BTreeMap<String, Vec<InboxItem>> = BTreeMap::new();
        let mut commands: HashMap<i64, (String, Command)> = HashMap::new();
        for item in items {
            let parsed = Envelope::parse(&item.body).ok();
            let key = parsed
                .as_ref()
                .and_then(|e| e.order_id().map(str::to_owned))
                .unwrap_or_else(|| format!("#{}", item.id));
            if let Some(e) = &parsed {
                commands.insert(item.id, (e.shop_id.clone(), command_for(e)));
            }
            groups.entry(key).or_default().push(item);
        }
        // Orders whose entries only ingest or wait go through the batch
        // path (a few store transactions for the whole round); the rest
        // one entry at a time.
        let mut batch = Vec::new();
        groups.retain(|_, group| {
            let simple = group.iter().all(|i| {
                commands.get(&i.id).is_some_and(|(_, c)| {
                    matches!(
                        c,
                        Command::Ingest { .. }
                            | Command::Wait { .. }
                            | Command::Acknowledge
                            | Command::RefreshDetails { .. }
                    )
                })
            });
            if simple {
                batch.append(group);
            }
            !simple
        });
        let mut done = Vec::new();
        let mut stranded = Vec::new();
        if !batch.is_empty() {
            let with_commands: Vec<(InboxItem, String, Command)> = batch
                .into_iter()
                .filter_map(|i| commands.remove(&i.id).map(|(shop, c)| (i, shop, c)))
                .collect();
            match self.apply_batch(engine, &with_commands).await {
                Ok(d) => done.extend(d),
                Err(e) if e.is_transient() => {
                    self.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(tenant = %tenant, error = %e, "inbox batch left pending");
                    if e.is_store_away() {
                        stranded.extend(with_commands.into_iter().map(|(i, _, _)| i));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (_, group) in groups {
            let me = self.clone();
            tasks.spawn(async move {
                let mut done = Vec::with_capacity(group.len());
                let mut left = Vec::new();
                let mut group = group.into_iter();
                while let Some(item) = group.next() {
                    match me.process_item(&item).await {
                        Ok(outcome) => done.push(InboxDone {
                            id: item.id,
                            attempt: item.attempt,
                            outcome,
                        }),
                        Err(e) if e.is_transient() => {
                            me.retried.fetch_add(1, Ordering::Relaxed);
                            // Later entries of this order wait for it: at
                            // the next round when the store was away, else
                            // (TikTok's API) when the lease lapses.
                            if e.is_store_away() {
                                left.push(item);
                                left.extend(group);
                            }
                            break;
                        }
                        Err(e) => {
                            me.failed.fetch_add(1, Ordering::Relaxed);
                            done.push(InboxDone {
                                id: item.id,
                                attempt: item.attempt,
                                outcome: format!("error: {e}"),
                            });
                        }
                    }
                }
                (done, left)
            });
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok((d, l)) => {
                    done.extend(d);
                    stranded.extend(l);
                }
                Err(e) => {
                    return Err(ProcessError::Engine(EngineError::Config(format!(
                        "inbox task failed: {e}"
                    ))));
                }
            }
        }
        let marking = engine.store().inbox_done(tenant, &done, engine.now()).await;
        let result = match marking {
            Ok(results) => Ok(marked + self.count_marked(&results)),
            Err(e) => {
                left.done = done;
                Err(EngineError::from(e).into())
            }
        };
        if !stranded.is_empty() || !left.done.is_empty() {
            left.items = stranded;
            left.claimed_at = Some(claimed_at);
            self.strand(tenant, left);
        }
        result
    }

    /// Keeps what a round of `tenant` left undone for the next one.
    fn strand(&self, tenant: &str, left: Stranded) {
        if !left.items.is_empty() || !left.done.is_empty() {
            lock(&self.stranded).insert(tenant.to_owned(), left);
        }
    }

    /// How many of `results` (of `inbox_done`) marked an entry; counted as
    /// processed.
    fn count_marked(&self, results: &[bool]) -> usize {
        let n = results.iter().filter(|r| **r).count();
        self.processed.fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}
