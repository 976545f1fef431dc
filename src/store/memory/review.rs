//! The review queue of the `memory:` store (a scan: memory has no index).

use super::MemoryStore;
use crate::model::AutomationStatus;
use crate::store::Result;
use crate::store::{ReviewCursor, ReviewStore, StoredOrder};

impl ReviewStore for MemoryStore {
    async fn review_queue(
        &self,
        tenant: &str,
        after: Option<ReviewCursor>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>> {
        let inner = self.lock();
        let key = |o: &StoredOrder| {
            let c = ReviewCursor::after(o);
            (c.since, c.id)
        };
        let mut orders: Vec<&StoredOrder> = inner
            .orders
            .values()
            .map(|o| &**o)
            .filter(|o| {
                o.order.user_id.as_deref() == Some(tenant)
                    && !o.terminal
                    && o.order.automation_status == AutomationStatus::ManualReview
                    && after.is_none_or(|a| key(o) > (a.since, a.id))
            })
            .collect();
        orders.sort_by_key(|o| key(o));
        Ok(orders.into_iter().take(limit).cloned().collect())
    }
}
