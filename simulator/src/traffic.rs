//! Synthetic traffic: who orders what, when, and how the webhooks arrive.
//!
//! - **Products** have Zipf-like popularity (`1 / rank^s`); the shop-wide
//!   baseline rate follows the scenario's hour-of-day profile (linearly
//!   interpolated between hours).
//! - **Arrivals** are a non-homogeneous Poisson process, drawn as Poisson
//!   counts per minute (the rate at the minute's middle), each order placed
//!   uniformly within its minute; the baseline is split over products by
//!   popularity (Poisson splitting).
//! - **Spikes** add a product-specific rate that ramps up linearly, holds and
//!   decays linearly; their starts are the detectors' ground truth.
//! - **Customers** come from a pool with skewed repeat buying; tier, unit
//!   price (log-normal), quantity (1 + Poisson), zone and deadline from the
//!   scenario's distributions.
//! - **Deliveries**: an order's webhook normally arrives within seconds;
//!   some arrive late (after later orders: out of order), some twice.
//!
//! Everything is drawn from one seeded RNG in a fixed order: the same
//! scenario and seed give the same traffic.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use creatorflow::Order;
use creatorflow::model::{AutomationStatus, CustomerTier, Impact, Priority, StateName};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Poisson};
use rust_decimal::Decimal;

use super::scenario::{LatencySpec, Scenario, SpikeSpec};

const MINUTE_MS: i64 = 60_000;

/// The z-score of the 99th percentile of a standard normal.
pub const Z99: f64 = 2.326_347_874;

/// A log-normal distribution given by its median and 99th percentile.
#[derive(Debug, Clone, Copy)]
pub struct Skewed {
    median: f64,
    dist: Option<LogNormal<f64>>,
}

impl Skewed {
    /// The distribution of `spec`.
    pub fn new(spec: LatencySpec) -> Self {
        let median = spec.median.max(1e-9);
        let sigma = (spec.p99.max(median) / median).ln() / Z99;
        Skewed {
            median: spec.median,
            dist: LogNormal::new(median.ln(), sigma).ok(),
        }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        self.dist.map_or(self.median, |d| d.sample(rng))
    }
}

/// A ground-truth spike: the product and when its extra rate starts and ends.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueSpike {
    /// The product id.
    pub product_id: String,
    /// When the ramp starts.
    pub start: DateTime<Utc>,
    /// When the decay ends.
    pub end: DateTime<Utc>,
}

/// One webhook delivery of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delivery {
    /// When it reaches the engine, ms since the epoch.
    pub at_ms: i64,
    /// Index into [`Traffic::orders`].
    pub order: u32,
    /// Whether the order was delivered before (a duplicate).
    pub duplicate: bool,
}

/// The generated traffic of a scenario.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Every order placed during the scenario, by `created_at`.
    pub orders: Vec<Order>,
    /// Their webhook deliveries, by arrival time.
    pub deliveries: Vec<Delivery>,
    /// Customer cancellation requests: (when, ms since the epoch; order index), by time.
    pub cancels: Vec<(i64, u32)>,
    /// The spikes, as they really happened.
    pub spikes: Vec<TrueSpike>,
    /// Baseline history before the start: (product id, placed at, quantity), by time.
    pub warmup: Vec<(u32, DateTime<Utc>, u32)>,
    /// Product ids, by popularity rank (index 0 = rank 1).
    pub product_ids: Vec<String>,
    /// Orders placed per minute of the scenario.
    pub per_minute: Vec<u32>,
}

/// The extra rate of `spike` at `t` (ms since the scenario start), per hour.
pub fn spike_rate(spike: &SpikeSpec, t_ms: i64) -> f64 {
    let s = spike.start.num_milliseconds();
    let ramp = spike.ramp.num_milliseconds();
    let hold = spike.hold.num_milliseconds();
    let decay = spike.decay.num_milliseconds();
    let x = t_ms - s;
    let f = if x < 0 {
        0.0
    } else if x < ramp {
        x as f64 / ramp as f64
    } else if x < ramp + hold {
        1.0
    } else if x < ramp + hold + decay {
        1.0 - (x - ramp - hold) as f64 / decay as f64
    } else {
        0.0
    };
    spike.peak_per_hour * f
}

