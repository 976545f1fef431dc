//! Durable throughput of the SQLite store (file, WAL): transitions one at a
//! time and group-committed in batches, and queue claim + settle.
//!
//! `cargo bench --bench store`; throughput is per element (transition or
//! work item). Orders are created fresh (untimed) and walked through the six
//! steps of the default workflow, so the database grows as in production
//! and no order collects an unrealistic history. Each benchmark runs with
//! `synchronous=full` (the default: a commit is on disk when it returns) and
//! `synchronous=normal` (a commit survives a process crash, not a power loss).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::model::{AutomationStatus, Priority, StateName};
use creatorflow::store::{
    self, AfterStep, AnyStore, ClaimRequest, LaneLimit, NewOrder, OrderId, Settle, Store,
    TenantScope, Transition, WorkSpec,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tokio::runtime::Runtime;

/// The default workflow's happy path.
const STEPS: [(&str, u8); 7] = [
    ("received", 10),
    ("validated", 25),
    ("processing", 40),
    ("inventory_reserved", 60),
    ("label_generated", 80),
    ("shipped", 90),
    ("delivered", 100),
];
/// Transition batch sizes measured.
const BATCHES: [usize; 3] = [100, 500, 2000];
/// Work items per claim.
const CLAIM: usize = 100;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000, 0).unwrap_or_default()
}

/// Creates `n` new orders (one a second, as they would arrive), optionally
/// each with a work item; returns their ids.
async fn fresh(s: &AnyStore, next: &AtomicUsize, n: usize, work: bool) -> Vec<OrderId> {
    let mut ids = Vec::with_capacity(n);
    let start = next.fetch_add(n, Ordering::Relaxed);
    for chunk in (start..start + n).collect::<Vec<_>>().chunks(500) {
        let batch: Vec<NewOrder> = chunk
            .iter()
            .map(|&i| {
                let mut o = Order::from_json(
                    r#"{"tiktok_order_id":"x","customer_handle":"@ana","product_name":"Lamp",
                        "product_id":"p1","quantity":1,"price":"49.90",
                        "created_at":"2025-06-12T10:00:00Z"}"#,
                )
                .expect("a valid order");
                o.tiktok_order_id = format!("bench-{i}");
                o.created_at += TimeDelta::seconds(i64::try_from(i).unwrap_or(0));
                NewOrder {
                    order: o,
                    work: work.then(|| WorkSpec {
                        kind: "advance".into(),
                        lane: Priority::Standard,
                        run_at: t0(),
                        payload: json!({"step": 1}),
                    }),
                }
            })
            .collect();
        for r in s.create_orders("bench", &batch).await.expect("create") {
            ids.push(r.expect("created").order.id);
        }
    }
    ids
}

/// Step `k` of the happy path (from `STEPS[k]` to `STEPS[k + 1]`).
fn step(id: OrderId, k: usize) -> Transition {
    let (from, _) = STEPS[k];
    let (to, progress) = STEPS[k + 1];
    Transition {
        order_id: id,
        expected_state: StateName::new(from),
        expected_version: Some(k as u64),
        to: StateName::new(to),
        terminal: k + 2 == STEPS.len(),
        progress,
        automation_status: AutomationStatus::Processing,
        processing_time_ms: 5 * (k as u64 + 1),
        priority: None,
        impact: None,
        reason: Some(format!("{from}->{to}")),
        automated: true,
        duration_ms: 5,
        actions_executed: json!([{"type": "update_tiktok_status", "outcome": "ok"}]),
        error_message: None,
        at: t0(),
        settle: None,
        enqueue: None,
    }
}

fn open(rt: &Runtime, sync: &str) -> (tempfile::TempDir, AnyStore) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!(
        "sqlite://{}?synchronous={sync}",
        dir.path().join("bench.db").display()
    );
    let store = rt.block_on(store::open(&url)).expect("open");
    (dir, store)
}

fn transitions(c: &mut Criterion) {
    let rt = Runtime::new().expect("a runtime");
    for sync in ["full", "normal"] {
        let (_dir, s) = open(&rt, sync);
        let next = AtomicUsize::new(0);
        let mut g = c.benchmark_group(format!("sqlite_{sync}/transition"));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.throughput(Throughput::Elements(1));
        g.bench_function("one_at_a_time", |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let n = usize::try_from(iters).unwrap_or(usize::MAX);
                    let ids = fresh(&s, &next, n, false).await;
                    let start = Instant::now();
                    for id in ids {
                        s.transition("bench", &step(id, 0))
                            .await
                            .expect("transition");
                    }
                    start.elapsed()
                })
            })
        });
        for batch_size in BATCHES {
            // One iteration: `batch_size` new orders walked through all six steps.
            let per_iter = batch_size * (STEPS.len() - 1);
            g.throughput(Throughput::Elements(per_iter as u64));
            g.bench_function(format!("batch_{batch_size}"), |bench| {
                bench.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let ids = fresh(&s, &next, batch_size, false).await;
                            for k in 0..STEPS.len() - 1 {
                                let batch: Vec<(&str, Transition)> =
                                    ids.iter().map(|&id| ("bench", step(id, k))).collect();
                                let start = Instant::now();
                                let results = s.transitions(&batch).await.expect("batch");
                                total += start.elapsed();
                                assert!(results.iter().all(Result::is_ok));
                            }
                        }
                        total
                    })
                })
            });
        }
        g.finish();
    }
}

fn queue(c: &mut Criterion) {
    let rt = Runtime::new().expect("a runtime");
    let lanes = [LaneLimit {
        lane: Priority::Standard,
        limit: CLAIM,
    }];
    let request = |now| ClaimRequest {
        worker: "bench",
        lanes: &lanes,
        lease: TimeDelta::minutes(5),
        now,
    };
    for sync in ["full", "normal"] {
        let (_dir, s) = open(&rt, sync);
        let next = AtomicUsize::new(0);
        let mut g = c.benchmark_group(format!("sqlite_{sync}/queue"));
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.throughput(Throughput::Elements(CLAIM as u64));
        g.bench_function(format!("claim_{CLAIM}_complete_each"), |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fresh(&s, &next, CLAIM, true).await;
                        let start = Instant::now();
                        let items = s
                            .claim(TenantScope::All, &request(t0()))
                            .await
                            .expect("claim");
                        for item in &items {
                            s.complete(&item.lease, t0()).await.expect("complete");
                        }
                        total += start.elapsed();
                        assert_eq!(items.len(), CLAIM);
                    }
                    total
                })
            })
        });
        g.bench_function(format!("claim_{CLAIM}_step_and_settle_in_batch"), |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fresh(&s, &next, CLAIM, true).await;
                        let start = Instant::now();
                        let items = s
                            .claim(TenantScope::All, &request(t0()))
                            .await
                            .expect("claim");
                        let batch: Vec<(&str, Transition)> = items
                            .iter()
                            .map(|item| {
                                let mut t = step(item.order_id, 0);
                                t.settle = Some(Settle {
                                    lease: item.lease.clone(),
                                    then: AfterStep::Complete,
                                });
                                ("bench", t)
                            })
                            .collect();
                        let results = s.transitions(&batch).await.expect("settle");
                        total += start.elapsed();
                        assert!(results.iter().all(Result::is_ok));
                        assert_eq!(items.len(), CLAIM);
                    }
                    total
                })
            })
        });
        g.finish();
    }
}

criterion_group!(benches, transitions, queue);
criterion_main!(benches);
