//! Durable storage: small capability traits ([`OrderStore`], [`QueueStore`], [`HeartbeatStore`],
//! [`DashboardStore`], [`Inbox`], [`ShopStore`]; [`Store`] names them all), their
//! backends, and [`open`], which picks a backend from a URL at run time.
//!
//! Each backend implements each capability directly, in the file of that
//! capability (`sqlite/orders.rs` holds `impl OrderStore for SqliteStore`):
//! adding a query touches its trait and the backends, nothing else. Stores
//! are cheap to clone (clones share the database), so there is no `Arc<S>`
//! layer. Run-time choice: [`AnyStore`] is an enum whose every method is one
//! line of a single dispatch macro (`any.rs`) — the one forwarding left.
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
//!   orders, history, inbox or work. Another
//!   tenant's record is reported exactly like an absent one. Only the queue's
//!   [`QueueStore::claim`] and [`QueueStore::queue_summary`] take a [`TenantScope`],
//!   which may be [`TenantScope::All`] for workers serving every creator.
//!   [`ShopStore::take_auth_state`] takes no tenant: the state, a random
//!   secret issued for one tenant, names it (on PostgreSQL the policies let
//!   a transaction reach only the state it presents; `postgres/shops.rs`).
//! - **Time comes from the caller** (`now`, `at`, `run_at` arguments); no
//!   store reads the system clock. Times are kept with millisecond precision
//!   (finer parts are truncated on write, by every backend alike).
//! - **Exact values.** Prices are exact decimals (TEXT in
//!   SQLite); JSON columns (viral indicators, actions executed, payloads)
//!   come back equal to what was stored.
//! - **Atomicity.** Each method is one transaction: an error means nothing
//!   it would have written is visible. A transition's order update and its
//!   history row are written together or not at all.
//! - **Optimistic concurrency.** A [`Transition`] names the state (and
//!   optionally the version) the caller read; if the order moved on, the
//!   transition fails with [`StoreError::Conflict`] and writes nothing. Each
//!   history row carries the version it produced, unique per order, so no
//!   step is ever recorded twice.
//! - **Batches group-commit.** [`OrderStore::transitions`] and
//!   [`OrderStore::create_orders`] write many items in one transaction, each
//!   item still checked on its own (per-item results); a database failure
//!   fails the whole batch and writes nothing.
//! - **Shipments are recorded once.** A transition that takes an order's
//!   `automation_status` from one that has not shipped to `Shipped` or
//!   `Delivered` records its time as the order's `shipped_at` (in a batch,
//!   that step's time, not the batch's); later steps never change it. The
//!   dashboard's time to ship reads it through an index ([`Dashboard`]).
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
//! recorded once. A lease is long (steps chain under it); a worker that
//! keeps a heartbeat ([`HeartbeatStore`]) and dies has its items given
//! back well before: any live worker's [`HeartbeatStore::take_over`]
//! clears the leases of workers whose heartbeat lapsed.
//!
//! # Schema
//!
//! The SQLite schema lives in `src/store/sqlite/migrations/` (one `.sql` file
//! per version, embedded into the binary). Every table carries the tenant
//! (`user_id`), and child tables reference `orders (user_id, id)`, so the
//! database itself refuses a history row or work item whose tenant
//! differs from its order's. A `creatorflow_schema` table records the
//! applied versions with a SHA-256 checksum of each migration's text; every
//! backend and migration set runs the one algorithm of `migrate.rs`: a
//! database newer than the binary is refused with
//! [`StoreError::SchemaTooNew`] before anything is written, an applied
//! migration whose text changed is refused with
//! [`StoreError::MigrationChanged`], and versions recorded by a CreatorFlow
//! that did not keep checksums get theirs filled in on first open.
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
//! cannot read orders.
//! Claims lock with `FOR UPDATE SKIP LOCKED`, so several processes share the
//! queue without waiting on or taking each other's items. `PostgresStore`'s
//! docs say how [`open`] connects (the URL's user owns the schema and runs
//! the migrations; the store switches to the application role).

mod any;
pub(crate) mod cluster;
mod dashboard;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod decode;
mod error;
mod fault;
mod group;
mod heartbeat;
mod inbox;
pub(crate) mod logic;
mod memory;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrate;
mod orders;
#[cfg(feature = "postgres")]
mod postgres;
mod queue;
pub(crate) mod reads;
mod ready;
mod review;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod shop_sql;
mod shops;
#[cfg(feature = "sqlite")]
mod sqlite;
mod types;
mod url;

/// Re-exported from [`crate::model`], where it lives (the core's layer).
pub use crate::model::JsonText;
pub use any::AnyStore;
pub use cluster::{Cluster, Shared};
pub use dashboard::DashboardStore;
pub use error::StoreError;
#[doc(hidden)]
pub use fault::{FaultPoint, InjectFault};
pub use group::GroupCommit;
pub use heartbeat::{HeartbeatStore, Holders};
pub use inbox::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent};
pub(crate) use logic::apply as apply_transition;
pub use memory::MemoryStore;
pub use orders::{BulkOrder, BulkWork, OrderStore};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use queue::QueueStore;
pub use reads::{CreatedRange, DecidedOrder, OrderCount, OrderQuery, OrderReads, scan, urgency};
pub use ready::Readiness;
pub use review::{ReviewCursor, ReviewStore};
pub use shops::{ShopAuth, ShopStore, TokenSet};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use types::{
    AfterStep, ClaimRequest, Created, Dashboard, HistoryEntry, LaneLimit, Lease, MOST_URGENT_LIMIT,
    NewOrder, OrderId, OrderWithHistory, QueueDue, QueueSummary, Scheduled, Settle, StoredOrder,
    TenantScope, Transition, WorkId, WorkItem, WorkSpec,
};
pub use url::redact as redact_url;

/// The store's result type (`E` defaults to [`StoreError`]), for its
/// implementations' signatures.
pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

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
/// use creatorflow::{Order, store::{self, OrderStore, StoreError}};
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
        url::Target::Sqlite(_) => Err(url::not_built(url, "sqlite")),
        #[cfg(feature = "postgres")]
        url::Target::Postgres(target) => PostgresStore::open_target(&target, &url::redact(url))
            .await
            .map(AnyStore::Postgres),
        #[cfg(not(feature = "postgres"))]
        url::Target::Postgres(_) => Err(url::not_built(url, "postgres")),
    }
}

/// Everything the workflow runtime needs of a store, as one bound: the
/// capability traits ([`OrderStore`], [`QueueStore`], [`DashboardStore`],
/// [`Inbox`], [`ShopStore`], [`ReviewStore`], [`HeartbeatStore`], [`Cluster`]). Implemented for every type that has them all; a backend
/// implements each capability in its own file. See the [module docs](self)
/// for the contract every backend keeps.
pub trait Store:
    OrderStore
    + OrderReads
    + QueueStore
    + DashboardStore
    + Inbox
    + ShopStore
    + ReviewStore
    + HeartbeatStore
    + Cluster
{
}

impl<S> Store for S where
    S: OrderStore
        + OrderReads
        + QueueStore
        + DashboardStore
        + Inbox
        + ShopStore
        + ReviewStore
        + HeartbeatStore
        + Cluster
{
}
