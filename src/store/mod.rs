//! Durable storage: the [`Store`] trait, its backends, and [`open`], which
//! picks a backend from a URL at run time.
//!
//! | URL | backend | notes |
//! |---|---|---|
//! | `memory:` | [`MemoryStore`] | a mutex-guarded struct; deterministic; for tests and simulation |
//! | `sqlite://PATH[?synchronous=full\|normal&busy_timeout_ms=N]` | `SqliteStore` (feature `sqlite`, default) | WAL, foreign keys, busy timeout, embedded migrations applied on open |
//! | `postgres://USER@HOST[:PORT]/DB[?schema=NAME&max_connections=N&…]` | `PostgresStore` (feature `postgres`, default) | many processes on one database; tenants isolated by row-level security; migrations applied on open |
//!
//! # Contract (every backend; `tests/store_conformance.rs` checks it)
//!
//! - **Tenants.** Every method is scoped to a tenant (the order's
//!   `user_id`): one tenant never reads, changes or learns of another's
//!   orders, history, metrics, rule statistics, webhooks or work. Another
//!   tenant's record is reported exactly like an absent one. Only the queue's
//!   [`Store::claim`] and [`Store::queue_summary`] take a [`TenantScope`],
//!   which may be [`TenantScope::All`] for workers serving every creator.
//! - **Time comes from the caller** (`now`, `at`, `run_at` arguments); no
//!   store reads the system clock. Times are kept with millisecond precision
//!   (finer parts are truncated on write, by every backend alike).
//! - **Exact values.** Prices and metric values are exact decimals (TEXT in
//!   SQLite); JSON columns (viral indicators, actions executed, payloads,
//!   dimensions) come back equal to what was stored.
//! - **Atomicity.** Each method is one transaction: an error means nothing
//!   it would have written is visible. A transition's order update and its
//!   history row are written together or not at all.
//! - **Optimistic concurrency.** A [`Transition`] names the state (and
//!   optionally the version) the caller read; if the order moved on, the
//!   transition fails with [`StoreError::Conflict`] and writes nothing. Each
//!   history row carries the version it produced, unique per order, so no
//!   step is ever recorded twice.
//! - **Batches group-commit.** [`Store::transitions`] and
//!   [`Store::create_orders`] write many items in one transaction, each
//!   item still checked on its own (per-item results); a database failure
//!   fails the whole batch and writes nothing.
//!
//! # The work queue
//!
//! One row per `(order, kind)`, in a lane (the order's priority). An item is
//! *claimable* when `run_at <= now`. Claiming sets a lease (worker, attempt,
//! expiry) **and moves `run_at` to the lease's expiry**, so a leased item is
//! not claimable until its lease lapses, and then it is claimable again by
//! anyone, with no sweeper process. Within a lane, items go VIRAL first, then
//! oldest order `created_at`, then oldest item. A claim names its lanes with
//! a limit each, so a runtime keeps per-lane concurrency (no starvation
//! across lanes) in one round trip. `attempt` counts claims: a lease is
//! valid only for its worker, its attempt and until its expiry, so a worker
//! whose lease lapsed gets [`StoreError::LeaseLost`] from renew, complete,
//! release, or a transition settling it, even if no one else took the item.
//! A [`Transition`] can settle its lease (complete, or reschedule for the
//! next step) and enqueue follow-up work in the same transaction as the
//! state change: a worker that dies mid-step loses nothing, and a step is
//! recorded once.
//!
//! # Schema
//!
//! The SQLite schema lives in `src/store/sqlite/migrations/` (one `.sql` file
//! per version, embedded into the binary). Every table carries the tenant
//! (`user_id`), and child tables reference `orders (user_id, id)`, so the
//! database itself refuses a history row, metric or work item whose tenant
//! differs from its order's. A `creatorflow_schema` table records the
//! applied versions; a database newer than the binary is refused with
//! [`StoreError::SchemaTooNew`] before anything is written.
//!
//! The PostgreSQL schema (`src/store/postgres/migrations/`) has the same
//! tables and the same meaning, in a schema of its own (`?schema=`, default
//! `creatorflow`), with its own `creatorflow_schema` version table.
//!
//! # PostgreSQL: isolation the database enforces
//!
//! On PostgreSQL the tenant scoping above is not only `WHERE user_id = $1`
//! in the store's queries: every table has row-level security enabled and
//! forced, with policies comparing `user_id` to the transaction-local
//! setting `creatorflow.tenant`, and the store runs every query as
//! `creatorflow_app` (never as the owner, never a role that bypasses the
//! policies), setting the tenant at the start of each transaction. A query
//! that forgot its `WHERE user_id` still sees one tenant only. Cross-tenant
//! queue claims ([`TenantScope::All`]) run as `creatorflow_worker`, which
//! sees every tenant's queue rows, may change only their lease columns and
//! cannot read orders; rule statistics are written as `creatorflow_admin`.
//! Claims lock with `FOR UPDATE SKIP LOCKED`, so several processes share the
//! queue without waiting on or taking each other's items. `PostgresStore`'s
//! docs say how [`open`] connects (the URL's user owns the schema and runs
//! the migrations; the store switches to the application role).

mod any;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod decode;
mod error;
mod fault;
mod inbox;
pub(crate) mod logic;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod shared;
#[cfg(feature = "sqlite")]
mod sqlite;
mod types;
mod url;

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::Order;
use crate::rules::RuleStats;

