//! The records the [`Store`](super::Store) reads and writes.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::Value;

use super::JsonText;
use crate::model::{AutomationStatus, Impact, Order, Priority, StateName};

/// An order's id (assigned on ingest).
pub type OrderId = uuid::Uuid;

/// A work item's id in the durable queue.
pub type WorkId = i64;

/// Which tenants a cross-order operation (a queue claim or summary) covers.
///
/// Tenant-facing code always names its tenant. Workers serve every creator
/// and claim with [`TenantScope::All`]; on PostgreSQL that is only possible
/// under the worker role (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantScope<'a> {
    /// One tenant's rows only.
    Tenant(&'a str),
    /// Every tenant's rows (workers).
    All,
}

impl TenantScope<'_> {
    /// Whether `tenant`'s rows are in scope.
    pub fn includes(&self, tenant: &str) -> bool {
        match self {
            TenantScope::Tenant(t) => *t == tenant,
            TenantScope::All => true,
        }
    }
}

/// An order as stored: the order, its optimistic-concurrency version and
/// whether its state is terminal.
///
/// The stored `order` always has `id` and `user_id` (the tenant) set, and
/// `updated_at` / `state_changed_at` filled; its times have millisecond
/// precision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredOrder {
    /// The order's id (equal to `order.id`).
    pub id: OrderId,
    /// Incremented by every transition; 0 for a new order. It equals the
    /// number of history rows.
    pub version: u64,
    /// Whether the order is in a terminal state (set by the transition that
    /// entered the state, from the machine). Terminal orders are not active.
    pub terminal: bool,
    /// The order.
    pub order: Order,
}

/// What [`OrderStore::create_order`](super::OrderStore::create_order) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Created {
    /// The stored order: the new one, or the one that already had this
    /// `(tenant, tiktok_order_id)`.
    pub order: StoredOrder,
    /// `true` if this call stored it; `false` for a duplicate.
    pub created: bool,
}

/// An order to create, with the work item that starts its workflow (stored
/// in the same transaction, so an ingested order is never left without work).
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// The order. Its `id`, if unset, is derived from the tenant,
    /// `tiktok_order_id` and `created_at` (a UUID v7 whose random part is a
    /// hash), so every backend assigns the same id, and ids sort by creation time.
    pub order: Order,
    /// Work to enqueue if (and only if) the order is new.
    pub work: Option<WorkSpec>,
    /// The rules' decision at ingest, stored with the order if (and only
    /// if) it is new, returned by
    /// [`OrderStore::order_with_history`](super::OrderStore::order_with_history).
    /// The engine writes `{"pack_version", "rules", "priority", "impact"}`;
    /// the store keeps any JSON text unchanged.
    pub decision: Option<JsonText>,
}

/// A work item to enqueue for an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkSpec {
    /// What to do (`advance`, `delivery_check`, …); at most one pending item
    /// per `(order, kind)`.
    pub kind: String,
    /// The priority lane.
    pub lane: Priority,
    /// When the item becomes due.
    pub run_at: DateTime<Utc>,
    /// Free-form data for the worker; stored as JSON, returned unchanged.
    pub payload: Value,
}

/// One item of [`QueueStore::schedule_many`](super::QueueStore::schedule_many):
/// the arguments of one [`QueueStore::schedule`](super::QueueStore::schedule)
/// call.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// The order.
    pub order_id: OrderId,
    /// Its work, as for `schedule`.
    pub work: WorkSpec,
    /// The time of the call (the item's `updated_at`, and the time leases
    /// are checked against).
    pub now: DateTime<Utc>,
}

