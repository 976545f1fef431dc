//! A map that remembers only its most recently inserted keys.
//!
//! The simulated inventory and carrier keep a record per order (a
//! reservation, a label) so that a retried call is idempotent and a
//! rollback finds what to undo. Nothing tells them when an order no longer
//! needs it (a shipped order is never released or voided), so in a
//! long-running `serve` or `worker` with simulated effects the records
//! would grow with every order. [`Recent`] keeps the newest
//! [`Recent::CAPACITY`] keys and forgets the oldest: undoing the effect of
//! an order that many orders old finds nothing, as for an order never seen.

use std::collections::VecDeque;

use crate::FastMap as HashMap;

/// A bounded map from order keys to `V`, the oldest insertion evicted first.
#[derive(Debug)]
pub(super) struct Recent<V> {
    /// Each key's value and the insertion it came from.
    map: HashMap<String, (u64, V)>,
    /// Insertions, oldest first (an entry whose key was removed or inserted
    /// again since is stale and skipped on eviction).
    order: VecDeque<(u64, String)>,
    next: u64,
    capacity: usize,
}

impl<V> Default for Recent<V> {
    fn default() -> Self {
        Recent::with_capacity(Self::CAPACITY)
    }
}

impl<V> Recent<V> {
    /// How many keys are remembered by default: more than the orders of a
    /// simulated day, a few minutes of a `serve` at hundreds of orders/s.
    pub const CAPACITY: usize = 20_000;

    /// An empty map remembering at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> Self {
        Recent {
            map: HashMap::default(),
            order: VecDeque::new(),
            next: 0,
            capacity: capacity.max(1),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// How many keys have a value.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Sets the value of `key` (a newest insertion), evicting the oldest
    /// key past the capacity.
    pub fn insert(&mut self, key: String, value: V) {
        let at = self.next;
        self.next += 1;
        self.order.push_back((at, key.clone()));
        self.map.insert(key, (at, value));
        while self.map.len() > self.capacity {
            let Some((at, key)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&key).is_some_and(|(a, _)| *a == at) {
                self.map.remove(&key);
            }
        }
        // Stale entries (removed or re-inserted keys) are dropped once they
        // outnumber the live ones, so the queue stays within twice the map.
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order
                .retain(|(at, key)| map.get(key).is_some_and(|(a, _)| a == at));
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.map.remove(key).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_keys_and_evicts_the_oldest() {
        let mut r = Recent::with_capacity(3);
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            r.insert(k.to_owned(), i);
        }
        assert_eq!(r.len(), 3);
        assert!(!r.contains_key("a"));
        assert_eq!(r.get("d"), Some(&3));
    }

    #[test]
    fn a_key_inserted_again_counts_from_its_newest_insertion() {
        let mut r = Recent::with_capacity(2);
        r.insert("a".to_owned(), 1);
        r.insert("b".to_owned(), 2);
        r.insert("a".to_owned(), 3);
        r.insert("c".to_owned(), 4);
        // `b` was the oldest live insertion; `a`'s first one was stale.
        assert_eq!(r.get("a"), Some(&3));
        assert!(!r.contains_key("b"));
        assert_eq!(r.get("c"), Some(&4));
    }

    #[test]
    fn removals_do_not_grow_the_queue_without_bound() {
        let mut r = Recent::with_capacity(4);
        for i in 0..10_000 {
            r.insert(format!("k{i}"), i);
            assert_eq!(r.remove(&format!("k{i}")), Some(i));
        }
        assert_eq!(r.len(), 0);
        assert!(r.order.len() <= 8, "queue {}", r.order.len());
    }
}
