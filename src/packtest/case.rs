//! One test case, as its file says it, checked against the pack.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::diag::Pos;
use crate::model::{Impact, Order, Priority};

/// One case of a case file.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The case's name (unique in its file).
    pub name: String,
    /// The file, as it was named to the loader.
    pub file: Arc<str>,
    /// Where the case starts in its file.
    pub pos: Pos,
    /// The evaluation time; the order's `created_at` when `None`.
    pub now: Option<DateTime<Utc>>,
    /// Whether viral detection runs before the rules (`enrich: true`).
    pub enrich: bool,
    /// Earlier orders, recorded into the window facts in the order written.
    pub history: Vec<Order>,
    /// The order evaluated.
    pub order: Order,
    /// What the evaluation must give.
    pub expect: Expect,
}

/// What a case expects; `None` is not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// Exactly these rules fired, in evaluation order.
    pub matched: Option<Vec<String>>,
    /// These rules are among the fired ones (order-free).
    pub fired: Option<Vec<String>>,
    /// None of these rules fired.
    pub not_fired: Option<Vec<String>>,
    /// The resulting priority.
    pub priority: Option<Priority>,
    /// The resulting impact.
    pub impact: Option<Impact>,
    /// These action types are among the actions taken (order-free).
    pub actions: Option<Vec<String>>,
    /// How many rules errored.
    pub errors: Option<u64>,
}

impl Expect {
    /// Whether nothing is checked.
    pub fn is_empty(&self) -> bool {
        *self == Expect::default()
    }

    /// Every rule id the expectation names, each once, in the order named
    /// (`matched`, `fired`, then `not_fired`).
    pub fn named_rules(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for list in [&self.matched, &self.fired, &self.not_fired]
            .into_iter()
            .flatten()
        {
            for id in list {
                if !out.contains(&id.as_str()) {
                    out.push(id);
                }
            }
        }
        out
    }
}
