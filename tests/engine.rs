//! End-to-end workflows of the engine on every store: memory, SQLite and
//! PostgreSQL (from `CREATORFLOW_TEST_PG`; see `tests/store/pg.rs`).

#[path = "store/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::actions::{
    ActionType, DefaultHandlers, ExecutorConfig, NoSleep, RetryPreset, SimConfig,
};
use creatorflow::engine::{Engine, EngineBuilder, LaneConfig, Lanes};
use creatorflow::machine::Machine;
use creatorflow::model::{AutomationStatus, Priority};
use creatorflow::rules::{PackLoader, RulePack};
use creatorflow::store::{self, AnyStore, MemoryStore, OrderStore, OrderWithHistory, QueueStore};
use creatorflow::{Clock, ManualClock, Order};
use proptest::prelude::*;

const START: &str = "2025-06-12T10:00:00Z";

fn start() -> DateTime<Utc> {
    START.parse().expect("time")
}

struct Fixture {
    engine: Engine<AnyStore>,
    clock: Arc<ManualClock>,
    defaults: DefaultHandlers,
    /// The store's URL, for a second engine on it (none for memory).
    url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

fn empty_pack() -> RulePack {
    PackLoader::new()
        .load_sources(&[("empty.yaml".to_owned(), "rules: []\n".to_owned())])
        .expect("empty pack")
}

async fn fixture(
    backend: Backend,
    defaults: DefaultHandlers,
    tweak: impl FnOnce(EngineBuilder<AnyStore>) -> EngineBuilder<AnyStore>,
) -> Fixture {
    let (store, url, dir) = match backend {
        Backend::Memory => (AnyStore::Memory(MemoryStore::new()), None, None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("cf.db").display());
            (
                store::open(&url).await.expect("sqlite"),
                Some(url),
                Some(dir),
            )
        }
        Backend::Postgres => {
            let url = pg::url().expect("the caller checked CREATORFLOW_TEST_PG");
            let url = pg::with_schema(&url, &pg::fresh_schema("engine"));
            (store::open(&url).await.expect("postgres"), Some(url), None)
        }
    };
    let clock = Arc::new(ManualClock::new(start()));
    let builder = EngineBuilder::new(store)
        .clock(clock.clone())
        .handlers(defaults.registry())
        .sleeper(Arc::new(NoSleep::default()))
        .worker_name("w1");
    Fixture {
        engine: tweak(builder).build().expect("engine"),
        clock,
        defaults,
        url,
        _dir: dir,
    }
}

/// Order `n` with extra JSON fields (`"customer_tier":"vip"`, …).
fn order_with(n: usize, extra: &str) -> Order {
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"o{n}","customer_handle":"@c{n}","product_name":"Lamp",
        "product_id":"p1","quantity":1,"created_at":"{START}",{extra}}}"#
    ))
    .expect("valid order")
}

fn order(n: usize) -> Order {
    order_with(n, r#""price":"25.00""#)
}

/// The history replays from the machine's initial state to the order's
/// state, each step allowed, versions 1..=n once each.
fn assert_replays(machine: &Machine, o: &OrderWithHistory) {
    let mut state = machine.initial().to_string();
    for (i, h) in o.history.iter().enumerate() {
        assert_eq!(h.version, i as u64 + 1, "version of step {i}");
        assert_eq!(h.from.as_str(), state, "history of {}", o.order.id);
        assert!(h.from == h.to || machine.can_transition(&state, h.to.as_str()));
        state = h.to.to_string();
    }
    assert_eq!(state, o.order.order.current_state.as_str());
    assert_eq!(o.order.version, o.history.len() as u64);
}

async fn history(f: &Fixture, id: store::OrderId) -> OrderWithHistory {
    f.engine
        .store()
        .order_with_history(f.engine.tenant(), id)
        .await
        .expect("store")
        .expect("order")
}

fn states(o: &OrderWithHistory) -> Vec<String> {
    o.history.iter().map(|h| h.to.to_string()).collect()
}

/// Runs until idle, then advances virtual time to the next due item, until
/// nothing is left or `max` hops.
async fn drain(f: &Fixture, max: usize) {
    for _ in 0..max {
        let idle = f.engine.run_until_idle().await.expect("run");
        match idle.next_due {
            Some(t) if t > f.clock.now() => f.clock.set(t),
            Some(_) => {}
            None => return,
        }
    }
}

macro_rules! every_backend {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Memory).await })+
        }
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })+
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                if super::pg::url().is_some() {
                    super::$name(super::Backend::Postgres).await
                }
            })+
        }
    };
}

