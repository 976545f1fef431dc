//! Circuit breakers, one per action type.
//!
//! A breaker is **closed** (calls pass) until `threshold` consecutive calls
//! fail with a retryable error or a timeout; it then **opens** for a
//! cool-down, refusing calls without making them. When the cool-down is over
//! it is **half-open**: one call (the probe) is let through and the others
//! refused; a successful probe closes the breaker, a failed one opens it for
//! another cool-down. Permanent errors (out of stock, a bad address) are the
//! service answering, so they count as successes here. Time is the caller's.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::spec::ActionType;

/// The state of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls pass; `failures` consecutive failures so far.
    Closed {
        /// Consecutive failures.
        failures: u32,
    },
    /// Calls are refused until `until`.
    Open {
        /// The end of the cool-down.
        until: DateTime<Utc>,
    },
    /// The cool-down is over and one probe call is in flight; other calls are refused.
    HalfOpen,
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState::Closed { failures: 0 }
    }
}

/// The answer to [`BreakerState::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Make the call.
    Allowed,
    /// Make the call: it is the half-open probe.
    Probe,
    /// Do not call; try again at this time.
    Refused {
        /// When a call may be tried again.
        retry_at: DateTime<Utc>,
    },
}

impl BreakerState {
    /// Asks to make a call at `now`; moves an open breaker whose cool-down
    /// is over to half-open (the caller's call is the probe). A refusal
    /// while half-open suggests `now + probe_wait`.
    pub(crate) fn admit(&mut self, now: DateTime<Utc>, probe_wait: TimeDelta) -> Admission {
        match *self {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::Open { until } if now >= until => {
                *self = BreakerState::HalfOpen;
                Admission::Probe
            }
            BreakerState::Open { until } => Admission::Refused { retry_at: until },
            BreakerState::HalfOpen => Admission::Refused {
                retry_at: now + probe_wait,
            },
        }
    }

    /// Records a call that succeeded (or failed permanently): closes the breaker.
    pub(crate) fn on_success(&mut self) {
        *self = BreakerState::Closed { failures: 0 };
    }

    /// Records a failed call at `now`: opens the breaker for `cooldown` after
    /// `threshold` consecutive failures, or at once after a failed probe.
    pub(crate) fn on_failure(&mut self, threshold: u32, cooldown: TimeDelta, now: DateTime<Utc>) {
        *self = match *self {
            BreakerState::Closed { failures } if failures + 1 < threshold.max(1) => {
                BreakerState::Closed {
                    failures: failures + 1,
                }
            }
            BreakerState::Open { until } => BreakerState::Open { until },
            _ => BreakerState::Open {
                until: now + cooldown,
            },
        };
    }

    /// Whether the breaker is open or half-open.
    pub fn is_open(&self) -> bool {
        !matches!(self, BreakerState::Closed { .. })
    }
}

/// The breakers of every action type, shared by the workers of an engine.
#[derive(Debug)]
pub struct CircuitBreakers {
    cooldown: TimeDelta,
    states: Mutex<crate::FastMap<ActionType, BreakerState>>,
    opened: std::sync::atomic::AtomicU64,
}

impl CircuitBreakers {
    /// Breakers that stay open for `cooldown`.
    pub fn new(cooldown: TimeDelta) -> Self {
        CircuitBreakers {
            cooldown,
            states: Mutex::new(crate::FastMap::default()),
            opened: Default::default(),
        }
    }

    /// The cool-down.
    pub fn cooldown(&self) -> TimeDelta {
        self.cooldown
    }

    fn with<R>(&self, kind: &ActionType, f: impl FnOnce(&mut BreakerState) -> R) -> R {
        let mut map = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = map.entry(kind.clone()).or_default();
        f(state)
    }

    /// Asks to call an action of type `kind` at `now`.
    pub(crate) fn admit(&self, kind: &ActionType, now: DateTime<Utc>) -> Admission {
        let wait = self.cooldown;
        self.with(kind, |s| s.admit(now, wait))
    }

    /// Records a success (or permanent error) of `kind`.
    pub(crate) fn on_success(&self, kind: &ActionType) {
        self.with(kind, BreakerState::on_success);
    }

