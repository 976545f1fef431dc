//! The injected clock, and the window durations rule and machine files use.
//!
//! Nothing in the engine reads the system clock directly: it asks a [`Clock`],
//! which is [`SystemClock`] in production and a [`ManualClock`] in tests and
//! in the simulator's virtual time.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (virtual time), with millisecond resolution.
///
/// ```
/// use creatorflow::{Clock, ManualClock};
/// use chrono::TimeDelta;
/// let clock = ManualClock::new("2025-03-01T12:00:00Z".parse().unwrap());
/// clock.advance(TimeDelta::minutes(90));
/// assert_eq!(clock.now().to_rfc3339(), "2025-03-01T13:30:00+00:00");
/// ```
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            millis: AtomicI64::new(start.timestamp_millis()),
        }
    }

    /// Sets the time.
    pub fn set(&self, t: DateTime<Utc>) {
        self.millis.store(t.timestamp_millis(), Ordering::SeqCst);
    }

    /// Moves the time forward (or back, for a negative delta).
    pub fn advance(&self, by: TimeDelta) {
        self.millis
            .fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

/// Parses a window or timeout duration: a positive integer followed by `s`,
/// `m`, `h` or `d` (`90m`, `1h`, `24h`, `7d`). `0h`, `-1h`, `1x` and `1.5h`
/// are refused.
///
/// ```
/// use creatorflow::parse_duration;
/// assert_eq!(parse_duration("90m").unwrap().num_minutes(), 90);
/// assert!(parse_duration("0h").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let bad = || {
        format!(
            "malformed duration `{text}`: expected a positive whole number followed by s, m, h or d (e.g. 90m, 1h, 24h, 7d)"
        )
    };
    // The unit is the last character, which may take several bytes
    // (splitting at `len - 1` panicked on `7é`: found by fuzzing).
    let (unit_at, _) = text.char_indices().next_back().ok_or_else(bad)?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .filter(|s| *s <= 366 * 86_400)
    .ok_or_else(|| {
        if "smhd".contains(unit) {
            format!("duration `{text}` is longer than a year")
        } else {
            bad()
        }
    })?;
    Ok(TimeDelta::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`fuzz/corpus/scenario/duration-multibyte-unit.yaml`).
    #[test]
    fn a_unit_of_several_bytes_is_malformed_not_a_panic() {
        for text in ["7é", "Ⱥ", "1h🕴", "é"] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.starts_with("malformed duration"), "{text}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), TimeDelta::hours(1));
        assert_eq!(parse_duration("24h").unwrap(), TimeDelta::hours(24));
        assert_eq!(parse_duration("7d").unwrap(), TimeDelta::days(7));
        assert_eq!(parse_duration("30s").unwrap(), TimeDelta::seconds(30));
        for bad in ["0h", "-1h", "1x", "1.5h", "h", "", " 1h", "1H", "400d"] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }
}
