//! The `tiktok_order_id`s this engine has seen stored, so that a duplicate
//! delivery is not enriched and evaluated again.
//!
//! TikTok delivers at least once, and a host may hand the engine the same
//! order twice. The store's idempotent create makes the second a no-op, but
//! the viral enricher and the rules' window facts run before the store is
//! asked: without this set a duplicate would count twice in a product's
//! velocity and in the window facts. Ids enter the set only once the store
//! has confirmed the order (new or already there), so skipping enrichment
//! for them never stores an order unevaluated. The set only saves reads:
//! an id not in it is looked up in the store before the order is enriched
//! (`Engine::ingest_many`, `Engine::recall`). Bounded: the oldest ids are forgotten past
//! [`KnownOrders::CAPACITY`] (a duplicate that late costs that read), so a
//! long-running `serve` holds a few megabytes, not an id per order ever
//! received.

use std::collections::VecDeque;

use compact_str::CompactString;

/// A bounded set of `tiktok_order_id`s, oldest evicted first.
#[derive(Debug, Default)]
pub(super) struct KnownOrders {
    ids: foldhash::HashSet<CompactString>,
    order: VecDeque<CompactString>,
    /// Whether an id was ever forgotten.
    forgot: bool,
}

impl KnownOrders {
    /// How many ids are remembered.
    /// (About 4 minutes of orders at 200/s, days of a creator's orders;
    /// about 4 MB.)
    pub const CAPACITY: usize = 50_000;

    /// Whether `id` was stored.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Whether every id remembered was kept (none forgotten).
    pub fn complete(&self) -> bool {
        !self.forgot
    }

    /// Remembers `id` as stored.
    pub fn insert(&mut self, id: &str) {
        let id = CompactString::from(id);
        if self.ids.insert(id.clone()) {
            self.order.push_back(id);
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.ids.remove(&old);
                self.forgot = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_evicts_the_oldest() {
        let mut k = KnownOrders::default();
        k.insert("a");
        k.insert("a");
        assert!(k.contains("a") && !k.contains("b"));
        for i in 0..KnownOrders::CAPACITY - 1 {
            k.insert(&format!("x{i}"));
        }
        assert!(
            k.complete() && k.contains("a"),
            "full, nothing forgotten yet"
        );
        k.insert(&format!("x{}", KnownOrders::CAPACITY - 1));
        assert!(!k.complete(), "an id was forgotten");
        assert!(!k.contains("a"), "the oldest is forgotten");
        assert!(k.contains("x0") && k.contains(&format!("x{}", KnownOrders::CAPACITY - 1)));
    }
}
