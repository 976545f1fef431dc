//! `Arc<S>` is a [`Store`] when `S` is: several engines (one per tenant, as
//! `creatorflow serve` runs them) share one store.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{
    ClaimRequest, Created, Dashboard, Lease, MetricQuery, NewOrder, OrderId, OrderWithHistory,
    QueueSummary, Store, StoreError, StoredOrder, TenantScope, Transition, WorkId, WorkItem,
    WorkSpec, WorkflowMetric,
};
use crate::model::Order;
use crate::rules::RuleStats;

impl<S: Store> Store for Arc<S> {
    fn create_order(
        &self,
        tenant: &str,
        order: &Order,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        (**self).create_order(tenant, order)
    }

    fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> impl Future<Output = Result<Vec<Result<Created, StoreError>>, StoreError>> + Send {
        (**self).create_orders(tenant, orders)
    }

    fn get_order(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send {
        (**self).get_order(tenant, id)
    }

    fn get_orders(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send {
        (**self).get_orders(tenant, ids)
    }

    fn find_order(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
    ) -> impl Future<Output = Result<Option<StoredOrder>, StoreError>> + Send {
        (**self).find_order(tenant, tiktok_order_id)
    }

    fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> impl Future<Output = Result<Option<OrderWithHistory>, StoreError>> + Send {
        (**self).order_with_history(tenant, id)
    }

    fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send {
        (**self).list_orders(tenant, after, limit)
    }

    fn active_orders(
        &self,
        tenant: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send {
        (**self).active_orders(tenant, limit)
    }

    fn transition(
        &self,
        tenant: &str,
        transition: &Transition,
    ) -> impl Future<Output = Result<StoredOrder, StoreError>> + Send {
        (**self).transition(tenant, transition)
    }

    fn transitions(
        &self,
        batch: &[(&str, Transition)],
    ) -> impl Future<Output = Result<Vec<Result<StoredOrder, StoreError>>, StoreError>> + Send {
        (**self).transitions(batch)
    }

    fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> impl Future<Output = Result<Dashboard, StoreError>> + Send {
        (**self).dashboard(tenant, now, window)
    }

    fn record_metrics(
        &self,
        tenant: &str,
        metrics: &[WorkflowMetric],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_metrics(tenant, metrics)
    }

    fn metrics(
        &self,
        tenant: &str,
        query: &MetricQuery,
    ) -> impl Future<Output = Result<Vec<WorkflowMetric>, StoreError>> + Send {
        (**self).metrics(tenant, query)
    }

    fn save_rule_stats(
        &self,
        tenant: &str,
        stats: &[RuleStats],
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_rule_stats(tenant, stats)
    }

    fn load_rule_stats(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<RuleStats>, StoreError>> + Send {
        (**self).load_rule_stats(tenant)
    }

    fn note_webhook(
        &self,
        tenant: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).note_webhook(tenant, notification_id, at)
    }

    fn prune_webhooks(
        &self,
        tenant: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        (**self).prune_webhooks(tenant, before)
    }

    fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(WorkId, bool), StoreError>> + Send {
        (**self).enqueue(tenant, order_id, work, now)
    }

    fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<WorkId, StoreError>> + Send {
        (**self).schedule(tenant, order_id, work, now)
    }

    fn claim(
        &self,
        scope: TenantScope<'_>,
        request: &ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Vec<WorkItem>, StoreError>> + Send {
        (**self).claim(scope, request)
    }

    fn renew(
        &self,
        lease: &Lease,
        extend: TimeDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Lease, StoreError>> + Send {
        (**self).renew(lease, extend, now)
    }

    fn complete(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(lease, now)
    }

    fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(lease, run_at, now)
    }

    fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<QueueSummary, StoreError>> + Send {
        (**self).queue_summary(scope, now)
    }
}
