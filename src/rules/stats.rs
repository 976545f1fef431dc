//! Per-rule statistics (the plan's `execution_count`, `success_count`,
//! `last_executed_at`, `average_execution_time_ms`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub(crate) struct StatsAcc {
    executions: u64,
    successes: u64,
    last: Option<DateTime<Utc>>,
    sampled_nanos: u128,
    samples: u64,
}

impl StatsAcc {
    pub(crate) fn success(&mut self, t: DateTime<Utc>) {
        self.executions += 1;
        self.successes += 1;
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    pub(crate) fn error(&mut self, t: DateTime<Utc>) {
        self.executions += 1;
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }

    pub(crate) fn sample(&mut self, d: Duration) {
        self.sampled_nanos += d.as_nanos();
        self.samples += 1;
    }

    pub(crate) fn snapshot(&self, id: &str) -> RuleStats {
        RuleStats {
            rule: id.to_owned(),
            execution_count: self.executions,
            success_count: self.successes,
            last_executed_at: self.last,
            average_execution_time_ms: if self.samples == 0 {
                0.0
            } else {
                self.sampled_nanos as f64 / self.samples as f64 / 1e6
            },
        }
    }
}

/// A rule's statistics. A fired rule counts one execution and one success; a
/// rule that errored counts an execution without a success; rate-limited and
/// non-matching evaluations count neither.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStats {
    /// The rule id.
    pub rule: String,
    /// Fired plus errored evaluations.
    pub execution_count: u64,
    /// Fired evaluations.
    pub success_count: u64,
    /// Evaluation time of the latest execution.
    pub last_executed_at: Option<DateTime<Utc>>,
    /// Mean time to evaluate the rule, from a sample: each evaluation of the pack times one rule, round robin.
    pub average_execution_time_ms: f64,
}