/// Re-exported from [`crate::model`], where it lives (the core's layer).
pub use crate::model::JsonText;
pub use any::AnyStore;
pub use error::StoreError;
#[doc(hidden)]
pub use fault::{FaultPoint, InjectFault};
pub use inbox::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent};
pub(crate) use logic::apply as apply_transition;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use types::{
    AfterStep, ClaimRequest, Created, Dashboard, HistoryEntry, LaneLimit, Lease, MOST_URGENT_LIMIT,
    MetricQuery, NewOrder, OrderId, OrderWithHistory, QueueSummary, Settle, StoredOrder,
    TenantScope, Transition, WorkId, WorkItem, WorkSpec, WorkflowMetric,
};
pub use url::redact as redact_url;

/// Opens the store a URL names: `memory:`, `sqlite://PATH` (created if
/// missing; migrations applied) or `postgres://…` (migrations applied by the
/// URL's user, queries run under the application role; see `PostgresStore`).
///
/// Errors: [`StoreError::BadUrl`] for a URL it cannot read,
/// [`StoreError::NotBuilt`] for a backend missing from this build,
/// [`StoreError::Open`] when the database cannot be opened (the message
/// names the URL with its password redacted), [`StoreError::SchemaTooNew`]
/// for a database written by a newer CreatorFlow.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use creatorflow::{Order, store::{self, Store, StoreError}};
///
/// let store = store::open("memory:").await?;
/// let order = Order::from_json(r#"{"tiktok_order_id":"576461413038785752",
///     "customer_handle":"@ana","product_name":"Lamp","product_id":"p1",
///     "quantity":1,"price":"250.00","created_at":"2025-06-12T10:00:00Z"}"#).unwrap();
/// let first = store.create_order("creator-1", &order).await?;
/// let again = store.create_order("creator-1", &order).await?;
/// assert!(first.created && !again.created);
/// assert_eq!(first.order.id, again.order.id);
/// // Another tenant does not see it.
/// assert!(store.get_order("creator-2", first.order.id).await?.is_none());
///
/// // Nothing listens on port 1: a typed error naming the URL, password redacted.
/// let err = store::open("postgres://app:hunter2@127.0.0.1:1/cf").await.unwrap_err();
/// assert!(matches!(err, StoreError::Open { .. }));
/// assert!(err.to_string().contains("postgres://app:***@127.0.0.1:1/cf"));
/// assert!(!err.to_string().contains("hunter2"));
/// # Ok::<(), StoreError>(())
/// # }).unwrap();
/// ```
pub async fn open(url: &str) -> Result<AnyStore, StoreError> {
    match url::parse(url)? {
        url::Target::Memory => Ok(AnyStore::Memory(MemoryStore::new())),
        #[cfg(feature = "sqlite")]
        url::Target::Sqlite(target) => SqliteStore::open_target(&target, &url::redact(url))
            .await
            .map(AnyStore::Sqlite),
        #[cfg(not(feature = "sqlite"))]
        url::Target::Sqlite(_) => Err(StoreError::NotBuilt {
            url: url::redact(url),
            scheme: "sqlite",
            detail: "enable the cargo feature `sqlite`",
        }),
        #[cfg(feature = "postgres")]
        url::Target::Postgres(target) => PostgresStore::open_target(&target, &url::redact(url))
            .await
            .map(AnyStore::Postgres),
        #[cfg(not(feature = "postgres"))]
        url::Target::Postgres(_) => Err(StoreError::NotBuilt {
            url: url::redact(url),
            scheme: "postgres",
            detail: "enable the cargo feature `postgres`",
        }),
    }
}

/// Durable storage for the workflow runtime: orders and their history,
/// dashboard figures, metrics, rule statistics, webhook de-duplication and
/// the work queue. See the [module docs](self) for the contract every
/// backend keeps.
///
/// Methods return `impl Future + Send`, so a store can be shared across
/// tokio tasks (`Arc<S>`); implementations may write `async fn`.
pub trait Store: Send + Sync {
    // ---- orders -----------------------------------------------------------

    /// Stores `order` for `tenant` unless the tenant already has an order
    /// with its `tiktok_order_id`, in which case that one is returned with
    /// `created: false` (idempotent ingest). See [`Store::create_orders`].
    fn create_order(
        &self,
        tenant: &str,
        order: &Order,
    ) -> impl Future<Output = Result<Created, StoreError>> + Send {
        let batch = [NewOrder {
            order: order.clone(),
            work: None,
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

    // ---- transitions ------------------------------------------------------

    /// Applies one transition atomically (see [`Store::transitions`]).
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

    // ---- dashboard, metrics, rules, webhooks ------------------------------

    /// The dashboard figures of `model.md` for `tenant` over the window
    /// `(now - window, now]`, defined in [`Dashboard`], computed with
    /// aggregate queries.
    fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> impl Future<Output = Result<Dashboard, StoreError>> + Send;

    /// Records metric samples for `tenant` (all or none; a sample naming an
    /// order that is not the tenant's is [`StoreError::NotFound`]).
    fn record_metrics(
        &self,
        tenant: &str,
        metrics: &[WorkflowMetric],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The tenant's metric samples matching `query`, oldest first (ties in
    /// recording order).
    fn metrics(
        &self,
        tenant: &str,
        query: &MetricQuery,
    ) -> impl Future<Output = Result<Vec<WorkflowMetric>, StoreError>> + Send;

    /// Saves rule statistics for `tenant`, replacing those of the same rule ids.
    fn save_rule_stats(
        &self,
        tenant: &str,
        stats: &[RuleStats],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The tenant's rule statistics, by rule id.
    fn load_rule_stats(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<RuleStats>, StoreError>> + Send;

    /// Notes a webhook notification id as seen at `at`; `true` if it is new
    /// (process it), `false` if seen before (a duplicate delivery).
    fn note_webhook(
        &self,
        tenant: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets the tenant's webhook ids seen before `before`; returns how many.
    fn prune_webhooks(
        &self,
        tenant: &str,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    // ---- the work queue ---------------------------------------------------

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
}
