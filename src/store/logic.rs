//! Backend-independent rules every store follows: id assignment, time
//! precision, validation, and the resolution of a batch of transitions
//! (conflict, tenant and lease checks) into the writes to make. Backends
//! load the rows a batch touches, call [`resolve`], and write [`Effects`] in
//! one transaction, so every backend decides exactly alike.

use crate::FastMap;
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{
    AfterStep, Created, Dashboard, HistoryEntry, JsonText, NewOrder, OrderId, StoreError,
    StoredOrder, Transition, WorkId, WorkSpec,
};
use crate::model::{Impact, Order, Priority};

/// The namespace of order ids derived from `(tenant, tiktok_order_id)`.
const ORDER_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a1c_2f0e_8d4b_4e57_9b1a_3c5d_7e9f_0b21);

/// The id of an order created without one, derived from the tenant, the
/// TikTok order id and `created_at`, so that every backend, and every
/// racing creator, assigns the same id. It is laid out as a UUID v7: the
/// first 48 bits are `created_at` in milliseconds, the rest a SHA-1 (UUID v5)
/// hash of `(tenant, tiktok_order_id)`. Ids therefore sort by creation time,
/// which keeps the rows a batch touches (orders created around the same
/// time) on neighbouring database pages.
pub(crate) fn derived_order_id(
    tenant: &str,
    tiktok_order_id: &str,
    created_at: DateTime<Utc>,
) -> OrderId {
    let mut name = Vec::with_capacity(tenant.len() + tiktok_order_id.len() + 1);
    name.extend_from_slice(tenant.as_bytes());
    name.push(0);
    name.extend_from_slice(tiktok_order_id.as_bytes());
    let hash = Uuid::new_v5(&ORDER_ID_NAMESPACE, &name);
    let mut tail = [0u8; 10];
    tail.copy_from_slice(&hash.as_bytes()[6..]);
    let millis = u64::try_from(created_at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(millis, &tail).into_uuid()
}

/// Milliseconds since the epoch (the stored form of every time).
pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
/// The time `ms` milliseconds after the epoch.
pub(crate) fn from_ms(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::database(format!("stored time {ms} ms is out of range")))
}

/// `t` truncated to the stored precision (milliseconds).
pub(crate) fn trunc(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// When a lease of length `lease` taken at `now` lapses (milliseconds).
pub(crate) fn lease_expiry(
    now: DateTime<Utc>,
    lease: chrono::TimeDelta,
) -> Result<DateTime<Utc>, StoreError> {
    if lease <= chrono::TimeDelta::zero() {
        return Err(StoreError::invalid("a lease must last longer than 0"));
    }
    trunc(now)
        .checked_add_signed(lease)
        .map(trunc)
        .ok_or_else(|| StoreError::invalid("lease expiry is out of range"))
}

/// A `u64` as a database integer.
pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::invalid(format!("{what} {value} is too large")))
}

#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
/// A database integer as a `u64`.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::database(format!("stored {what} {value} is negative")))
}

/// A priority's rank: 0 for `high` (most urgent) … 3 for `automated`.
pub(crate) fn priority_rank(p: Priority) -> i64 {
    match p {
        Priority::High => 0,
        Priority::Urgent => 1,
        Priority::Standard => 2,
        Priority::Automated => 3,
    }
}

/// Whether an impact is `VIRAL` (served first within a lane).
pub(crate) fn is_viral(i: Impact) -> bool {
    i == Impact::Viral
}

/// Validates and normalizes an order for storage under `tenant`: checks
/// the model's ranges, sets `id` (derived if absent) and `user_id`, fills
/// `updated_at` / `state_changed_at`, truncates times to milliseconds.
pub(crate) fn prepare_new_order(tenant: &str, order: &Order) -> Result<StoredOrder, StoreError> {
    prepare_owned_order(tenant, order.clone())
}

