//! Priority lanes: per-lane concurrency, step timeout and retry policy.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use crate::actions::{RetryPreset, RetrySpec};
use crate::model::Priority;
use crate::store::LaneLimit;

/// One lane's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneConfig {
    /// At most this many of the lane's steps in flight (per claim round of a worker).
    pub concurrency: usize,
    /// How long a step may take; also the lease of its work item.
    pub timeout: TimeDelta,
    /// The retry policy of actions that declare none.
    pub retry: RetrySpec,
}

impl LaneConfig {
    /// A lane with `concurrency`, `timeout` and a preset retry policy.
    pub fn new(concurrency: usize, timeout: TimeDelta, retry: RetryPreset) -> Self {
        LaneConfig {
            concurrency,
            timeout,
            retry: retry.spec(),
        }
    }
}

/// The four lanes. The defaults are `model.md`'s: high 50 / 30 s /
/// aggressive, urgent 30 / 60 s, standard 100 / 180 s, automated 200 / 15 s
/// / minimal.
#[derive(Debug, Clone, PartialEq)]
pub struct Lanes {
    lanes: BTreeMap<Priority, LaneConfig>,
}

impl Default for Lanes {
    fn default() -> Self {
        let lane = |concurrency, seconds, retry| {
            LaneConfig::new(concurrency, TimeDelta::seconds(seconds), retry)
        };
        let lanes = BTreeMap::from([
            (Priority::High, lane(50, 30, RetryPreset::Aggressive)),
            (Priority::Urgent, lane(30, 60, RetryPreset::Default)),
            (Priority::Standard, lane(100, 180, RetryPreset::Default)),
            (Priority::Automated, lane(200, 15, RetryPreset::Minimal)),
        ]);
        Lanes { lanes }
    }
}

impl Lanes {
    /// Replaces one lane's settings.
    pub fn set(&mut self, lane: Priority, config: LaneConfig) -> &mut Self {
        self.lanes.insert(lane, config);
        self
    }

    /// The same lanes with every lane's step timeout set to `timeout`
    /// (`worker --lease-ms`, tests with short leases). The claim lease
    /// follows: twice the longest timeout.
    pub fn with_timeout(mut self, timeout: TimeDelta) -> Self {
        for config in self.lanes.values_mut() {
            config.timeout = timeout;
        }
        self
    }

    /// One lane's settings.
    pub fn get(&self, lane: Priority) -> &LaneConfig {
        // Every priority has an entry: `Default` fills all four and `set` only replaces.
        &self.lanes[&lane]
    }

    /// Claim limits, most urgent lane first.
    pub fn limits(&self) -> Vec<LaneLimit> {
        self.lanes
            .iter()
            .map(|(lane, c)| LaneLimit {
                lane: *lane,
                limit: c.concurrency,
            })
            .collect()
    }

    /// The lease of a claim round: twice the longest lane timeout, so that
    /// after any first step the lease still outlasts one more step of any
    /// lane and an order's steps can chain (with one timeout's worth, the
    /// longest lane could never chain once time had moved). A worker that
    /// dies holding items gives them back when this lapses.
    pub fn lease(&self) -> TimeDelta {
        self.max_timeout() * 2
    }

    /// The longest lane timeout.
    pub fn max_timeout(&self) -> TimeDelta {
        self.lanes
            .values()
            .map(|c| c.timeout)
            .max()
            .unwrap_or(TimeDelta::seconds(60))
    }
}
