//! The `memory:` store: every table a field of one mutex-guarded struct.
//! Deterministic (no clock, no randomness: derived order ids, sequential
//! work ids), and it keeps the same contract as the SQL backends, including
//! millisecond times and the tenant checks.

mod inbox;
mod queue;

use crate::FastMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use super::fault::{FaultPoint, InjectFault, injected};
use super::logic::{
    self, LeaseState, change_pct, is_viral, lease_expiry, lease_holds, lease_lost, trunc,
    validate_metric, validate_rule_stats, window_bounds,
};
use super::{
    ClaimRequest, Created, Dashboard, HistoryEntry, Lease, MOST_URGENT_LIMIT, MetricQuery,
    NewOrder, OrderId, OrderWithHistory, QueueSummary, Store, StoreError, StoredOrder, TenantScope,
    Transition, WorkId, WorkItem, WorkSpec, WorkflowMetric,
};
use crate::model::{Impact, Priority};
use crate::rules::RuleStats;
use queue::Queue;

/// The in-memory store (`memory:`). Cheap to create; everything is lost on drop.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Box<Mutex<Inner>>,
    fault: Mutex<Option<FaultPoint>>,
    inbox: Mutex<inbox::Tables>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Boxed: the map's table stays small (an order is ~0.5 KiB), so
    /// growing it moves pointers, not orders.
    orders: FastMap<OrderId, Box<StoredOrder>>,
    by_key: FastMap<(String, String), OrderId>,
    history: FastMap<OrderId, Vec<HistoryEntry>>,
    /// `(tenant, sample)` in recording order.
    metrics: Vec<(String, WorkflowMetric)>,
    rule_stats: BTreeMap<(String, String), RuleStats>,
    webhooks: HashMap<(String, String), DateTime<Utc>>,
    queue: Queue,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The guarded code never panics; a poisoned lock still holds consistent data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_fault(&self, point: FaultPoint) -> bool {
        let mut fault = self.fault.lock().unwrap_or_else(PoisonError::into_inner);
        if *fault == Some(point) {
            *fault = None;
            true
        } else {
            false
        }
    }
}

impl InjectFault for MemoryStore {
    fn inject_fault(&self, point: FaultPoint) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some(point);
    }
}

impl Inner {
    fn order(&self, tenant: &str, id: OrderId) -> Option<&StoredOrder> {
        self.orders
            .get(&id)
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant))
    }

    /// Stores one new order (and its first work) unless it is a duplicate.
    fn create_one(&mut self, tenant: &str, new: &NewOrder) -> Result<Created, StoreError> {
        let stored = logic::prepare_new_order(tenant, &new.order)?;
        let work = new.work.as_ref().map(logic::prepare_work).transpose()?;
        let key = (tenant.to_owned(), stored.order.tiktok_order_id.clone());
        if let Some(existing) = self.by_key.get(&key).and_then(|id| self.orders.get(id)) {
            return Ok(Created {
                order: StoredOrder::clone(existing),
                created: false,
            });
        }
        if self.orders.contains_key(&stored.id) {
            return Err(StoreError::invalid(format!(
                "order id {} is already used by another order",
                stored.id
            )));
        }
        self.by_key.insert(key, stored.id);
        self.orders.insert(stored.id, Box::new(stored.clone()));
        if let Some(spec) = work {
            self.queue.insert_if_absent(
                tenant,
                stored.id,
                &spec,
                is_viral(stored.order.impact),
                stored.order.created_at,
            );
        }
        Ok(Created {
            order: stored,
            created: true,
        })
    }

    /// The tenant's lease check for `lease` at `now`.
    fn check_lease(&self, lease: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        match self.queue.lease_state(lease.id) {
            Some(state) if lease_holds(&state, lease, now) => Ok(()),
            _ => Err(lease_lost(lease)),
        }
    }
}

fn sort_urgent(orders: &mut [&StoredOrder]) {
    orders.sort_by_key(|o| {
        (
            logic::priority_rank(o.order.priority),
            !is_viral(o.order.impact),
            o.order.created_at,
            o.id,
        )
    });
}

