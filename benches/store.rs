//! Durable throughput of the SQLite store (file, WAL) and the PostgreSQL
//! store: transitions one at a time and group-committed in batches, and
//! queue claim + settle.
//!
//! `cargo bench --bench store`; throughput is per element (transition or
//! work item). Orders are created fresh (untimed) and walked through the six
//! steps of the default workflow, so the database grows as in production
//! and no order collects an unrealistic history. Each SQLite benchmark runs
//! with `synchronous=full` (the default: a commit is on disk when it
//! returns) and `synchronous=normal` (a commit survives a process crash, not
//! a power loss).
//!
//! The PostgreSQL benchmarks run when `CREATORFLOW_TEST_PG` names a server
//! (`scripts/pg-test-cluster.sh run cargo bench --bench store -- postgres`),
//! in a schema of their own that is dropped afterwards; without it they
//! print that they were skipped. Commits are durable (the server's
//! defaults: `fsync`, `synchronous_commit = on`). They start from a schema
//! holding 5,000 orders with statistics gathered (steady state; see
//! `pg_warm`). The queue benchmarks run two claimers on two separate stores
//! (two connection pools, as two processes would) against one queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::model::{AutomationStatus, Priority, StateName};
use creatorflow::store::{
    self, AfterStep, AnyStore, ClaimRequest, LaneLimit, NewOrder, OrderId, OrderStore, QueueStore,
    Settle, TenantScope, Transition, WorkSpec,
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
                    decision: None,
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
        actions_executed: json!([{"type": "update_tiktok_status", "outcome": "ok"}]).into(),
        error_message: None,
        actor: None,
        pack_version: None,
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

/// The PostgreSQL benchmarks (feature `postgres`).
#[cfg(feature = "postgres")]
mod pg {
    use super::*;

    /// The PostgreSQL server to measure (`CREATORFLOW_TEST_PG`) and a schema
    /// for this run; `None` (with a notice) when the variable is not set.
    fn pg_target() -> Option<(String, String)> {
        match std::env::var("CREATORFLOW_TEST_PG") {
            Ok(url) if !url.trim().is_empty() => {
                Some((url, format!("cf_bench_{}", std::process::id())))
            }
            _ => {
                eprintln!(
                    "postgres benchmarks SKIPPED: CREATORFLOW_TEST_PG not set \
                     (scripts/pg-test-cluster.sh run cargo bench --bench store)"
                );
                None
            }
        }
    }

    fn pg_open(rt: &Runtime, url: &str, schema: &str) -> AnyStore {
        let sep = if url.contains('?') { '&' } else { '?' };
        rt.block_on(store::open(&format!("{url}{sep}schema={schema}")))
            .expect("open postgres")
    }

    /// Drops the benchmark's schema.
    fn pg_drop(rt: &Runtime, url: &str, schema: &str) {
        use sqlx::Connection;
        rt.block_on(async {
            let mut conn = sqlx::postgres::PgConnection::connect(url)
                .await
                .expect("connect to drop the benchmark schema");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut conn)
            .await
            .expect("drop the benchmark schema");
        });
    }

    /// Fills the schema with orders and has PostgreSQL gather statistics,
    /// as autovacuum does within a minute or so of a table's growth: the
    /// benchmarks measure the steady state, not a brand-new table whose
    /// cached plans still assume it is empty.
    fn pg_warm(rt: &Runtime, s: &AnyStore, next: &AtomicUsize, url: &str, schema: &str) {
        use sqlx::Connection;
        rt.block_on(async {
            fresh(s, next, 5000, false).await;
            let mut conn = sqlx::postgres::PgConnection::connect(url)
                .await
                .expect("connect to analyze");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ANALYZE {schema}.orders, {schema}.order_transitions, {schema}.work_queue"
            )))
            .execute(&mut conn)
            .await
            .expect("analyze");
        });
    }

    /// Concurrent callers in the `…_callers` benchmark.
    const CALLERS: usize = 8;

    pub fn pg_transitions(c: &mut Criterion) {
        let Some((url, schema)) = pg_target() else {
            return;
        };
        let rt = Runtime::new().expect("a runtime");
        let s = std::sync::Arc::new(pg_open(&rt, &url, &schema));
        let next = AtomicUsize::new(0);
        pg_warm(&rt, &s, &next, &url, &schema);
        let mut g = c.benchmark_group("postgres/transition");
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
        // One transition per call, from several callers at once (as the
        // runtime's lanes do): PostgreSQL commits their WAL flushes together.
        g.bench_function(format!("one_at_a_time_{CALLERS}_callers"), |bench| {
            bench.iter_custom(|iters| {
                rt.block_on(async {
                    let n = usize::try_from(iters).unwrap_or(usize::MAX).max(CALLERS);
                    let ids = fresh(&s, &next, n, false).await;
                    let start = Instant::now();
                    let tasks: Vec<_> = ids
                        .chunks(n.div_ceil(CALLERS))
                        .map(|chunk| {
                            let (s, chunk) = (s.clone(), chunk.to_vec());
                            tokio::spawn(async move {
                                for id in chunk {
                                    s.transition("bench", &step(id, 0))
                                        .await
                                        .expect("transition");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("caller");
                    }
                    // Per transition, so the figure compares with one_at_a_time.
                    start.elapsed().mul_f64(iters as f64 / n as f64)
                })
            })
        });
        for batch_size in BATCHES {
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
        drop(s);
        pg_drop(&rt, &url, &schema);
    }

    /// How a claimer settles what it claimed.
    #[derive(Clone, Copy)]
    enum Settling {
        /// `complete` each item, one after the other (one transaction each).
        CompleteEach,
        /// `complete` each item from its own task, as a runtime whose lanes
        /// run items in parallel does (PostgreSQL groups the commits).
        CompleteConcurrently,
        /// One transition batch that steps each order and completes its lease.
        StepInBatch,
    }

    /// Claims (`CLAIM` at a time) and settles until the queue is empty; returns
    /// how many items it settled.
    async fn drain(s: std::sync::Arc<AnyStore>, worker: &'static str, settling: Settling) -> usize {
        let lanes = [LaneLimit {
            lane: Priority::Standard,
            limit: CLAIM,
        }];
        let mut done = 0;
        loop {
            let items = s
                .claim(
                    TenantScope::All,
                    &ClaimRequest {
                        worker,
                        lanes: &lanes,
                        lease: TimeDelta::minutes(5),
                        now: t0(),
                    },
                )
                .await
                .expect("claim");
            if items.is_empty() {
                return done;
            }
            match settling {
                Settling::CompleteEach => {
                    for item in &items {
                        s.complete(&item.lease, t0()).await.expect("complete");
                    }
                }
                Settling::CompleteConcurrently => {
                    let tasks: Vec<_> = items
                        .iter()
                        .map(|item| {
                            let (s, lease) = (s.clone(), item.lease.clone());
                            tokio::spawn(async move { s.complete(&lease, t0()).await })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task").expect("complete");
                    }
                }
                Settling::StepInBatch => {
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
                    assert!(results.iter().all(Result::is_ok));
                }
            }
            done += items.len();
        }
    }

    pub fn pg_queue(c: &mut Criterion) {
        let Some((url, schema)) = pg_target() else {
            return;
        };
        let rt = Runtime::new().expect("a runtime");
        // Two stores: two connection pools, as two worker processes would have.
        let first = std::sync::Arc::new(pg_open(&rt, &url, &schema));
        let second = std::sync::Arc::new(pg_open(&rt, &url, &schema));
        let next = AtomicUsize::new(0);
        pg_warm(&rt, &first, &next, &url, &schema);
        let per_iter = 4 * CLAIM;
        let mut g = c.benchmark_group("postgres/queue");
        g.sample_size(10).measurement_time(Duration::from_secs(5));
        g.throughput(Throughput::Elements(per_iter as u64));
        for (name, settling) in [
            ("two_claimers_complete_each", Settling::CompleteEach),
            (
                "two_claimers_complete_concurrently",
                Settling::CompleteConcurrently,
            ),
            (
                "two_claimers_step_and_settle_in_batch",
                Settling::StepInBatch,
            ),
        ] {
            g.bench_function(name, |bench| {
                bench.iter_custom(|iters| {
                    rt.block_on(async {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            fresh(&first, &next, per_iter, true).await;
                            let start = Instant::now();
                            let a = tokio::spawn(drain(first.clone(), "w1", settling));
                            let b = tokio::spawn(drain(second.clone(), "w2", settling));
                            let done = a.await.expect("claimer") + b.await.expect("claimer");
                            total += start.elapsed();
                            assert_eq!(done, per_iter);
                        }
                        total
                    })
                })
            });
        }
        g.finish();
        drop((first, second));
        pg_drop(&rt, &url, &schema);
    }
}

#[cfg(feature = "postgres")]
use pg::{pg_queue, pg_transitions};

#[cfg(not(feature = "postgres"))]
fn pg_transitions(_: &mut Criterion) {
    eprintln!("postgres benchmarks SKIPPED: built without the `postgres` feature");
}

#[cfg(not(feature = "postgres"))]
fn pg_queue(_: &mut Criterion) {}

criterion_group!(benches, transitions, queue, pg_transitions, pg_queue);
criterion_main!(benches);
