//! [`OrderStore`]: orders, their history, and the transitions that move them.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::{
    Created, HistoryEntry, JsonText, NewOrder, OrderId, OrderWithHistory, StoreError, StoredOrder,
    Transition, WorkSpec,
};
use crate::model::{Order, Priority};

/// An order of a bulk insert ([`OrderStore::insert_orders`]): what a
/// [`NewOrder`] carries, with its work's payload as JSON text, so that the
/// orders of a batch that carry the same payload share one text (a clone
/// is a reference count) and nothing is serialised per order.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOrder {
    /// The order (see [`NewOrder::order`]).
    pub order: Order,
    /// Work to enqueue if (and only if) the order is new.
    pub work: Option<BulkWork>,
    /// The rules' decision at ingest (see [`NewOrder::decision`]).
    pub decision: Option<JsonText>,
}

/// A bulk-inserted order's first work item: a [`WorkSpec`] whose payload
/// is JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkWork {
    /// What to do (see [`WorkSpec::kind`]).
    pub kind: String,
    /// The lane.
    pub lane: Priority,
    /// When it becomes due.
    pub run_at: DateTime<Utc>,
    /// The payload, as JSON text.
    pub payload: JsonText,
}

impl From<NewOrder> for BulkOrder {
    fn from(n: NewOrder) -> Self {
        BulkOrder {
            order: n.order,
            work: n.work.map(|w| BulkWork {
                payload: JsonText::from(&w.payload),
                kind: w.kind,
                lane: w.lane,
                run_at: w.run_at,
            }),
            decision: n.decision,
        }
    }
}

impl From<BulkOrder> for NewOrder {
    fn from(b: BulkOrder) -> Self {
        NewOrder {
            order: b.order,
            work: b.work.map(|w| WorkSpec {
                payload: w.payload.to_value(),
                kind: w.kind,
                lane: w.lane,
                run_at: w.run_at,
            }),
            decision: b.decision,
        }
    }
}

/// Orders and their history: idempotent ingest, reads, and atomic
/// transitions (see the [module docs](super) for the contract).
///
/// Methods return `impl Future + Send`, so a store can be shared across
/// tokio tasks; implementations may write `async fn`.
pub trait OrderStore: Send + Sync {
    /// Stores `order` for `tenant` unless the tenant already has an order
    /// with its `tiktok_order_id`, in which case that one is returned with
    /// `created: false` (idempotent ingest). See [`OrderStore::create_orders`].
    fn create_order(
        &self,
        tenant: &str,
        order: &Order,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        let batch = [NewOrder {
            order: order.clone(),
            work: None,
            decision: None,
        }];
        async move {
            self.create_orders(tenant, &batch)
                .await?
                .pop()
                .unwrap_or_else(|| Err(StoreError::database("empty batch result")))
        }
    }

    /// Stores many orders for `tenant` in one transaction, each idempotent
    /// on `(tenant, tiktok_order_id)`, each new one with its optional first
    /// work item. One result per input, in order: the stored order, or
    /// [`StoreError::Invalid`] for an order the model refuses (or whose
    /// `user_id` is another tenant); a duplicate is a success with
    /// `created: false` (its work is not enqueued again). An order's `id`,
    /// if unset, is derived from the tenant, `tiktok_order_id` and
    /// `created_at` (see [`NewOrder::order`]); one given explicitly that
    /// belongs to another order is [`StoreError::Invalid`].
    fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> impl Future<Output = Result<Vec<Result<Created, StoreError>>, StoreError>> + Send;

