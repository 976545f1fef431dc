//! Measures orders per second from ingest to `shipped` through the engine,
//! with zero-latency default handlers, on the memory store and on SQLite:
//!
//! ```sh
//! cargo run --release --example engine_throughput -- 20000
//! ```

use std::sync::Arc;
use std::time::Instant;

use creatorflow::engine::EngineBuilder;
use creatorflow::store::{self, AnyStore, MemoryStore};
use creatorflow::{ManualClock, Order};

fn orders(n: usize) -> Vec<Order> {
    (0..n)
        .filter_map(|i| {
            Order::from_json(&format!(
                r#"{{"tiktok_order_id":"t{i}","customer_handle":"@c{i}","product_name":"Mug",
                "product_id":"p{}","quantity":1,"price":"19.00","created_at":"2025-06-12T10:00:00Z"}}"#,
                i % 500
            ))
            .ok()
        })
        .collect()
}

async fn measure(name: &str, store: AnyStore, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new("2025-06-12T12:00:00Z".parse()?));
    let engine = EngineBuilder::new(store).clock(clock).build();
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    measure("memory", AnyStore::Memory(MemoryStore::new()), n).await?;
    if std::env::args().nth(2).as_deref() == Some("memory") {
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
