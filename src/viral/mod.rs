//! Viral-spike detection: enrichment of orders before the rules run.
//!
//! This module holds the plan's reference detector (a fixed threshold on a
//! product's orders in the last hour). It sets `orders_per_hour_current`,
//! `velocity_multiplier` and a `content_spike` indicator on each order, so
//! that rules such as the shipped viral-escalation rules act on them.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;

use crate::model::{Order, ViralIndicator, ViralIndicatorType};
use crate::rules::window_counter::KeyedCounter;

const HOUR_MS: i64 = 3_600_000;

/// Sets an order's viral facts from the stream of orders seen so far.
pub trait Enricher: Send {
    /// Records `order` (at its `created_at`) and sets its viral facts as of `now`.
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>);
}

/// The plan's detector, kept as the baseline: a `content_spike` when a
/// product's orders in the last hour exceed 40, with
/// `confidence = min(v/50, 1)` and `impact_multiplier = min(v/20, 3)`;
/// `velocity_multiplier = min(current / baseline, 5)`, the baseline being the
/// product's mean hourly rate over the 24 hours before the last hour (1.0
/// when there is no history).
#[derive(Debug, Default)]
pub struct ReferenceDetector {
    products: KeyedCounter,
}

impl ReferenceDetector {
    /// The plan's threshold, in orders per hour.
    pub const THRESHOLD: f64 = 40.0;

    /// A detector with no history.
    pub fn new() -> Self {
        ReferenceDetector::default()
    }
}

impl Enricher for ReferenceDetector {
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>) {
        let t = order.created_at.timestamp_millis();
        self.products.insert(&order.product_id, t, 25 * HOUR_MS);
        let hi = now.timestamp_millis().max(t);
        let current = self.products.count(&order.product_id, hi - HOUR_MS, hi) as f64;
        let before = self
            .products
            .count(&order.product_id, hi - 25 * HOUR_MS, hi - HOUR_MS) as f64
            / 24.0;
        let multiplier = if before > 0.0 {
            (current / before).min(5.0)
        } else {
            1.0
        };
        order.orders_per_hour_current = Decimal::from_f64(current).unwrap_or_default();
        order.velocity_multiplier = Decimal::from_f64(multiplier)
            .unwrap_or(Decimal::ONE)
            .round_dp(2);
        if current > Self::THRESHOLD {
            let mut metadata = serde_json::Map::new();
            metadata.insert("current_velocity".into(), current.into());
            metadata.insert("threshold".into(), Self::THRESHOLD.into());
            metadata.insert("product_id".into(), order.product_id.clone().into());
            order.viral_indicators.push(ViralIndicator {
                kind: ViralIndicatorType::ContentSpike,
                source: "velocity_monitoring".into(),
                confidence: (current / 50.0).min(1.0),
                impact_multiplier: (current / 20.0).min(3.0),
                detected_at: now,
                metadata,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(t: &str) -> Order {
        Order::from_json(&format!(
            r#"{{"tiktok_order_id":"1","customer_handle":"@a","product_name":"x","product_id":"p","quantity":1,"price":1,"created_at":"{t}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn flags_more_than_forty_an_hour() {
        let mut d = ReferenceDetector::new();
        let start: DateTime<Utc> = "2025-03-01T12:00:00Z".parse().unwrap();
        let mut last = order("2025-03-01T12:00:00Z");
        for i in 0..41 {
            let mut o = order("2025-03-01T12:00:00Z");
            o.created_at = start + chrono::TimeDelta::seconds(i * 60);
            let t = o.created_at;
            d.enrich(&mut o, t);
            if i < 40 {
                assert!(o.viral_indicators.is_empty(), "order {i}");
            }
            last = o;
        }
        assert_eq!(last.orders_per_hour_current, Decimal::from(41));
        let ind = &last.viral_indicators[0];
        assert_eq!(ind.kind, ViralIndicatorType::ContentSpike);
        assert!((ind.confidence - 0.82).abs() < 1e-9);
        assert!((ind.impact_multiplier - 2.05).abs() < 1e-9);
        assert_eq!(last.velocity_multiplier, Decimal::ONE, "no baseline yet");
    }
}