    /// Records a failure of `kind` at `now` with its threshold; `true` if
    /// this opened the breaker.
    pub(crate) fn on_failure(&self, kind: &ActionType, threshold: u32, now: DateTime<Utc>) -> bool {
        let cooldown = self.cooldown;
        let opened = self.with(kind, |s| {
            let before = *s;
            s.on_failure(threshold, cooldown, now);
            matches!(s, BreakerState::Open { .. }) && !matches!(before, BreakerState::Open { .. })
        });
        if opened {
            self.opened
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        opened
    }

    /// The state of `kind`'s breaker.
    pub fn state(&self, kind: &ActionType) -> BreakerState {
        self.with(kind, |s| *s)
    }

    /// How many times any breaker opened (a failed probe re-opening counts).
    pub fn times_opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn opens_after_threshold_and_probes() {
        let b = CircuitBreakers::new(TimeDelta::seconds(30));
        let k = ActionType::GenerateShippingLabel;
        let now = t0();
        assert!(!b.on_failure(&k, 3, now));
        assert!(!b.on_failure(&k, 3, now));
        assert_eq!(b.admit(&k, now), Admission::Allowed);
        assert!(b.on_failure(&k, 3, now));
        let until = now + TimeDelta::seconds(30);
        assert_eq!(b.admit(&k, now), Admission::Refused { retry_at: until });
        // Cool-down over: one probe, others refused.
        assert_eq!(b.admit(&k, until), Admission::Probe);
        assert!(matches!(b.admit(&k, until), Admission::Refused { .. }));
        // A failed probe re-opens at once.
        assert!(b.on_failure(&k, 3, until));
        assert_eq!(
            b.state(&k),
            BreakerState::Open {
                until: until + TimeDelta::seconds(30)
            }
        );
        let later = until + TimeDelta::seconds(30);
        assert_eq!(b.admit(&k, later), Admission::Probe);
        b.on_success(&k);
        assert_eq!(b.admit(&k, later), Admission::Allowed);
        assert_eq!(b.times_opened(), 2);
        // Other types are unaffected.
        assert_eq!(
            b.state(&ActionType::CheckInventory),
            BreakerState::Closed { failures: 0 }
        );
    }

    #[derive(Debug, Clone)]
    enum Ev {
        Call(bool),
        Wait(i64),
    }

    proptest! {
        /// The breaker against a direct model: it is open exactly when the
        /// last `threshold` admitted calls failed since it last closed, a
        /// refused call is never made, and at most one probe runs at a time.
        #[test]
        fn breaker_state_machine(threshold in 1u32..6,
            events in proptest::collection::vec(prop_oneof![
                any::<bool>().prop_map(Ev::Call), (1i64..50).prop_map(Ev::Wait)], 1..80)) {
            let cooldown = TimeDelta::seconds(20);
            let mut s = BreakerState::default();
            let mut now = t0();
            let mut streak = 0u32;
            let mut open_until: Option<DateTime<Utc>> = None;
            for ev in events {
                match ev {
                    Ev::Wait(secs) => now += TimeDelta::seconds(secs),
                    Ev::Call(ok) => {
                        let a = s.admit(now, cooldown);
                        match open_until {
                            Some(u) if now < u => {
                                prop_assert_eq!(a, Admission::Refused { retry_at: u });
                                continue;
                            }
                            Some(_) => prop_assert_eq!(a, Admission::Probe),
                            None => prop_assert_eq!(a, Admission::Allowed),
                        }
                        if a == Admission::Probe {
                            // a second caller during the probe is refused
                            let mut copy = s;
                            let second = copy.admit(now, cooldown);
                            prop_assert!(matches!(second, Admission::Refused { .. }), "second probe admitted");
                        }
                        if ok {
                            s.on_success();
                            streak = 0;
                            open_until = None;
                        } else {
                            s.on_failure(threshold, cooldown, now);
                            streak += 1;
                            if open_until.is_some() || streak >= threshold {
                                open_until = Some(now + cooldown);
                            }
                        }
                    }
                }
                prop_assert_eq!(s.is_open(), open_until.is_some());
            }
        }
    }
}
