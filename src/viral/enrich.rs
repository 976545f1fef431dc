//! Enrichment at ingest: a detector plus the host's signals, writing the
//! order's viral facts before the rules run.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde_json::{Map, Value};

use super::signals::{FLASH_SALE_SOURCE, HASHTAG_SOURCE, INFLUENCER_SOURCE};
use super::{
    Assessment, Detector, Enricher, Evidence, KeyedVelocity, ReferenceDetector, Signals,
    StatisticalDetector, should_escalate,
};
use crate::model::{Order, ViralIndicator, ViralIndicatorType};

/// The `source` of `content_spike` indicators set by the detectors.
pub(crate) const VELOCITY_SOURCE: &str = "velocity_monitoring";

/// What enriching one order concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enrichment {
    /// The plan's escalation rule over the order's indicators (its own and
    /// those set here): some indicator has confidence > 0.7 and impact
    /// multiplier > 2. The rules act on the indicators themselves (the
    /// shipped `viral-*` rules); this is the recommendation for a host that
    /// does not run them.
    pub escalate: bool,
    /// The detector's assessment of the order's product.
    pub assessment: Assessment,
}

/// The [`Enricher`] the engine uses: a [`Detector`] (the
/// [`StatisticalDetector`] by default, or the plan's
/// [`ReferenceDetector`]), the host's [`Signals`], and per-customer
/// [`KeyedVelocity`] counts.
///
/// On each order it sets:
///
/// - `orders_per_hour_current`: the product's orders in the last hour;
/// - `velocity_multiplier`: the detector's, rounded to 2 decimals;
/// - `viral_indicators`: a `content_spike` while the detector flags the
///   product, then one indicator per active host signal. Indicators with one
///   of this module's sources (`velocity_monitoring`, `hashtag_monitoring`,
///   `influencer_tracking`, `flash_sale_schedule`) are replaced, so
///   enriching an order twice does not duplicate them; others are kept.
///
/// The velocity facts are as of `max(now, created_at)` (the product's load
/// when the order is handled); host signals apply to orders placed
/// (`created_at`) while they are active.
#[derive(Debug)]
pub struct ViralEnricher<D: Detector = StatisticalDetector> {
    detector: D,
    signals: Signals,
    customers: Option<KeyedVelocity>,
}

impl Default for ViralEnricher<StatisticalDetector> {
    fn default() -> Self {
        ViralEnricher::statistical()
    }
}

impl ViralEnricher<StatisticalDetector> {
    /// The default: the statistical detector with its calibrated settings.
    pub fn statistical() -> Self {
        ViralEnricher::new(StatisticalDetector::new())
    }
}

impl ViralEnricher<ReferenceDetector> {
    /// The plan's fixed-threshold detector, as a baseline.
    pub fn reference() -> Self {
        ViralEnricher::new(ReferenceDetector::new())
    }
}

impl<D: Detector> ViralEnricher<D> {
    /// An enricher around `detector`, with no signals, tracking customers.
    pub fn new(detector: D) -> Self {
        ViralEnricher {
            detector,
            signals: Signals::new(),
            customers: Some(KeyedVelocity::new()),
        }
    }

    /// Stops tracking per-customer velocity (saves a map lookup and about
    /// 2.4 KB per active customer).
    pub fn without_customer_velocity(mut self) -> Self {
        self.customers = None;
        self
    }

    /// The detector.
    pub fn detector(&self) -> &D {
        &self.detector
    }

    /// The host's signals.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// The host's signals, to register trending hashtags, influencer
    /// mentions and flash sales.
    pub fn signals_mut(&mut self) -> &mut Signals {
        &mut self.signals
    }

    /// Per-customer order counts (keyed by `customer_handle`), unless turned off.
    pub fn customer_velocity(&self) -> Option<&KeyedVelocity> {
        self.customers.as_ref()
    }

    /// Per-customer order counts, to evict idle customers.
    pub fn customer_velocity_mut(&mut self) -> Option<&mut KeyedVelocity> {
        self.customers.as_mut()
    }
}

