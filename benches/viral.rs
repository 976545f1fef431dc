//! Viral-detection benchmarks: update-and-query cost per order, and memory
//! per tracked product.
//!
//! - `statistical/steady_1000_products` and `reference/steady_1000_products`:
//!   one `Detector::observe` (record the order, update the baseline and the
//!   test, answer the assessment) per iteration, over an endless stream of
//!   1,000 products at 1-200 orders/h (a day of traffic replayed with its
//!   times shifted forward on each pass, so hours keep closing);
//! - `statistical/spiking_product` and `reference/spiking_product`: one
//!   product at 3,600 orders/h, flagged, so the spike's confidence and impact
//!   are computed too;
//! - `enricher/statistical`: the whole `ViralEnricher::enrich` on an `Order`
//!   (detector, customer velocity, indicators, decimals).
//!
//! Before the benchmarks, the memory per tracked product is printed
//! (`size_of` of the per-product state plus its map slot and key, measured on
//! 1,000 products). Run with `cargo bench --bench viral` (add `-- --quick`
//! for a short run).

use std::hint::black_box;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::viral::{
    Detector, Enricher, ReferenceDetector, StatisticalDetector, Velocity, ViralEnricher,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DAY_MS: i64 = 86_400_000;

fn t0() -> DateTime<Utc> {
    "2025-03-03T00:00:00Z".parse().unwrap()
}

/// A day of Poisson traffic for `n` products at 1-200 orders/h: (product, ms).
fn stream(n: usize) -> (Vec<String>, Vec<(usize, i64)>) {
    let mut rng = StdRng::seed_from_u64(5);
    let ids: Vec<String> = (0..n).map(|i| format!("product-{i:05}")).collect();
    let mut orders = Vec::new();
    for p in 0..n {
        let rate = rng.random_range(0f64..200f64.ln()).exp() / 3_600_000.0;
        let mut t = 0f64;
        loop {
            t += -(1.0 - rng.random::<f64>()).ln() / rate;
            if t >= DAY_MS as f64 {
                break;
            }
            orders.push((p, t as i64));
        }
    }
    orders.sort_by_key(|o| o.1);
    (ids, orders)
}

/// Replays `orders` forever, shifting times by a day on each pass.
struct Replay {
    orders: Vec<(usize, i64)>,
    i: usize,
    pass: i64,
    /// `t0()`, parsed once (parsing it per order would be measured too).
    base: DateTime<Utc>,
}

impl Replay {
    fn new(orders: Vec<(usize, i64)>) -> Self {
        Replay {
            orders,
            i: 0,
            pass: 0,
            base: t0(),
        }
    }

    fn next(&mut self) -> (usize, DateTime<Utc>) {
        if self.i == self.orders.len() {
            self.i = 0;
            self.pass += 1;
        }
        let (p, ms) = self.orders[self.i];
        self.i += 1;
        (
            p,
            self.base + TimeDelta::milliseconds(ms + self.pass * DAY_MS),
        )
    }
}

fn warmed<D: Detector>(mut d: D, ids: &[String], replay: &mut Replay) -> D {
    for _ in 0..(2 * replay.orders.len()) {
        let (p, t) = replay.next();
        d.observe(&ids[p], t, 1, t);
    }
    d
}

fn memory() {
    let (ids, orders) = stream(1000);
    let mut replay = Replay::new(orders);
    let stat = warmed(StatisticalDetector::new(), &ids, &mut replay);
    let mut replay = Replay::new(replay.orders);
    let reference = warmed(ReferenceDetector::new(), &ids, &mut replay);
    println!(
        "memory per tracked product: statistical {} B (state {} B incl. Velocity {} B), reference {} B (Velocity {} B); measured on {} products with 13-byte ids: statistical {:.0} B, reference {:.0} B",
        StatisticalDetector::bytes_per_product(),
        StatisticalDetector::bytes_per_product()
            - std::mem::size_of::<(Box<str>, Box<Velocity>)>()
            - 1,
        Velocity::BYTES,
        ReferenceDetector::bytes_per_product(),
        Velocity::BYTES,
        stat.tracked_products(),
        stat.memory_bytes() as f64 / stat.tracked_products() as f64,
        reference.memory_bytes() as f64 / reference.tracked_products() as f64,
    );
}

fn steady<D: Detector + Clone>(c: &mut Criterion, name: &str, make: fn() -> D) {
    let (ids, orders) = stream(1000);
    let mut replay = Replay::new(orders);
    let mut d = warmed(make(), &ids, &mut replay);
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g.bench_function("steady_1000_products", |b| {
        b.iter(|| {
            let (p, t) = replay.next();
            black_box(d.observe(black_box(&ids[p]), t, 1, t))
        })
    });
    // One product at 3,600/h after three days at 20/h: flagged on every
    // order. Each batch of up to 30 minutes of the spike starts from a clone
    // of the warmed detector, so the spike never becomes the baseline.
    let mut warm = make();
    let mut start = t0();
    for _ in 0..(3 * 24 * 20) {
        warm.observe("hot", start, 1, start);
        start += TimeDelta::minutes(3);
    }
    let mut check = warm.clone();
    let flagged = (0..120).any(|i| {
        let t = start + TimeDelta::seconds(i);
        check.observe("hot", t, 1, t).spike.is_some()
    });
    assert!(flagged, "{name}: the hot product must be flagged");
    g.bench_function("spiking_product", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(1800);
                let mut d = warm.clone();
                let begin = std::time::Instant::now();
                for i in 0..n as i64 {
                    let t = start + TimeDelta::seconds(i);
                    black_box(d.observe(black_box("hot"), t, 1, t));
                }
                total += begin.elapsed();
                left -= n;
            }
            total
        })
    });
    g.finish();
}

fn enricher(c: &mut Criterion) {
    let (ids, orders) = stream(1000);
    let mut replay = Replay::new(orders);
    let mut e = ViralEnricher::default();
    let template = Order::from_json(
        r#"{"tiktok_order_id":"1","customer_handle":"@c","product_name":"x","product_id":"p","quantity":1,"price":"9.99","created_at":"2025-03-03T00:00:00Z"}"#,
    )
    .unwrap();
    let handles: Vec<String> = (0..5000).map(|i| format!("@customer{i}")).collect();
    let mut orders: Vec<Order> = (0..1000)
        .map(|i| {
            let mut o = template.clone();
            o.product_id = ids[i].clone();
            o
        })
        .collect();
    for k in 0..(2 * replay.orders.len()) {
        let (p, t) = replay.next();
        let o = &mut orders[p];
        o.created_at = t;
        o.customer_handle.clone_from(&handles[k % handles.len()]);
        e.enrich(o, t);
    }
    let mut k = 0;
    let mut g = c.benchmark_group("enricher");
    g.throughput(Throughput::Elements(1));
    g.bench_function("statistical", |b| {
        b.iter(|| {
            let (p, t) = replay.next();
            k += 1;
            let o = &mut orders[p];
            o.created_at = t;
            o.customer_handle.clone_from(&handles[k % handles.len()]);
            black_box(e.enrich(o, t))
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    memory();
    steady(c, "statistical", StatisticalDetector::new);
    steady(c, "reference", ReferenceDetector::new);
    enricher(c);
}

criterion_group!(viral, benches);
criterion_main!(viral);