/// States that wait for the world; rule actions across packs.
#[path = "engine/wait.rs"]
mod wait;

every_backend!(
    happy_path,
    rule_actions_run_with_the_first_step,
    received_times_out_to_manual_review,
    shipped_escalates_once_after_a_week,
    enricher_feeds_the_rules,
    duplicates_count_once,
    sole_ingester_stores_each_order_once,
    shortage_fails_then_retry,
    cancellation_from_each_state,
    carrier_outage,
    rule_error_goes_to_manual_review,
    status_checks_integrity,
    run_stops_on_shutdown
);

async fn happy_path(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    let first = f.engine.ingest(order(1)).await.expect("ingest");
    assert!(first.created);
    let again = f.engine.ingest(order(1)).await.expect("ingest");
    assert!(!again.created);
    assert_eq!(again.order.id, first.order.id);

    let idle = f.engine.run_until_idle().await.expect("run");
    let o = f.engine.order(first.order.id).await.expect("order");
    assert_eq!(o.order.current_state, "shipped");
    assert_eq!(o.order.flow_progress, 90);
    // The delivery check is scheduled an hour later, not busy-polled.
    assert_eq!(idle.next_due, Some(f.clock.now() + TimeDelta::hours(1)));
    drain(&f, 100).await;
    let h = history(&f, first.order.id).await;
    assert_eq!(
        states(&h),
        [
            "validated",
            "processing",
            "inventory_reserved",
            "label_generated",
            "shipped",
            "delivered"
        ]
    );
    assert_eq!(h.order.order.flow_progress, 100);
    assert_eq!(h.order.order.automation_status, AutomationStatus::Delivered);
    assert!(h.order.terminal);
    assert_replays(f.engine.machine(), &h);
    let m = f.engine.metrics().await.expect("metrics");
    assert_eq!(m.dashboard.orders_by_state.get("delivered"), Some(&1));
    assert_eq!(m.queue.next_run_at, None);
}

async fn shortage_fails_then_retry(b: Backend) {
    let defaults = DefaultHandlers::new(SimConfig::default(), SimConfig::default(), Some(0));
    let f = fixture(b, defaults, |x| x).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    drain(&f, 5).await;
    let h = history(&f, id).await;
    assert_eq!(states(&h), ["validated", "processing", "failed"]);
    assert_eq!(
        h.order.order.automation_status,
        AutomationStatus::ManualReview
    );
    let last = h.history.last().expect("history");
    assert!(
        last.error_message
            .as_deref()
            .is_some_and(|m| m.contains("out_of_stock")),
        "{:?}",
        last.error_message
    );
    // Nothing is queued for a failed order: it waits for a person.
    assert_eq!(f.engine.run_until_idle().await.expect("run").next_due, None);

    f.defaults.inventory.set_stock("p1", 5);
    let o = f.engine.retry(id, "ops-1", None).await.expect("retry");
    assert_eq!(o.order.current_state, "processing");
    assert!(
        f.engine.retry(id, "ops-1", None).await.is_err(),
        "retry needs a failed order"
    );
    drain(&f, 100).await;
    let h = history(&f, id).await;
    assert_eq!(h.order.order.current_state, "delivered");
    assert_eq!(f.defaults.inventory.available("p1"), Some(4));
    assert_replays(f.engine.machine(), &h);
}

