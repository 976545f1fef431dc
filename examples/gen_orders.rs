//! Prints N synthetic orders as JSON lines (seeded, deterministic), for
//! measuring `creatorflow eval` end to end:
//!
//! ```sh
//! cargo run --release --example gen_orders -- 1000000 > /tmp/orders.jsonl
//! /usr/bin/time -v target/release/creatorflow eval --orders /tmp/orders.jsonl > /dev/null
//! ```

use std::io::{BufWriter, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(42);
    let mut rng = StdRng::seed_from_u64(seed);
    let tiers = ["regular", "regular", "regular", "vip", "new"];
    let zones = ["US-WEST", "US-EAST", "US-CENTRAL", "EU", "UK", "CA"];
    let start = 1_749_700_000i64; // 2025-06-12
    let mut out = BufWriter::new(std::io::stdout().lock());
    for i in 0..n {
        let t = start + (i as i64) * 86_400 / 20_000 + rng.random_range(0..30);
        let product = if rng.random_bool(0.3) {
            7
        } else {
            rng.random_range(0..500)
        };
        let cents: u64 = rng.random_range(500..40_000);
        let created = chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
        let deadline = created + chrono::TimeDelta::hours(rng.random_range(2..72));
        writeln!(
            out,
            r#"{{"tiktok_order_id":"{}","customer_handle":"@c{}","customer_tier":"{}","product_name":"Product {product}","product_id":"p{product}","quantity":{},"price":"{}.{:02}","shipping_zone":"{}","deadline":"{}","created_at":"{}"}}"#,
            576_000_000_000_000_000u64 + i,
            rng.random_range(0..50_000),
            tiers[rng.random_range(0..tiers.len())],
            rng.random_range(1..25),
            cents / 100,
            cents % 100,
            zones[rng.random_range(0..zones.len())],
            deadline.format("%Y-%m-%dT%H:%M:%SZ"),
            created.format("%Y-%m-%dT%H:%M:%SZ"),
        )?;
    }
    out.flush()
}
