//! Running a case: its evaluation, what differs from the expectation, and
//! the explanations a rule author needs to see why.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use super::case::Case;
use super::evaluator::Evaluator;
use crate::rules::{Explanation, RulePack};

/// One expectation a case did not meet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The key of `expect`: `matched`, `fired`, `not_fired`, `priority`,
    /// `impact`, `actions` or `errors`.
    pub key: &'static str,
    /// What the case expects, as written.
    pub expected: Value,
    /// What the evaluation gave: for `matched`, `fired` and `not_fired` the
    /// rules that fired, in evaluation order; for `actions` every action
    /// taken; for `errors` the count.
    pub actual: Value,
}

impl std::fmt::Display for Failure {
    /// `fired: expected [a] among the fired rules, actual ["b","c"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.key {
            "matched" => " (exactly, in evaluation order)",
            "fired" => " among the fired rules",
            "not_fired" => " not to fire",
            "actions" => " among the actions",
            "errors" => " rule error(s)",
            _ => "",
        };
        let actual = match self.key {
            "fired" | "not_fired" => "actual fired rules",
            _ => "actual",
        };
        write!(
            f,
            "{}: expected {}{how}, {actual} {}",
            self.key, self.expected, self.actual
        )
    }
}

/// The outcome of one case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    /// Every expectation not met; empty when the case passed.
    pub failures: Vec<Failure>,
    /// When it failed, the explanation of every rule the case names (and,
    /// for a failed key that names no rule, of the rules that fired or
    /// errored), in evaluation order; empty when it passed.
    pub explanations: Vec<Explanation>,
}

impl CaseResult {
    /// Whether every expectation was met.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs `case` on a fresh [`Evaluator`] of `pack`: records its history,
/// evaluates its order and compares the decision with its expectation.
pub fn run_case(pack: &Arc<RulePack>, case: &Case) -> CaseResult {
    let mut ev = Evaluator::new(Arc::clone(pack), case.enrich);
    for h in &case.history {
        ev.record(h);
    }
    let mut order = case.order.clone();
    let (decision, explanations) = ev.evaluate_explained(&mut order, case.now);
    let report = decision.report(pack, &order.tiktok_order_id);
    let e = &case.expect;
    let mut failures = Vec::new();
    let mut fail = |key, expected: Value, actual: Value| {
        failures.push(Failure {
            key,
            expected,
            actual,
        });
    };
    let fired = || json!(report.matched);
    if let Some(m) = &e.matched
        && *m != report.matched
    {
        fail("matched", json!(m), fired());
    }
    if let Some(f) = &e.fired
        && !f.iter().all(|id| report.matched.contains(&id.as_str()))
    {
        fail("fired", json!(f), fired());
    }
    if let Some(nf) = &e.not_fired
        && nf.iter().any(|id| report.matched.contains(&id.as_str()))
    {
        fail("not_fired", json!(nf), fired());
    }
    if let Some(p) = e.priority
        && p != report.priority
    {
        fail("priority", json!(p), json!(report.priority));
    }
    if let Some(i) = e.impact
        && i != report.impact
    {
        fail("impact", json!(i), json!(report.impact));
    }
    if let Some(a) = &e.actions
        && !a.iter().all(|kind| report.actions.contains(&kind.as_str()))
    {
        fail("actions", json!(a), json!(report.actions));
    }
    if let Some(n) = e.errors
        && n != report.errors.len() as u64
    {
        fail("errors", json!(n), json!(report.errors.len()));
    }
    if failures.is_empty() {
        return CaseResult {
            failures,
            explanations: Vec::new(),
        };
    }
    // The rules to explain: those named, and for a failed key naming none,
    // those that decided it (fired, or errored).
    let mut wanted: Vec<&str> = e.named_rules();
    if failures
        .iter()
        .any(|f| matches!(f.key, "matched" | "priority" | "impact" | "actions"))
    {
        wanted.extend(report.matched.iter().copied());
    }
    if failures.iter().any(|f| f.key == "errors") {
        wanted.extend(report.errors.iter().map(|r| r.rule));
    }
    let explanations = explanations
        .into_iter()
        .filter(|x| wanted.contains(&x.rule.as_str()))
        .collect();
    CaseResult {
        failures,
        explanations,
    }
}
