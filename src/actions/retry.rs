//! Retry policy: delays between attempts, and the lanes' preset policies.

use std::time::Duration;

use rand::Rng;

use super::spec::{BackoffStrategy, RetrySpec};

/// The delay before retrying after failed attempt number `attempt` (1 for
/// the first attempt), without jitter: `initial · 2^(attempt-1)`
/// (exponential), `initial · attempt` (linear) or `initial` (fixed), capped
/// at `max_delay_ms`. Never decreases as `attempt` grows.
pub(crate) fn base_delay(spec: &RetrySpec, attempt: u32) -> Duration {
    let n = u64::from(attempt.max(1));
    let initial = spec.initial_delay_ms;
    let raw = match spec.backoff_strategy {
        BackoffStrategy::Exponential => {
            let shift = (n - 1).min(63) as u32;
            initial.saturating_mul(1u64.checked_shl(shift).unwrap_or(u64::MAX))
        }
        BackoffStrategy::Linear => initial.saturating_mul(n),
        BackoffStrategy::Fixed => initial,
    };
    Duration::from_millis(raw.min(spec.max_delay_ms.max(initial)))
}

/// The delay before retrying after failed attempt `attempt`, with "equal
/// jitter": a uniformly random point in `[base/2, base]` where `base` is
/// `initial · 2^(attempt-1)` (exponential), `initial · attempt` (linear) or
/// `initial` (fixed), capped at `max_delay_ms`. So the delay never exceeds
/// `max_delay_ms`, and retries of
/// many orders failing together spread out instead of arriving in step.
///
/// ```
/// use rand::{SeedableRng, rngs::StdRng};
/// use creatorflow::actions::{backoff_delay, RetrySpec, BackoffStrategy};
/// let spec = RetrySpec { max_attempts: 5, backoff_strategy: BackoffStrategy::Exponential,
///     initial_delay_ms: 100, max_delay_ms: 1_000, retry_conditions: vec![],
///     circuit_breaker_threshold: None };
/// let mut rng = StdRng::seed_from_u64(7);
/// let d = backoff_delay(&spec, 3, &mut rng).as_millis();
/// assert!((200..=400).contains(&d));
/// assert!(backoff_delay(&spec, 30, &mut rng).as_millis() <= 1_000);
/// ```
pub fn backoff_delay(spec: &RetrySpec, attempt: u32, rng: &mut impl Rng) -> Duration {
    let base = base_delay(spec, attempt).as_millis() as u64;
    let half = base / 2;
    let extra = if base > half {
        rng.random_range(0..=base - half)
    } else {
        0
    };
    Duration::from_millis(half + extra)
}

/// Whether an error of kind `error_kind` may be retried under `spec`: every
/// kind when `retry_conditions` is empty, else only the listed ones.
pub(crate) fn retry_allowed(spec: &RetrySpec, error_kind: &str) -> bool {
    spec.retry_conditions.is_empty() || spec.retry_conditions.iter().any(|c| c == error_kind)
}

/// The named retry policies lanes use (`model.md`: aggressive, default, minimal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPreset {
    /// 5 attempts, exponential from 50 ms to 2 s, breaker after 10 failures (the `high` lane).
    Aggressive,
    /// 3 attempts, exponential from 100 ms to 10 s, breaker after 5 failures.
    Default,
    /// 2 attempts, 100 ms fixed, breaker after 5 failures (the `automated` lane).
    Minimal,
}

impl RetryPreset {
    /// The policy.
    pub fn spec(self) -> RetrySpec {
        let (max_attempts, backoff_strategy, initial_delay_ms, max_delay_ms, threshold) = match self
        {
            RetryPreset::Aggressive => (5, BackoffStrategy::Exponential, 50, 2_000, 10),
            RetryPreset::Default => (3, BackoffStrategy::Exponential, 100, 10_000, 5),
            RetryPreset::Minimal => (2, BackoffStrategy::Fixed, 100, 100, 5),
        };
        RetrySpec {
            max_attempts,
            backoff_strategy,
            initial_delay_ms,
            max_delay_ms,
            retry_conditions: Vec::new(),
            circuit_breaker_threshold: Some(threshold),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn strategy() -> impl Strategy<Value = BackoffStrategy> {
        prop_oneof![
            Just(BackoffStrategy::Exponential),
            Just(BackoffStrategy::Linear),
            Just(BackoffStrategy::Fixed),
        ]
    }

    fn spec(s: BackoffStrategy, initial: u64, max: u64) -> RetrySpec {
        RetrySpec {
            max_attempts: 10,
            backoff_strategy: s,
            initial_delay_ms: initial,
            max_delay_ms: max,
            retry_conditions: vec![],
            circuit_breaker_threshold: None,
        }
    }

    #[test]
    fn strategies() {
        let e = spec(BackoffStrategy::Exponential, 100, 1_000);
        let got: Vec<u128> = (1..=6).map(|a| base_delay(&e, a).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1_000, 1_000]);
        let l = spec(BackoffStrategy::Linear, 100, 350);
        let got: Vec<u128> = (1..=5).map(|a| base_delay(&l, a).as_millis()).collect();
        assert_eq!(got, [100, 200, 300, 350, 350]);
        let f = spec(BackoffStrategy::Fixed, 70, 1_000);
        assert!((1..=5).all(|a| base_delay(&f, a).as_millis() == 70));
        assert_eq!(base_delay(&e, u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn conditions() {
        let mut s = spec(BackoffStrategy::Fixed, 1, 1);
        assert!(retry_allowed(&s, "anything"));
        s.retry_conditions = vec!["timeout".into()];
        assert!(retry_allowed(&s, "timeout"));
        assert!(!retry_allowed(&s, "carrier_unavailable"));
    }

    proptest! {
        #[test]
        fn jittered_delay_is_bounded(s in strategy(), initial in 0u64..10_000, extra in 0u64..100_000,
                                      attempt in 1u32..200, seed: u64) {
            let sp = spec(s, initial, initial + extra);
            let mut rng = StdRng::seed_from_u64(seed);
            let d = backoff_delay(&sp, attempt, &mut rng).as_millis() as u64;
            let base = base_delay(&sp, attempt).as_millis() as u64;
            prop_assert!(d <= sp.max_delay_ms);
            prop_assert!(d <= base && d >= base / 2);
        }

        #[test]
        fn base_delay_is_monotone(s in strategy(), initial in 0u64..10_000, extra in 0u64..100_000,
                                  attempt in 1u32..10_000) {
            let sp = spec(s, initial, initial + extra);
            prop_assert!(base_delay(&sp, attempt) <= base_delay(&sp, attempt + 1));
            prop_assert!(base_delay(&sp, attempt).as_millis() as u64 >= initial.min(sp.max_delay_ms));
        }
    }
}
