//! Workflow-runtime benchmarks: orders per second from ingest to `shipped`,
//! zero-latency default handlers, one process.
//!
//! - `engine/memory_1000_orders`: a fresh engine on the memory store ingests
//!   1,000 orders (one batch) and runs them until idle (5 steps each);
//! - `engine/sqlite_1000_orders`: the same on a fresh SQLite file (the
//!   embedded default: WAL, `synchronous=FULL`), so every step is durable.
//!
//! Throughput is reported per order. Run with `cargo bench --bench engine`;
//! `examples/engine_throughput.rs` does the same at larger sizes and on
//! PostgreSQL with one and two workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// mimalloc, as a host binary may choose (the library does not pick an
/// allocator); glibc's malloc and free are a quarter of this workload.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::engine::EngineBuilder;
use creatorflow::store::{self, AnyStore, MemoryStore};
use creatorflow::{ManualClock, Order};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ORDERS: usize = 1_000;

/// `n` orders over 500 products, 100 ms apart.
fn orders(n: usize) -> Vec<Order> {
    let start: DateTime<Utc> = "2025-06-12T10:00:00Z".parse().expect("time");
    (0..n)
        .map(|i| {
            let at = start + TimeDelta::milliseconds(100 * i as i64);
            Order::from_json(&format!(
                r#"{{"tiktok_order_id":"t{i}","customer_handle":"@c{i}","product_name":"Mug",
                "product_id":"p{}","quantity":1,"price":"19.00","created_at":"{}"}}"#,
                i % 500,
                at.to_rfc3339()
            ))
            .expect("valid order")
        })
        .collect()
}

/// Ingests `batch` into a fresh engine on `store` and runs it until idle;
/// the time taken, checked to have shipped every order.
async fn run(store: AnyStore, batch: Vec<Order>) -> Duration {
    let clock = Arc::new(ManualClock::new(
        "2025-06-13T12:00:00Z".parse().expect("time"),
    ));
    let engine = EngineBuilder::new(store)
        .clock(clock)
        .simulated_handlers()
        .build()
        .expect("engine");
    let n = batch.len();
    let t = Instant::now();
    engine.ingest_many(batch).await.expect("ingest");
    let idle = engine.run_until_idle().await.expect("run");
    let took = t.elapsed();
    assert_eq!(idle.recorded, 5 * n, "every order shipped");
    took
}

fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let batch = orders(ORDERS);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(ORDERS as u64));
    g.sample_size(10);
    g.bench_function("memory_1000_orders", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(run(AnyStore::Memory(MemoryStore::new()), batch.clone())))
                .sum()
        })
    });
    g.bench_function("sqlite_1000_orders", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                    rt.block_on(async {
                        let store = store::open(&url).await.expect("sqlite");
                        run(store, batch.clone()).await
                    })
                })
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