/// One state transition to write atomically: the order's new state fields,
/// and one history row. Optionally settles the lease it ran under and
/// enqueues follow-up work, in the same transaction.
///
/// The engine builds it from the machine's transition plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The order.
    pub order_id: OrderId,
    /// The state the caller read; the transition fails with
    /// [`StoreError::Conflict`](super::StoreError::Conflict) if the order is
    /// elsewhere.
    pub expected_state: StateName,
    /// The version the caller read, if it wants the stricter check.
    pub expected_version: Option<u64>,
    /// The new state.
    pub to: StateName,
    /// Whether the new state is terminal.
    pub terminal: bool,
    /// The order's `flow_progress` in the new state (0..=100).
    pub progress: u8,
    /// The order's `automation_status` in the new state.
    pub automation_status: AutomationStatus,
    /// The order's total `processing_time_ms` after this step.
    pub processing_time_ms: u64,
    /// A new priority (lane), if the step changes it; the order's queued
    /// work moves to that lane.
    pub priority: Option<Priority>,
    /// A new impact, if the step changes it.
    pub impact: Option<Impact>,
    /// Why (the transition's name, a cancellation reason, …).
    pub reason: Option<String>,
    /// Whether the engine took the step (as opposed to a person).
    pub automated: bool,
    /// How long the step took.
    pub duration_ms: u64,
    /// The actions executed, with their outcome, as JSON text (stored and
    /// returned unchanged).
    pub actions_executed: JsonText,
    /// The error, for a step that failed.
    pub error_message: Option<String>,
    /// Who took the step when a person did (the name of the API token used);
    /// `None` for the engine's own steps.
    pub actor: Option<String>,
    /// The version (content hash) of the rule pack of the engine that took
    /// the step, so one can tell which pack decided what.
    pub pack_version: Option<String>,
    /// When the step happened (`updated_at`, `state_changed_at`, the history
    /// row's time, and the time leases are checked against).
    pub at: DateTime<Utc>,
    /// The lease the step ran under: checked (a lost lease fails the whole
    /// transition with [`StoreError::LeaseLost`](super::StoreError::LeaseLost))
    /// and settled as said.
    pub settle: Option<Settle>,
    /// Work to enqueue for the order (insert-if-absent on `(order, kind)`),
    /// after the settled item is removed.
    pub enqueue: Option<WorkSpec>,
}

/// How a transition settles the lease it ran under.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    /// The lease (from [`QueueStore::claim`](super::QueueStore::claim)).
    pub lease: Lease,
    /// What happens to the work item.
    pub then: AfterStep,
}

/// What happens to a work item once its step is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterStep {
    /// The item is done and removed.
    Complete,
    /// The item stays leased to the caller, unchanged: the transition is one
    /// of a chain of steps the same batch goes on to record (the lease is
    /// checked all the same; the chain's last transition settles it).
    Hold,
    /// The item stays, unleased, due again at `run_at` (the next step, or a
    /// later check); `payload` replaces the stored one when given.
    Reschedule {
        /// When it is due again.
        run_at: DateTime<Utc>,
        /// A new payload, if any.
        payload: Option<Value>,
    },
}

/// One row of an order's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// The order.
    pub order_id: OrderId,
    /// The order version this transition produced (1 for the first);
    /// unique per order, so a step is never recorded twice.
    pub version: u64,
    /// The state left.
    pub from: StateName,
    /// The state entered.
    pub to: StateName,
    /// Why.
    pub reason: Option<String>,
    /// Whether the engine took the step.
    pub automated: bool,
    /// How long the step took.
    pub duration_ms: u64,
    /// The actions executed, with their outcome, as JSON text
    /// ([`JsonText::to_value`] parses it).
    pub actions_executed: JsonText,
    /// The error of a failed step.
    pub error_message: Option<String>,
    /// Who took the step when a person did (the API token's name).
    pub actor: Option<String>,
    /// The version (content hash) of the rule pack of the engine that took
    /// the step.
    pub pack_version: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// An order with its full history, read consistently.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderWithHistory {
    /// The order.
    pub order: StoredOrder,
    /// Its transitions, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The rules' decision at ingest ([`NewOrder::decision`]), if one was
    /// stored.
    pub decision: Option<JsonText>,
}

/// A claimed work item: what to do, and the lease to do it under.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkItem {
    /// The order it is for.
    pub order_id: OrderId,
    /// What to do.
    pub kind: String,
    /// Its lane.
    pub lane: Priority,
    /// Whether the order's impact is `VIRAL`.
    pub viral: bool,
    /// The payload, unchanged.
    pub payload: Value,
    /// The lease; pass it to renew, complete, release or a transition.
    pub lease: Lease,
}

/// A worker's exclusive hold on a work item until `expires_at`.
///
/// `attempt` counts the item's claims: a worker whose lease lapsed and who
/// claims the same item again gets a new attempt, so its old lease stays lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The work item.
    pub id: WorkId,
    /// The tenant owning the item.
    pub tenant: String,
    /// The worker holding the lease.
    pub worker: String,
    /// Which claim of the item this is (1 for the first).
    pub attempt: u32,
    /// When the lease lapses (exclusive: at `expires_at` it is lost).
    pub expires_at: DateTime<Utc>,
}

/// How many items to claim from one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaneLimit {
    /// The lane.
    pub lane: Priority,
    /// At most this many items.
    pub limit: usize,
}

/// A claim of due work ([`QueueStore::claim`](super::QueueStore::claim)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaimRequest<'a> {
    /// Who claims (stored with the lease).
    pub worker: &'a str,
    /// The lanes to claim from, each with its own limit; results come lane
    /// by lane in this order.
    pub lanes: &'a [LaneLimit],
    /// How long the leases last.
    pub lease: TimeDelta,
    /// The current time: items with `run_at <= now` are due.
    pub now: DateTime<Utc>,
}