async fn cancellation_from_each_state(b: Backend) {
    let cases: [(&str, &[&str]); 5] = [
        ("received", &[]),
        ("validated", &[]),
        ("processing", &[]),
        ("inventory_reserved", &["reserve_inventory/release"]),
        (
            "label_generated",
            &["generate_shipping_label/void", "reserve_inventory/release"],
        ),
    ];
    // One step per claim, so that the order stops in each state.
    let f = fixture(b, DefaultHandlers::default(), |x| x.max_chain(1)).await;
    for (n, (target, rollbacks)) in cases.iter().enumerate() {
        let id = f.engine.ingest(order(n)).await.expect("ingest").order.id;
        // One claim round moves this order one step (others are terminal).
        while f.engine.order(id).await.expect("order").order.current_state != *target {
            let r = f.engine.run_once().await.expect("round");
            assert!(!r.claimed.is_empty(), "stuck before {target}");
        }
        let o = f.engine.cancel(id, "customer asked").await.expect("cancel");
        assert_eq!(o.order.current_state, "cancelled");
        assert!(o.terminal);
        let h = history(&f, id).await;
        let last = h.history.last().expect("history");
        assert_eq!(last.from.as_str(), *target);
        assert!(!last.automated);
        assert!(
            last.reason
                .as_deref()
                .is_some_and(|r| r.contains("customer asked"))
        );
        let done: Vec<String> = last
            .actions_executed
            .to_value()
            .as_array()
            .expect("array")
            .iter()
            .filter(|a| a["phase"] == "rollback")
            .map(|a| {
                format!(
                    "{}/{}",
                    a["type"].as_str().unwrap_or(""),
                    a["operation"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(done, *rollbacks, "rollbacks cancelling from {target}");
        assert_replays(f.engine.machine(), &h);
        // The queued work of a cancelled order just goes away.
        f.engine.run_until_idle().await.expect("run");
        assert_eq!(history(&f, id).await.history.len(), h.history.len());
    }
    assert_eq!(f.defaults.inventory.reservations(), 0);
    assert_eq!(f.defaults.carrier.labels(), 0);
    // Nothing leaves a terminal state.
    let id = f.engine.ingest(order(0)).await.expect("ingest").order.id;
    assert!(f.engine.cancel(id, "again").await.is_err());
}

async fn carrier_outage(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| {
        x.executor_config(ExecutorConfig {
            breaker_cooldown: TimeDelta::seconds(30),
            ..ExecutorConfig::default()
        })
    })
    .await;
    f.defaults.carrier.set_outage(true);
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(f.engine.ingest(order(n)).await.expect("ingest").order.id);
    }
    let idle = f.engine.run_until_idle().await.expect("run");
    let breaker = f
        .engine
        .executor()
        .breakers()
        .state(&ActionType::SelectCarrier);
    assert!(breaker.is_open(), "{breaker:?}");
    assert!(f.engine.executor().stats().circuit_opened >= 1);
    let mut by_state = BTreeMap::<String, usize>::new();
    for id in &ids {
        *by_state
            .entry(
                f.engine
                    .order(*id)
                    .await
                    .expect("order")
                    .order
                    .current_state
                    .to_string(),
            )
            .or_default() += 1;
    }
    // Orders are held back while the circuit is open, not failed.
    assert!(
        by_state.get("inventory_reserved").copied().unwrap_or(0) >= 8,
        "{by_state:?}"
    );
    assert_eq!(idle.next_due, Some(f.clock.now() + TimeDelta::seconds(30)));

    // The carrier recovers; after the cool-down the probe closes the circuit.
    f.defaults.carrier.set_outage(false);
    f.clock.advance(TimeDelta::seconds(30));
    f.engine.run_until_idle().await.expect("run");
    assert!(
        !f.engine
            .executor()
            .breakers()
            .state(&ActionType::SelectCarrier)
            .is_open()
    );
    for id in &ids {
        let h = history(&f, *id).await;
        let s = h.order.order.current_state.to_string();
        assert!(s == "shipped" || s == "failed", "{s}");
        assert_replays(f.engine.machine(), &h);
    }
    let shipped = {
        let mut n = 0;
        for id in &ids {
            n += usize::from(
                f.engine
                    .order(*id)
                    .await
                    .expect("order")
                    .order
                    .current_state
                    == "shipped",
            );
        }
        n
    };
    assert!(shipped >= 8, "{shipped}");
}

async fn rule_error_goes_to_manual_review(b: Backend) {
    let pack = PackLoader::new()
        .load_sources(&[(
            "bad.yaml".to_owned(),
            r#"rules:
  - id: always-fails
    name: A script that errors
    category: exception_handling
    priority: 50
    condition_logic: CUSTOM
    custom_logic: "order.quantity / 0 > 1"
    conditions:
      - { field: quantity, operator: greater_than, value: 0 }
    actions:
      - type: log_analytics_event
"#
            .to_owned(),
        )])
        .expect("pack");
    let f = fixture(b, DefaultHandlers::default(), |x| x.rules(pack)).await;
    let report = f
        .engine
        .ingest_many(vec![order(1), order(2), order(1)])
        .await
        .expect("ingest");
    assert_eq!((report.new, report.known, report.rule_failures), (2, 1, 2));
    let o = f
        .engine
        .store()
        .find_order(f.engine.tenant(), "o1")
        .await
        .expect("store")
        .expect("order");
    assert_eq!(o.order.current_state, "failed");
    assert_eq!(o.order.priority, Priority::Urgent);
    assert_eq!(o.order.automation_status, AutomationStatus::ManualReview);
    let h = history(&f, o.id).await;
    assert!(
        h.history[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("always-fails"))
    );
    assert_eq!(f.engine.run_until_idle().await.expect("run").claimed, 0);
}

async fn status_checks_integrity(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    for n in 0..3 {
        f.engine.ingest(order(n)).await.expect("ingest");
    }
    drain(&f, 100).await;
    let s = f.engine.status().await.expect("status");
    assert_eq!(s.orders, 3);
    assert_eq!(s.by_state.get("delivered"), Some(&3));
    assert_eq!(s.by_lane.values().sum::<u64>(), 3);
    assert!(s.integrity.ok, "{:?}", s.integrity.problems);

    // A worker claims a step and dies: once its lease lapses, status says so;
    // another worker resumes the step and status is clean again.
    f.engine.ingest(order(9)).await.expect("ingest");
    let limits = [store::LaneLimit {
        lane: Priority::Standard,
        limit: 10,
    }];
    let claimed = f
        .engine
        .store()
        .claim(
            store::TenantScope::All,
            &store::ClaimRequest {
                worker: "dead",
                lanes: &limits,
                lease: TimeDelta::seconds(30),
                now: f.clock.now(),
            },
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(f.engine.status().await.expect("status").integrity.ok);
    f.clock.advance(TimeDelta::seconds(31));
    let s = f.engine.status().await.expect("status");
    assert!(!s.integrity.ok);
    assert!(
        s.integrity.problems[0].contains("lease"),
        "{:?}",
        s.integrity.problems
    );
    drain(&f, 100).await;
    let s = f.engine.status().await.expect("status");
    assert!(s.integrity.ok, "{:?}", s.integrity.problems);
    assert_eq!(s.by_state.get("delivered"), Some(&4));
}

async fn run_stops_on_shutdown(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let engine = f.engine.clone();
    let task = tokio::spawn(async move {
        engine
            .run(
                async {
                    let _ = rx.await;
                },
                std::time::Duration::from_millis(5),
            )
            .await
    });
    for _ in 0..2_000 {
        if f.engine.order(id).await.expect("order").order.current_state == "shipped" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let _ = tx.send(());
    let total = task.await.expect("join").expect("run");
    assert_eq!(total.recorded, 5);
    assert_eq!(
        f.engine.order(id).await.expect("order").order.current_state,
        "shipped"
    );
}

// ---- lanes ------------------------------------------------------------------

const LIMITS: [(Priority, usize); 4] = [
    (Priority::High, 2),
    (Priority::Urgent, 1),
    (Priority::Standard, 3),
    (Priority::Automated, 2),
];

fn lane_order(n: usize, p: Priority, viral: bool, minutes: i64) -> Order {
    let created = start() - TimeDelta::minutes(minutes);
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"o{n}","customer_handle":"@c{n}","product_name":"Lamp",
        "product_id":"p{n}","quantity":1,"price":"25.00","priority":"{}",
        "impact":"{}","created_at":"{}"}}"#,
        p.as_str(),
        if viral { "VIRAL" } else { "MED" },
        created.to_rfc3339()
    ))
    .expect("valid order")
}

