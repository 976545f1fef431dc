//! Per-rule statistics (the plan's `execution_count`, `success_count`,
//! `last_executed_at`, `average_execution_time_ms`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// An evaluation time as one integer ordered as the times are (seconds,
/// then nanoseconds: a leap second's too), so that keeping the latest is one
/// comparison; [`Stamp::NONE`] is before every time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(i128);

impl Stamp {
    /// No time.
    pub(crate) const NONE: Stamp = Stamp(i128::MIN);

    /// `t`'s stamp.
    #[inline]
    pub(crate) fn of(t: DateTime<Utc>) -> Stamp {
        Stamp((i128::from(t.timestamp()) << 32) | i128::from(t.timestamp_subsec_nanos()))
    }

    /// The time back (`None` for [`Stamp::NONE`]).
    fn time(self) -> Option<DateTime<Utc>> {
        if self == Stamp::NONE {
            return None;
        }
        let secs = i64::try_from(self.0 >> 32).ok()?;
        DateTime::from_timestamp(secs, (self.0 & 0xffff_ffff) as u32)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct StatsAcc {
    successes: u64,
    errors: u64,
    last: Stamp,
    sampled_nanos: u128,
    samples: u64,
}

impl Default for StatsAcc {
    fn default() -> Self {
        StatsAcc {
            successes: 0,
            errors: 0,
            last: Stamp::NONE,
            sampled_nanos: 0,
            samples: 0,
        }
    }
}

impl StatsAcc {
    #[inline(always)]
    pub(crate) fn success(&mut self, t: Stamp) {
        self.successes += 1;
        self.last = self.last.max(t);
    }

    pub(crate) fn error(&mut self, t: Stamp) {
        self.errors += 1;
        self.last = self.last.max(t);
    }

    pub(crate) fn sample(&mut self, d: Duration) {
        self.sampled_nanos += d.as_nanos();
        self.samples += 1;
    }

    pub(crate) fn snapshot(&self, id: &str) -> RuleStats {
        RuleStats {
            rule: id.to_owned(),
            execution_count: self.successes + self.errors,
            success_count: self.successes,
            last_executed_at: self.last.time(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_order_as_times_and_round_trip() {
        let times = [
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00Z",
            "2025-03-01T12:00:00Z",
            "2025-03-01T12:00:00.000000001Z",
            "2025-03-01T12:00:00.5Z",
            "2025-03-01T12:00:01Z",
        ];
        let times: Vec<DateTime<Utc>> = times
            .iter()
            .map(|t| DateTime::parse_from_rfc3339(t).unwrap().to_utc())
            .collect();
        for w in times.windows(2) {
            assert!(Stamp::of(w[0]) < Stamp::of(w[1]), "{} < {}", w[0], w[1]);
        }
        for t in &times {
            assert!(Stamp::NONE < Stamp::of(*t));
            assert_eq!(Stamp::of(*t).time(), Some(*t));
        }
        assert_eq!(Stamp::NONE.time(), None);
        let mut acc = StatsAcc::default();
        acc.success(Stamp::of(times[4]));
        acc.error(Stamp::of(times[2]));
        let s = acc.snapshot("r");
        assert_eq!((s.execution_count, s.success_count), (2, 1));
        assert_eq!(s.last_executed_at, Some(times[4]));
    }
}