/// [`prepare_new_order`] of an order the caller gives away (a bulk insert:
/// no copy).
pub(crate) fn prepare_owned_order(
    tenant: &str,
    mut order: Order,
) -> Result<StoredOrder, StoreError> {
    if tenant.is_empty() {
        return Err(StoreError::invalid("tenant must not be empty"));
    }
    match order.user_id.as_deref() {
        Some(owner) if owner != tenant => {
            return Err(StoreError::invalid(format!(
                "order {} belongs to user `{owner}`, not to tenant `{tenant}`",
                order.tiktok_order_id
            )));
        }
        _ => order.user_id = Some(tenant.to_owned()),
    }
    order.normalize();
    order
        .validate()
        .map_err(|e| StoreError::invalid(e.to_string()))?;
    to_i64(order.processing_time_ms, "processing_time_ms")?;
    let id = *order
        .id
        .get_or_insert_with(|| derived_order_id(tenant, &order.tiktok_order_id, order.created_at));
    order.created_at = trunc(order.created_at);
    order.updated_at = order.updated_at.map(trunc);
    order.state_changed_at = order.state_changed_at.map(trunc);
    order.deadline = order.deadline.map(trunc);
    for v in &mut order.viral_indicators {
        v.detected_at = trunc(v.detected_at);
    }
    Ok(StoredOrder {
        id,
        version: 0,
        terminal: false,
        order,
    })
}

/// An order of a create batch, validated: the order to store and its
/// first work, or why it is refused.
pub(crate) type Prepared = Result<(StoredOrder, Option<WorkSpec>), StoreError>;

/// A create batch's orders, validated ([`prepare_new_order`], [`prepare_work`]).
pub(crate) fn prepare_batch(tenant: &str, orders: &[NewOrder]) -> Vec<Prepared> {
    orders
        .iter()
        .map(|n| {
            let stored = prepare_new_order(tenant, &n.order)?;
            let work = n.work.as_ref().map(prepare_work).transpose()?;
            Ok((stored, work))
        })
        .collect()
}

