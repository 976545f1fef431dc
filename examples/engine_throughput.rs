//! Measures orders per second from ingest to `shipped` through the engine,
//! with zero-latency default handlers, on the memory store and on SQLite:
//!
//! ```sh
//! cargo run --release --example engine_throughput -- 20000 [memory|sqlite]
//! CREATORFLOW_TEST_PG=postgres://… cargo run --release --example engine_throughput -- 20000 postgres
//! ```

use std::sync::Arc;

/// mimalloc, as a host binary may choose (the library does not pick an
/// allocator; glibc malloc costs this workload ~10%).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use creatorflow::engine::EngineBuilder;
use creatorflow::store::{self, AnyStore, MemoryStore};
use creatorflow::{ManualClock, Order};

/// `n` orders over 500 products, placed 100 ms apart (as a busy shop's
/// orders arrive: distinct times, so work is served in arrival order).
fn orders(n: usize) -> Vec<Order> {
    let start: chrono::DateTime<chrono::Utc> = "2025-06-12T10:00:00Z".parse().expect("time");
    (0..n)
        .filter_map(|i| {
            let at = start + chrono::TimeDelta::milliseconds(100 * i as i64);
            Order::from_json(&format!(
                r#"{{"tiktok_order_id":"t{i}","customer_handle":"@c{i}","product_name":"Mug",
                "product_id":"p{}","quantity":1,"price":"19.00","created_at":"{}"}}"#,
                i % 500,
                at.to_rfc3339()
            ))
            .ok()
        })
        .collect()
}

async fn measure(name: &str, store: AnyStore, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new("2025-06-13T12:00:00Z".parse()?));
    let engine = EngineBuilder::new(store)
        .clock(clock)
        .simulated_handlers()
        .build()?;
    let batch = orders(n);
    let t = Instant::now();
    for chunk in batch.chunks(1_000) {
        engine.ingest_many(chunk.to_vec()).await?;
    }
    let ingest = t.elapsed();
    let idle = engine.run_until_idle().await?;
    let total = t.elapsed();
    let shipped = engine
        .metrics()
        .await?
        .dashboard
        .orders_by_state
        .get("shipped")
        .copied()
        .unwrap_or(0);
    println!(
        "{name}: {n} orders, {shipped} shipped, {} steps in {:.2?} (ingest {:.2?}): {:.0} orders/s, {:.0} transitions/s",
        idle.recorded,
        total,
        ingest,
        n as f64 / total.as_secs_f64(),
        idle.recorded as f64 / total.as_secs_f64()
    );
    Ok(())
}

/// Ingests `n` orders, then runs `workers` engines (each with its own
/// connection pool, as separate processes would) until idle.
async fn measure_pg(url: &str, n: usize, workers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let schema = format!("cf_bench_{}_{workers}", std::process::id());
    let base = url;
    let url = format!(
        "{url}{}schema={schema}",
        if url.contains('?') { '&' } else { '?' }
    );
    let clock = Arc::new(ManualClock::new("2025-06-13T12:00:00Z".parse()?));
    let ingest = EngineBuilder::new(store::open(&url).await?)
        .clock(clock.clone())
        .simulated_handlers()
        .build()?;
    let t = Instant::now();
    for chunk in orders(n).chunks(1_000) {
        ingest.ingest_many(chunk.to_vec()).await?;
    }
    let ingested = t.elapsed();
    // A long-running database has statistics (autovacuum analyzes a table
    // within a minute of it growing); a fresh benchmark schema has none, and
    // the planner would scan the tenant's rows for every batch.
    {
        use sqlx::Connection;
        let mut owner = sqlx::PgConnection::connect(base).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ANALYZE {schema}.orders, {schema}.work_queue, {schema}.order_transitions"
        )))
        .execute(&mut owner)
        .await?;
    }
    let mut engines = Vec::new();
    for w in 0..workers {
        engines.push(
            EngineBuilder::new(store::open(&url).await?)
                .clock(clock.clone())
                .worker_name(format!("w{w}"))
                .simulated_handlers()
                .build()?,
        );
    }
    let t = Instant::now();
    let mut tasks = Vec::new();
    for e in engines {
        tasks.push(tokio::spawn(async move { e.run_until_idle().await }));
    }
    let mut steps = 0;
    for task in tasks {
        steps += task.await??.recorded;
    }
    let run = t.elapsed();
    println!(
        "postgres, {workers} worker(s): {n} orders ingested in {ingested:.2?}, {steps} steps in {run:.2?}: \
         {:.0} transitions/s, {:.0} orders/s (ingest to shipped)",
        steps as f64 / run.as_secs_f64(),
        n as f64 / (ingested + run).as_secs_f64()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let only = std::env::args().nth(2);
    if only.as_deref() == Some("postgres") {
        let url = std::env::var("CREATORFLOW_TEST_PG")
            .map_err(|_| "set CREATORFLOW_TEST_PG (scripts/pg-test-cluster.sh start)")?;
        measure_pg(&url, n, 1).await?;
        measure_pg(&url, n, 2).await?;
        return Ok(());
    }
    if only.as_deref() != Some("sqlite") {
        measure("memory", AnyStore::Memory(MemoryStore::new()), n).await?;
    }
    if only.as_deref() == Some("memory") {
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    measure("sqlite", store::open(&url).await?, n).await?;
    let url = format!(
        "sqlite://{}?synchronous=normal",
        dir.path().join("bench-normal.db").display()
    );
    measure("sqlite (synchronous=normal)", store::open(&url).await?, n).await?;
    Ok(())
}