/// The baseline shop-wide rate per hour at `t` (the profile interpolated
/// between the middles of the hours).
pub fn base_rate(scenario: &Scenario, t: DateTime<Utc>) -> f64 {
    let p = &scenario.traffic.daily_profile;
    let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0 + f64::from(t.second()) / 3600.0;
    let x = h - 0.5;
    let i = x.floor();
    let frac = x - i;
    let a = p[(i.rem_euclid(24.0)) as usize];
    let b = p[((i + 1.0).rem_euclid(24.0)) as usize];
    scenario.traffic.orders_per_hour * (a + (b - a) * frac)
}

/// Cumulative weights for sampling by binary search.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

fn pick(cum: &[f64], rng: &mut StdRng) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let u = rng.random::<f64>() * total;
    cum.partition_point(|c| *c <= u)
        .min(cum.len().saturating_sub(1))
}

fn poisson(rate: f64, rng: &mut StdRng) -> u32 {
    if rate <= 0.0 {
        return 0;
    }
    match Poisson::new(rate) {
        Ok(p) => {
            let v: f64 = p.sample(rng);
            v as u32
        }
        Err(_) => 0,
    }
}

struct Catalogue {
    cum: Vec<f64>,
    unit_cents: Vec<i64>,
}

impl Traffic {
    /// Generates the traffic of `scenario` with `seed`.
    pub fn generate(scenario: &Scenario, seed: u64) -> Traffic {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = scenario.traffic.products.max(1) as usize;
        let s = scenario.traffic.zipf_exponent;
        let product_ids: Vec<String> = (1..=n).map(|r| format!("p{r:04}")).collect();
        let price = Skewed::new(scenario.customers.price);
        let catalogue = Catalogue {
            cum: cumulative((1..=n).map(|r| 1.0 / (r as f64).powf(s))),
            unit_cents: (0..n)
                .map(|_| ((price.sample(&mut rng) * 100.0).round() as i64).max(99))
                .collect(),
        };
        let customers = scenario.customers.count.max(1) as usize;
        let customer_cum = cumulative((1..=customers).map(|r| 1.0 / (r as f64).powf(0.6)));
        let tier_cum = cumulative(scenario.customers.tiers.iter().copied());
        let tiers: Vec<CustomerTier> = (0..customers)
            .map(|_| match pick(&tier_cum, &mut rng) {
                0 => CustomerTier::Vip,
                1 => CustomerTier::Regular,
                _ => CustomerTier::New,
            })
            .collect();
        let zone_cum = cumulative(scenario.customers.zones.iter().map(|(_, w)| *w));

        // Warm-up history: the baseline only.
        let mut warmup = Vec::new();
        let warm_start = scenario.start - scenario.warmup;
        let warm_minutes = scenario.warmup.num_minutes();
        for m in 0..warm_minutes {
            let t0 = warm_start + TimeDelta::minutes(m);
            let rate = base_rate(scenario, t0 + TimeDelta::seconds(30)) / 60.0;
            for _ in 0..poisson(rate, &mut rng) {
                let p = pick(&catalogue.cum, &mut rng) as u32;
                let at = t0 + TimeDelta::milliseconds(rng.random_range(0..MINUTE_MS));
                warmup.push((p, at, 1));
            }
        }
        warmup.sort_by_key(|w| w.1);

        // The scenario's arrivals: (created_at, product index).
        let minutes = scenario.duration.num_minutes().max(0);
        let mut arrivals: Vec<(DateTime<Utc>, u32)> = Vec::new();
        let mut per_minute = vec![0u32; minutes as usize];
        for m in 0..minutes {
            let t0 = scenario.start + TimeDelta::minutes(m);
            let mid = t0 + TimeDelta::seconds(30);
            let base = base_rate(scenario, mid) / 60.0;
            for _ in 0..poisson(base, &mut rng) {
                let p = pick(&catalogue.cum, &mut rng) as u32;
                let at = t0 + TimeDelta::milliseconds(rng.random_range(0..MINUTE_MS));
                arrivals.push((at, p));
            }
            for spike in &scenario.spikes {
                let rate = spike_rate(spike, m * MINUTE_MS + 30_000) / 60.0;
                let p = spike.product.saturating_sub(1).min(n as u32 - 1);
                for _ in 0..poisson(rate, &mut rng) {
                    let at = t0 + TimeDelta::milliseconds(rng.random_range(0..MINUTE_MS));
                    arrivals.push((at, p));
                }
            }
        }
        arrivals.sort();

        let qty_extra = (scenario.customers.quantity_mean - 1.0).max(0.0);
        let (dl_lo, dl_hi) = scenario.customers.deadline_hours;
        let mut orders = Vec::with_capacity(arrivals.len());
        for (i, (at, p)) in arrivals.iter().enumerate() {
            let minute = ((*at - scenario.start).num_minutes()).clamp(0, minutes - 1) as usize;
            if let Some(c) = per_minute.get_mut(minute) {
                *c += 1;
            }
            let c = pick(&customer_cum, &mut rng);
            let quantity = 1 + poisson(qty_extra, &mut rng).min(50);
            let cents = catalogue.unit_cents[*p as usize] * i64::from(quantity);
            let zone = scenario
                .customers
                .zones
                .get(pick(&zone_cum, &mut rng))
                .map(|(z, _)| z.clone());
            let deadline_h = if dl_hi > dl_lo {
                rng.random_range(dl_lo..dl_hi)
            } else {
                dl_lo
            };
            orders.push(Order {
                id: None,
                user_id: None,
                tiktok_order_id: format!("SIM{seed}-{:07}", i + 1),
                shop_id: None,
                current_state: StateName::default(),
                previous_state: None,
                priority: Priority::default(),
                impact: Impact::default(),
                automation_status: AutomationStatus::default(),
                customer_handle: format!("@customer{}", c + 1),
                customer_tier: tiers[c],
                customer_id: Some(format!("c{}", c + 1)),
                product_name: format!("Product {}", p + 1),
                product_id: product_ids[*p as usize].clone(),
                quantity,
                price: Decimal::new(cents, 2),
                processing_time_ms: 0,
                automation_score: 0,
                flow_progress: 0,
                viral_indicators: Vec::new(),
                orders_per_hour_current: Decimal::ZERO,
                velocity_multiplier: Decimal::ONE,
                shipping_location: None,
                carrier_preference: None,
                shipping_zone: zone,
                deadline: Some(*at + TimeDelta::seconds((deadline_h * 3600.0) as i64)),
                created_at: *at,
                updated_at: None,
                state_changed_at: None,
                user: None,
            });
        }

        // Deliveries: a few seconds normally; late or duplicated sometimes.
        let d = &scenario.deliveries;
        let max_delay = d.max_delay.num_milliseconds().max(1);
        let quick = Exp::new(1.0 / 2_000.0).ok();
        let mut deliveries = Vec::with_capacity(orders.len());
        for (i, o) in orders.iter().enumerate() {
            let t = o.created_at.timestamp_millis();
            let delay = if rng.random::<f64>() < d.out_of_order_rate {
                rng.random_range(MINUTE_MS.min(max_delay)..=max_delay)
            } else {
                quick.map_or(0, |e| e.sample(&mut rng) as i64)
            };
            deliveries.push(Delivery {
                at_ms: t + delay,
                order: i as u32,
                duplicate: false,
            });
            if rng.random::<f64>() < d.duplicate_rate {
                deliveries.push(Delivery {
                    at_ms: t + delay + rng.random_range(1_000..=max_delay.max(1_000)),
                    order: i as u32,
                    duplicate: true,
                });
            }
        }
        deliveries.sort();

        // Cancellations.
        let c = &scenario.cancellations;
        let mean = c.mean_delay.num_milliseconds().max(1) as f64;
        let exp = Exp::new(1.0 / mean).ok();
        let mut cancels = Vec::new();
        for (i, o) in orders.iter().enumerate() {
            if rng.random::<f64>() < c.rate {
                let delay = exp.map_or(0, |e| e.sample(&mut rng) as i64);
                cancels.push((o.created_at.timestamp_millis() + delay, i as u32));
            }
        }
        cancels.sort();

        let spikes = scenario
            .spikes
            .iter()
            .map(|s| TrueSpike {
                product_id: product_ids[s.product.saturating_sub(1).min(n as u32 - 1) as usize]
                    .clone(),
                start: scenario.start + s.start,
                end: scenario.start + s.start + s.ramp + s.hold + s.decay,
            })
            .collect();

        Traffic {
            orders,
            deliveries,
            cancels,
            spikes,
            warmup,
            product_ids,
            per_minute,
        }
    }
}

