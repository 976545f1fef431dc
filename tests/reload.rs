//! Rule-pack hot reload in the library: [`Engine::reload_rules`] on every
//! store (memory, SQLite, PostgreSQL from `CREATORFLOW_TEST_PG`), and the
//! pack version recorded with every decision and history row.

#[path = "store/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::sync::Arc;

use creatorflow::actions::{DefaultHandlers, NoSleep};
use creatorflow::engine::{BuildError, Engine, EngineBuilder, EngineError};
use creatorflow::model::Priority;
use creatorflow::rules::{PackLoader, RulePack};
use creatorflow::store::{self, AnyStore, MemoryStore, OrderStore};
use creatorflow::{ManualClock, Order};

const START: &str = "2025-06-12T10:00:00Z";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

struct Fixture {
    engine: Engine<AnyStore>,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

async fn fixture(backend: Backend, pack: RulePack) -> Option<Fixture> {
    let (store, dir) = match backend {
        Backend::Memory => (AnyStore::Memory(MemoryStore::new()), None),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("cf.db").display());
            (store::open(&url).await.expect("sqlite"), Some(dir))
        }
        Backend::Postgres => {
            let url = pg::url()?;
            let url = pg::with_schema(&url, &pg::fresh_schema("reload"));
            (store::open(&url).await.expect("postgres"), None)
        }
    };
    let clock = Arc::new(ManualClock::new(START.parse().expect("time")));
    let engine = EngineBuilder::new(store)
        .clock(clock.clone())
        .handlers(DefaultHandlers::default().registry())
        .sleeper(Arc::new(NoSleep::default()))
        .rules(pack)
        .build()
        .expect("engine");
    Some(Fixture {
        engine,
        clock,
        _dir: dir,
    })
}

fn pack(name: &str, yaml: &str) -> RulePack {
    PackLoader::new()
        .load_sources(&[(name.to_owned(), yaml.to_owned())])
        .expect("a valid pack")
}

fn empty_pack() -> RulePack {
    pack("empty.yaml", "rules: []\n")
}

/// One rule, `id`, raising orders of a product with at least `n` orders in
/// the last `window` to `lane`.
fn busy_pack(id: &str, n: u32, window: &str, lane: &str) -> RulePack {
    pack(
        "busy.yaml",
        &format!(
            "rules:\n  - id: {id}\n    name: busy product\n    category: viral_detection\n    priority: 50\n    conditions:\n      - field: product_orders\n        operator: greater_than_or_equal\n        value: {n}\n        time_window: {window}\n    actions:\n      - type: escalate_priority\n        parameters: {{ new_priority: {lane} }}\n"
        ),
    )
}

/// One rule, `big`, raising orders over 20.00 to `high`.
fn big_pack() -> RulePack {
    pack(
        "big.yaml",
        "rules:\n  - id: big\n    name: big order\n    category: priority_classification\n    priority: 10\n    conditions:\n      - field: price\n        operator: greater_than\n        value: 20\n    actions:\n      - type: escalate_priority\n        parameters: { new_priority: high }\n",
    )
}

fn order(n: usize) -> Order {
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"o{n}","customer_handle":"@c{n}","product_name":"Lamp",
        "product_id":"p1","quantity":1,"price":"25.00","created_at":"{START}"}}"#
    ))
    .expect("valid order")
}