impl Store for MemoryStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(orders.len());
        for new in orders {
            out.push(inner.create_one(tenant, new));
        }
        Ok(out)
    }

    async fn get_order(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<StoredOrder>, StoreError> {
        Ok(self.lock().order(tenant, id).cloned())
    }

    async fn get_orders(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> Result<Vec<StoredOrder>, StoreError> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| inner.order(tenant, *id).cloned())
            .collect())
    }

    async fn find_order(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
    ) -> Result<Option<StoredOrder>, StoreError> {
        let inner = self.lock();
        let key = (tenant.to_owned(), tiktok_order_id.to_owned());
        Ok(inner
            .by_key
            .get(&key)
            .and_then(|id| inner.orders.get(id))
            .map(|o| StoredOrder::clone(o)))
    }

    async fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<OrderWithHistory>, StoreError> {
        let inner = self.lock();
        Ok(inner.order(tenant, id).map(|order| OrderWithHistory {
            order: order.clone(),
            history: inner.history.get(&id).cloned().unwrap_or_default(),
        }))
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        let inner = self.lock();
        let mut orders: Vec<&StoredOrder> = inner
            .orders
            .values()
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant))
            .filter(|o| after.is_none_or(|a| o.id > a))
            .collect();
        orders.sort_by_key(|o| o.id);
        Ok(orders.into_iter().take(limit).cloned().collect())
    }

    async fn active_orders(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        let inner = self.lock();
        let mut orders: Vec<&StoredOrder> = inner
            .orders
            .values()
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant) && !o.terminal)
            .collect();
        sort_urgent(&mut orders);
        Ok(orders.into_iter().take(limit).cloned().collect())
    }

    async fn transitions(
        &self,
        batch: &[(&str, Transition)],
    ) -> Result<Vec<Result<StoredOrder, StoreError>>, StoreError> {
        let mut inner = self.lock();
        // The store fails as a database would after updating the orders:
        // here, before anything is touched.
        if !batch.is_empty() && self.take_fault(FaultPoint::AfterOrderUpdate) {
            return Err(injected());
        }
        // The batch's orders move out of the store into the working set
        // and back (no copies): the lock is held throughout, and resolving
        // cannot fail half-way.
        let mut orders = FastMap::default();
        let mut leases: FastMap<WorkId, LeaseState> = FastMap::default();
        for (_, t) in batch {
            if let Some(o) = inner.orders.remove(&t.order_id) {
                orders.insert(t.order_id, *o);
            }
            if let Some(s) = &t.settle
                && let Some(state) = inner.queue.lease_state(s.lease.id)
            {
                leases.insert(s.lease.id, state);
            }
        }
        let items: Vec<(&str, &Transition)> = batch.iter().map(|(t, tr)| (*t, tr)).collect();
        let (results, effects) = logic::resolve(&items, &mut orders, &mut leases);
        for (id, order) in orders {
            inner.orders.insert(id, Box::new(order));
        }
        for (_, entry) in effects.history {
            inner.history.entry(entry.order_id).or_default().push(entry);
        }
        for id in effects.complete {
            inner.queue.remove(id);
        }
        for r in effects.reschedule {
            inner.queue.release(r.id, r.run_at, r.payload);
        }
        for (order_id, lane, viral) in effects.requeue {
            inner.queue.requeue_order(order_id, lane, viral);
        }
        for e in effects.enqueue {
            inner.queue.insert_if_absent(
                &e.tenant,
                e.order_id,
                &e.spec,
                e.viral,
                e.order_created_at,
            );
        }
        Ok(results)
    }

    async fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Dashboard, StoreError> {
        let w = window_bounds(now, window)?;
        let inner = self.lock();
        let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_priority: BTreeMap<Priority, u64> =
            Priority::ALL.iter().map(|p| (*p, 0)).collect();
        let mut viral = 0;
        let mut active = Vec::new();
        let mut processed = std::collections::HashSet::new();
        let (mut total, mut healthy, mut dur_sum, mut prev_n, mut prev_sum) =
            (0u64, 0u64, 0f64, 0u64, 0f64);
        for o in inner
            .orders
            .values()
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant))
        {
            *by_state
                .entry(o.order.current_state.to_string())
                .or_default() += 1;
            if !o.terminal {
                *by_priority.entry(o.order.priority).or_default() += 1;
                if o.order.impact == Impact::Viral {
                    viral += 1;
                }
                active.push(o);
            }
            for h in inner.history.get(&o.id).into_iter().flatten() {
                let t = logic::ms(h.at);
                if t > w.start && t <= w.end {
                    total += 1;
                    dur_sum += h.duration_ms as f64;
                    if h.error_message.is_none() {
                        processed.insert(o.id);
                        if h.automated {
                            healthy += 1;
                        }
                    }
                } else if t > w.prev_start && t <= w.start {
                    prev_n += 1;
                    prev_sum += h.duration_ms as f64;
                }
            }
        }
        sort_urgent(&mut active);
        let avg = (total > 0).then(|| dur_sum / total as f64);
        let prev_avg = (prev_n > 0).then(|| prev_sum / prev_n as f64);
        Ok(Dashboard {
            now: trunc(now),
            window_ms: w.len,
            orders_processed_per_minute: processed.len() as f64 / w.minutes(),
            automation_health_pct: (total > 0).then(|| 100.0 * healthy as f64 / total as f64),
            avg_processing_time_s: avg.map(|a| a / 1000.0),
            avg_processing_time_change_pct: change_pct(avg, prev_avg),
            orders_by_state: by_state,
            orders_by_priority: by_priority,
            viral_orders: viral,
            most_urgent: active
                .into_iter()
                .take(MOST_URGENT_LIMIT)
                .cloned()
                .collect(),
        })
    }

    async fn record_metrics(
        &self,
        tenant: &str,
        metrics: &[WorkflowMetric],
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for m in metrics {
            if let Some(id) = m.order_id
                && inner.order(tenant, id).is_none()
            {
                return Err(StoreError::order_not_found(id));
            }
            validate_metric(m)?;
        }
        for m in metrics {
            let mut m = m.clone();
            m.recorded_at = trunc(m.recorded_at);
            inner.metrics.push((tenant.to_owned(), m));
        }
        Ok(())
    }

    async fn metrics(
        &self,
        tenant: &str,
        query: &MetricQuery,
    ) -> Result<Vec<WorkflowMetric>, StoreError> {
        let inner = self.lock();
        let mut found: Vec<&WorkflowMetric> = inner
            .metrics
            .iter()
            .filter(|(t, m)| t == tenant && metric_matches(m, query))
            .map(|(_, m)| m)
            .collect();
        // Stable: ties stay in recording order.
        found.sort_by_key(|m| m.recorded_at);
        Ok(found
            .into_iter()
            .take(query.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn save_rule_stats(&self, tenant: &str, stats: &[RuleStats]) -> Result<(), StoreError> {
        for s in stats {
            validate_rule_stats(s)?;
        }
        let mut inner = self.lock();
        for s in stats {
            let mut s = s.clone();
            s.last_executed_at = s.last_executed_at.map(trunc);
            inner
                .rule_stats
                .insert((tenant.to_owned(), s.rule.clone()), s);
        }
        Ok(())
    }

    async fn load_rule_stats(&self, tenant: &str) -> Result<Vec<RuleStats>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .rule_stats
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn note_webhook(
        &self,
        tenant: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let key = (tenant.to_owned(), notification_id.to_owned());
        if inner.webhooks.contains_key(&key) {
            return Ok(false);
        }
        inner.webhooks.insert(key, trunc(at));
        Ok(true)
    }

    async fn prune_webhooks(&self, tenant: &str, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = trunc(before);
        let n = inner.webhooks.len();
        inner
            .webhooks
            .retain(|(t, _), seen| t != tenant || *seen >= before);
        Ok((n - inner.webhooks.len()) as u64)
    }

    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        _now: DateTime<Utc>,
    ) -> Result<(WorkId, bool), StoreError> {
        let spec = logic::prepare_work(work)?;
        let mut inner = self.lock();
        let order = inner
            .order(tenant, order_id)
            .ok_or_else(|| StoreError::order_not_found(order_id))?;
        let (viral, created_at) = (is_viral(order.order.impact), order.order.created_at);
        Ok(inner
            .queue
            .insert_if_absent(tenant, order_id, &spec, viral, created_at))
    }

    async fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<WorkId, StoreError> {
        let spec = logic::prepare_work(work)?;
        let mut inner = self.lock();
        let order = inner
            .order(tenant, order_id)
            .ok_or_else(|| StoreError::order_not_found(order_id))?;
        let (viral, created_at) = (is_viral(order.order.impact), order.order.created_at);
        let Some(id) = inner.queue.find(order_id, &spec.kind) else {
            return Ok(inner
                .queue
                .insert_if_absent(tenant, order_id, &spec, viral, created_at)
                .0);
        };
        if let Some(item) = inner.queue.get(id)
            && item.owner.is_some()
            && item.expires_at.is_some_and(|e| e > trunc(now))
        {
            return Err(logic::leased_error(id));
        }
        inner
            .queue
            .reschedule(id, spec.lane, spec.run_at, spec.payload);
        Ok(id)
    }

    async fn claim(
        &self,
        scope: TenantScope<'_>,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let expires_at = lease_expiry(request.now, request.lease)?;
        let request = ClaimRequest {
            now: trunc(request.now),
            ..*request
        };
        Ok(self.lock().queue.claim(scope, &request, expires_at))
    }

    async fn renew(
        &self,
        lease: &Lease,
        extend: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        let until = lease_expiry(now, extend)?;
        let mut inner = self.lock();
        inner.check_lease(lease, trunc(now))?;
        inner.queue.extend(lease.id, until);
        Ok(Lease {
            expires_at: until,
            ..lease.clone()
        })
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.check_lease(lease, trunc(now))?;
        inner.queue.remove(lease.id);
        Ok(())
    }

    async fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = trunc(now);
        let mut inner = self.lock();
        inner.check_lease(lease, now)?;
        inner
            .queue
            .release(lease.id, run_at.map_or(now, trunc), None);
        Ok(())
    }

    async fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<QueueSummary, StoreError> {
        Ok(self.lock().queue.summary(scope, trunc(now)))
    }
}

/// Whether `m` passes `q`'s filters (not the limit).
fn metric_matches(m: &WorkflowMetric, q: &MetricQuery) -> bool {
    q.metric_type.as_ref().is_none_or(|t| *t == m.metric_type)
        && q.metric_name.as_ref().is_none_or(|n| *n == m.metric_name)
        && q.order_id.is_none_or(|id| m.order_id == Some(id))
        && q.since.is_none_or(|s| m.recorded_at >= trunc(s))
        && q.until.is_none_or(|u| m.recorded_at < trunc(u))
}