/// The decisions of a create batch's new orders, to store with them: each
/// inserted order's first [`NewOrder::decision`] (a duplicate within the
/// batch, or of an order stored before, stores none).
pub(crate) fn new_decisions<'a>(
    orders: &'a [NewOrder],
    prepared: &[Prepared],
    inserted: &HashSet<OrderId>,
) -> Vec<(OrderId, &'a JsonText)> {
    let mut seen: HashSet<OrderId> = HashSet::new();
    orders
        .iter()
        .zip(prepared)
        .filter_map(|(n, p)| {
            let id = p.as_ref().ok()?.0.id;
            let d = n.decision.as_ref()?;
            (inserted.contains(&id) && seen.insert(id)).then_some((id, d))
        })
        .collect()
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The valid orders of a prepared batch (`None` when every one was refused:
/// nothing to write).
pub(crate) fn valid_orders(prepared: &[Prepared]) -> Option<Vec<&StoredOrder>> {
    let valid: Vec<&StoredOrder> = prepared
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .map(|p| &p.0)
        .collect();
    (!valid.is_empty()).then_some(valid)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The batch's results when nothing was written (every order refused).
pub(crate) fn refused(prepared: Vec<Prepared>) -> Vec<Result<Created, StoreError>> {
    prepared
        .into_iter()
        .filter_map(Result::err)
        .map(Err)
        .collect()
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The TikTok order ids of the valid orders that were not inserted
/// (duplicates, or id clashes): the orders to read back.
pub(crate) fn not_inserted<'a>(
    valid: &[&'a StoredOrder],
    inserted: &HashSet<OrderId>,
) -> Vec<&'a str> {
    let mut seen: HashSet<OrderId> = HashSet::new();
    valid
        .iter()
        .filter(|o| !inserted.contains(&o.id) || !seen.insert(o.id))
        .map(|o| o.order.tiktok_order_id.as_str())
        .collect()
}

/// The `Created` decision of a create batch, once the backend inserted what
/// it could (`inserted`: ids of new rows) and read back the tenant's
/// existing orders of the rest (`existing`, by TikTok order id): an order
/// inserted (first of its id in the batch) is created and its work is to be
/// enqueued; one whose TikTok order id exists is that order, not created;
/// any other lost an id clash. Returns the results, in input order, and the
/// work to enqueue.
pub(crate) fn decide_created(
    tenant: &str,
    prepared: Vec<Prepared>,
    inserted: &HashSet<OrderId>,
    existing: &HashMap<String, StoredOrder>,
) -> (Vec<Result<Created, StoreError>>, Vec<Enqueue>) {
    let mut results = Vec::with_capacity(prepared.len());
    let mut work = Vec::new();
    let mut claimed: HashSet<OrderId> = HashSet::new();
    for p in prepared {
        results.push(p.and_then(|(stored, spec)| {
            if inserted.contains(&stored.id) && claimed.insert(stored.id) {
                if let Some(spec) = spec {
                    work.push(Enqueue {
                        tenant: tenant.to_owned(),
                        order_id: stored.id,
                        at: spec.run_at,
                        viral: is_viral(stored.order.impact),
                        order_created_at: stored.order.created_at,
                        spec,
                    });
                }
                Ok(Created {
                    order: stored,
                    created: true,
                })
            } else if let Some(found) = existing.get(&stored.order.tiktok_order_id) {
                Ok(Created {
                    order: found.clone(),
                    created: false,
                })
            } else {
                Err(StoreError::invalid(format!(
                    "order id {} is already used by another order",
                    stored.id
                )))
            }
        }));
    }
    (results, work)
}

/// Validates a work spec for storage.
pub(crate) fn prepare_work(spec: &WorkSpec) -> Result<WorkSpec, StoreError> {
    if spec.kind.is_empty() {
        return Err(StoreError::invalid("work kind must not be empty"));
    }
    let mut spec = spec.clone();
    spec.run_at = trunc(spec.run_at);
    Ok(spec)
}

/// A bulk insert's order, validated and taken apart: the order to store,
/// its first work, its decision; or why it is refused.
#[cfg(feature = "sqlite")]
pub(crate) type PreparedBulk =
    Result<(StoredOrder, Option<super::BulkWork>, Option<JsonText>), StoreError>;

/// [`prepare_batch`] of a bulk insert's orders, which the caller gives away.
#[cfg(feature = "sqlite")]
pub(crate) fn prepare_owned_batch(
    tenant: &str,
    orders: Vec<super::BulkOrder>,
) -> Vec<PreparedBulk> {
    orders
        .into_iter()
        .map(|n| {
            let stored = prepare_owned_order(tenant, n.order)?;
            let work = match n.work {
                Some(w) if w.kind.is_empty() => {
                    return Err(StoreError::invalid("work kind must not be empty"));
                }
                Some(mut w) => {
                    w.run_at = trunc(w.run_at);
                    Some(w)
                }
                None => None,
            };
            Ok((stored, work, n.decision))
        })
        .collect()
}

/// Checks a transition's values against the schema's ranges.
pub(crate) fn validate_transition(t: &Transition) -> Result<(), StoreError> {
    if t.progress > 100 {
        return Err(StoreError::invalid(format!(
            "progress {} must be between 0 and 100",
            t.progress
        )));
    }
    if t.to.as_str().is_empty() {
        return Err(StoreError::invalid("target state must not be empty"));
    }
    to_i64(t.processing_time_ms, "processing_time_ms")?;
    to_i64(t.duration_ms, "duration_ms")?;
    if let Some(settle) = &t.settle
        && settle.lease.tenant.is_empty()
    {
        return Err(StoreError::invalid("lease tenant must not be empty"));
    }
    if let Some(spec) = &t.enqueue {
        prepare_work(spec)?;
    }
    Ok(())
}

/// What a backend knows about a work item when checking a lease.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeaseState {
    /// The tenant owning the item.
    pub tenant: String,
    /// The item's order.
    pub order_id: OrderId,
    /// The worker holding the lease, if leased.
    pub owner: Option<String>,
    /// How many times the item was claimed.
    pub attempts: u32,
    /// When the lease lapses.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Whether `lease` still holds on `state` at `now` (same tenant, worker and
/// attempt, not expired).
pub(crate) fn lease_holds(state: &LeaseState, lease: &super::Lease, now: DateTime<Utc>) -> bool {
    state.tenant == lease.tenant
        && state.owner.as_deref() == Some(lease.worker.as_str())
        && state.attempts == lease.attempt
        && state.expires_at.is_some_and(|e| e > now)
}

/// The [`StoreError::LeaseLost`] error for `lease`.
pub(crate) fn lease_lost(lease: &super::Lease) -> StoreError {
    StoreError::LeaseLost {
        work_id: lease.id,
        worker: lease.worker.clone(),
        attempt: lease.attempt,
    }
}

/// A work item to move back to pending at `run_at`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reschedule {
    /// The item.
    pub id: WorkId,
    /// When it is due again.
    pub run_at: DateTime<Utc>,
    /// A new payload, if any.
    pub payload: Option<Value>,
    /// The time of the change.
    pub at: DateTime<Utc>,
}

/// A work item to insert if the order has none of its kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Enqueue {
    /// The tenant.
    pub tenant: String,
    /// The order.
    pub order_id: OrderId,
    /// The item.
    pub spec: WorkSpec,
    /// Whether the order is viral (ordering within the lane).
    pub viral: bool,
    /// The order's `created_at` (ordering within the lane).
    pub order_created_at: DateTime<Utc>,
    /// The time of the change.
    pub at: DateTime<Utc>,
}

/// The writes a batch of transitions makes, to apply in this order within
/// one transaction.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// The changed orders, in the order first changed.
    pub changed: Vec<OrderId>,
    /// The final state of each changed order, in the order first changed:
    /// empty until [`Effects::take_orders`] copies them out of the batch's
    /// working set (a store that keeps that set moves it instead).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub orders: Vec<StoredOrder>,
    /// The history rows, with their tenant.
    pub history: Vec<(String, HistoryEntry)>,
    /// The orders that shipped in this batch (see [`ships`]) with the time
    /// of the step: each one's `shipped_at`, set only where none is stored
    /// (the first shipment is kept).
    pub shipped: Vec<(OrderId, DateTime<Utc>)>,
    /// Work items to delete.
    pub complete: Vec<WorkId>,
    /// Work items to move back to pending.
    pub reschedule: Vec<Reschedule>,
    /// Orders whose priority or impact changed: all their items move to
    /// this lane with this viral flag.
    pub requeue: Vec<(OrderId, Priority, bool)>,
    /// Work items to insert if absent.
    pub enqueue: Vec<Enqueue>,
}

