//! [`ReviewStore`]: the review queue, a capability of a
//! [`Store`](super::Store).
//!
//! An order waits for a person when its `automation_status` is
//! `Manual Review` (on the shipped machine: the state `failed`, whether a
//! step failed for good or a rule held it with `escalate_to_manual`) and it
//! is not terminal. The queue is the tenant's such orders, the longest
//! waiting first: by the time they entered their state
//! (`state_changed_at`), then id. Pages follow a [`ReviewCursor`] (keyset
//! paging: no offset, so a page costs the same deep in the queue). The SQL
//! backends read a partial index holding exactly these orders.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{OrderId, StoreError, StoredOrder};

/// Where a page of the review queue starts: after the order that entered
/// its state at `since` with id `id` (the last one of the previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewCursor {
    /// When that order entered its state.
    pub since: DateTime<Utc>,
    /// Its id.
    pub id: OrderId,
}

impl ReviewCursor {
    /// The cursor after `order` (the last order of a page).
    pub fn after(order: &StoredOrder) -> Self {
        ReviewCursor {
            since: order
                .order
                .state_changed_at
                .unwrap_or(order.order.created_at),
            id: order.id,
        }
    }

    /// The cursor as text (`MILLIS.UUID`), for a URL.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.since.timestamp_millis(), self.id)
    }

    /// Reads [`ReviewCursor::encode`]'s text; `None` if it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let (ms, id) = text.split_once('.')?;
        Some(ReviewCursor {
            since: DateTime::from_timestamp_millis(ms.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// The review queue: the orders waiting for a person (`Manual Review`,
/// not terminal), longest waiting first, keyset-paged by [`ReviewCursor`];
/// the SQL backends read a partial index holding exactly these orders.
pub trait ReviewStore: Send + Sync {
    /// The tenant's orders waiting for a person (`Manual Review`, not
    /// terminal), the longest waiting first (`state_changed_at`, then id),
    /// after `after` if given, at most `limit`.
    fn review_queue(
        &self,
        tenant: &str,
        after: Option<ReviewCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_text_round_trips_and_refuses_garbage() {
        let c = ReviewCursor {
            since: DateTime::from_timestamp_millis(1_749_722_400_123).expect("a time"),
            id: "0197639b-a000-7000-8000-000000000001"
                .parse()
                .expect("a uuid"),
        };
        assert_eq!(ReviewCursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "12",
            "x.0197639b-a000-7000-8000-000000000001",
            "12.nope",
        ] {
            assert_eq!(ReviewCursor::decode(bad), None, "{bad}");
        }
    }
}