fn ours(source: &str) -> bool {
    matches!(
        source,
        VELOCITY_SOURCE | HASHTAG_SOURCE | INFLUENCER_SOURCE | FLASH_SALE_SOURCE
    )
}

fn round(x: f64, dp: i32) -> Value {
    let m = 10f64.powi(dp);
    Value::from((x * m).round() / m)
}

fn content_spike(
    detector: &'static str,
    product_id: &str,
    a: &Assessment,
    at: DateTime<Utc>,
) -> Option<ViralIndicator> {
    let spike = a.spike?;
    let mut metadata = Map::new();
    match spike.evidence {
        Evidence::Threshold {
            current_velocity,
            threshold,
        } => {
            metadata.insert("current_velocity".into(), current_velocity.into());
            metadata.insert("threshold".into(), threshold.into());
        }
        Evidence::Statistical {
            observed,
            expected,
            window_minutes,
            p_value,
            since,
        } => {
            metadata.insert("current_velocity".into(), a.orders_last_hour.into());
            metadata.insert("baseline_per_hour".into(), round(a.baseline_per_hour, 3));
            metadata.insert("observed".into(), observed.into());
            metadata.insert("expected".into(), round(expected, 3));
            metadata.insert("window_minutes".into(), round(window_minutes, 1));
            metadata.insert("p_value".into(), p_value.into());
            metadata.insert("alarm_since".into(), since.to_rfc3339().into());
            metadata.insert("test".into(), "cusum".into());
        }
        Evidence::ColdStart {
            observed,
            expected,
            window_minutes,
            reference_per_hour,
            p_value,
            since,
        } => {
            metadata.insert("current_velocity".into(), a.orders_last_hour.into());
            metadata.insert("baseline_per_hour".into(), round(reference_per_hour, 3));
            metadata.insert("observed".into(), observed.into());
            metadata.insert("expected".into(), round(expected, 3));
            metadata.insert("window_minutes".into(), round(window_minutes, 1));
            metadata.insert("p_value".into(), p_value.into());
            metadata.insert("alarm_since".into(), since.to_rfc3339().into());
            metadata.insert("test".into(), "cold_start".into());
        }
    }
    metadata.insert("detector".into(), detector.into());
    metadata.insert("product_id".into(), product_id.into());
    Some(ViralIndicator {
        kind: ViralIndicatorType::ContentSpike,
        source: VELOCITY_SOURCE.into(),
        confidence: spike.confidence.clamp(0.0, 1.0),
        impact_multiplier: spike.impact_multiplier.max(0.0),
        detected_at: at,
        metadata,
    })
}

