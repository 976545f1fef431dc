//! The `sqlite://PATH` store, through sqlx: WAL journal, foreign keys, a
//! busy timeout, migrations embedded in the binary and applied on open.
//!
//! Writes go through one connection (`BEGIN IMMEDIATE` transactions), so
//! writers in this process queue in Rust instead of spinning on SQLite's
//! lock, and a transaction never has to upgrade a read lock; other processes
//! on the same file wait for the busy timeout. Reads use a pool of read-only
//! connections, which WAL lets run beside the writer. Batches write many
//! rows per statement: on this machine one statement costs about 50 µs
//! through sqlx whatever its size, so group commit is what makes SQLite fast.
//!
//! The webhook inbox is a second database file, `PATH-inbox`, with a writer
//! connection of its own, so that appending a push never waits for this
//! writer (`inbox.rs`).

mod inbox;
mod migrate;
mod misc;
mod orders;
mod queue;
mod rows;

use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::fault::{FaultPoint, InjectFault};
use super::url::{SqliteTarget, Target};
use super::{
    ClaimRequest, Created, Dashboard, Lease, MetricQuery, NewOrder, OrderId, OrderWithHistory,
    QueueSummary, Store, StoreError, StoredOrder, TenantScope, Transition, WorkId, WorkItem,
    WorkSpec, WorkflowMetric,
};
use crate::rules::RuleStats;

/// How many read connections a store keeps at most.
const READERS: u32 = 4;

/// The SQLite store (`sqlite://PATH`).
#[derive(Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The webhook inbox's own file (see `inbox.rs`).
    inbox: inbox::InboxFile,
    fault: Mutex<Option<FaultPoint>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite://` URL names and
    /// applies the embedded migrations. See [`open`](super::open) for the errors.
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        match super::url::parse(url)? {
            Target::Sqlite(target) => Self::open_target(&target, &super::url::redact(url)).await,
            _ => Err(StoreError::BadUrl {
                url: super::url::redact(url),
                reason: "expected a sqlite:// URL".into(),
            }),
        }
    }

    pub(super) async fn open_target(
        target: &SqliteTarget,
        shown_url: &str,
    ) -> Result<SqliteStore, StoreError> {
        let open_error = |e: sqlx::Error| StoreError::Open {
            url: shown_url.to_owned(),
            message: e.to_string(),
        };
        let options = file_options(&target.path, target)
            .foreign_keys(true)
            // A page cache large enough for the hot indexes (64 MiB, not
            // SQLite's 2 MiB). No mmap: with the file growing under a
            // steady stream of commits, remapping cost more than read(2).
            .pragma("cache_size", "-65536")
            // Checkpoint every 4k pages (16 MiB of WAL) instead of 1k, so a
            // page rewritten by many batches is copied back once; not more,
            // because every page read searches the WAL's index first, and a
            // long WAL made that search the top of the profile.
            .pragma("wal_autocheckpoint", "4096")
            // Statement journals and materialized batches stay in memory
            // (on disk they cost more than the batch itself).
            .pragma("temp_store", "MEMORY");
        let writer = writer_pool(&options).await.map_err(open_error)?;
        migrate::run(&writer).await?;
        let reader = reader_pool(options, READERS).await.map_err(open_error)?;
        let inbox = inbox::InboxFile::open(target, shown_url, &writer).await?;
        Ok(SqliteStore {
            writer,
            reader,
            inbox,
            fault: Mutex::new(None),
        })
    }

    /// Closes the connections (waiting for in-flight statements). Dropping
    /// the store closes them too, in the background.
    pub async fn close(&self) {
        self.inbox.close().await;
        self.reader.close().await;
        self.writer.close().await;
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

    /// A write transaction (`BEGIN IMMEDIATE`: the write lock is taken up
    /// front, so the rows read inside cannot change before commit).
    async fn write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(rows::db("starting a write transaction"))
    }

    /// A read transaction (one consistent snapshot).
    async fn read(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.reader
            .begin()
            .await
            .map_err(rows::db("starting a read transaction"))
    }
}

