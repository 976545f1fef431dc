//! [`Engine::ingest_bulk`] leaves the store as [`Engine::ingest`] of the
//! same orders, one by one, leaves it (orders, first states, decisions,
//! queued first steps with their rule actions, the viral facts and the
//! rule statistics, a pack error's manual review), on memory and SQLite;
//! and an interrupted bulk load run again (the first half, then the
//! whole) ends the same.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::engine::{Engine, EngineBuilder};
use creatorflow::model::Priority;
use creatorflow::rules::{PackLoader, RulePack};
use creatorflow::store::{
    self, AnyStore, ClaimRequest, LaneLimit, MemoryStore, OrderStore, QueueStore, TenantScope,
};
use creatorflow::{ManualClock, Order};

fn start() -> DateTime<Utc> {
    "2025-06-12T10:00:00Z".parse().expect("time")
}

/// Order `i`: products, tiers, zones and quantities vary, a burst on one
/// product (viral facts), a few minutes apart.
fn order(i: usize) -> Order {
    let created = start() + TimeDelta::seconds(i as i64 * 40);
    let product = if i.is_multiple_of(3) { 7 } else { i % 23 };
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"T{i}","customer_handle":"@c{}","customer_tier":"{}",
        "product_name":"Product {product}","product_id":"p{product}","quantity":{},
        "price":"{}.{:02}","shipping_zone":"{}","created_at":"{}"}}"#,
        i % 61,
        ["regular", "vip", "new", "regular"][i % 4],
        1 + i % 9,
        5 + (i * 37) % 400,
        i % 100,
        ["US-WEST", "EU", "UK"][i % 3],
        created.to_rfc3339(),
    ))
    .expect("a valid order")
}

/// The input: `n` orders, with a repeat of an earlier one now and then.
fn input(n: usize) -> Vec<Order> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(order(i));
        if i % 50 == 49 {
            out.push(order(i - 10));
        }
    }
    out
}

/// A pack whose one CUSTOM rule errors on orders of quantity 7 (manual
/// review), besides the shipped pack's rules.
fn erroring_pack() -> RulePack {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut sources: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("rules/")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(|c: char| c.is_ascii_digit())
            })
        })
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (p.display().to_string(), text)
        })
        .collect();
    sources.sort();
    sources.push((
        "zz-bad.yaml".to_owned(),
        r#"rules:
  - id: fails-on-seven
    name: A script that errors on quantity 7
    category: exception_handling
    priority: 50
    condition_logic: CUSTOM
    custom_logic: "order.quantity / (order.quantity - 7) > 100"
    conditions:
      - { field: quantity, operator: greater_than, value: 0 }
    actions:
      - type: log_analytics_event
"#
        .to_owned(),
    ));
    PackLoader::new().load_sources(&sources).expect("pack")
}

async fn open(sqlite: bool, dir: &tempfile::TempDir, name: &str) -> AnyStore {
    if sqlite {
        let url = format!("sqlite://{}", dir.path().join(name).display());
        store::open(&url).await.expect("sqlite")
    } else {
        AnyStore::Memory(MemoryStore::new())
    }
}

fn engine(store: AnyStore, pack: &RulePack) -> Engine<AnyStore> {
    EngineBuilder::new(store)
        .clock(Arc::new(ManualClock::new(start() + TimeDelta::days(1))))
        .simulated_handlers()
        .rules(pack.clone())
        .enricher(Box::new(
            creatorflow::packtest::Evaluator::default_enricher(),
        ))
        .build()
        .expect("engine")
}

/// Everything the store holds for `ids`, and the rule statistics: one
/// line per order (the order, its history, its decision, its queued work).
async fn contents(e: &Engine<AnyStore>, n: usize) -> Vec<String> {
    let s = e.store();
    let lanes: Vec<LaneLimit> = Priority::ALL
        .iter()
        .map(|&lane| LaneLimit {
            lane,
            limit: 10 * n,
        })
        .collect();
    let items = s
        .claim(
            TenantScope::Tenant(e.tenant()),
            &ClaimRequest {
                worker: "check",
                lanes: &lanes,
                lease: TimeDelta::minutes(5),
                now: start() + TimeDelta::days(2),
            },
        )
        .await
        .expect("claim");
    let mut out = Vec::new();
    for i in 0..n {
        let found = s
            .find_order(e.tenant(), &format!("T{i}"))
            .await
            .expect("find")
            .unwrap_or_else(|| panic!("T{i} stored"));
        let full = s
            .order_with_history(e.tenant(), found.id)
            .await
            .expect("read")
            .expect("there");
        let history: Vec<String> = full
            .history
            .iter()
            .map(|h| {
                format!(
                    "{} {}->{} {:?} {:?} {}",
                    h.version,
                    h.from,
                    h.to,
                    h.reason,
                    h.error_message,
                    h.actions_executed.as_str()
                )
            })
            .collect();
        let work: Vec<String> = items
            .iter()
            .filter(|w| w.order_id == found.id)
            .map(|w| format!("{} {:?} {} {}", w.kind, w.lane, w.viral, w.payload))
            .collect();
        out.push(format!(
            "{:?} | {history:?} | {:?} | {work:?}",
            full.order,
            full.decision.map(|d| d.as_str().to_owned())
        ));
    }
    let stats: Vec<String> = e
        .rule_stats()
        .iter()
        .map(|r| format!("{} {} {}", r.rule, r.execution_count, r.success_count))
        .collect();
    out.push(format!("{stats:?}"));
    out
}

