//! Bucketed sliding-window order counters: per product, per customer.
//!
//! A [`Velocity`] keeps, for one key, the orders and units of the last two
//! hours in one-minute buckets and of the last week in one-hour buckets, in
//! two ring buffers. Recording an order is O(1) amortised (moving the head
//! clears at most the buckets that time has passed, each once); a count over
//! a window reads at most 120 minute buckets plus 168 hour buckets, whatever
//! the order rate. Memory is fixed: [`Velocity::BYTES`] (2,320 bytes) per
//! tracked key, not a list of every order.
//!
//! # Resolution
//!
//! A window `w` at time `now` means the orders placed in `(now - w, now]`,
//! counted in whole buckets:
//!
//! - up to two hours, by the minute: the bucket of `now`'s minute and the
//!   `ceil(w / 1 min) - 1` before it (so "the last hour" covers between 59 and
//!   60 minutes of history);
//! - longer windows (up to [`Velocity::MAX_WINDOW`], a week), by the minute
//!   for the current and previous clock hour and by the hour before that,
//!   using only hour buckets that start inside the window (the window's oldest
//!   partial hour is left out).
//!
//! These rules make `count(25h) - count(1h)` exactly the orders in the 24
//! hours before the last hour, rounded to the clock hour.
//!
//! # Time
//!
//! Times are the caller's (the order's `created_at`, the evaluation time); no
//! clock is read. Orders may arrive out of order: an order older than the
//! newest one seen is added to its own bucket while that bucket is still held
//! (two hours for minutes, a week for hours) and is otherwise ignored.
//! Windows only move forward: a query at a time before the newest recorded
//! order is answered as of that order.
//!
//! ```
//! use chrono::{DateTime, TimeDelta, Utc};
//! use creatorflow::viral::Velocity;
//!
//! let t0: DateTime<Utc> = "2025-03-01T12:00:00Z".parse().unwrap();
//! let mut v = Velocity::new();
//! for i in 0..90 {
//!     v.record(t0 + TimeDelta::minutes(i), 2);
//! }
//! let now = t0 + TimeDelta::minutes(89);
//! assert_eq!(v.orders(now, TimeDelta::hours(1)), 60);
//! assert_eq!(v.units(now, TimeDelta::hours(1)), 120);
//! assert_eq!(v.orders(now, TimeDelta::days(7)), 90);
//! ```

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::fast::RandomState;

pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 3_600_000;
const MINUTES: usize = 120;
const HOURS: usize = 168;
const MINUTES_I: i64 = MINUTES as i64;
const HOURS_I: i64 = HOURS as i64;
/// The head before any order is recorded.
const EMPTY: i64 = i64::MIN;

/// Orders and units in one bucket (saturating: a bucket never wraps).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    orders: u32,
    units: u32,
}

impl Bucket {
    fn add(&mut self, units: u32) {
        self.orders = self.orders.saturating_add(1);
        self.units = self.units.saturating_add(units);
    }
}

/// A total over a window: orders and units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTotal {
    /// Orders placed in the window.
    pub orders: u64,
    /// Units (sum of quantities) of those orders.
    pub units: u64,
}

/// One key's order counts: minute buckets for two hours, hour buckets for a
/// week, in ring buffers (see the module docs of `viral/velocity.rs` for the resolution).
#[derive(Clone)]
pub struct Velocity {
    minutes: [Bucket; MINUTES],
    hours: [Bucket; HOURS],
    /// Absolute minute (minutes since the Unix epoch) of the newest bucket;
    /// [`EMPTY`] before the first order.
    head: i64,
    /// Orders in the 60 minute buckets ending at `head`, kept up to date so
    /// that "orders in the last hour" is O(1).
    last_hour: u32,
}

