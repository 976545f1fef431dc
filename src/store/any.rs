//! [`AnyStore`]: the backend [`open`](super::open) chose, as one type.

use chrono::{DateTime, TimeDelta, Utc};

use super::fault::{FaultPoint, InjectFault};
use super::{
    BulkOrder, ClaimRequest, Cluster, Created, CreatedRange, Dashboard, DashboardStore,
    DecidedOrder, HeartbeatStore, HistoryEntry, Holders, Inbox, InboxDone, InboxEntry, InboxItem,
    InboxStats, Lease, MemoryStore, NewOrder, OrderCount, OrderEvent, OrderId, OrderQuery,
    OrderReads, OrderStore, OrderWithHistory, QueueDue, QueueStore, QueueSummary, ReviewCursor,
    ReviewStore, Scheduled, Shared, ShopAuth, ShopStore, StoreError, StoredOrder, TenantScope,
    TokenSet, Transition, WorkId, WorkItem, WorkSpec,
};

/// A store of any backend, chosen at run time from a URL by
/// [`open`](super::open). It implements every capability by dispatching to
/// the backend; cheap to clone (clones share the database).
#[derive(Debug, Clone)]
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

    /// Closes the backend's connections, waiting for in-flight statements
    /// (nothing to do for `memory:`). A SQLite file closed this way is left
    /// whole: its last connection moves the WAL into the database file and
    /// removes the `-wal` and `-shm` files. Dropping the store closes them
    /// too, but in the background: a process that exits right after may
    /// leave them behind (harmless, the next open recovers them, but the
    /// store is then more than one file).
    pub async fn close(&self) {
        match self {
            AnyStore::Memory(_) => {}
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.close().await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}

/// Calls `$call` on whichever backend `$self` holds, as `$s`.
macro_rules! on_backend {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($s) => $call,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($s) => $call,
        }
    };
}

/// Implements a capability trait for [`AnyStore`]: each method, one line
/// here, awaits the same method of the backend.
macro_rules! dispatch {
    ($trait:ident { $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)* }) => {
        impl $trait for AnyStore {
            $(async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                on_backend!(self, s => s.$name($($arg),*).await)
            })*
        }
    };
}

dispatch!(OrderStore {
    fn create_orders(tenant: &str, orders: &[NewOrder]) -> Vec<Result<Created, StoreError>>;
    fn get_order(tenant: &str, id: OrderId) -> Option<StoredOrder>;
    fn get_orders(tenant: &str, ids: &[OrderId]) -> Vec<StoredOrder>;
    fn find_order(tenant: &str, tiktok_order_id: &str) -> Option<StoredOrder>;
    fn order_with_history(tenant: &str, id: OrderId) -> Option<OrderWithHistory>;
    fn histories(tenant: &str, ids: &[OrderId]) -> Vec<Vec<HistoryEntry>>;
    fn list_orders(tenant: &str, after: Option<OrderId>, limit: usize) -> Vec<StoredOrder>;
    fn active_orders(tenant: &str, limit: usize) -> Vec<StoredOrder>;
    fn transitions(batch: &[(&str, Transition)]) -> Vec<Result<StoredOrder, StoreError>>;
    fn known_orders(tenant: &str, tiktok_order_ids: &[&str]) -> Vec<String>;
    fn insert_orders(tenant: &str, orders: Vec<BulkOrder>) -> Vec<Result<bool, StoreError>>;
});

dispatch!(OrderReads {
    fn order_counts(tenant: &str) -> Vec<OrderCount>;
    fn find_orders(tenant: &str, query: &OrderQuery, limit: usize) -> Vec<StoredOrder>;
    fn orders_by_created(tenant: &str, range: &CreatedRange, limit: usize) -> Vec<DecidedOrder>;
});