/// Resolves a batch of `(tenant, transition)`s, in order, against the
/// current rows: `orders` must hold every existing order the batch names
/// (of any tenant) and `leases` every existing work item its `settle`s
/// name. Both are updated as the batch goes, so a later transition of the
/// same order sees the earlier one. Returns one result per transition and
/// the writes of the successful ones.
pub(crate) fn resolve(
    items: &[(&str, &Transition)],
    orders: &mut FastMap<OrderId, StoredOrder>,
    leases: &mut FastMap<WorkId, LeaseState>,
) -> (Vec<Result<StoredOrder, StoreError>>, Effects) {
    let mut effects = Effects::default();
    let mut changed: Vec<OrderId> = Vec::new();
    let mut requeue: Vec<OrderId> = Vec::new();
    let mut results = Vec::with_capacity(items.len());
    for (tenant, t) in items {
        let result = resolve_one(tenant, t, orders, leases, &mut effects);
        if let Ok(order) = &result {
            if !changed.contains(&order.id) {
                changed.push(order.id);
            }
            if (t.priority.is_some() || t.impact.is_some()) && !requeue.contains(&order.id) {
                requeue.push(order.id);
            }
        }
        results.push(result);
    }
    effects.requeue = requeue
        .iter()
        .filter_map(|id| orders.get(id))
        .map(|o| (o.id, o.order.priority, is_viral(o.order.impact)))
        .collect();
    for e in &mut effects.enqueue {
        if let Some(o) = orders.get(&e.order_id) {
            e.viral = is_viral(o.order.impact);
        }
    }
    effects.changed = changed;
    (results, effects)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Effects {
    /// Fills [`Effects::orders`] with the final state of the changed
    /// orders, copied from the batch's working set (`resolve`'s `orders`).
    pub(crate) fn take_orders(&mut self, orders: &FastMap<OrderId, StoredOrder>) {
        self.orders = self
            .changed
            .iter()
            .filter_map(|id| orders.get(id).cloned())
            .collect();
    }
}

/// Whether `t` ships `order`: it takes the order from a status that has
/// not shipped (`Processing`, `Manual Review`) to one that has (`Shipped`,
/// `Delivered`: [`AutomationStatus::is_shipped`]). The status is the
/// machine's property of the state, so this holds for any machine,
/// whatever it names its states. Backends record the first such step's
/// time as the order's `shipped_at` (the dashboard's time to ship).
///
/// [`AutomationStatus::is_shipped`]: crate::model::AutomationStatus::is_shipped
pub(crate) fn ships(order: &StoredOrder, t: &Transition) -> bool {
    !order.order.automation_status.is_shipped() && t.automation_status.is_shipped()
}

/// `order` as `t` leaves it (version, state, progress, status, processing
/// time, priority and impact, times), assuming `t`'s checks pass: what a
/// store records, and what a worker continuing a chain of steps works on.
pub(crate) fn apply(order: &mut StoredOrder, t: &Transition) {
    let at = trunc(t.at);
    order.version += 1;
    order.terminal = t.terminal;
    let o = &mut order.order;
    o.previous_state = Some(std::mem::replace(&mut o.current_state, t.to.clone()));
    o.flow_progress = t.progress;
    o.automation_status = t.automation_status;
    o.processing_time_ms = t.processing_time_ms;
    if let Some(p) = t.priority {
        o.priority = p;
    }
    if let Some(i) = t.impact {
        o.impact = i;
    }
    o.updated_at = Some(at);
    o.state_changed_at = Some(at);
}

fn resolve_one(
    tenant: &str,
    t: &Transition,
    orders: &mut FastMap<OrderId, StoredOrder>,
    leases: &mut FastMap<WorkId, LeaseState>,
    effects: &mut Effects,
) -> Result<StoredOrder, StoreError> {
    validate_transition(t)?;
    let enqueue = t.enqueue.as_ref().map(prepare_work).transpose()?;
    let at = trunc(t.at);
    let current = orders
        .get_mut(&t.order_id)
        .filter(|o| o.order.user_id.as_deref() == Some(tenant))
        .ok_or_else(|| StoreError::order_not_found(t.order_id))?;
    if let Some(settle) = &t.settle {
        let lease = &settle.lease;
        let holds = lease.tenant == tenant
            && leases
                .get(&lease.id)
                .is_some_and(|s| s.order_id == t.order_id && lease_holds(s, lease, at));
        if !holds {
            return Err(lease_lost(lease));
        }
    }
    if current.order.current_state != t.expected_state
        || t.expected_version.is_some_and(|v| v != current.version)
    {
        return Err(StoreError::Conflict {
            order_id: t.order_id,
            expected_state: t.expected_state.to_string(),
            expected_version: t.expected_version,
            actual_state: current.order.current_state.to_string(),
            actual_version: current.version,
        });
    }
    // The working copy is the caller's; change it in place.
    let next = current;
    if ships(next, t) && !effects.shipped.iter().any(|(id, _)| *id == t.order_id) {
        effects.shipped.push((t.order_id, at));
    }
    apply(next, t);
    effects.history.push((
        tenant.to_owned(),
        HistoryEntry {
            order_id: t.order_id,
            version: next.version,
            from: t.expected_state.clone(),
            to: t.to.clone(),
            reason: t.reason.clone(),
            automated: t.automated,
            duration_ms: t.duration_ms,
            actions_executed: t.actions_executed.clone(),
            error_message: t.error_message.clone(),
            actor: t.actor.clone(),
            pack_version: t.pack_version.clone(),
            at,
        },
    ));
    if let Some(settle) = &t.settle {
        let id = settle.lease.id;
        match &settle.then {
            AfterStep::Hold => {}
            AfterStep::Complete => {
                leases.remove(&id);
                effects.complete.push(id);
            }
            AfterStep::Reschedule { run_at, payload } => {
                if let Some(s) = leases.get_mut(&id) {
                    s.owner = None;
                    s.expires_at = None;
                }
                effects.reschedule.push(Reschedule {
                    id,
                    run_at: trunc(*run_at),
                    payload: payload.clone(),
                    at,
                });
            }
        }
    }
    if let Some(spec) = enqueue {
        effects.enqueue.push(Enqueue {
            tenant: tenant.to_owned(),
            order_id: t.order_id,
            spec,
            viral: is_viral(next.order.impact),
            order_created_at: next.order.created_at,
            at,
        });
    }
    Ok(next.clone())
}

/// The dashboard's windows, in milliseconds.
pub(crate) struct Window {
    /// `now - window`.
    pub start: i64,
    /// `now`.
    pub end: i64,
    /// `now - 2·window`.
    pub prev_start: i64,
    /// The window's length.
    pub len: i64,
}

impl Window {
    /// The window's length in minutes.
    pub fn minutes(&self) -> f64 {
        self.len as f64 / 60_000.0
    }
}

/// The dashboard windows for `now` and `window` (which must be positive).
pub(crate) fn window_bounds(now: DateTime<Utc>, window: TimeDelta) -> Result<Window, StoreError> {
    let len = window.num_milliseconds();
    if len <= 0 {
        return Err(StoreError::invalid(
            "the dashboard window must be at least 1 ms",
        ));
    }
    let end = ms(now);
    let start = end.checked_sub(len);
    let prev_start = start.and_then(|s| s.checked_sub(len));
    match (start, prev_start) {
        (Some(start), Some(prev_start)) => Ok(Window {
            start,
            end,
            prev_start,
            len,
        }),
        _ => Err(StoreError::invalid("the dashboard window is out of range")),
    }
}

/// The change from `prev` to `now` in percent (see [`super::Dashboard`]).
fn change_pct(now: Option<f64>, prev: Option<f64>) -> Option<f64> {
    match (now, prev) {
        (Some(n), Some(p)) if p != 0.0 => Some(100.0 * (n - p) / p),
        _ => None,
    }
}

/// The aggregates a backend reads for the dashboard; [`dashboard`] does the
/// arithmetic.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    /// Orders by current state.
    pub by_state: BTreeMap<String, u64>,
    /// Active orders by priority (missing priorities count 0).
    pub by_priority: BTreeMap<Priority, u64>,
    /// Active orders with a `VIRAL` impact.
    pub viral: u64,
    /// History rows in the window.
    pub transitions: u64,
    /// Of those, automated ones without an error.
    pub healthy: u64,
    /// Orders with a history row without an error in the window.
    pub processed: u64,
    /// The mean step duration in the window (ms).
    pub avg_ms: Option<f64>,
    /// The mean step duration in the previous window (ms).
    pub prev_avg_ms: Option<f64>,
    /// Orders whose `shipped_at` is in the window.
    pub shipped: u64,
    /// Their mean time to ship, `shipped_at - created_at` clamped at 0 (ms).
    pub ship_ms: Option<f64>,
    /// The same mean over the orders shipped in the previous window (ms).
    pub prev_ship_ms: Option<f64>,
}

