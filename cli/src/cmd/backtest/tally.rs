//! What `backtest` counts: each replayed order's decision by the pack that
//! decided it and by the new pack, folded into the report of rules.md.

use std::collections::BTreeMap;

use creatorflow::model::{Impact, Priority};
use creatorflow::rules::{Decision, RulePack};
use serde::Serialize;

/// Examples kept per change kind.
pub const EXAMPLES_PER_KIND: usize = 20;

/// One side of a decision as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// The priority the pack gave.
    pub priority: Priority,
    /// The impact the pack gave.
    pub impact: Impact,
    /// The fired rules' ids, in evaluation order.
    pub matched: Vec<String>,
}

impl Side {
    fn of(pack: &RulePack, d: &Decision) -> Side {
        Side {
            priority: d.priority,
            impact: d.impact,
            matched: d
                .matched
                .iter()
                .map(|i| pack.rules()[*i as usize].id.clone())
                .collect(),
        }
    }
}

/// An order whose decision changed.
#[derive(Debug, Clone, Serialize)]
pub struct Example {
    /// The order's `tiktok_order_id`.
    pub order_id: String,
    /// Its decision by the pack that decided it.
    pub before: Side,
    /// Its decision by the new pack.
    pub after: Side,
}

/// How often a rule fired on each side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Fired {
    /// Fired by the pack that decided the orders.
    pub before: u64,
    /// Fired by the new pack.
    pub after: u64,
}

/// The report: exactly the keys of rules.md.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Orders replayed.
    pub orders: u64,
    /// Orders whose priority, impact or fired rules changed.
    pub changed: u64,
    /// `"from->to"` priority moves (lanes) and how many orders made each.
    pub priority_moves: BTreeMap<String, u64>,
    /// `"from->to"` impact moves and how many orders made each.
    pub impact_moves: BTreeMap<String, u64>,
    /// Every rule of either pack, fired before / after.
    pub rules: BTreeMap<String, Fired>,
    /// Up to [`EXAMPLES_PER_KIND`] changed orders per change kind.
    pub examples: Vec<Example>,
}

/// Folds decisions into a [`Report`].
#[derive(Debug)]
pub struct Tally {
    report: Report,
    /// Examples kept per change kind (the priority move, else the impact
    /// move, else `rules`).
    kinds: BTreeMap<String, usize>,
}

fn moved(a: &str, b: &str) -> String {
    format!("{a}->{b}")
}

impl Tally {
    /// A tally listing every rule of both packs (at zero).
    pub fn new(before: &RulePack, after: &RulePack) -> Tally {
        let mut report = Report::default();
        for r in before.rules().iter().chain(after.rules()) {
            report.rules.entry(r.id.clone()).or_default();
        }
        Tally {
            report,
            kinds: BTreeMap::new(),
        }
    }

    /// Counts one order decided `b` by `before` and `a` by `after`.
    pub fn add(
        &mut self,
        order_id: &str,
        (before, b): (&RulePack, &Decision),
        (after, a): (&RulePack, &Decision),
    ) {
        let r = &mut self.report;
        r.orders += 1;
        for i in &b.matched {
            r.rules
                .entry(before.rules()[*i as usize].id.clone())
                .or_default()
                .before += 1;
        }
        for i in &a.matched {
            r.rules
                .entry(after.rules()[*i as usize].id.clone())
                .or_default()
                .after += 1;
        }
        let same_rules = b.matched.len() == a.matched.len()
            && b.matched
                .iter()
                .zip(&a.matched)
                .all(|(x, y)| before.rules()[*x as usize].id == after.rules()[*y as usize].id);
        if same_rules && b.priority == a.priority && b.impact == a.impact {
            return;
        }
        r.changed += 1;
        let mut kind = None;
        if b.impact != a.impact {
            let k = moved(b.impact.as_str(), a.impact.as_str());
            *r.impact_moves.entry(k.clone()).or_default() += 1;
            kind = Some(format!("impact {k}"));
        }
        if b.priority != a.priority {
            let k = moved(b.priority.as_str(), a.priority.as_str());
            *r.priority_moves.entry(k.clone()).or_default() += 1;
            kind = Some(format!("priority {k}"));
        }
        let kind = kind.unwrap_or_else(|| "rules".to_owned());
        let n = self.kinds.entry(kind).or_default();
        if *n < EXAMPLES_PER_KIND {
            *n += 1;
            r.examples.push(Example {
                order_id: order_id.to_owned(),
                before: Side::of(before, b),
                after: Side::of(after, a),
            });
        }
    }

    /// The report.
    pub fn finish(self) -> Report {
        self.report
    }
}
