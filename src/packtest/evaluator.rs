//! The evaluation `creatorflow eval` runs on each order, shared by pack tests.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::model::Order;
use crate::rules::{Decision, Explanation, RuleEngine, RulePack};
use crate::viral::{Enricher, StatisticalDetector, ViralEnricher};

/// A [`RuleEngine`] with, optionally, viral enrichment before it: each order
/// is first enriched (viral indicators, `orders_per_hour_current`,
/// `velocity_multiplier`, as of the evaluation time) by the default
/// statistical [`ViralEnricher`], then evaluated. Customer counts come from
/// the rule engine's exact window facts, so the enricher keeps product
/// velocity only.
///
/// ```
/// use std::sync::Arc;
/// use creatorflow::{Order, packtest::Evaluator, rules::RulePack};
/// let mut ev = Evaluator::new(Arc::new(RulePack::shipped()), false);
/// let mut order = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@a",
///     "customer_tier":"vip","product_name":"Lamp","product_id":"p1","quantity":1,
///     "price":"20.00","created_at":"2025-03-01T12:00:00Z"}"#).unwrap();
/// let d = ev.evaluate(&mut order, None);
/// assert_eq!(d.priority.as_str(), "high");
/// ```
pub struct Evaluator {
    engine: RuleEngine,
    enricher: Option<ViralEnricher<StatisticalDetector>>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("engine", &self.engine)
            .field("enrich", &self.enricher.is_some())
            .finish()
    }
}

impl Evaluator {
    /// An evaluator of `pack` with empty windows; `enrich` turns viral
    /// detection on.
    pub fn new(pack: Arc<RulePack>, enrich: bool) -> Self {
        Evaluator {
            engine: RuleEngine::new(pack),
            enricher: enrich.then(Self::default_enricher),
        }
    }

    /// The enrichment `eval` applies by default: viral detection over the
    /// orders seen so far. Customer counts come from the rule engine's exact
    /// window facts; the enricher only needs product velocity.
    pub fn default_enricher() -> ViralEnricher {
        ViralEnricher::default().without_customer_velocity()
    }

    /// The pack.
    pub fn pack(&self) -> &Arc<RulePack> {
        self.engine.pack()
    }

    /// Counts a past order in the window facts (and the enricher's
    /// velocity, when enriching) without evaluating it, as a restart
    /// rebuilds them. Feed orders oldest first.
    pub fn record(&mut self, order: &Order) {
        self.engine.record(order);
        if let Some(e) = self.enricher.as_mut() {
            e.record(
                &order.product_id,
                &order.customer_handle,
                order.created_at,
                order.quantity,
            );
        }
    }

    /// Sets `order`'s viral facts as of `now` (its `created_at` when
    /// `None`), when enriching; otherwise leaves it as given.
    pub fn enrich(&mut self, order: &mut Order, now: Option<DateTime<Utc>>) {
        if let Some(e) = self.enricher.as_mut() {
            let t = now.unwrap_or(order.created_at);
            e.enrich(order, t);
        }
    }

    /// Enriches `order` (see [`Evaluator::enrich`]) and evaluates the pack
    /// on it at `now`, reusing `out`'s buffers (see [`RuleEngine::evaluate_into`]).
    pub fn evaluate_into(
        &mut self,
        order: &mut Order,
        now: Option<DateTime<Utc>>,
        out: &mut Decision,
    ) {
        self.enrich(order, now);
        self.engine.evaluate_into(order, now, out);
    }

    /// [`Evaluator::evaluate_into`] into a new decision.
    pub fn evaluate(&mut self, order: &mut Order, now: Option<DateTime<Utc>>) -> Decision {
        let mut d = Decision::default();
        self.evaluate_into(order, now, &mut d);
        d
    }

    /// Like [`Evaluator::evaluate`], and explains every rule (see
    /// [`RuleEngine::evaluate_explained`]).
    pub fn evaluate_explained(
        &mut self,
        order: &mut Order,
        now: Option<DateTime<Utc>>,
    ) -> (Decision, Vec<Explanation>) {
        self.enrich(order, now);
        self.engine.evaluate_explained(order, now)
    }
}