    /// A bulk ingest's write: stores one batch of new orders for `tenant`
    /// in one transaction, each with its optional first work item and
    /// decision, taking them by value (nothing is copied, nothing is read
    /// back, and a payload shared by many orders is bound as the one text). The caller has already skipped the orders it knows the tenant
    /// has ([`OrderStore::known_orders`]); one stored meanwhile (a racing
    /// writer), or repeating an earlier order of the batch, is skipped as in
    /// [`OrderStore::create_orders`]. One result per input, in order:
    /// `Ok(true)` stored now (its work enqueued, its decision stored),
    /// `Ok(false)` the tenant already has its `tiktok_order_id` (nothing
    /// written for it), or [`StoreError::Invalid`] as `create_orders` refuses
    /// it. The end state is exactly what `create_orders` leaves; the outer
    /// error is a database failure, in which case nothing was written.
    /// By default: `create_orders` (memory and PostgreSQL, whose
    /// `create_orders` is already one multi-row write); SQLite writes the
    /// batch with statements of its own.
    fn insert_orders(
        &self,
        tenant: &str,
        orders: Vec<BulkOrder>,
    ) -> impl Future<Output = Result<Vec<Result<bool, StoreError>>, StoreError>> + Send {
        async move {
            let orders: Vec<NewOrder> = orders.into_iter().map(NewOrder::from).collect();
            Ok(self
                .create_orders(tenant, &orders)
                .await?
                .into_iter()
                .map(|r| r.map(|c| c.created))
                .collect())
        }
    }

    /// The tenant's order `id`, if any.
    fn get_order(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send;

    /// The tenant's orders among `ids` (one read, in no particular order;
    /// ids the tenant does not have are left out). How a worker loads the
    /// orders of a claim round at once.
    fn get_orders(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send;

    /// The tenant's order with this TikTok order id, if any.
    fn find_order(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
    ) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send;

    /// The tenant's order `id` with its history (oldest first), read in one
    /// consistent snapshot.
    fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> impl Future<Output = Result<Option<OrderWithHistory>, StoreError>> + Send;

    /// The histories of the tenant's orders `ids`: one per id, in the
    /// order given, each oldest step first (empty for an id the tenant has
    /// no order of). One consistent snapshot, read in a few statements
    /// whatever the number of ids: how a report reads the history of every
    /// order (the simulator's read-back) without a read per order.
    fn histories(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> impl Future<Output = Result<Vec<Vec<HistoryEntry>>, StoreError>> + Send;

    /// The tenant's orders with an id greater than `after`, by id, at most
    /// `limit` (paging through every order, terminal ones included).
    fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send;

    /// The tenant's active (non-terminal) orders, most urgent first:
    /// priority `high`, `urgent`, `standard`, `automated`; within a priority
    /// `VIRAL` impact first; then oldest `created_at`; then id. At most `limit`.
    fn active_orders(
        &self,
        tenant: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send;

    /// Applies one transition atomically (see [`OrderStore::transitions`]).
    fn transition(
        &self,
        tenant: &str,
        transition: &Transition,
    ) -> impl Future<Output = Result<StoredOrder, StoreError>> + Send {
        async move {
            self.transitions(&[(tenant, transition.clone())])
                .await?
                .pop()
                .unwrap_or_else(|| Err(StoreError::database("empty batch result")))
        }
    }

    /// Applies `(tenant, transition)`s in order, in one transaction
    /// (group commit). Each is checked on its own — the order is the
    /// tenant's ([`StoreError::NotFound`]), its lease holds
    /// ([`StoreError::LeaseLost`]), it is in the expected state and version
    /// ([`StoreError::Conflict`]) — with later items seeing earlier ones.
    /// Each success updates the order (state, previous state, progress,
    /// automation status, processing time, priority/impact if given,
    /// `updated_at`, `state_changed_at`, version + 1, terminal flag), inserts
    /// one history row, settles its lease and enqueues its follow-up work.
    /// One result per input (the order after the step); the outer error is a
    /// database failure, in which case nothing was written.
    fn transitions(
        &self,
        batch: &[(&str, Transition)],
    ) -> impl Future<Output = Result<Vec<Result<StoredOrder, StoreError>>, StoreError>> + Send;

    /// Which of `tiktok_order_ids` the tenant already has, each once, in no
    /// particular order (ids of other tenants' orders are not). A few
    /// indexed reads on the `(tenant, tiktok_order_id)` key, whatever the
    /// number of ids: how a bulk ingest skips the orders it stored before
    /// without reading or evaluating them.
    fn known_orders(
        &self,
        tenant: &str,
        tiktok_order_ids: &[&str],
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}
