//! The `memory:` store: every table a field of one mutex-guarded struct.
//! Deterministic (no clock, no randomness: derived order ids, sequential
//! work ids), and it keeps the same contract as the SQL backends, including
//! millisecond times and the tenant checks.

mod cluster;
mod dashboard;
mod heartbeat;
mod inbox;
mod orders;
mod queue;
mod reads;
mod review;
mod shops;

use crate::FastMap;
use crate::store::Result;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use super::fault::{Fault, FaultPoint, InjectFault};
use super::logic::{self, is_viral, lease_holds, lease_lost};
use super::{HistoryEntry, Lease, OrderId, StoreError, StoredOrder};
use queue::Queue;

/// The in-memory store (`memory:`). Cheap to create; everything is lost
/// when the last clone is dropped (clones share the data).
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    fault: Fault,
    inbox: Arc<Mutex<inbox::Tables>>,
    shops: Arc<Mutex<shops::Tables>>,
    cluster: Arc<Mutex<cluster::Tables>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Boxed: the map's table stays small (an order is ~0.5 KiB), so
    /// growing it moves pointers, not orders.
    orders: FastMap<OrderId, Box<StoredOrder>>,
    by_key: FastMap<(String, String), OrderId>,
    history: FastMap<OrderId, Vec<HistoryEntry>>,
    /// The ingest decisions stored with new orders.
    decisions: FastMap<OrderId, crate::store::JsonText>,
    /// When each order shipped (its first step into a shipped status; see
    /// [`Dashboard`](crate::store::Dashboard)).
    shipped: FastMap<OrderId, DateTime<Utc>>,
    queue: Queue,
    /// Each worker's heartbeat: alive until then.
    heartbeats: FastMap<String, DateTime<Utc>>,
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
}

/// Groups are accepted; every write is visible and final as it is made: nothing to group.
impl super::GroupCommit for MemoryStore {
    async fn begin_group(&self) -> Result<(), super::StoreError> {
        Ok(())
    }

    async fn commit_group(&self) -> Result<(), super::StoreError> {
        Ok(())
    }
}

impl InjectFault for MemoryStore {
    fn inject_fault(&self, point: FaultPoint) {
        self.fault.arm(point);
    }
}

impl Inner {
    /// The tenant's order's `viral` flag and `created_at` (what orders its
    /// work in a lane); [`StoreError::NotFound`] if it has no such order.
    fn order_facts(&self, tenant: &str, id: OrderId) -> Result<(bool, DateTime<Utc>)> {
        let order = self
            .order(tenant, id)
            .ok_or_else(|| StoreError::order_not_found(id))?;
        Ok((is_viral(order.order.impact), order.order.created_at))
    }

    fn order(&self, tenant: &str, id: OrderId) -> Option<&StoredOrder> {
        self.orders
            .get(&id)
            .map(|o| &**o)
            .filter(|o| o.order.user_id.as_deref() == Some(tenant))
    }

    /// The tenant's lease check for `lease` at `now`.
    fn check_lease(&self, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
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

impl super::Readiness for MemoryStore {
    /// Always ready: memory has no schema and cannot go away.
    async fn ready(&self) -> Result<()> {
        Ok(())
    }
}
