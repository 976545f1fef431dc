//! The orders a worker wrote last, kept for their next step.
//!
//! A step reads its order; the step before it (on this engine) wrote that
//! order, so the engine keeps the copy it wrote and skips the read when the
//! claim shows no other worker touched the item since (`Inner::cached`).
//! Memory stays bounded in a long-running process: at most
//! [`OrderCache::LIMIT`] orders, a copy is kept only when the order's next
//! step is due within [`OrderCache::HORIZON`], and copies older than that are
//! swept out, so orders whose next step another process ran (a separate
//! `worker` sharing the queue) do not stay behind.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::FastMap;
use crate::store::{OrderId, StoredOrder};

/// One kept copy.
#[derive(Debug)]
struct Cached {
    order: Arc<StoredOrder>,
    /// The claim count of the order's work item when the copy was written.
    attempt: u32,
    /// When it was kept (the engine's clock).
    at: DateTime<Utc>,
}

/// The kept copies, by order.
#[derive(Debug, Default)]
pub(super) struct OrderCache {
    orders: FastMap<OrderId, Cached>,
    /// When copies older than the horizon were last removed.
    swept_at: Option<DateTime<Utc>>,
}

impl OrderCache {
    /// At most this many orders are kept.
    pub const LIMIT: usize = 100_000;

    /// A copy is kept only for a next step due within this time, and no
    /// longer than this time.
    pub const HORIZON: TimeDelta = TimeDelta::seconds(60);

    /// The copy of `id` and the claim count it was written under.
    pub fn get(&self, id: &OrderId) -> Option<(&Arc<StoredOrder>, u32)> {
        self.orders.get(id).map(|c| (&c.order, c.attempt))
    }

    /// Keeps `order` (written under claim count `attempt`) at `now`, unless
    /// the cache is full of other orders. Once per horizon, copies kept
    /// longer than the horizon are removed first.
    pub fn keep(&mut self, order: StoredOrder, attempt: u32, now: DateTime<Utc>) {
        if self.swept_at.is_none_or(|t| now - t >= Self::HORIZON) {
            self.orders.retain(|_, c| now - c.at < Self::HORIZON);
            self.swept_at = Some(now);
        }
        if self.orders.len() < Self::LIMIT || self.orders.contains_key(&order.id) {
            let id = order.id;
            let order = Arc::new(order);
            self.orders.insert(
                id,
                Cached {
                    order,
                    attempt,
                    at: now,
                },
            );
        }
    }

    /// Forgets the copy of `id`.
    pub fn remove(&mut self, id: &OrderId) {
        self.orders.remove(id);
    }

    /// How many copies are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.orders.len()
    }
}