async fn bulk_equals_one_by_one(sqlite: bool) {
    const N: usize = 900;
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = erroring_pack();
    let single = engine(open(sqlite, &dir, "single.db").await, &pack);
    let (mut new, mut known, mut failed) = (0, 0, 0);
    for o in input(N) {
        let r = single.ingest(o).await.expect("ingest");
        if r.created {
            new += 1;
            if r.order.order.current_state.as_str() == "failed" {
                failed += 1;
            }
        } else {
            known += 1;
        }
    }
    assert!(failed > 0, "the pack errors on some orders");

    let bulk = engine(open(sqlite, &dir, "bulk.db").await, &pack);
    let report = bulk.ingest_bulk(input(N)).await.expect("bulk");
    assert_eq!(
        (report.new, report.known, report.rule_failures),
        (new, known, failed)
    );
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    let want = contents(&single, N).await;
    assert_eq!(contents(&bulk, N).await, want);
}

#[tokio::test]
async fn bulk_equals_one_by_one_in_memory() {
    bulk_equals_one_by_one(false).await;
}

#[tokio::test]
async fn bulk_equals_one_by_one_on_sqlite() {
    bulk_equals_one_by_one(true).await;
}

/// An interrupted load (the first half stored) run again with the whole
/// input: every order once, the same store as one uninterrupted run.
#[tokio::test]
async fn an_interrupted_bulk_load_run_again_ends_the_same() {
    const N: usize = 700;
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = erroring_pack();
    let whole = engine(open(true, &dir, "whole.db").await, &pack);
    let once = whole.ingest_bulk(input(N)).await.expect("bulk");

    let store = open(true, &dir, "halves.db").await;
    let first = engine(store.clone(), &pack);
    let half: Vec<Order> = input(N).into_iter().take(N / 2).collect();
    let head = first.ingest_bulk(half).await.expect("first half");
    drop(first);
    // A new process: a new engine on the same store.
    let again = engine(store, &pack);
    let rest = again.ingest_bulk(input(N)).await.expect("the whole");
    assert_eq!(head.new + rest.new, once.new);
    assert_eq!(rest.known, once.known + head.new);
    assert_eq!(head.rule_failures + rest.rule_failures, once.rule_failures);
    // Statistics differ by construction (two engines); the store must not.
    let strip = |mut v: Vec<String>| {
        v.pop();
        v
    };
    assert_eq!(
        strip(contents(&again, N).await),
        strip(contents(&whole, N).await)
    );
    let third = again.ingest_bulk(input(N)).await.expect("a third time");
    assert_eq!((third.new, third.known), (0, input(N).len()));
}

/// Batches prepared while the one before is written (as `creatorflow
/// ingest` overlaps them), repeats across the two included: the same store
/// and report as one order at a time.
#[tokio::test]
async fn overlapped_batches_equal_one_by_one() {
    const N: usize = 600;
    let dir = tempfile::tempdir().expect("temp dir");
    let pack = erroring_pack();
    let single = engine(open(true, &dir, "single.db").await, &pack);
    let (mut new, mut known) = (0, 0);
    for o in input(N) {
        if single.ingest(o).await.expect("ingest").created {
            new += 1;
        } else {
            known += 1;
        }
    }
    let bulk = engine(open(true, &dir, "bulk.db").await, &pack);
    let all = input(N);
    // Batches of 45: `input` repeats order i - 10 after every 50th, so
    // repeats fall into the batch written meanwhile.
    let mut batches = all.chunks(45).map(<[Order]>::to_vec);
    let mut pending = bulk
        .bulk_prepare(batches.next().expect("a batch"), None)
        .await
        .expect("prepare");
    let mut total = creatorflow::engine::IngestReport::default();
    for next in batches {
        let in_flight = pending.in_flight();
        let prepared = bulk
            .bulk_prepare(next, Some(&in_flight))
            .await
            .expect("prepare");
        let r = bulk.bulk_write(pending).await.expect("write");
        total.new += r.new;
        total.known += r.known;
        pending = prepared;
    }
    let r = bulk.bulk_write(pending).await.expect("write");
    total.new += r.new;
    total.known += r.known;
    assert_eq!((total.new, total.known), (new, known));
    assert_eq!(contents(&bulk, N).await, contents(&single, N).await);
}