impl<D: Detector> Enricher for ViralEnricher<D> {
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>) -> Enrichment {
        let at = order.created_at;
        let assessment = self
            .detector
            .observe(&order.product_id, at, order.quantity, now);
        if let Some(c) = &mut self.customers {
            c.record(&order.customer_handle, at, order.quantity);
        }
        order.viral_indicators.retain(|i| !ours(&i.source));
        let name = self.detector.name();
        if let Some(ind) = content_spike(name, &order.product_id, &assessment, now.max(at)) {
            order.viral_indicators.push(ind);
        }
        self.signals
            .indicators(&order.product_id, at, &mut order.viral_indicators);
        order.orders_per_hour_current = Decimal::from(assessment.orders_last_hour);
        order.velocity_multiplier = Decimal::from_f64(assessment.velocity_multiplier)
            .map_or(Decimal::ONE, |d| d.round_dp(2));
        Enrichment {
            escalate: should_escalate(&order.viral_indicators),
            assessment,
        }
    }

    fn record(
        &mut self,
        product_id: &str,
        customer: &str,
        created_at: DateTime<Utc>,
        quantity: u32,
    ) {
        self.detector.record(product_id, created_at, quantity);
        if let Some(c) = &mut self.customers {
            c.record(customer, created_at, quantity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn order(i: i64, product: &str) -> Order {
        let mut o = Order::from_json(&format!(
            r#"{{"tiktok_order_id":"{i}","customer_handle":"@c{}","product_name":"x","product_id":"{product}","quantity":2,"price":1,"created_at":"2025-03-01T12:00:00Z"}}"#,
            i % 7
        ))
        .unwrap();
        o.created_at += TimeDelta::seconds(60 * i);
        o
    }

    /// Enriches `n` orders of product `p`, a minute apart, each as it is
    /// placed; returns the last one and its enrichment.
    fn burst(e: &mut impl Enricher, n: i64) -> (Order, Enrichment) {
        let mut last = None;
        for i in 0..n {
            let mut o = order(i, "p");
            let now = o.created_at;
            let r = e.enrich(&mut o, now);
            last = Some((o, r));
        }
        last.expect("at least one order")
    }

    #[test]
    fn reference_sets_the_plan_facts() {
        let mut e = ViralEnricher::reference();
        let (o, r) = burst(&mut e, 45);
        assert_eq!(o.orders_per_hour_current, Decimal::from(45));
        assert_eq!(o.velocity_multiplier, Decimal::ONE);
        let ind = &o.viral_indicators[0];
        assert_eq!(ind.kind, ViralIndicatorType::ContentSpike);
        assert_eq!(ind.metadata["threshold"], 40.0);
        assert!(r.escalate, "confidence 0.9, impact 2.25");
        assert_eq!(
            e.customer_velocity()
                .unwrap()
                .units("@c0", o.created_at, TimeDelta::hours(1)),
            14
        );
    }

    #[test]
    fn statistical_new_product_burst_gets_velocity_facts_not_an_alarm() {
        let (o, _) = burst(&mut ViralEnricher::default(), 45);
        assert_eq!(o.orders_per_hour_current, Decimal::from(45));
        // Against the 2/h prior: 45/2, capped at 5.
        assert_eq!(o.velocity_multiplier, Decimal::from(5));
        assert!(o.viral_indicators.is_empty(), "{:?}", o.viral_indicators);
    }

    #[test]
    fn enrichment_is_idempotent_and_keeps_host_indicators() {
        let mut e = ViralEnricher::default();
        let mut o = order(0, "p");
        let at = o.created_at;
        e.signals_mut()
            .trending_hashtag("p", "#x", 0.8, at + TimeDelta::hours(1))
            .unwrap();
        o.viral_indicators.push(ViralIndicator {
            kind: ViralIndicatorType::FlashSale,
            source: "host".into(),
            confidence: 0.5,
            impact_multiplier: 1.5,
            detected_at: at,
            metadata: Map::new(),
        });
        let r1 = e.enrich(&mut o, at);
        let r2 = e.enrich(&mut o, at);
        let sources: Vec<_> = o
            .viral_indicators
            .iter()
            .map(|i| i.source.as_str())
            .collect();
        assert_eq!(sources, ["host", "hashtag_monitoring"]);
        assert!(
            !r1.escalate && !r2.escalate,
            "hashtag impact is 2.0, not > 2"
        );
    }

    #[test]
    fn restore_rebuilds_the_state() {
        let orders: Vec<Order> = (0..30).map(|i| order(i, "p")).collect();
        let mut live = ViralEnricher::reference();
        for o in &orders {
            let mut o = o.clone();
            let now = o.created_at;
            live.enrich(&mut o, now);
        }
        let mut restored = ViralEnricher::reference();
        restored.restore(orders.iter().map(|o| {
            (
                o.product_id.as_str(),
                o.customer_handle.as_str(),
                o.created_at,
                o.quantity,
            )
        }));
        let mut a = order(30, "p");
        let mut b = a.clone();
        let now = a.created_at;
        live.enrich(&mut a, now);
        restored.enrich(&mut b, now);
        assert_eq!(a, b);
        assert_eq!(a.orders_per_hour_current, Decimal::from(31));
    }
}