/// The stored decision's pack version and fired rules, and every history
/// row's pack version.
async fn versions(e: &Engine<AnyStore>, id: store::OrderId) -> (String, Vec<String>, Vec<String>) {
    let o = e
        .store()
        .order_with_history(e.tenant(), id)
        .await
        .expect("store")
        .expect("order");
    let d = o.decision.expect("a decision").to_value();
    let rules = d["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_owned())
        .collect();
    let rows = o
        .history
        .iter()
        .map(|h| h.pack_version.clone().unwrap_or_default())
        .collect();
    (
        d["pack_version"].as_str().unwrap_or_default().to_owned(),
        rules,
        rows,
    )
}

/// Decisions and steps before a reload carry the old version, those after
/// it the new one; orders after it are evaluated by the new pack.
async fn reload_swaps_and_versions_follow(b: Backend) {
    let Some(f) = fixture(b, empty_pack()).await else {
        return;
    };
    let old = f.engine.rules_version();
    assert_eq!(old, empty_pack().version());
    let first = f.engine.ingest(order(0)).await.expect("ingest").order;
    assert_eq!(first.order.priority, Priority::Standard);
    f.engine.run_once().await.expect("steps");
    let new = f.engine.reload_rules(big_pack()).await.expect("reload");
    assert_eq!(new, big_pack().version());
    assert_ne!(new, old);
    assert_eq!(f.engine.rules_version(), new);
    let second = f.engine.ingest(order(1)).await.expect("ingest").order;
    assert_eq!(
        second.order.priority,
        Priority::High,
        "the new pack decided"
    );
    // The delivery checks of both orders, after the reload.
    let idle = f.engine.run_until_idle().await.expect("steps");
    let due = idle.next_due.expect("delivery checks");
    f.clock.set(due + chrono::TimeDelta::days(3));
    f.engine.run_until_idle().await.expect("steps");

    let (decided, rules, rows) = versions(&f.engine, first.id).await;
    assert_eq!((decided.as_str(), rules.len()), (old.as_str(), 0));
    assert!(rows.len() >= 2, "{rows:?}");
    let (last, before) = rows.split_last().expect("rows");
    assert!(
        before.iter().all(|v| *v == old) && *last == new,
        "steps before the reload carry the old version, the delivery after it the new: {rows:?}"
    );
    let (decided, rules, rows) = versions(&f.engine, second.id).await;
    assert_eq!(decided, new);
    assert_eq!(rules, ["big"]);
    assert!(
        !rows.is_empty() && rows.iter().all(|v| *v == new),
        "{rows:?}"
    );
}

/// A pack the engine cannot run (an action type without a handler) is
/// refused and changes nothing.
async fn an_unrunnable_pack_changes_nothing(b: Backend) {
    let Some(f) = fixture(b, big_pack()).await else {
        return;
    };
    let before = f.engine.rules_version();
    let custom = PackLoader::new()
        .register_action("ping_pager")
        .load_sources(&[(
            "pager.yaml".to_owned(),
            "rules:\n  - id: pager\n    name: page\n    category: priority_classification\n    priority: 1\n    conditions:\n      - field: price\n        operator: greater_than\n        value: 0\n    actions:\n      - type: ping_pager\n".to_owned(),
        )])
        .expect("a valid pack");
    let err = f.engine.reload_rules(custom).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Build(BuildError::MissingHandlers { missing }) if missing.len() == 1),
        "{err}"
    );
    assert_eq!(f.engine.rules_version(), before);
    let o = f.engine.ingest(order(0)).await.expect("ingest").order;
    assert_eq!(
        o.order.priority,
        Priority::High,
        "the old pack still decides"
    );
}

/// The priority the third order of product `p1` gets when two were
/// ingested under `before` and the third under `after` (reloaded between).
async fn third_after_reload(b: Backend, before: RulePack, after: RulePack) -> Option<Priority> {
    let f = fixture(b, before).await?;
    for n in 0..2 {
        f.engine.ingest(order(n)).await.expect("ingest");
    }
    f.engine.reload_rules(after).await.expect("reload");
    let third = f.engine.ingest(order(2)).await.expect("ingest").order;
    Some(third.order.priority)
}

/// Window facts carry over when the new pack counts what the old one kept,
/// and are replayed from the store when it counts more.
async fn window_facts_survive_a_reload(b: Backend) {
    // Carried over: a shorter window, another rule.
    let carried = third_after_reload(
        b,
        busy_pack("busy", 9, "1h", "urgent"),
        busy_pack("busier", 3, "30m", "high"),
    )
    .await;
    // Replayed: the old pack counted nothing.
    let replayed = third_after_reload(b, empty_pack(), busy_pack("busy", 3, "1h", "high")).await;
    if carried.is_none() {
        return; // no PostgreSQL
    }
    assert_eq!(carried, Some(Priority::High), "2 earlier orders counted");
    assert_eq!(replayed, Some(Priority::High), "replayed from the store");
}

macro_rules! on_every_backend {
    ($($test:ident),*) => {
        $(
            mod $test {
                use super::*;
                #[tokio::test]
                async fn memory() {
                    super::$test(Backend::Memory).await;
                }
                #[tokio::test]
                async fn sqlite() {
                    super::$test(Backend::Sqlite).await;
                }
                #[tokio::test]
                async fn postgres() {
                    super::$test(Backend::Postgres).await;
                }
            }
        )*
    };
}

on_every_backend!(
    reload_swaps_and_versions_follow,
    an_unrunnable_pack_changes_nothing,
    window_facts_survive_a_reload
);
