//! [`Engine::rule_stats`]: the rule pack's statistics as this engine ran it.

use super::{Engine, lock};
use crate::rules::RuleStats;
use crate::store::Store;

impl<S: Store + 'static> Engine<S> {
    /// The statistics of every rule of the pack (fired and errored
    /// evaluations, last execution, mean evaluation time) over the orders
    /// this engine ingested, by rule id.
    pub fn rule_stats(&self) -> Vec<RuleStats> {
        lock(&self.inner.rules).stats()
    }
}