/// What a backend reads for the dashboard: the [`Figures`] over the windows
/// `w` and the tenant's most urgent active orders (at most
/// [`MOST_URGENT_LIMIT`](super::MOST_URGENT_LIMIT), most urgent first).
/// [`DashboardStore`](super::DashboardStore) is implemented once on top of
/// it, for every backend.
pub(crate) trait Aggregates: Send + Sync {
    /// The aggregates of `tenant` over the windows `w`, read consistently.
    fn aggregates(
        &self,
        tenant: &str,
        w: &Window,
    ) -> impl std::future::Future<Output = Result<(Figures, Vec<StoredOrder>), StoreError>> + Send;
}

/// The dashboard of `figures` over the window `w` ending at `now`, with
/// its most urgent active orders (see [`Dashboard`] for the definitions).
pub(crate) fn dashboard(
    now: DateTime<Utc>,
    w: &Window,
    figures: Figures,
    most_urgent: Vec<StoredOrder>,
) -> Dashboard {
    let Figures {
        by_state,
        mut by_priority,
        viral,
        transitions,
        healthy,
        processed,
        avg_ms,
        prev_avg_ms,
        shipped,
        ship_ms,
        prev_ship_ms,
    } = figures;
    for p in Priority::ALL {
        by_priority.entry(*p).or_insert(0);
    }
    Dashboard {
        now: trunc(now),
        window_ms: w.len,
        orders_processed_per_minute: processed as f64 / w.minutes(),
        automation_health_pct: (transitions > 0)
            .then(|| 100.0 * healthy as f64 / transitions as f64),
        orders_shipped: shipped,
        avg_time_to_ship_s: ship_ms.map(|a| a / 1000.0),
        avg_time_to_ship_change_pct: change_pct(ship_ms, prev_ship_ms),
        avg_step_time_s: avg_ms.map(|a| a / 1000.0),
        avg_step_time_change_pct: change_pct(avg_ms, prev_avg_ms),
        orders_by_state: by_state,
        orders_by_priority: by_priority,
        viral_orders: viral,
        most_urgent,
    }
}

