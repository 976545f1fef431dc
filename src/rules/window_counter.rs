//! A per-key event counter over sliding time ranges, for the viral detectors.

use super::window::KeyedWindows;

/// Counts events per key over half-open ranges `(lo, hi]`, keeping a bounded history.
#[derive(Debug, Default)]
pub struct KeyedCounter {
    inner: KeyedWindows,
    newest: i64,
}

impl KeyedCounter {
    /// Records an event of `key` at `ts` (ms); history older than `retention_ms`
    /// behind the newest event is dropped.
    pub fn insert(&mut self, key: &str, ts: i64, retention_ms: i64) {
        self.newest = self.newest.max(ts);
        self.inner
            .insert_and_prune(key, ts, 1, self.newest - retention_ms);
    }

    /// Events of `key` with `lo < ts <= hi`.
    pub fn count(&self, key: &str, lo: i64, hi: i64) -> u64 {
        self.inner.range(key, lo, hi).0
    }
}