/// The largest count of `times` (ms, sorted) in any window of `window_ms`.
pub fn peak_in_window(times: &[i64], window_ms: i64) -> u64 {
    let mut best = 0usize;
    let mut lo = 0usize;
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= window_ms {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "scenario: t\nstart: 2025-06-12T00:00:00Z\nduration: 2d\nwarmup: 1h\ntraffic: {{ products: 50, orders_per_hour: 400 }}\n{extra}"
        );
        match Scenario::parse(&text, "t.yaml") {
            Ok(s) => s,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn mean_rate_matches_the_scenario() {
        let s = scenario("");
        let t = Traffic::generate(&s, 3);
        let hours = s.duration.num_minutes() as f64 / 60.0;
        let rate = t.orders.len() as f64 / hours;
        // 19,200 expected; Poisson sd ≈ 139: 3 % is > 4 sd.
        assert!((rate - 400.0).abs() < 12.0, "mean rate {rate}/h");
        assert!(
            t.orders
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at)
        );
    }

    #[test]
    fn spike_peak_matches_the_scenario() {
        let s = scenario(
            "spikes:\n  - { product: 10, start: 20h, ramp: 30m, hold: 2h, decay: 30m, peak_per_hour: 2000 }\n",
        );
        let t = Traffic::generate(&s, 5);
        let times: Vec<i64> = t
            .orders
            .iter()
            .filter(|o| o.product_id == t.product_ids[9])
            .map(|o| o.created_at.timestamp_millis())
            .collect();
        let peak = peak_in_window(&times, 3_600_000) as f64;
        // 2,000 spike + ~17/h baseline; the max of ~90 overlapping windows
        // sits a little above the mean (sd ≈ 45).
        assert!((1_950.0..=2_200.0).contains(&peak), "peak {peak}/h");
        assert_eq!(t.spikes.len(), 1);
        assert_eq!(t.spikes[0].end - t.spikes[0].start, TimeDelta::hours(3));
    }

    #[test]
    fn same_seed_same_traffic() {
        let s = scenario("deliveries: { duplicate_rate: 0.1, out_of_order_rate: 0.1 }\n");
        let a = Traffic::generate(&s, 9);
        let b = Traffic::generate(&s, 9);
        assert_eq!(a.orders, b.orders);
        assert_eq!(a.deliveries, b.deliveries);
        let dups = a.deliveries.iter().filter(|d| d.duplicate).count() as f64;
        let share = dups / a.orders.len() as f64;
        assert!((0.08..0.12).contains(&share), "duplicates {share}");
        // Some deliveries arrive after a later order's.
        let late = a
            .deliveries
            .windows(2)
            .filter(|w| w[1].order < w[0].order && !w[0].duplicate && !w[1].duplicate)
            .count();
        assert!(late > 0);
    }

    #[test]
    fn windows() {
        assert_eq!(peak_in_window(&[0, 10, 20, 100, 105], 50), 3);
        assert_eq!(peak_in_window(&[], 50), 0);
    }
}