impl std::fmt::Debug for Velocity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Velocity")
            .field("head_minute", &self.head)
            .field(
                "orders_last_hour",
                &self.orders_ms(self.head * MINUTE_MS, HOUR_MS),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Velocity {
    fn default() -> Self {
        Velocity::new()
    }
}

impl Velocity {
    /// The longest window a query can span (longer ones are clamped to it).
    pub const MAX_WINDOW: TimeDelta = TimeDelta::days(7);
    /// Memory per tracked key: the whole state is inline, no heap.
    pub const BYTES: usize = std::mem::size_of::<Velocity>();

    /// An empty counter.
    pub fn new() -> Self {
        Velocity {
            minutes: [Bucket::default(); MINUTES],
            hours: [Bucket::default(); HOURS],
            head: EMPTY,
            last_hour: 0,
        }
    }

    /// Whether no order has been recorded yet.
    pub fn is_empty(&self) -> bool {
        self.head == EMPTY
    }

    /// The start of the minute of the newest recorded order.
    pub fn newest(&self) -> Option<DateTime<Utc>> {
        (!self.is_empty())
            .then(|| DateTime::from_timestamp_millis(self.head * MINUTE_MS))
            .flatten()
    }

    /// Records an order of `units` units placed at `at`. Returns `false` when
    /// the order is older than every bucket still held (more than a week
    /// behind the newest order) and was not counted.
    pub fn record(&mut self, at: DateTime<Utc>, units: u32) -> bool {
        self.record_ms(at.timestamp_millis(), units)
    }

    /// [`record`](Self::record) with a time in milliseconds since the epoch.
    pub fn record_ms(&mut self, at_ms: i64, units: u32) -> bool {
        let m = at_ms.div_euclid(MINUTE_MS);
        if self.head == EMPTY {
            self.head = m;
        } else if m > self.head {
            self.advance(m);
        }
        let h = m.div_euclid(60);
        if self.head.div_euclid(60) - h >= HOURS_I {
            return false;
        }
        self.hours[h.rem_euclid(HOURS_I) as usize].add(units);
        if self.head - m < MINUTES_I {
            self.minutes[m.rem_euclid(MINUTES_I) as usize].add(units);
            if self.head - m < 60 {
                self.last_hour = self.last_hour.saturating_add(1);
            }
        }
        true
    }

    /// Moves the head to minute `m` (> head), clearing the buckets passed.
    fn advance(&mut self, m: i64) {
        // Buckets leaving the last hour, read before any is cleared.
        if m - self.head >= 60 {
            self.last_hour = 0;
        } else {
            for old in (self.head - 59)..=(m - 60) {
                let b = self.minutes[old.rem_euclid(MINUTES_I) as usize].orders;
                self.last_hour = self.last_hour.saturating_sub(b);
            }
        }
        let steps = (m - self.head).min(MINUTES_I);
        for i in 0..steps {
            self.minutes[(m - i).rem_euclid(MINUTES_I) as usize] = Bucket::default();
        }
        let (h0, h1) = (self.head.div_euclid(60), m.div_euclid(60));
        let hsteps = (h1 - h0).min(HOURS_I);
        for i in 0..hsteps {
            self.hours[(h1 - i).rem_euclid(HOURS_I) as usize] = Bucket::default();
        }
        self.head = m;
    }

    /// Orders placed in the window `(now - window, now]`.
    pub fn orders(&self, now: DateTime<Utc>, window: TimeDelta) -> u64 {
        self.total(now, window).orders
    }

    /// Units (sum of quantities) ordered in the window `(now - window, now]`.
    pub fn units(&self, now: DateTime<Utc>, window: TimeDelta) -> u64 {
        self.total(now, window).units
    }

    /// Orders and units in the window `(now - window, now]`.
    pub fn total(&self, now: DateTime<Utc>, window: TimeDelta) -> WindowTotal {
        let w = window
            .num_milliseconds()
            .clamp(1, Self::MAX_WINDOW.num_milliseconds());
        self.total_ms(now.timestamp_millis(), w)
    }

    /// Orders in `(now - window, now]`, times in milliseconds.
    pub(crate) fn orders_ms(&self, now_ms: i64, window_ms: i64) -> u64 {
        if window_ms == HOUR_MS && self.head != EMPTY && now_ms.div_euclid(MINUTE_MS) <= self.head {
            return u64::from(self.last_hour);
        }
        self.total_ms(now_ms, window_ms).orders
    }

    /// Orders in the bucket of clock hour `hour` (hours since the epoch), or 0
    /// when that hour is no longer (or not yet) held.
    pub(crate) fn hour_orders(&self, hour: i64) -> u32 {
        let head_h = self.head.div_euclid(60);
        if self.head == EMPTY || hour > head_h || head_h - hour >= HOURS_I {
            return 0;
        }
        self.hours[hour.rem_euclid(HOURS_I) as usize].orders
    }

    pub(crate) fn total_ms(&self, now_ms: i64, window_ms: i64) -> WindowTotal {
        if self.head == EMPTY {
            return WindowTotal::default();
        }
        let now_m = now_ms.div_euclid(MINUTE_MS).max(self.head);
        let w_min = ((window_ms.max(1) + MINUTE_MS - 1) / MINUTE_MS).min(7 * 24 * 60);
        if w_min <= MINUTES_I {
            return sum_ring(&self.minutes, now_m - w_min + 1, now_m, self.head);
        }
        let now_h = now_m.div_euclid(60);
        let recent_from = (now_h - 1) * 60;
        let mut t = sum_ring(&self.minutes, recent_from, now_m, self.head);
        let start_m = now_m - w_min + 1;
        let first_h = start_m.div_euclid(60) + i64::from(start_m.rem_euclid(60) != 0);
        let old = sum_ring(&self.hours, first_h, now_h - 2, self.head.div_euclid(60));
        t.orders += old.orders;
        t.units += old.units;
        t
    }
}

/// Sums the buckets of absolute indices `[from, to]` that a ring of length
/// `N` whose newest index is `head` still holds.
fn sum_ring<const N: usize>(ring: &[Bucket; N], from: i64, to: i64, head: i64) -> WindowTotal {
    let n = N as i64;
    let from = from.max(head - n + 1);
    let to = to.min(head);
    if to < from {
        return WindowTotal::default();
    }
    let start = from.rem_euclid(n) as usize;
    let len = (to - from + 1) as usize;
    let (a, b) = if start + len <= N {
        (&ring[start..start + len], &ring[..0])
    } else {
        (&ring[start..], &ring[..start + len - N])
    };
    let (mut orders, mut units) = (0u64, 0u64);
    for x in a.iter().chain(b) {
        orders += u64::from(x.orders);
        units += u64::from(x.units);
    }
    WindowTotal { orders, units }
}

/// One [`Velocity`] per key (a product id, a customer handle).
///
/// Memory: [`KeyedVelocity::memory_bytes`] (about 2.4 KB per key, the
/// counter plus its key and map slot); [`evict_idle`](Self::evict_idle) drops
/// keys without recent orders.
#[derive(Debug, Default)]
pub struct KeyedVelocity {
    keys: HashMap<Box<str>, Box<Velocity>, RandomState>,
}

impl KeyedVelocity {
    /// No keys yet.
    pub fn new() -> Self {
        KeyedVelocity::default()
    }

    /// Records an order of `units` units of `key` placed at `at` (see
    /// [`Velocity::record`]).
    pub fn record(&mut self, key: &str, at: DateTime<Utc>, units: u32) -> bool {
        self.entry(key).record(at, units)
    }

    /// Rebuilds the counts from stored orders `(key, created_at, quantity)`,
    /// e.g. the last week's orders read from the store after a restart. The
    /// orders may come in any order; each is counted as [`record`](Self::record)
    /// would.
    pub fn restore<'a, I>(&mut self, orders: I)
    where
        I: IntoIterator<Item = (&'a str, DateTime<Utc>, u32)>,
    {
        for (key, at, units) in orders {
            self.record(key, at, units);
        }
    }

    /// `key`'s counter, created empty if missing.
    pub fn entry(&mut self, key: &str) -> &mut Velocity {
        if !self.keys.contains_key(key) {
            self.keys.insert(key.into(), Box::default());
        }
        match self.keys.get_mut(key) {
            Some(v) => v,
            None => unreachable!("inserted above"),
        }
    }

    /// `key`'s counter, if it has one.
    pub fn get(&self, key: &str) -> Option<&Velocity> {
        self.keys.get(key).map(|v| &**v)
    }

    /// Orders of `key` in `(now - window, now]` (0 for an unknown key).
    pub fn orders(&self, key: &str, now: DateTime<Utc>, window: TimeDelta) -> u64 {
        self.get(key).map_or(0, |v| v.orders(now, window))
    }

    /// Units of `key` in `(now - window, now]` (0 for an unknown key).
    pub fn units(&self, key: &str, now: DateTime<Utc>, window: TimeDelta) -> u64 {
        self.get(key).map_or(0, |v| v.units(now, window))
    }

    /// Drops the keys whose newest order is older than `now - idle`; returns
    /// how many were dropped.
    pub fn evict_idle(&mut self, now: DateTime<Utc>, idle: TimeDelta) -> usize {
        let before = self.keys.len();
        let cutoff = now - idle;
        self.keys.retain(|_, v| {
            v.newest()
                .is_some_and(|t| t + TimeDelta::minutes(1) > cutoff)
        });
        before - self.keys.len()
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Approximate memory held: per key, the counter, the key's bytes and the
    /// map slot; plus the map's spare capacity.
    pub fn memory_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(Box<str>, Box<Velocity>)>() + 1;
        self.keys.capacity() * slot
            + self
                .keys
                .keys()
                .map(|k| k.len() + Velocity::BYTES)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Exact count of `times` in `(now - w, now]` at minute resolution, the
    /// way the buckets count them (for windows up to two hours).
    fn exact_minutes(times: &[DateTime<Utc>], now: DateTime<Utc>, w_min: i64) -> u64 {
        let now_m = now.timestamp_millis().div_euclid(MINUTE_MS);
        times
            .iter()
            .filter(|x| {
                let m = x.timestamp_millis().div_euclid(MINUTE_MS);
                m <= now_m && m > now_m - w_min
            })
            .count() as u64
    }

    #[test]
    fn minute_window_boundaries() {
        let mut v = Velocity::new();
        let t0 = t("2025-03-01T12:00:00Z");
        v.record(t0, 1); // minute 12:00
        v.record(t0 + TimeDelta::seconds(59), 1); // still 12:00
        v.record(t0 + TimeDelta::seconds(60), 3); // 12:01
        let now = t0 + TimeDelta::seconds(60);
        assert_eq!(v.orders(now, TimeDelta::minutes(1)), 1);
        assert_eq!(v.units(now, TimeDelta::minutes(1)), 3);
        assert_eq!(v.orders(now, TimeDelta::minutes(2)), 3);
        // A window of 61 s needs two minute buckets.
        assert_eq!(v.orders(now, TimeDelta::seconds(61)), 3);
        // 60 minutes later the 12:00 bucket has left a one-hour window, 12:01 not yet.
        let later = t0 + TimeDelta::minutes(60);
        assert_eq!(v.orders(later, TimeDelta::hours(1)), 1);
        assert_eq!(
            v.orders(later + TimeDelta::minutes(1), TimeDelta::hours(1)),
            0
        );
        // ... but stays in the two-hour and longer windows.
        assert_eq!(v.orders(later, TimeDelta::hours(2)), 3);
        assert_eq!(v.orders(later, TimeDelta::hours(3)), 3);
    }

    #[test]
    fn decay_over_a_week() {
        let mut v = Velocity::new();
        let t0 = t("2025-03-01T00:00:00Z");
        v.record(t0, 1);
        for (after, w, expect) in [
            (TimeDelta::hours(1), TimeDelta::hours(1), 0),
            (TimeDelta::hours(1), TimeDelta::hours(2), 1),
            (TimeDelta::hours(30), TimeDelta::hours(24), 0),
            (TimeDelta::hours(30), TimeDelta::hours(31), 1),
            (
                TimeDelta::days(7) - TimeDelta::hours(1),
                TimeDelta::days(7),
                1,
            ),
            (TimeDelta::days(7), TimeDelta::days(7), 0),
            (TimeDelta::days(30), TimeDelta::days(7), 0),
        ] {
            assert_eq!(v.orders(t0 + after, w), expect, "{after} {w}");
        }
        // Moving the head a month on clears every bucket.
        v.record(t0 + TimeDelta::days(30), 1);
        assert_eq!(v.orders(t0 + TimeDelta::days(30), TimeDelta::days(7)), 1);
        assert_eq!(v.hours.iter().map(|b| b.orders).sum::<u32>(), 1);
        assert_eq!(v.minutes.iter().map(|b| b.orders).sum::<u32>(), 1);
    }

    #[test]
    fn long_windows_split_at_the_hour() {
        let mut v = Velocity::new();
        let t0 = t("2025-03-01T00:30:00Z");
        // One order every 10 minutes for 30 hours: 6 per clock hour.
        let times: Vec<_> = (0..180).map(|i| t0 + TimeDelta::minutes(10 * i)).collect();
        for x in &times {
            v.record(*x, 1);
        }
        let now = *times.last().unwrap(); // 2025-03-02T06:20
        // 25h - 1h = the 24 clock hours before the last hour, rounded to hours.
        let d = v.orders(now, TimeDelta::hours(25)) - v.orders(now, TimeDelta::hours(1));
        let from = t("2025-03-01T06:00:00Z");
        let to = now - TimeDelta::hours(1);
        let exact = times.iter().filter(|x| **x >= from && **x <= to).count() as u64;
        assert_eq!(d, exact);
        assert_eq!(v.orders(now, TimeDelta::days(7)), 180);
    }

    #[test]
    fn random_streams_match_an_exact_count() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(7);
        let t0 = t("2025-03-01T00:00:00Z");
        let mut v = Velocity::new();
        let mut times = Vec::new();
        let mut now = t0;
        for _ in 0..5_000 {
            now += TimeDelta::seconds(rng.random_range(0..90));
            // Some orders arrive up to 20 minutes late.
            let at = if rng.random_bool(0.1) {
                now - TimeDelta::seconds(rng.random_range(0..1200))
            } else {
                now
            };
            v.record(at, 1);
            times.push(at);
            assert_eq!(
                v.orders_ms(now.timestamp_millis(), HOUR_MS),
                exact_minutes(&times, now, 60),
                "running last-hour count at {now}"
            );
            let w = rng.random_range(1..=120);
            assert_eq!(
                v.orders(now, TimeDelta::minutes(w)),
                exact_minutes(&times, now, w),
                "window {w} min at {now}"
            );
        }
    }

    #[test]
    fn late_orders_and_queries_in_the_past() {
        let mut v = Velocity::new();
        let t0 = t("2025-03-01T12:00:00Z");
        v.record(t0, 1);
        assert!(
            v.record(t0 - TimeDelta::minutes(90), 1),
            "kept in minute buckets"
        );
        assert!(
            v.record(t0 - TimeDelta::hours(5), 1),
            "kept in an hour bucket"
        );
        assert!(!v.record(t0 - TimeDelta::days(8), 1), "older than a week");
        assert_eq!(v.orders(t0, TimeDelta::hours(2)), 2);
        assert_eq!(v.orders(t0, TimeDelta::hours(6)), 3);
        // A query before the newest order is answered as of the newest order.
        assert_eq!(v.orders(t0 - TimeDelta::hours(3), TimeDelta::hours(2)), 2);
    }

    #[test]
    fn saturates_instead_of_wrapping() {
        let mut v = Velocity::new();
        let t0 = t("2025-03-01T12:00:00Z");
        v.record(t0, u32::MAX);
        v.record(t0, 5);
        assert_eq!(v.units(t0, TimeDelta::minutes(1)), u64::from(u32::MAX));
        assert_eq!(v.orders(t0, TimeDelta::minutes(1)), 2);
    }

    #[test]
    fn keyed_restore_and_eviction() {
        let t0 = t("2025-03-01T12:00:00Z");
        let history: Vec<(String, DateTime<Utc>, u32)> = (0..100)
            .map(|i| (format!("p{}", i % 3), t0 + TimeDelta::minutes(i), 2))
            .collect();
        let mut live = KeyedVelocity::new();
        for (k, at, q) in &history {
            live.record(k, *at, *q);
        }
        // Restored from the store in another order: the same counts.
        let mut restored = KeyedVelocity::new();
        restored.restore(history.iter().rev().map(|(k, at, q)| (k.as_str(), *at, *q)));
        let now = t0 + TimeDelta::minutes(99);
        for k in ["p0", "p1", "p2", "nope"] {
            for w in [1, 15, 60, 120, 600] {
                let w = TimeDelta::minutes(w);
                assert_eq!(
                    live.orders(k, now, w),
                    restored.orders(k, now, w),
                    "{k} {w}"
                );
                assert_eq!(live.units(k, now, w), restored.units(k, now, w), "{k} {w}");
            }
        }
        assert_eq!(restored.orders("p0", now, TimeDelta::hours(2)), 34);
        assert_eq!(restored.units("p0", now, TimeDelta::hours(2)), 68);
        assert_eq!(restored.len(), 3);
        assert!(restored.memory_bytes() >= 3 * Velocity::BYTES);
        restored.record("p3", now + TimeDelta::days(2), 1);
        assert_eq!(
            restored.evict_idle(now + TimeDelta::days(2), TimeDelta::days(1)),
            3
        );
        assert_eq!(restored.len(), 1);
    }

    #[test]
    fn memory_is_fixed() {
        assert_eq!(Velocity::BYTES, 120 * 8 + 168 * 8 + 16);
    }
}