dispatch!(QueueStore {
    fn enqueue(tenant: &str, order_id: OrderId, work: &WorkSpec, now: DateTime<Utc>) -> (WorkId, bool);
    fn schedule(tenant: &str, order_id: OrderId, work: &WorkSpec, now: DateTime<Utc>) -> WorkId;
    fn schedule_many(tenant: &str, items: &[Scheduled]) -> Vec<Result<WorkId, StoreError>>;
    fn claim(scope: TenantScope<'_>, request: &ClaimRequest<'_>) -> Vec<WorkItem>;
    fn renew(lease: &Lease, extend: TimeDelta, now: DateTime<Utc>) -> Lease;
    fn complete(lease: &Lease, now: DateTime<Utc>) -> ();
    fn release(lease: &Lease, run_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> ();
    fn queue_summary(scope: TenantScope<'_>, now: DateTime<Utc>) -> QueueSummary;
    fn queue_due(scope: TenantScope<'_>, now: DateTime<Utc>) -> QueueDue;
});

dispatch!(DashboardStore {
    fn dashboard(tenant: &str, now: DateTime<Utc>, window: TimeDelta) -> Dashboard;
});

dispatch!(Inbox {
    fn inbox_append(tenant: &str, entries: &[InboxEntry]) -> Vec<bool>;
    fn inbox_claim(tenant: &str, limit: usize, lease: TimeDelta, now: DateTime<Utc>) -> Vec<InboxItem>;
    fn inbox_done(tenant: &str, done: &[InboxDone], now: DateTime<Utc>) -> Vec<bool>;
    fn inbox_prune(tenant: &str, processed_before: DateTime<Utc>) -> u64;
    fn inbox_stats(tenant: &str) -> InboxStats;
    fn note_order_events(tenant: &str, events: &[OrderEvent]) -> Vec<bool>;
    fn cursor(tenant: &str, name: &str) -> Option<i64>;
    fn set_cursor(tenant: &str, name: &str, value: i64) -> ();
});

dispatch!(ShopStore {
    fn put_shops(tenant: &str, shops: &[ShopAuth]) -> ();
    fn shop(tenant: &str, shop_id: &str) -> Option<ShopAuth>;
    fn shops(tenant: &str) -> Vec<ShopAuth>;
    fn rotate_tokens(tenant: &str, previous_refresh_token: &str, tokens: &TokenSet, now: DateTime<Utc>) -> u64;
    fn put_auth_state(tenant: &str, state: &str, expires_at: DateTime<Utc>) -> ();
    fn take_auth_state(state: &str, now: DateTime<Utc>) -> Option<String>;
});

dispatch!(HeartbeatStore {
    fn beat(worker: &str, lapse: TimeDelta, now: DateTime<Utc>) -> ();
    fn retire(worker: &str, now: DateTime<Utc>) -> ();
    fn take_over(scope: TenantScope<'_>, now: DateTime<Utc>) -> u64;
    fn holders(scope: TenantScope<'_>, now: DateTime<Utc>) -> Holders;
});

dispatch!(Cluster {
    fn lease_acquire(name: &str, holder: &str, ttl: TimeDelta, now: DateTime<Utc>) -> Option<i64>;
    fn lease_release(name: &str, holder: &str, fence: i64, now: DateTime<Utc>) -> bool;
    fn lease_holder(name: &str, now: DateTime<Utc>) -> Option<(String, i64)>;
    fn shared(name: &str) -> Option<Shared>;
    fn set_shared(name: &str, value: &str, now: DateTime<Utc>) -> i64;
});

dispatch!(ReviewStore {
    fn review_queue(tenant: &str, after: Option<ReviewCursor>, limit: usize) -> Vec<StoredOrder>;
});

impl super::Readiness for AnyStore {
    async fn ready(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.ready().await)
    }
}

impl super::GroupCommit for AnyStore {
    async fn begin_group(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.begin_group().await)
    }

    async fn commit_group(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.commit_group().await)
    }
}

impl InjectFault for AnyStore {
    fn inject_fault(&self, point: FaultPoint) {
        on_backend!(self, s => s.inject_fault(point))
    }
}