/// An order's lane facts: priority, viral, created_at.
type Facts = (Priority, bool, DateTime<Utc>);

async fn lanes_hold(orders: Vec<(Priority, bool, i64)>) -> Result<(), TestCaseError> {
    let f = fixture(Backend::Memory, DefaultHandlers::default(), |mut x| {
        for (p, n) in LIMITS {
            x = x.lane(
                p,
                LaneConfig::new(n, TimeDelta::seconds(30), RetryPreset::Default),
            );
        }
        x.rules(empty_pack()).delivery_confirmation(|o, now| {
            now - o.state_changed_at.unwrap_or(o.created_at) >= TimeDelta::hours(2)
        })
    })
    .await;
    let batch: Vec<Order> = orders
        .iter()
        .enumerate()
        .map(|(n, (p, v, m))| lane_order(n, *p, *v, *m))
        .collect();
    let report = f.engine.ingest_many(batch.clone()).await.expect("ingest");
    prop_assert_eq!(report.new, orders.len());
    let by_tiktok: BTreeMap<String, Facts> = batch
        .iter()
        .map(|o| {
            (
                o.tiktok_order_id.clone(),
                (o.priority, o.impact.as_str() == "VIRAL", o.created_at),
            )
        })
        .collect();
    let mut ids = BTreeMap::new();
    for o in &batch {
        let s = f
            .engine
            .store()
            .find_order(f.engine.tenant(), &o.tiktok_order_id)
            .await
            .expect("store")
            .expect("order");
        ids.insert(s.id, o.tiktok_order_id.clone());
    }
    // First round: every order is due; each lane serves its best `limit`.
    let first = f.engine.run_once().await.expect("round");
    for (lane, limit) in LIMITS {
        let claimed: Vec<&String> = first
            .claimed
            .iter()
            .filter(|c| c.1 == lane)
            .map(|c| &ids[&c.0])
            .collect();
        let mut all: Vec<(&String, &Facts)> =
            by_tiktok.iter().filter(|(_, v)| v.0 == lane).collect();
        all.sort_by_key(|(_, v)| (!v.1, v.2));
        prop_assert_eq!(claimed.len(), all.len().min(limit));
        // VIRAL first, then oldest: the claimed ones rank no lower than any unclaimed one.
        let rank = |t: &String| {
            let v = by_tiktok[t];
            (!v.1, v.2)
        };
        if let Some(worst) = claimed.iter().map(|t| rank(t)).max() {
            for (t, _) in all.iter().filter(|(t, _)| !claimed.contains(t)) {
                prop_assert!(
                    rank(t) >= worst,
                    "unclaimed {} ranks before a claimed one",
                    t
                );
            }
        }
    }
    // Every round stays within the limits; all orders end delivered.
    for _ in 0..2_000 {
        let r = f.engine.run_once().await.expect("round");
        for (lane, limit) in LIMITS {
            prop_assert!(r.claimed.iter().filter(|c| c.1 == lane).count() <= limit);
        }
        let unique: HashSet<_> = r.claimed.iter().map(|c| c.0).collect();
        prop_assert_eq!(unique.len(), r.claimed.len());
        if r.claimed.is_empty() {
            let idle = f.engine.run_until_idle().await.expect("run");
            match idle.next_due {
                Some(t) => f.clock.set(t.max(f.clock.now())),
                None => break,
            }
        }
    }
    for id in ids.keys() {
        let h = history(&f, *id).await;
        prop_assert_eq!(h.order.order.current_state.as_str(), "delivered");
        prop_assert_eq!(h.history.len(), 6, "no step recorded twice");
        assert_replays(f.engine.machine(), &h);
    }
    Ok(())
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::High),
        Just(Priority::Urgent),
        Just(Priority::Standard),
        Just(Priority::Automated)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn lanes_serve_viral_then_oldest_within_limits(
        orders in proptest::collection::vec((priority(), any::<bool>(), 0i64..600), 1..25)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(lanes_hold(orders))?;
    }
}