impl InjectFault for SqliteStore {
    fn inject_fault(&self, point: FaultPoint) {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some(point);
    }
}

impl Store for SqliteStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created, StoreError>>, StoreError> {
        orders::create(self, tenant, orders).await
    }

    async fn get_order(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<StoredOrder>, StoreError> {
        orders::get(&self.reader, tenant, id).await
    }

    async fn get_orders(
        &self,
        tenant: &str,
        ids: &[OrderId],
    ) -> Result<Vec<StoredOrder>, StoreError> {
        orders::get_many(&self.reader, tenant, ids).await
    }

    async fn find_order(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
    ) -> Result<Option<StoredOrder>, StoreError> {
        orders::find(&self.reader, tenant, tiktok_order_id).await
    }

    async fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<OrderWithHistory>, StoreError> {
        orders::with_history(self, tenant, id).await
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        orders::list(&self.reader, tenant, after, limit).await
    }

    async fn active_orders(
        &self,
        tenant: &str,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        orders::active(&self.reader, tenant, limit).await
    }

    async fn transitions(
        &self,
        batch: &[(&str, Transition)],
    ) -> Result<Vec<Result<StoredOrder, StoreError>>, StoreError> {
        orders::transitions(self, batch).await
    }

    async fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Dashboard, StoreError> {
        orders::dashboard(self, tenant, now, window).await
    }

    async fn record_metrics(
        &self,
        tenant: &str,
        metrics: &[WorkflowMetric],
    ) -> Result<(), StoreError> {
        misc::record_metrics(self, tenant, metrics).await
    }

    async fn metrics(
        &self,
        tenant: &str,
        query: &MetricQuery,
    ) -> Result<Vec<WorkflowMetric>, StoreError> {
        misc::metrics(&self.reader, tenant, query).await
    }

    async fn save_rule_stats(&self, tenant: &str, stats: &[RuleStats]) -> Result<(), StoreError> {
        misc::save_rule_stats(self, tenant, stats).await
    }

    async fn load_rule_stats(&self, tenant: &str) -> Result<Vec<RuleStats>, StoreError> {
        misc::load_rule_stats(&self.reader, tenant).await
    }

    async fn note_webhook(
        &self,
        tenant: &str,
        notification_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        misc::note_webhook(&self.writer, tenant, notification_id, at).await
    }

    async fn prune_webhooks(&self, tenant: &str, before: DateTime<Utc>) -> Result<u64, StoreError> {
        misc::prune_webhooks(&self.writer, tenant, before).await
    }

    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<(WorkId, bool), StoreError> {
        queue::enqueue(self, tenant, order_id, work, now).await
    }

    async fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<WorkId, StoreError> {
        queue::schedule(self, tenant, order_id, work, now).await
    }

    async fn claim(
        &self,
        scope: TenantScope<'_>,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<WorkItem>, StoreError> {
        queue::claim(self, scope, request).await
    }

    async fn renew(
        &self,
        lease: &Lease,
        extend: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Lease, StoreError> {
        queue::renew(&self.writer, lease, extend, now).await
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<(), StoreError> {
        queue::complete(&self.writer, lease, now).await
    }

    async fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue::release(&self.writer, lease, run_at, now).await
    }

    async fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<QueueSummary, StoreError> {
        queue::summary(&self.reader, scope, now).await
    }
}

/// The options every file of the store opens with: created if missing,
/// WAL, the URL's `synchronous` and busy timeout.
fn file_options(path: &std::path::Path, target: &SqliteTarget) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if target.synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(target.busy_timeout)
}

/// A file's one writer connection: always open, never recycled (writers
/// queue for it in Rust instead of contending for SQLite's lock).
async fn writer_pool(options: &SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .test_before_acquire(false)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_with(options.clone())
        .await
}

/// A file's read-only pool of `size` connections.
async fn reader_pool(options: SqliteConnectOptions, size: u32) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(size)
        .test_before_acquire(false)
        .connect_with(options.pragma("query_only", "ON"))
        .await
}
