//! The in-memory work queue: items indexed by due time while waiting, and
//! by (VIRAL first, oldest order first) once due, per lane, so a claim costs
//! O(log n) per item however long the queue is; and [`QueueStore`] on it.

use crate::FastMap;
use crate::store::Result;
use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::MemoryStore;
use crate::model::Priority;
use crate::store::logic::{self, Enqueue, LeaseState, lease_expiry, ms, priority_rank, trunc};
use crate::store::{
    ClaimRequest, Lease, OrderId, QueueDue, QueueStore, QueueSummary, TenantScope, WorkId,
    WorkItem, WorkSpec,
};

/// One stored work item.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub tenant: String,
    pub order_id: OrderId,
    pub kind: String,
    pub lane: Priority,
    pub viral: bool,
    pub order_created_at: DateTime<Utc>,
    /// When the item is due; while leased, the lease's expiry.
    pub run_at: DateTime<Utc>,
    pub payload: Value,
    pub attempts: u32,
    pub owner: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The index key of a due item: VIRAL first, then oldest order, then id.
type ReadyKey = (bool, i64, WorkId);

#[derive(Debug, Default)]
pub(super) struct Queue {
    items: FastMap<WorkId, Item>,
    by_key: FastMap<(OrderId, String), WorkId>,
    /// Per lane: items not yet known to be due, by `run_at`.
    waiting: [BTreeSet<(i64, WorkId)>; 4],
    /// Per lane: items found due, in service order.
    ready: [BTreeSet<ReadyKey>; 4],
    /// Per item: whether it sits in `ready` (else in `waiting`).
    in_ready: FastMap<WorkId, bool>,
    last_id: WorkId,
}

fn lane_ix(lane: Priority) -> usize {
    // `priority_rank` is 0..=3.
    priority_rank(lane) as usize
}

fn ready_key(id: WorkId, item: &Item) -> ReadyKey {
    (!item.viral, ms(item.order_created_at), id)
}

impl Queue {
    fn unindex(&mut self, id: WorkId) {
        let (Some(item), Some(ready)) = (self.items.get(&id), self.in_ready.remove(&id)) else {
            return;
        };
        let lane = lane_ix(item.lane);
        if ready {
            self.ready[lane].remove(&ready_key(id, item));
        } else {
            self.waiting[lane].remove(&(ms(item.run_at), id));
        }
    }

    fn index(&mut self, id: WorkId) {
        if let Some(item) = self.items.get(&id) {
            self.waiting[lane_ix(item.lane)].insert((ms(item.run_at), id));
            self.in_ready.insert(id, false);
        }
    }

    /// Changes an item, keeping the indexes right.
    fn update(&mut self, id: WorkId, f: impl FnOnce(&mut Item)) {
        self.unindex(id);
        if let Some(item) = self.items.get_mut(&id) {
            f(item);
        }
        self.index(id);
    }

    /// The item's id for `(order, kind)`, if any.
    pub fn find(&self, order_id: OrderId, kind: &str) -> Option<WorkId> {
        self.by_key.get(&(order_id, kind.to_owned())).copied()
    }

    /// The item, if any.
    pub fn get(&self, id: WorkId) -> Option<&Item> {
        self.items.get(&id)
    }