/// Two engines (workers) on one SQLite file: one's cached copy goes stale
/// when the other moves the order; the stale step is refused by the version
/// check, given back, and redone from the stored order. No step twice.
#[tokio::test]
async fn two_workers_on_one_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let clock = Arc::new(ManualClock::new(start()));
    let build = |name: &str, store: AnyStore| {
        EngineBuilder::new(store)
            .clock(clock.clone())
            .sleeper(Arc::new(NoSleep::default()))
            .worker_name(name)
            .simulated_handlers()
            .build()
            .expect("engine")
    };
    let a = build("a", store::open(&url).await.expect("open"));
    let b = build("b", store::open(&url).await.expect("open"));
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(a.ingest(order(n)).await.expect("ingest").order.id);
    }
    // Alternate rounds between the workers; `a` caches what it wrote.
    for i in 0..40 {
        let w = if i % 3 == 0 { &b } else { &a };
        w.run_once().await.expect("round");
    }
    a.run_until_idle().await.expect("run");
    b.run_until_idle().await.expect("run");
    for id in ids {
        let h = a
            .store()
            .order_with_history(a.tenant(), id)
            .await
            .expect("store")
            .expect("order");
        assert_eq!(h.order.order.current_state, "shipped");
        assert_eq!(h.history.len(), 5, "no step twice");
        assert_replays(a.machine(), &h);
    }
    assert!(a.status().await.expect("status").integrity.ok);
}

