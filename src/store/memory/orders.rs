//! Orders and transitions of the `memory:` store.

use crate::FastMap;
use crate::store::Result;
use std::collections::{HashMap, HashSet};

use super::{MemoryStore, sort_urgent};
use crate::store::fault::{FaultPoint, injected};
use crate::store::logic::{self, LeaseState};
use crate::store::{
    Created, HistoryEntry, NewOrder, OrderId, OrderStore, OrderWithHistory, StoredOrder,
    Transition, WorkId,
};

impl OrderStore for MemoryStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created>>> {
        let prepared = logic::prepare_batch(tenant, orders);
        let mut inner = self.lock();
        let mut inserted = HashSet::new();
        let mut existing = HashMap::new();
        for (stored, _) in prepared.iter().flatten() {
            let key = (tenant.to_owned(), stored.order.tiktok_order_id.clone());
            if let Some(found) = inner.by_key.get(&key).and_then(|id| inner.orders.get(id)) {
                existing.insert(key.1, StoredOrder::clone(found));
            } else if !inner.orders.contains_key(&stored.id) {
                inner.by_key.insert(key, stored.id);
                inner.orders.insert(stored.id, Box::new(stored.clone()));
                inserted.insert(stored.id);
            }
        }
        for (id, d) in logic::new_decisions(orders, &prepared, &inserted) {
            inner.decisions.insert(id, d.clone());
        }
        let (results, work) = logic::decide_created(tenant, prepared, &inserted, &existing);
        inner.queue.insert_all(&work);
        Ok(results)
    }

    async fn get_order(&self, tenant: &str, id: OrderId) -> Result<Option<StoredOrder>> {
        Ok(self.lock().order(tenant, id).cloned())
    }

    async fn get_orders(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<StoredOrder>> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| inner.order(tenant, *id).cloned())
            .collect())
    }

    async fn find_order(&self, tenant: &str, tiktok_order_id: &str) -> Result<Option<StoredOrder>> {
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
    ) -> Result<Option<OrderWithHistory>> {
        let inner = self.lock();
        Ok(inner.order(tenant, id).map(|order| OrderWithHistory {
            order: order.clone(),
            history: inner.history.get(&id).cloned().unwrap_or_default(),
            decision: inner.decisions.get(&id).cloned(),
        }))
    }

    async fn histories(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<Vec<HistoryEntry>>> {
        let inner = self.lock();
        Ok(ids
            .iter()
            .map(|id| match inner.order(tenant, *id) {
                Some(_) => inner.history.get(id).cloned().unwrap_or_default(),
                None => Vec::new(),
            })
            .collect())
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>> {
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

    async fn active_orders(&self, tenant: &str, limit: usize) -> Result<Vec<StoredOrder>> {
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

    async fn transitions(&self, batch: &[(&str, Transition)]) -> Result<Vec<Result<StoredOrder>>> {
        let mut inner = self.lock();
        // The store fails as a database would after updating the orders:
        // here, before anything is touched.
        if !batch.is_empty() && self.fault.take(FaultPoint::AfterOrderUpdate) {
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
        for (id, at) in effects.shipped {
            inner.shipped.entry(id).or_insert(at);
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
        inner.queue.insert_all(&effects.enqueue);
        Ok(results)
    }

    async fn known_orders(&self, tenant: &str, tiktok_order_ids: &[&str]) -> Result<Vec<String>> {
        let inner = self.lock();
        let mut seen = HashSet::new();
        Ok(tiktok_order_ids
            .iter()
            .filter(|t| {
                inner
                    .by_key
                    .contains_key(&(tenant.to_owned(), (**t).to_owned()))
                    && seen.insert(**t)
            })
            .map(|t| (*t).to_owned())
            .collect())
    }
}
