//! Window facts: exact counts over `(created_at - window, created_at]`.
//!
//! Per key (a product or a customer), the orders ingested so far are kept
//! sorted by `created_at` with running unit totals, so a count or a unit sum
//! over any window is two binary searches. Orders arrive almost in time
//! order, so an insert is an append (an out-of-order one shifts only the few
//! newer entries). Entries older than the longest window of their kind
//! (per product, per customer) plus a lateness allowance, measured from the
//! newest `created_at` seen, are dropped, which bounds memory; an order arriving later than that allowance
//! sees counts without the dropped entries.

use std::collections::{HashMap, VecDeque};

use foldhash::fast::RandomState;

/// How many of the sorted `ts` are `<= hi`: all of them, most often (`hi`
/// is the newest time), found without a search.
#[inline]
fn upto(ts: &VecDeque<i64>, hi: i64) -> usize {
    if ts.back().is_none_or(|last| *last <= hi) {
        ts.len()
    } else {
        ts.partition_point(|t| *t <= hi)
    }
}

/// One key's orders, sorted by time.
#[derive(Debug, Default)]
pub(crate) struct Series {
    ts: VecDeque<i64>,
    /// Cumulative units up to and including each entry (absolute, pruning
    /// does not rebase); empty when the windows count orders only.
    cum: VecDeque<u64>,
    /// Cumulative units of the entries pruned so far.
    base: u64,
}

impl Series {
    /// Inserts an order of `ts` without its units (windows counting orders).
    fn insert_count(&mut self, ts: i64) {
        if self.ts.back().is_none_or(|last| *last <= ts) {
            self.ts.push_back(ts);
        } else {
            let at = self.ts.partition_point(|t| *t <= ts);
            self.ts.insert(at, ts);
        }
    }

    fn insert(&mut self, ts: i64, units: u64) {
        if self.ts.back().is_none_or(|last| *last <= ts) {
            let before = self.cum.back().copied().unwrap_or(self.base);
            self.ts.push_back(ts);
            self.cum.push_back(before + units);
            return;
        }
        let at = self.ts.partition_point(|t| *t <= ts);
        let before = if at == 0 { self.base } else { self.cum[at - 1] };
        self.ts.insert(at, ts);
        self.cum.insert(at, before + units);
        for c in self.cum.iter_mut().skip(at + 1) {
            *c += units;
        }
    }

    fn cum_before(&self, idx: usize) -> u64 {
        if idx == 0 {
            self.base
        } else {
            self.cum[idx - 1]
        }
    }

    /// (count, units) of entries with `lo < ts <= hi`.
    pub(crate) fn range(&self, lo: i64, hi: i64) -> (u64, u64) {
        let a = self.ts.partition_point(|t| *t <= lo);
        let b = upto(&self.ts, hi);
        if b <= a {
            return (0, 0);
        }
        if self.cum.is_empty() {
            return ((b - a) as u64, 0);
        }
        ((b - a) as u64, self.cum_before(b) - self.cum_before(a))
    }

    fn prune(&mut self, cutoff: i64) {
        while self.ts.front().is_some_and(|t| *t <= cutoff) {
            self.ts.pop_front();
            if let Some(c) = self.cum.pop_front() {
                self.base = c;
            }
        }
    }
}

/// Sliding windows for one kind of key.
#[derive(Debug, Default)]
pub(crate) struct KeyedWindows {
    series: HashMap<Box<str>, Series, RandomState>,
    since_sweep: usize,
    /// Orders are counted, their units not kept (half the memory).
    counts_only: bool,
}

impl KeyedWindows {
    /// Windows that count orders only: [`Series::range`] answers 0 units.
    pub(crate) fn counts_only() -> KeyedWindows {
        KeyedWindows {
            counts_only: true,
            ..KeyedWindows::default()
        }
    }

    /// Records one order, then drops `key`'s entries at or before `cutoff`;
    /// now and then, sweeps all keys. One hash lookup.
    pub(crate) fn insert_and_prune(&mut self, key: &str, ts: i64, units: u64, cutoff: i64) {
        let counts_only = self.counts_only;
        let add = |s: &mut Series| match counts_only {
            true => s.insert_count(ts),
            false => s.insert(ts, units),
        };
        match self.series.get_mut(key) {
            Some(s) => {
                add(s);
                s.prune(cutoff);
            }
            None => {
                let mut s = Series::default();
                add(&mut s);
                self.series.insert(key.into(), s);
            }
        }
        // Sweep keys that stopped receiving orders; spacing the sweeps by the
        // number of keys keeps the cost O(1) per insert.
        self.since_sweep += 1;
        if self.since_sweep >= self.series.len().max(4096) {
            self.since_sweep = 0;
            self.series.retain(|_, s| {
                s.prune(cutoff);
                !s.ts.is_empty()
            });
        }
    }

    /// The series of `key`, if it has one.
    pub(crate) fn get(&self, key: &str) -> Option<&Series> {
        self.series.get(key)
    }

    /// Entries held, over all keys.
    pub(crate) fn len(&self) -> usize {
        self.series.values().map(|s| s.ts.len()).sum()
    }
}

/// A sorted log of times (a rule's firings, for its rate limit).
#[derive(Debug, Default, Clone)]
pub(crate) struct TimeLog {
    ts: VecDeque<i64>,
}

impl TimeLog {
    pub(crate) fn insert(&mut self, t: i64) {
        let at = self.ts.partition_point(|x| *x <= t);
        self.ts.insert(at, t);
    }

    /// Entries with `lo < t <= hi`.
    pub(crate) fn count(&self, lo: i64, hi: i64) -> usize {
        let a = self.ts.partition_point(|x| *x <= lo);
        let b = upto(&self.ts, hi);
        b.saturating_sub(a)
    }

    pub(crate) fn prune(&mut self, cutoff: i64) {
        while self.ts.front().is_some_and(|t| *t <= cutoff) {
            self.ts.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl KeyedWindows {
        fn range(&self, key: &str, lo: i64, hi: i64) -> (u64, u64) {
            self.get(key).map_or((0, 0), |s| s.range(lo, hi))
        }
    }

    #[test]
    fn half_open_ranges_with_units() {
        let mut w = KeyedWindows::default();
        for (ts, u) in [(10, 1), (20, 2), (30, 3), (15, 4)] {
            w.insert_and_prune("p", ts, u, i64::MIN);
        }
        assert_eq!(w.range("p", 10, 30), (3, 9)); // 15, 20, 30
        assert_eq!(w.range("p", 0, 10), (1, 1));
        assert_eq!(w.range("p", 30, 40), (0, 0));
        assert_eq!(w.range("q", 0, 40), (0, 0));
        w.insert_and_prune("p", 40, 1, 15);
        assert_eq!(w.range("p", 0, 40), (3, 6));
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn counts_only_windows_count_in_and_out_of_order() {
        let mut w = KeyedWindows::counts_only();
        for ts in [10, 20, 30, 15] {
            w.insert_and_prune("c", ts, 7, i64::MIN);
        }
        assert_eq!(w.range("c", 10, 30), (3, 0)); // 15, 20, 30; no units kept
        assert_eq!(w.range("c", 0, 10), (1, 0));
        w.insert_and_prune("c", 40, 7, 15);
        assert_eq!(w.range("c", 0, 40), (3, 0));
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn time_log_counts_half_open() {
        let mut l = TimeLog::default();
        for t in [5, 1, 3, 3] {
            l.insert(t);
        }
        assert_eq!(l.count(1, 3), 2);
        assert_eq!(l.count(0, 5), 4);
        l.prune(3);
        assert_eq!(l.count(0, 5), 1);
    }
}