/// A worker killed at random moments (its task aborted mid-round, as a
/// crash would stop it: whatever it had not committed is gone) and
/// restarted, again and again: every order ends shipped, no step is
/// recorded twice, and `status` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_nothing() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let clock = Arc::new(ManualClock::new(start()));
    let build = |name: String, store: AnyStore| {
        EngineBuilder::new(store)
            .clock(clock.clone())
            .sleeper(Arc::new(NoSleep::default()))
            .worker_name(name)
            .simulated_handlers()
            .build()
            .expect("engine")
    };
    let first = build("ingest".into(), store::open(&url).await.expect("open"));
    let batch: Vec<Order> = (0..300).map(order).collect();
    assert_eq!(first.ingest_many(batch).await.expect("ingest").new, 300);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for kill in 0..8 {
        let engine = build(format!("w{kill}"), store::open(&url).await.expect("open"));
        let task = tokio::spawn(async move {
            engine
                .run(
                    std::future::pending::<()>(),
                    std::time::Duration::from_millis(1),
                )
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(rng.random_range(1..40))).await;
        task.abort();
        let _ = task.await;
        // The dead worker's leases lapse before the next one starts.
        clock.advance(Lanes::default().lease() + TimeDelta::seconds(1));
    }
    let last = build("last".into(), store::open(&url).await.expect("open"));
    last.run_until_idle().await.expect("run");
    let status = last.status().await.expect("status");
    assert!(status.integrity.ok, "{:?}", status.integrity.problems);
    assert_eq!(
        status.by_state.get("shipped"),
        Some(&300),
        "{:?}",
        status.by_state
    );
    let mut after = None;
    loop {
        let page = last
            .store()
            .list_orders(last.tenant(), after, 100)
            .await
            .expect("list");
        let Some(l) = page.last() else { break };
        after = Some(l.id);
        for o in page {
            let h = history_of(&last, o.id).await;
            assert_eq!(h.history.len(), 5, "no step twice");
            assert_replays(last.machine(), &h);
        }
    }
}

async fn history_of(e: &Engine<AnyStore>, id: store::OrderId) -> OrderWithHistory {
    e.store()
        .order_with_history(e.tenant(), id)
        .await
        .expect("store")
        .expect("order")
}

