//! The plan's detector: a fixed threshold on a product's orders in the last
//! hour, kept as the baseline the statistical detector is measured against.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use foldhash::fast::RandomState;

use super::velocity::{HOUR_MS, Velocity};
use super::{Assessment, Detector, Evidence, Spike};

/// The plan's `ViralDetectionEngine`, exactly:
///
/// - `current` = the product's orders in the last hour (minute buckets, see
///   [`Velocity`]);
/// - a `content_spike` when `current > 40`, with
///   `confidence = min(current / 50, 1)` and
///   `impact_multiplier = min(current / 20, 3)`;
/// - `baseline` = the product's mean hourly rate over the 24 hours before
///   the last hour (`(orders in the last 25 h - orders in the last hour) / 24`,
///   the older part rounded to the clock hour); when it is 0 (a new product,
///   or none sold in that day) the baseline is unknown and
///   `velocity_multiplier` is 1.0, as the plan's
///   `if (baseVelocity === 0) return 1.0`;
/// - otherwise `velocity_multiplier = min(current / baseline, 5)`.
///
/// The escalation rule (an indicator with confidence > 0.7 and impact
/// multiplier > 2) is [`should_escalate`](super::should_escalate), shared by
/// both detectors. Memory: one [`Velocity`] per product.
#[derive(Debug, Default, Clone)]
pub struct ReferenceDetector {
    products: HashMap<Box<str>, Box<Velocity>, RandomState>,
}

impl ReferenceDetector {
    /// The plan's threshold, in orders per hour.
    pub const THRESHOLD: f64 = 40.0;
    /// The cap on the velocity multiplier.
    pub const MAX_MULTIPLIER: f64 = 5.0;

    /// A detector with no history.
    pub fn new() -> Self {
        ReferenceDetector::default()
    }

    fn velocity(&mut self, product_id: &str) -> &mut Velocity {
        if !self.products.contains_key(product_id) {
            self.products.insert(product_id.into(), Box::default());
        }
        match self.products.get_mut(product_id) {
            Some(v) => v,
            None => unreachable!("inserted above"),
        }
    }

    /// Approximate memory per tracked product, in bytes (the counter, the
    /// key's bytes not included).
    pub fn bytes_per_product() -> usize {
        Velocity::BYTES + std::mem::size_of::<(Box<str>, Box<Velocity>)>()
    }
}

impl Detector for ReferenceDetector {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn record(&mut self, product_id: &str, at: DateTime<Utc>, quantity: u32) {
        self.velocity(product_id).record(at, quantity);
    }

    fn observe(
        &mut self,
        product_id: &str,
        at: DateTime<Utc>,
        quantity: u32,
        now: DateTime<Utc>,
    ) -> Assessment {
        let v = self.velocity(product_id);
        v.record(at, quantity);
        let now_ms = now.max(at).timestamp_millis();
        let current = v.orders_ms(now_ms, HOUR_MS) as f64;
        let day = v.orders_ms(now_ms, 25 * HOUR_MS) as f64;
        let baseline = (day - current).max(0.0) / 24.0;
        let velocity_multiplier = if baseline > 0.0 {
            (current / baseline).min(Self::MAX_MULTIPLIER)
        } else {
            1.0
        };
        let spike = (current > Self::THRESHOLD).then(|| Spike {
            confidence: (current / 50.0).min(1.0),
            impact_multiplier: (current / 20.0).min(3.0),
            evidence: Evidence::Threshold {
                current_velocity: current,
                threshold: Self::THRESHOLD,
            },
        });
        Assessment {
            orders_last_hour: current as u64,
            baseline_per_hour: baseline,
            velocity_multiplier,
            spike,
        }
    }

    fn memory_bytes(&self) -> usize {
        self.products.capacity() * (std::mem::size_of::<(Box<str>, Box<Velocity>)>() + 1)
            + self
                .products
                .keys()
                .map(|k| k.len() + Velocity::BYTES)
                .sum::<usize>()
    }

    fn tracked_products(&self) -> usize {
        self.products.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn flags_more_than_forty_an_hour() {
        let mut d = ReferenceDetector::new();
        let start: DateTime<Utc> = "2025-03-01T12:00:00Z".parse().unwrap();
        let mut last = None;
        for i in 0..41 {
            let t = start + TimeDelta::minutes(i);
            let a = d.observe("p", t, 1, t);
            if i < 40 {
                assert!(a.spike.is_none(), "order {i}");
            }
            last = Some(a);
        }
        let a = last.unwrap();
        assert_eq!(a.orders_last_hour, 41);
        let s = a.spike.unwrap();
        assert!((s.confidence - 0.82).abs() < 1e-9);
        assert!((s.impact_multiplier - 2.05).abs() < 1e-9);
        assert_eq!(a.velocity_multiplier, 1.0, "no baseline yet");
    }

    #[test]
    fn baseline_is_the_day_before_the_last_hour() {
        let mut d = ReferenceDetector::new();
        let t0: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
        // 2 an hour for a day, then 30 in the next hour.
        for i in 0..48 {
            d.record("p", t0 + TimeDelta::minutes(30 * i), 1);
        }
        let mut a = None;
        for i in 0..30 {
            let t = t0 + TimeDelta::hours(24) + TimeDelta::minutes(2 * i);
            a = Some(d.observe("p", t, 1, t));
        }
        let a = a.unwrap();
        assert_eq!(a.orders_last_hour, 30);
        assert!((a.baseline_per_hour - 2.0).abs() < 0.1, "{a:?}");
        assert_eq!(a.velocity_multiplier, 5.0, "capped");
        assert!(a.spike.is_none());
    }
}
