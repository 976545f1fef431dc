//! A deterministic day of orders for judging the shipped viral rules
//! through `creatorflow eval`: steady best sellers, a long tail, and one
//! product that jumps from about 5 orders an hour to 2,000 an hour.
//!
//! Shared by `cli/tests/viral_eval.rs` (through `#[path]`) and the example
//! `cargo run -p creatorflow-cli --example viral_day` that prints the same
//! orders as JSON lines.

#![allow(dead_code)]

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The spiking product's id.
pub const SPIKE_PRODUCT: &str = "prod-spike";
/// The steady best sellers: id and orders per hour, all day.
pub const STEADY: [(&str, f64); 3] = [
    ("prod-steady-60", 60.0),
    ("prod-steady-150", 150.0),
    ("prod-steady-500", 500.0),
];
/// Long-tail products.
pub const TAIL_PRODUCTS: usize = 40;
/// The spiking product's rate before and after its spike, orders per hour.
pub const SPIKE_BASE: f64 = 5.0;
/// Its rate during the spike.
pub const SPIKE_PEAK: f64 = 2_000.0;
/// How long the spike holds.
pub const SPIKE_HOLD: TimeDelta = TimeDelta::minutes(90);

/// One generated day (or more).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The first order's earliest time: the detector starts here.
    pub start: DateTime<Utc>,
    /// Hours of orders.
    pub hours: i64,
    /// When the spike starts (a step from [`SPIKE_BASE`] to [`SPIKE_PEAK`]).
    pub spike_start: DateTime<Utc>,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Plan {
    /// A fresh start: orders from midnight, the spike at noon.
    pub fn fresh() -> Plan {
        Plan {
            start: "2025-06-12T00:00:00Z".parse().expect("time"),
            hours: 24,
            spike_start: "2025-06-12T12:00:00Z".parse().expect("time"),
            seed: 20251205,
        }
    }

    /// A warm detector: the same day after a whole day of history.
    pub fn warm() -> Plan {
        Plan {
            start: "2025-06-11T00:00:00Z".parse().expect("time"),
            hours: 48,
            ..Plan::fresh()
        }
    }

    /// The spike's end (it drops back to [`SPIKE_BASE`]).
    pub fn spike_end(&self) -> DateTime<Utc> {
        self.spike_start + SPIKE_HOLD
    }
}

/// A generated order: what the test needs to judge its decision.
#[derive(Debug, Clone)]
pub struct Gen {
    /// `tiktok_order_id`.
    pub id: String,
    /// `product_id`.
    pub product: String,
    /// `created_at`.
    pub at: DateTime<Utc>,
}

/// Poisson arrivals at `rate` per hour in `[from, to)`.
fn arrivals(rng: &mut StdRng, rate: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<i64> {
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    let mut out = Vec::new();
    let mut t = from as f64;
    let per_ms = rate / 3_600_000.0;
    loop {
        t += -(1.0 - rng.random::<f64>()).ln() / per_ms;
        if t >= to as f64 {
            return out;
        }
        out.push(t as i64);
    }
}

/// The orders of `plan`, in `created_at` order.
pub fn orders(plan: &Plan) -> Vec<Gen> {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let end = plan.start + TimeDelta::hours(plan.hours);
    let mut all: Vec<(i64, String)> = Vec::new();
    for (product, rate) in STEADY {
        for t in arrivals(&mut rng, rate, plan.start, end) {
            all.push((t, product.to_owned()));
        }
    }
    for i in 0..TAIL_PRODUCTS {
        // 0.2 to 4 orders an hour, log-spaced.
        let rate = 0.2 * 20f64.powf(i as f64 / (TAIL_PRODUCTS - 1) as f64);
        for t in arrivals(&mut rng, rate, plan.start, end) {
            all.push((t, format!("prod-tail-{i:02}")));
        }
    }
    let spike = [
        (SPIKE_BASE, plan.start, plan.spike_start),
        (SPIKE_PEAK, plan.spike_start, plan.spike_end()),
        (SPIKE_BASE, plan.spike_end(), end),
    ];
    for (rate, from, to) in spike {
        for t in arrivals(&mut rng, rate, from, to) {
            all.push((t, SPIKE_PRODUCT.to_owned()));
        }
    }
    all.sort();
    all.into_iter()
        .enumerate()
        .map(|(i, (t, product))| Gen {
            id: format!("5800000000{i:08}"),
            product,
            at: DateTime::from_timestamp_millis(t).expect("time"),
        })
        .collect()
}

/// The orders as `eval` reads them, one JSON object per line.
pub fn jsonl(orders: &[Gen]) -> String {
    let mut out = String::with_capacity(orders.len() * 200);
    for (i, o) in orders.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"{{"tiktok_order_id":"{}","customer_handle":"@buyer{}","product_name":"{}","product_id":"{}","quantity":1,"price":"24.00","shipping_zone":"US-EAST","created_at":"{}"}}"#,
            o.id,
            (i * 7919) % 100_000,
            o.product,
            o.product,
            o.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
    }
    out
}