fn action_types(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The fired rules' actions run with the first step (recorded in its
/// history row, not again later); `escalate_to_manual` sends the order to
/// manual review naming the rule.
async fn rule_actions_run_with_the_first_step(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x).await;
    let vip = f
        .engine
        .ingest(order_with(1, r#""price":"25.00","customer_tier":"vip""#))
        .await
        .expect("ingest");
    assert_eq!(vip.order.order.priority, Priority::High);
    let review = f
        .engine
        .ingest(order_with(2, r#""price":"450.00","customer_tier":"new""#))
        .await
        .expect("ingest");
    let plain = f
        .engine
        .ingest(order_with(3, r#""price":"25.00""#))
        .await
        .expect("ingest");
    f.engine.run_until_idle().await.expect("run");

    let h = history(&f, vip.order.id).await;
    let first = action_types(&h.history[0].actions_executed.to_value());
    assert!(
        first.starts_with(&[
            "enable_fast_track".into(),
            "send_customer_notification".into()
        ]),
        "{first:?}"
    );
    for later in &h.history[1..] {
        let kinds = action_types(&later.actions_executed.to_value());
        assert!(
            !kinds.contains(&"enable_fast_track".to_owned()),
            "ran twice: {kinds:?}"
        );
    }
    assert_eq!(h.order.order.current_state, "shipped");

    let h = history(&f, review.order.id).await;
    assert_eq!(states(&h), ["failed"]);
    let msg = h.history[0].error_message.clone().unwrap_or_default();
    assert!(msg.contains("new-customer-large-order-review"), "{msg}");
    assert_eq!(
        h.order.order.automation_status,
        AutomationStatus::ManualReview
    );

    let h = history(&f, plain.order.id).await;
    assert!(
        !action_types(&h.history[0].actions_executed.to_value())
            .contains(&"enable_fast_track".into())
    );
    assert_eq!(h.order.order.current_state, "shipped");
    assert!(f.engine.status().await.expect("status").integrity.ok);
}

/// `received` times out after 72 h: the order goes to manual review.
async fn received_times_out_to_manual_review(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x.rules(empty_pack())).await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    f.clock.advance(TimeDelta::hours(71));
    // Order 2 is ingested 71 h later: 1 h in `received` when order 1 has been 72 h.
    let mut late = order(2);
    late.created_at = f.clock.now();
    late.state_changed_at = Some(late.created_at);
    late.updated_at = Some(late.created_at);
    let fresh = f.engine.ingest(late).await.expect("ingest").order.id;
    f.clock.advance(TimeDelta::hours(1));
    f.engine.run_until_idle().await.expect("run");
    let h = history(&f, id).await;
    assert_eq!(states(&h), ["failed"]);
    let reason = h.history[0].reason.clone().unwrap_or_default();
    assert!(reason.contains("timeout: 72h in `received`"), "{reason}");
    assert_replays(f.engine.machine(), &h);
    // Not a timeout for an order that has been waiting less.
    let h = history(&f, fresh).await;
    assert_eq!(h.order.order.current_state, "shipped", "{:?}", h.history);
}

/// `shipped` without a delivery confirmation for 7 days: the order is
/// escalated to `urgent` once (a history row from `shipped` to itself),
/// its work moves to the urgent lane, and it keeps waiting for delivery.
async fn shipped_escalates_once_after_a_week(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| {
        x.rules(empty_pack()).delivery_confirmation(|_, _| false)
    })
    .await;
    let id = f.engine.ingest(order(1)).await.expect("ingest").order.id;
    let end = f.clock.now() + TimeDelta::days(16);
    while f.clock.now() < end {
        let idle = f.engine.run_until_idle().await.expect("run");
        let next = idle.next_due.expect("the delivery check stays queued");
        assert!(next > f.clock.now(), "a due item left behind");
        f.clock.set(next);
    }
    let h = history(&f, id).await;
    assert_eq!(
        states(&h),
        [
            "validated",
            "processing",
            "inventory_reserved",
            "label_generated",
            "shipped",
            "shipped"
        ]
    );
    let esc = &h.history[5];
    assert!(
        esc.reason
            .as_deref()
            .unwrap_or("")
            .contains("escalate (priority standard → urgent)"),
        "{:?}",
        esc.reason
    );
    let shipped_at = h.history[4].at;
    assert!(esc.at >= shipped_at + TimeDelta::days(7));
    assert!(esc.at <= shipped_at + TimeDelta::days(7) + TimeDelta::hours(1));
    assert_eq!(h.order.order.priority, Priority::Urgent);
    assert_replays(f.engine.machine(), &h);
    let status = f.engine.status().await.expect("status");
    assert!(status.integrity.ok, "{:?}", status.integrity.problems);
}

/// Sets every order's velocity facts as a detector that sees a spike would.
struct SpikeEverywhere;

impl creatorflow::viral::Enricher for SpikeEverywhere {
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>) -> creatorflow::viral::Enrichment {
        order.orders_per_hour_current = "120".parse().expect("decimal");
        order.velocity_multiplier = "4".parse().expect("decimal");
        // What the shipped viral rules trust: the detector's sure spike.
        order
            .viral_indicators
            .push(creatorflow::model::ViralIndicator {
                kind: creatorflow::model::ViralIndicatorType::ContentSpike,
                source: "velocity_detector".to_owned(),
                confidence: 0.99,
                impact_multiplier: 4.0,
                detected_at: now,
                metadata: Default::default(),
            });
        creatorflow::viral::Enrichment {
            escalate: true,
            assessment: creatorflow::viral::Assessment {
                orders_last_hour: 120,
                baseline_per_hour: 30.0,
                velocity_multiplier: 4.0,
                spike: None,
            },
        }
    }
    fn record(&mut self, _: &str, _: &str, _: DateTime<Utc>, _: u32) {}
}

/// The enricher runs before the rules: the shipped viral-escalation rule
/// acts on the facts it set, and the order is stored with them.
async fn enricher_feeds_the_rules(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| {
        x.enricher(Box::new(SpikeEverywhere))
    })
    .await;
    let got = f.engine.ingest(order(1)).await.expect("ingest");
    assert_eq!(got.order.order.priority, Priority::High);
    assert_eq!(got.order.order.impact, creatorflow::model::Impact::Viral);
    let stored = f.engine.order(got.order.id).await.expect("order");
    assert_eq!(stored.order.orders_per_hour_current.to_string(), "120");
    assert_eq!(stored.order.velocity_multiplier.to_string(), "4");
}

#[tokio::test]
async fn sqlite_restart_restores_window_facts() {
    restart_restores_window_facts(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_restart_restores_window_facts() {
    if pg::url().is_some() {
        restart_restores_window_facts(Backend::Postgres).await;
    }
}

/// A pack with a window fact: a new engine over the same store counts the
/// orders an earlier engine ingested (the windows are restored).
/// A pack whose one rule escalates orders of a product with 3 or more
/// orders in the last hour (a window fact).
fn busy_pack() -> RulePack {
    PackLoader::new()
        .load_sources(&[(
            "w.yaml".to_owned(),
            "rules:\n  - id: busy\n    name: busy product\n    category: viral_detection\n    priority: 50\n    conditions:\n      - field: product_orders\n        operator: greater_than_or_equal\n        value: 3\n        time_window: 1h\n    actions:\n      - type: escalate_priority\n        parameters: { new_priority: high }\n"
                .to_owned(),
        )])
        .expect("pack")
}

/// A duplicate delivery of an order (again later, or twice in one batch)
/// does not count again in the window facts.
async fn duplicates_count_once(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x.rules(busy_pack())).await;
    f.engine.ingest(order(0)).await.expect("ingest");
    assert!(!f.engine.ingest(order(0)).await.expect("ingest").created);
    let report = f
        .engine
        .ingest_many(vec![order(1), order(1)])
        .await
        .expect("ingest");
    assert_eq!((report.new, report.known), (1, 1));
    let second = f.engine.store().find_order(f.engine.tenant(), "o1").await;
    let second = second.expect("store").expect("order");
    assert_eq!(second.order.priority, Priority::Standard, "2 orders, not 4");
    let third = f.engine.ingest(order(2)).await.expect("ingest");
    assert_eq!(
        third.order.order.priority,
        Priority::High,
        "the third order"
    );
}

/// A sole ingester answers "known?" from its memory: new orders and
/// duplicates count as without it; and when the declaration is wrong (an
/// order another engine stored), the store still keeps one copy and the
/// order counts as known.
async fn sole_ingester_stores_each_order_once(b: Backend) {
    let f = fixture(b, DefaultHandlers::default(), |x| x.sole_ingester(true)).await;
    let report = f
        .engine
        .ingest_many(vec![order(0), order(0), order(1)])
        .await
        .expect("ingest");
    assert_eq!((report.new, report.known), (2, 1));
    let report = f
        .engine
        .ingest_many(vec![order(1), order(2)])
        .await
        .expect("ingest");
    assert_eq!((report.new, report.known), (1, 1));
    let other = EngineBuilder::new(f.engine.store().clone())
        .clock(f.clock.clone())
        .simulated_handlers()
        .build()
        .expect("engine");
    assert!(other.ingest(order(3)).await.expect("ingest").created);
    let report = f.engine.ingest_many(vec![order(3)]).await.expect("ingest");
    assert_eq!((report.new, report.known), (0, 1), "stored by the other");
    let all = f
        .engine
        .store()
        .list_orders(f.engine.tenant(), None, 10)
        .await
        .expect("list");
    assert_eq!(all.len(), 4, "one copy each");
}

async fn restart_restores_window_facts(b: Backend) {
    let pack = busy_pack();
    let f = fixture(b, DefaultHandlers::default(), |x| x.rules(pack.clone())).await;
    for n in 0..2 {
        let o = f.engine.ingest(order(n)).await.expect("ingest");
        assert_eq!(o.order.order.priority, Priority::Standard);
    }
    // A second engine (a restarted process) on the same store.
    let url = f.url.as_deref().expect("a durable store");
    let again = EngineBuilder::new(store::open(url).await.expect("reopen"))
        .clock(f.clock.clone())
        .rules(pack)
        .simulated_handlers()
        .build()
        .expect("engine");
    let third = again.ingest(order(2)).await.expect("ingest");
    assert_eq!(again.restore().await.expect("restore"), 2);
    assert_eq!(
        third.order.order.priority,
        Priority::High,
        "the window saw 3 orders"
    );
}

/// People act on orders: approve, reject, retry, cancel.
#[path = "engine/operator.rs"]
mod operator;
