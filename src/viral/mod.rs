//! Viral-spike detection: velocity windows, two detectors, host signals, and
//! the enrichment of orders before the rules run.
//!
//! | file | what it is |
//! |---|---|
//! | `velocity.rs` | [`Velocity`] / [`KeyedVelocity`]: bucketed sliding-window order and unit counts per product or customer, a minute to a week, fixed memory |
//! | `reference.rs` | [`ReferenceDetector`]: the plan's fixed threshold (> 40 orders in the last hour), kept as the baseline |
//! | `statistical.rs` | [`StatisticalDetector`], the default: a Poisson CUSUM against each product's own seasonal baseline |
//! | `cold_start.rs` | the statistical detector's test before the CUSUM may run (a product's first day): its last 15 minutes against its own rate so far |
//! | `signals.rs` | [`Signals`]: trending hashtags, influencer mentions and flash sales fed by the host, with expiry |
//! | `enrich.rs` | [`ViralEnricher`]: sets `viral_indicators`, `orders_per_hour_current`, `velocity_multiplier` and the escalation recommendation on each order |
//!
//! A [`Detector`] sees one order at a time (product, `created_at`, quantity,
//! and the caller's `now`) and answers an [`Assessment`]: the product's
//! orders in the last hour, its baseline rate, the velocity multiplier and,
//! when it judges the product to be spiking, a [`Spike`] with a confidence
//! and an impact multiplier. The [`Enricher`] turns that, plus the host's
//! [`Signals`], into the order's viral facts. No clock is read anywhere:
//! time is the order's `created_at` and the caller's `now`.
//!
//! ```
//! use creatorflow::Order;
//! use creatorflow::viral::{Enricher, ViralEnricher};
//!
//! let mut enricher = ViralEnricher::default(); // the statistical detector
//! let mut order = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@a",
//!     "product_name":"Lamp","product_id":"p1","quantity":1,"price":20,
//!     "created_at":"2025-06-12T10:00:00Z"}"#).unwrap();
//! enricher
//!     .signals_mut()
//!     .flash_sale("p1", "2025-06-12T09:00:00Z".parse().unwrap(),
//!         "2025-06-12T12:00:00Z".parse().unwrap(), 0.3)
//!     .unwrap();
//! let now = order.created_at;
//! let outcome = enricher.enrich(&mut order, now);
//! assert_eq!(order.viral_indicators[0].kind.as_str(), "flash_sale");
//! assert!(outcome.escalate); // confidence 0.9, impact 2.5: the plan's rule
//! ```

mod cold_start;
mod enrich;
mod reference;
mod signals;
mod statistical;
mod velocity;

pub use enrich::{Enrichment, ViralEnricher};
pub use reference::ReferenceDetector;
pub use signals::{SignalError, Signals};
pub use statistical::{ConfigError, StatisticalConfig, StatisticalDetector};
pub use velocity::{KeyedVelocity, Velocity, WindowTotal};

use chrono::{DateTime, Utc};

use crate::model::{Order, ViralIndicator};

/// Sets an order's viral facts from the stream of orders seen so far.
pub trait Enricher: Send {
    /// Records `order` (at its `created_at`) and sets its viral facts as of
    /// `now`: `viral_indicators` (indicators this enricher set earlier are
    /// replaced, others kept), `orders_per_hour_current` and
    /// `velocity_multiplier`. Returns the escalation recommendation.
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>) -> Enrichment;

    /// Records a past order without enriching anything (see
    /// [`restore`](Self::restore)).
    fn record(
        &mut self,
        product_id: &str,
        customer: &str,
        created_at: DateTime<Utc>,
        quantity: u32,
    );

    /// Rebuilds the state from stored orders `(product_id, customer,
    /// created_at, quantity)` after a restart, e.g. the last week read from
    /// the store, oldest first (velocity counts accept any order; the
    /// statistical baseline learns best from time order).
    fn restore<'a, I>(&mut self, orders: I)
    where
        I: IntoIterator<Item = (&'a str, &'a str, DateTime<Utc>, u32)>,
        Self: Sized,
    {
        for (product, customer, at, quantity) in orders {
            self.record(product, customer, at, quantity);
        }
    }
}

/// A spike detector: updated with each order, queried at the same time.
pub trait Detector: Send {
    /// A short name for reports (`reference`, `statistical`).
    fn name(&self) -> &'static str;

    /// Records an order of `quantity` units of `product_id` placed at `at`,
    /// and returns the product's state as of `now` (the later of `now` and
    /// `at`).
    fn observe(
        &mut self,
        product_id: &str,
        at: DateTime<Utc>,
        quantity: u32,
        now: DateTime<Utc>,
    ) -> Assessment;

    /// Records a past order (a restore) without assessing it.
    fn record(&mut self, product_id: &str, at: DateTime<Utc>, quantity: u32);

    /// Rebuilds the state from stored orders `(product_id, created_at,
    /// quantity)`, oldest first.
    fn restore<'a, I>(&mut self, orders: I)
    where
        I: IntoIterator<Item = (&'a str, DateTime<Utc>, u32)>,
        Self: Sized,
    {
        for (product, at, quantity) in orders {
            self.record(product, at, quantity);
        }
    }

    /// Approximate memory held, in bytes.
    fn memory_bytes(&self) -> usize;

    /// Number of products tracked.
    fn tracked_products(&self) -> usize;
}

/// A detector's view of a product after an order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// The product's orders in the last hour (becomes `orders_per_hour_current`).
    pub orders_last_hour: u64,
    /// The product's expected orders per hour now, as the detector defines
    /// its baseline (see each detector).
    pub baseline_per_hour: f64,
    /// `min(orders_last_hour / baseline, 5)`, 1.0 when the baseline is unknown.
    pub velocity_multiplier: f64,
    /// Set while the detector judges the product to be spiking.
    pub spike: Option<Spike>,
}

/// A detected spike: becomes a `content_spike` indicator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// 0..=1.
    pub confidence: f64,
    /// Expected demand multiplier.
    pub impact_multiplier: f64,
    /// What the detector saw.
    pub evidence: Evidence,
}

/// The facts behind a [`Spike`], written into the indicator's metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Evidence {
    /// The plan's threshold test.
    Threshold {
        /// Orders in the last hour.
        current_velocity: f64,
        /// The threshold it exceeded.
        threshold: f64,
    },
    /// The statistical test.
    Statistical {
        /// Orders in the evidence window.
        observed: u64,
        /// Orders expected in that window under the product's baseline.
        expected: f64,
        /// Length of the evidence window, in minutes.
        window_minutes: f64,
        /// Poisson upper-tail probability of `observed` given `expected`.
        p_value: f64,
        /// When the alarm was raised.
        since: DateTime<Utc>,
    },
    /// The statistical detector's cold-start test (before its CUSUM runs):
    /// the product's recent orders against its own rate so far.
    ColdStart {
        /// Orders in the recent window.
        observed: u64,
        /// Orders the reference rate expects in that window.
        expected: f64,
        /// Length of the recent window, in minutes.
        window_minutes: f64,
        /// The product's reference rate when the alarm was raised, orders per hour.
        reference_per_hour: f64,
        /// Poisson upper-tail probability of `observed` given `expected`.
        p_value: f64,
        /// When the alarm was raised.
        since: DateTime<Utc>,
    },
}

/// The plan's `shouldEscalatePriority`: some indicator has confidence > 0.7
/// and impact multiplier > 2.
pub fn should_escalate(indicators: &[ViralIndicator]) -> bool {
    indicators
        .iter()
        .any(|i| i.confidence > 0.7 && i.impact_multiplier > 2.0)
}