/// The error for scheduling an item another worker holds.
pub(crate) fn leased_error(id: WorkId) -> StoreError {
    StoreError::invalid(format!(
        "work item {id} is leased; only its holder can settle it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_deterministic_per_tenant_and_sort_by_creation() {
        let t: DateTime<Utc> = "2025-06-12T10:00:00.250Z".parse().unwrap();
        let later = t + TimeDelta::milliseconds(1);
        let a = derived_order_id("creator-1", "576461413038785752", t);
        assert_eq!(a, derived_order_id("creator-1", "576461413038785752", t));
        assert_ne!(a, derived_order_id("creator-2", "576461413038785752", t));
        assert_ne!(a, derived_order_id("creator-1", "576461413038785753", t));
        assert_eq!(a.get_version_num(), 7);
        assert!(
            a < derived_order_id("creator-0", "0", later),
            "time-ordered"
        );
        // Before the epoch: clamped, never a panic.
        let old = DateTime::from_timestamp_millis(-5).unwrap();
        assert_eq!(derived_order_id("c", "o", old).get_version_num(), 7);
    }

    #[test]
    fn times_and_numbers_convert_without_panics() {
        let t: DateTime<Utc> = "2025-06-12T10:00:00.123456Z".parse().unwrap();
        assert_eq!(trunc(t).to_rfc3339(), "2025-06-12T10:00:00.123+00:00");
        assert_eq!(from_ms(ms(t)).unwrap(), trunc(t));
        assert!(from_ms(i64::MAX).is_err());
        assert!(to_i64(u64::MAX, "x").is_err());
        assert!(to_u64(-1, "x").is_err());
        assert!(lease_expiry(t, TimeDelta::zero()).is_err());
        assert!(lease_expiry(DateTime::<Utc>::MAX_UTC, TimeDelta::days(1)).is_err());
        assert!(window_bounds(t, TimeDelta::zero()).is_err());
        assert!(window_bounds(DateTime::<Utc>::MIN_UTC, TimeDelta::MAX).is_err());
        assert_eq!(change_pct(Some(3.0), Some(2.0)), Some(50.0));
        assert_eq!(change_pct(Some(3.0), Some(0.0)), None);
    }
}
