//! [`AnyStore`]: the backend [`open`](super::open) chose, as one type.

use chrono::{DateTime, TimeDelta, Utc};

use super::fault::{FaultPoint, InjectFault};
use super::{
    ClaimRequest, Created, Dashboard, Lease, MemoryStore, MetricQuery, NewOrder, OrderId,
    OrderWithHistory, QueueSummary, Store, StoreError, StoredOrder, TenantScope, Transition,
    WorkId, WorkItem, WorkSpec, WorkflowMetric,
};
use crate::rules::RuleStats;

/// A store of any backend, chosen at run time from a URL by
/// [`open`](super::open). It implements [`Store`] by dispatching to the backend.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// `memory:`.
    Memory(MemoryStore),
    /// `sqlite://PATH`.
    #[cfg(feature = "sqlite")]
    Sqlite(super::SqliteStore),
    /// `postgres://…`.
    #[cfg(feature = "postgres")]
    Postgres(super::PostgresStore),
}

impl AnyStore {
    /// The backend's name: `memory`, `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(_) => "postgres",
        }
    }
}

/// Calls `$call` on whichever backend `$self` holds.
macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $call.await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl InjectFault for AnyStore {
    fn inject_fault(&self, point: FaultPoint) {
        match self {
            AnyStore::Memory(s) => s.inject_fault(point),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.inject_fault(point),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.inject_fault(point),
        }
    }
}

impl Store for AnyStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        dispatch!(self, s => s.create_orders(tenant, orders))
    }

    async fn get_order(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<StoredOrder>, StoreError> {
        dispatch!(self, s => s.get_order(tenant, id))
    }

    async fn get_orders(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> Result<Vec<StoredOrder>, StoreError> {
        dispatch!(self, s => s.get_orders(tenant, ids))
    }

    async fn find_order(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
    ) -> Result<Option<StoredOrder>, StoreError> {
        dispatch!(self, s => s.find_order(tenant, tiktok_order_id))
    }

    async fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<OrderWithHistory>, StoreError> {
        dispatch!(self, s => s.order_with_history(tenant, id))
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        dispatch!(self, s => s.list_orders(tenant, after, limit))
    }

    async fn active_orders(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        dispatch!(self, s => s.active_orders(tenant, limit))
    }

    async fn transitions(
        &self,
        batch: &[(&str, Transition)],
    ) -> Result<Vec<Result<StoredOrder, StoreError>>, StoreError> {
        dispatch!(self, s => s.transitions(batch))
    }

    async fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Dashboard, StoreError> {
        dispatch!(self, s => s.dashboard(tenant, now, window))
    }

    async fn record_metrics(
        &self,
        tenant: &str,
        metrics: &[WorkflowMetric],
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.record_metrics(tenant, metrics))
    }

    async fn metrics(
        &self,
        tenant: &str,
        query: &MetricQuery,
    ) -> Result<Vec<WorkflowMetric>, StoreError> {
        dispatch!(self, s => s.metrics(tenant, query))
    }

    async fn save_rule_stats(&self, tenant: &str, stats: &[RuleStats]) -> Result<(), StoreError> {
        dispatch!(self, s => s.save_rule_stats(tenant, stats))
    }

    async fn load_rule_stats(&self, tenant: &str) -> Result<Vec<RuleStats>, StoreError> {
        dispatch!(self, s => s.load_rule_stats(tenant))
    }

    async fn note_webhook(
        &self,
        tenant: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.note_webhook(tenant, notification_id, at))
    }

    async fn prune_webhooks(&self, tenant: &str, before: DateTime<Utc>) -> Result<u64, StoreError> {
        dispatch!(self, s => s.prune_webhooks(tenant, before))
    }

    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<(WorkId, bool), StoreError> {
        dispatch!(self, s => s.enqueue(tenant, order_id, work, now))
    }

    async fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<WorkId, StoreError> {
        dispatch!(self, s => s.schedule(tenant, order_id, work, now))
    }

    async fn claim(
        &self,
        scope: TenantScope<'_>,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        dispatch!(self, s => s.claim(scope, request))
    }

    async fn renew(
        &self,
        lease: &Lease,
        extend: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        dispatch!(self, s => s.renew(lease, extend, now))
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(self, s => s.complete(lease, now))
    }

    async fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.release(lease, run_at, now))
    }

    async fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<QueueSummary, StoreError> {
        dispatch!(self, s => s.queue_summary(scope, now))
    }
}
