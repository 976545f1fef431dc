//! [`QueueStore`]: the durable work queue (see the [module docs](super),
//! "The work queue").

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    ClaimRequest, Lease, OrderId, QueueDue, QueueSummary, Scheduled, StoreError, TenantScope,
    WorkId, WorkItem, WorkSpec,
};

/// The work queue: enqueue, schedule, claim with a lease, renew, complete,
/// release, summarize.
pub trait QueueStore: Send + Sync {
    /// Enqueues work for the tenant's order unless it has an item of the same
    /// kind (then that item is left as it is). Returns the item's id and
    /// whether it is new.
    fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(WorkId, bool), StoreError>> + Send;

    /// Schedules the order's work of `work.kind`: creates the item, or moves
    /// an unleased one to `work.run_at`, `work.lane`, `work.payload`. An item
    /// under a live lease is left alone: [`StoreError::Invalid`].
    fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WorkId, StoreError>> + Send;

    /// [`QueueStore::schedule`] for many of the tenant's orders, each item
    /// at its own `now`: one result per item, in order, as one call after
    /// another would give them (at most one item per `(order, kind)`).
    /// Backends write them in one statement where they can.
    fn schedule_many(
        &self,
        tenant: &str,
        items: &[Scheduled],
    ) -> impl Future<Output = Result<Vec<Result<WorkId, StoreError>>, StoreError>> + Send {
        async move {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(
                    self.schedule(tenant, item.order_id, &item.work, item.now)
                        .await,
                );
            }
            Ok(out)
        }
    }

    /// Claims due work (`run_at <= now`) in `scope`, lane by lane, up to each
    /// lane's limit, VIRAL first then oldest order first; each item gets a
    /// lease for `request.worker` until `now + request.lease`. Exclusive:
    /// an item leased to one claimant is not returned to another until the
    /// lease lapses.
    fn claim(
        &self,
        scope: TenantScope<'_>,
        request: &ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Vec<WorkItem>, StoreError>> + Send;

    /// Extends a lease that still holds to `now + extend`; a lapsed or
    /// taken-over lease is [`StoreError::LeaseLost`].
    fn renew(
        &self,
        lease: &Lease,
        extend: TimeDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Lease, StoreError>> + Send;

    /// Removes the leased item (done); [`StoreError::LeaseLost`] if the lease
    /// no longer holds.
    fn complete(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the leased item back, due at `run_at` (or `now`);
    /// [`StoreError::LeaseLost`] if the lease no longer holds.
    fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The queue's state at `now` in `scope`.
    fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<QueueSummary, StoreError>> + Send;

    /// The items due at `now` in `scope` per lane and when the next item is
    /// or becomes due: what a worker or the simulator asks between rounds,
    /// equal to those fields of [`queue_summary`](Self::queue_summary) but
    /// answered without counting the items scheduled for later.
    fn queue_due(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<QueueDue, StoreError>> + Send;
}