    /// Every item, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (WorkId, &Item)> {
        self.items.iter().map(|(id, item)| (*id, item))
    }

    /// Inserts an item unless the order has one of this kind; returns its
    /// id and whether it is new.
    /// Inserts each item unless its order has one of its kind.
    pub fn insert_all(&mut self, items: &[Enqueue]) {
        for e in items {
            self.insert_if_absent(&e.tenant, e.order_id, &e.spec, e.viral, e.order_created_at);
        }
    }

    pub fn insert_if_absent(
        &mut self,
        tenant: &str,
        order_id: OrderId,
        spec: &WorkSpec,
        viral: bool,
        order_created_at: DateTime<Utc>,
    ) -> (WorkId, bool) {
        if let Some(id) = self.find(order_id, &spec.kind) {
            return (id, false);
        }
        self.last_id += 1;
        let id = self.last_id;
        self.items.insert(
            id,
            Item {
                tenant: tenant.to_owned(),
                order_id,
                kind: spec.kind.clone(),
                lane: spec.lane,
                viral,
                order_created_at,
                run_at: spec.run_at,
                payload: spec.payload.clone(),
                attempts: 0,
                owner: None,
                expires_at: None,
            },
        );
        self.by_key.insert((order_id, spec.kind.clone()), id);
        self.index(id);
        (id, true)
    }

    /// Moves an item (clearing any lease): new lane, time and payload.
    pub fn reschedule(
        &mut self,
        id: WorkId,
        lane: Priority,
        run_at: DateTime<Utc>,
        payload: Value,
    ) {
        self.update(id, |item| {
            item.owner = None;
            item.expires_at = None;
            item.lane = lane;
            item.run_at = run_at;
            item.payload = payload;
        });
    }

    /// Removes an item.
    pub fn remove(&mut self, id: WorkId) {
        self.unindex(id);
        if let Some(item) = self.items.remove(&id) {
            self.by_key.remove(&(item.order_id, item.kind));
        }
    }

    /// Clears an item's lease and makes it due at `run_at`, optionally
    /// replacing its payload.
    pub fn release(&mut self, id: WorkId, run_at: DateTime<Utc>, payload: Option<Value>) {
        self.update(id, |item| {
            item.owner = None;
            item.expires_at = None;
            item.run_at = run_at;
            if let Some(p) = payload {
                item.payload = p;
            }
        });
    }

    /// Extends a lease to `until`.
    pub fn extend(&mut self, id: WorkId, until: DateTime<Utc>) {
        self.update(id, |item| {
            item.expires_at = Some(until);
            item.run_at = until;
        });
    }

    /// Moves every item of `order_id` to `lane`, with `viral`.
    pub fn requeue_order(&mut self, order_id: OrderId, lane: Priority, viral: bool) {
        let ids: Vec<WorkId> = self
            .items
            .iter()
            .filter(|(_, item)| item.order_id == order_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.update(id, |item| {
                item.lane = lane;
                item.viral = viral;
            });
        }
    }

    /// What a lease check needs to know about an item.
    pub fn lease_state(&self, id: WorkId) -> Option<LeaseState> {
        self.items.get(&id).map(|item| LeaseState {
            tenant: item.tenant.clone(),
            order_id: item.order_id,
            owner: item.owner.clone(),
            attempts: item.attempts,
            expires_at: item.expires_at,
        })
    }

    /// Claims due items lane by lane (see [`crate::store::Store::claim`]).
    pub fn claim(
        &mut self,
        scope: TenantScope<'_>,
        req: &ClaimRequest<'_>,
        expires_at: DateTime<Utc>,
    ) -> Vec<WorkItem> {
        let now_ms = ms(req.now);
        let mut out = Vec::new();
        for lane_limit in req.lanes {
            let lane = lane_ix(lane_limit.lane);
            // Promote the items that became due.
            while let Some(&(run_at, id)) = self.waiting[lane].first() {
                if run_at > now_ms {
                    break;
                }
                self.waiting[lane].remove(&(run_at, id));
                if let Some(item) = self.items.get(&id) {
                    self.ready[lane].insert(ready_key(id, item));
                    self.in_ready.insert(id, true);
                }
            }
            let picked: Vec<WorkId> = self.ready[lane]
                .iter()
                .map(|&(_, _, id)| id)
                .filter(|id| {
                    self.items
                        .get(id)
                        .is_some_and(|i| scope.includes(&i.tenant) && ms(i.run_at) <= now_ms)
                })
                .take(lane_limit.limit)
                .collect();
            for id in picked {
                self.update(id, |item| {
                    item.attempts += 1;
                    item.owner = Some(req.worker.to_owned());
                    item.expires_at = Some(expires_at);
                    item.run_at = expires_at;
                });
                if let Some(item) = self.items.get(&id) {
                    out.push(work_item(id, item));
                }
            }
        }
        out
    }

    /// The queue's state at `now` for `scope`.
    pub fn summary(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> QueueSummary {
        let mut s = QueueSummary {
            due: Priority::ALL.iter().map(|p| (*p, 0)).collect(),
            ..QueueSummary::default()
        };
        for item in self.items.values().filter(|i| scope.includes(&i.tenant)) {
            let live_lease = item.owner.is_some() && item.expires_at.is_some_and(|e| e > now);
            if item.run_at <= now {
                *s.due.entry(item.lane).or_default() += 1;
            } else if !live_lease {
                s.scheduled += 1;
            }
            if item.owner.is_some() {
                if live_lease {
                    s.leased += 1;
                } else {
                    s.expired_leases += 1;
                }
            }
            s.next_run_at = Some(s.next_run_at.map_or(item.run_at, |t| t.min(item.run_at)));
        }
        s
    }
}

/// The claimed form of an item.
pub(super) fn work_item(id: WorkId, item: &Item) -> WorkItem {
    WorkItem {
        order_id: item.order_id,
        kind: item.kind.clone(),
        lane: item.lane,
        viral: item.viral,
        payload: item.payload.clone(),
        lease: Lease {
            id,
            tenant: item.tenant.clone(),
            worker: item.owner.clone().unwrap_or_default(),
            attempt: item.attempts,
            expires_at: item.expires_at.unwrap_or(item.run_at),
        },
    }
}

impl QueueStore for MemoryStore {
    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        _now: DateTime<Utc>,
    ) -> Result<(WorkId, bool)> {
        let spec = logic::prepare_work(work)?;
        let mut inner = self.lock();
        let (viral, created_at) = inner.order_facts(tenant, order_id)?;
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
    ) -> Result<WorkId> {
        let spec = logic::prepare_work(work)?;
        let mut inner = self.lock();
        let (viral, created_at) = inner.order_facts(tenant, order_id)?;
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
    ) -> Result<Vec<WorkItem>> {
        let expires_at = lease_expiry(request.now, request.lease)?;
        let request = ClaimRequest {
            now: trunc(request.now),
            ..*request
        };
        Ok(self.lock().queue.claim(scope, &request, expires_at))
    }

    async fn renew(&self, lease: &Lease, extend: TimeDelta, now: DateTime<Utc>) -> Result<Lease> {
        let until = lease_expiry(now, extend)?;
        let mut inner = self.lock();
        inner.check_lease(lease, trunc(now))?;
        inner.queue.extend(lease.id, until);
        Ok(Lease {
            expires_at: until,
            ..lease.clone()
        })
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
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
    ) -> Result<()> {
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
    ) -> Result<QueueSummary> {
        Ok(self.lock().queue.summary(scope, trunc(now)))
    }

    async fn queue_due(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<QueueDue> {
        Ok(self.lock().queue.summary(scope, trunc(now)).into())
    }
}