/// The queue's state at a moment ([`QueueStore::queue_summary`](super::QueueStore::queue_summary)).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct QueueSummary {
    /// Items claimable now, per lane (every lane present), including those
    /// whose lease expired.
    pub due: BTreeMap<Priority, u64>,
    /// Items leased, lease not expired.
    pub leased: u64,
    /// Items whose lease expired without being settled (a worker died or
    /// stalled); they are claimable and counted in `due` too.
    pub expired_leases: u64,
    /// Items not leased whose `run_at` is in the future.
    pub scheduled: u64,
    /// The earliest time any item is or becomes due (a leased item's time is
    /// its lease expiry); `None` when the queue is empty.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// What a scheduler asks of the queue ([`QueueStore::queue_due`](super::QueueStore::queue_due)):
/// the part of [`QueueSummary`] that does not count the items scheduled for
/// later, so a backend answers it from an index without reading them all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QueueDue {
    /// Items claimable now, per lane (every lane present), including those
    /// whose lease expired.
    pub due: BTreeMap<Priority, u64>,
    /// The earliest time any item is or becomes due (a leased item's time is
    /// its lease expiry); `None` when the queue is empty.
    pub next_run_at: Option<DateTime<Utc>>,
}

impl From<QueueSummary> for QueueDue {
    fn from(s: QueueSummary) -> Self {
        QueueDue {
            due: s.due,
            next_run_at: s.next_run_at,
        }
    }
}

/// The dashboard figures of `model.md` (the plan's command center) for one
/// tenant, as [`DashboardStore::dashboard`](super::DashboardStore::dashboard) computes them
/// with aggregate queries. The *window* is `(now - window, now]`; the
/// *previous window* is `(now - 2·window, now - window]`. A history row
/// *succeeded* when it has no error message.
///
/// An order is *received* at its `created_at` (when it was placed, as it
/// came in: TikTok's `create_time`) and *shipped* at its first transition
/// into a state whose `automation_status` is `Shipped` or `Delivered`
/// ([`AutomationStatus::is_shipped`](crate::model::AutomationStatus::is_shipped)):
/// a property the machine gives every state, so the definition holds for
/// any machine, whatever its states are called. Each backend records that
/// time with the transition (the order's `shipped_at`, never changed
/// afterwards); an order created in such a state, or that shipped before
/// the store recorded it (schema 11 on SQLite, 10 on PostgreSQL), has none.
/// Its *time to ship* is `shipped_at - created_at`, 0 if negative (clock
/// skew between the shop and this host).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dashboard {
    /// The end of the window.
    pub now: DateTime<Utc>,
    /// The window's length in milliseconds.
    pub window_ms: i64,
    /// Distinct orders with at least one succeeded transition in the window,
    /// divided by the window's length in minutes.
    pub orders_processed_per_minute: f64,
    /// 100 × (transitions in the window that were automated and succeeded) /
    /// (all transitions in the window); `None` when the window has none.
    pub automation_health_pct: Option<f64>,
    /// Orders that shipped in the window (the orders
    /// [`avg_time_to_ship_s`](Self::avg_time_to_ship_s) is the mean over).
    pub orders_shipped: u64,
    /// The mean time to ship, in seconds, of the orders that shipped in the
    /// window; `None` when none did.
    pub avg_time_to_ship_s: Option<f64>,
    /// 100 × (mean − previous window's mean) / previous window's mean, the
    /// previous mean over the orders that shipped in the previous window;
    /// `None` when either window has no shipment or the previous mean is 0.
    pub avg_time_to_ship_change_pct: Option<f64>,
    /// The engine's time per step: the mean `duration_ms` of the
    /// transitions in the window (the step's actions, not the wait between
    /// steps), in seconds; `None` when the window has none.
    pub avg_step_time_s: Option<f64>,
    /// 100 × (mean − previous window's mean) / previous window's mean;
    /// `None` when either window has no transition or the previous mean is 0.
    pub avg_step_time_change_pct: Option<f64>,
    /// Every order of the tenant (terminal ones included), by current state.
    pub orders_by_state: BTreeMap<String, u64>,
    /// Active (non-terminal) orders by priority; every priority present.
    pub orders_by_priority: BTreeMap<Priority, u64>,
    /// Active orders whose impact is `VIRAL`.
    pub viral_orders: u64,
    /// The 50 most urgent active orders, as [`OrderStore::active_orders`](super::OrderStore::active_orders) orders them.
    pub most_urgent: Vec<StoredOrder>,
}

/// How many orders [`Dashboard::most_urgent`] lists.
pub const MOST_URGENT_LIMIT: usize = 50;
