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
//!
//! # Tuned for group commit
//!
//! One statement costs ~25–50 µs through
//! sqlx whatever its size (a round trip to SQLite's worker thread), so
//! batches write many rows per statement (multi-row `INSERT`,
//! `WITH v(…) AS (VALUES …) UPDATE … FROM v`), and a transition batch sends
//! its statements as two **scripts** (one query string, parameters bound in
//! order across its statements): its reads (orders, leases) in one round
//! trip, its writes (orders, history, queue) in another — four round trips
//! with `BEGIN` and `COMMIT` instead of eight or more (in a group, two: the
//! call's savepoint opens with the read script); a claim is one (promote,
//! then claim), and so is the common `schedule` (an upsert). sqlx calls multi-statement strings deprecated for
//! a future release; `rows::script_steps` documents the reliance and a test
//! pins it. All writes go through one connection with `BEGIN IMMEDIATE`
//! (writers queue in Rust, never upgrade a read lock), reads use a pool
//! beside it (WAL). A 64 MiB page cache and a 4k-page autocheckpoint copy
//! each page back once per checkpoint without letting the WAL grow long
//! (every page read searches the WAL index: at 16k pages that search was
//! the top of the simulator's profile; mmap reads cost more than they saved
//! on a growing file). Indexed columns (priority, impact, terminal) are only
//! rewritten when they change. The queue summary (idle workers, the
//! dashboard, the simulator's samples) reads a covering index, not the
//! table. `synchronous=full` by default (a returned commit is on disk);
//! `?synchronous=normal` survives process crashes, not power loss.
//!
//! # Settings
//!
//! WAL journal, `synchronous=full` unless the URL says `normal`,
//! `foreign_keys=on`, `cache_size` 64 MiB, `wal_autocheckpoint=4096`,
//! `temp_store=memory`, the URL's busy timeout. A caller that knows where
//! its unit of work ends may group many calls into one commit
//! ([`GroupCommit`](super::GroupCommit), `group.rs`): one WAL sync per group
//! instead of per call, each call still all-or-nothing; writes become
//! durable when the group commits. A bulk insert (`bulk.rs`) runs with an
//! 8 MiB writer cache and starts a passive checkpoint on a read connection
//! after each commit; durability is the same.

mod bulk;
mod cluster;
mod dashboard;
mod group;
mod heartbeat;
mod inbox;
mod migrate;
mod orders;
mod queue;
mod reads;
mod review;
mod rows;
mod shops;

use crate::store::Result;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::fault::{Fault, FaultPoint, InjectFault};
use super::url::{SqliteTarget, Target};

/// The page cache of every connection (`PRAGMA cache_size`, in KiB when
/// negative): 64 MiB.
const CACHE_SIZE: &str = "-65536";

/// The writer's page cache while it runs a bulk insert (`bulk.rs`): 8 MiB.
/// A bulk load appends to every index, so it rereads few pages; a larger
/// cache only held the pages it wrote (measured: no faster, 50 MB more).
const BULK_CACHE_SIZE: &str = "-8192";

/// How many read connections a store keeps at most.
const READERS: u32 = 4;

/// The SQLite store (`sqlite://PATH`). Cheap to clone: clones share the
/// connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// The store's file.
    main: File,
    /// The webhook inbox's own file (see `inbox.rs`).
    inbox: File,
    fault: Fault,
    /// Whether a checkpoint beside the writer runs (`bulk.rs`).
    checkpointing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When a bulk insert sweeps the shared work payloads (`bulk.rs`).
    payload_sweep: std::sync::Arc<bulk::Sweep>,
}

/// One database file: its one writer connection and its read-only pool.
#[derive(Debug, Clone)]
struct File {
    writer: SqlitePool,
    reader: SqlitePool,
    /// The open group commit, if any (`group.rs`).
    group: group::Shared,
}

impl File {
    /// Closes the connections (waiting for in-flight statements).
    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite://` URL names and
    /// applies the embedded migrations. See [`open`](super::open) for the errors.
    pub async fn open(url: &str) -> Result<SqliteStore> {
        match super::url::parse(url)? {
            Target::Sqlite(target) => Self::open_target(&target, &super::url::redact(url)).await,
            _ => Err(super::url::expected(url, "sqlite")),
        }
    }

    pub(super) async fn open_target(target: &SqliteTarget, shown_url: &str) -> Result<SqliteStore> {
        let open_error = |e: sqlx::Error| StoreError::Open {
            url: shown_url.to_owned(),
            message: e.to_string(),
        };
        let options = file_options(&target.path, target)
            .foreign_keys(true)
            // A page cache large enough for the hot indexes (64 MiB, not
            // SQLite's 2 MiB). No mmap: with the file growing under a
            // steady stream of commits, remapping cost more than read(2).
            .pragma("cache_size", CACHE_SIZE)
            // Checkpoint every 4k pages (16 MiB of WAL) instead of 1k, so a
            // page rewritten by many batches is copied back once; not more,
            // because every page read searches the WAL's index first, and a
            // long WAL made that search the top of the profile.
            .pragma("wal_autocheckpoint", "4096")
            // Statement journals and materialized batches stay in memory
            // (on disk they cost more than the batch itself).
            .pragma("temp_store", "MEMORY");
        let writer = writer_pool(&options).await.map_err(open_error)?;
        migrate::run(&writer, &migrate::MAIN).await?;
        let reader = reader_pool(options, READERS).await.map_err(open_error)?;
        let inbox = inbox::open(target, shown_url, &writer).await?;
        Ok(SqliteStore {
            main: File {
                writer,
                reader,
                group: group::Shared::default(),
            },
            inbox,
            fault: Fault::default(),
            checkpointing: Default::default(),
            payload_sweep: Default::default(),
        })
    }

    /// Closes the connections (waiting for in-flight statements). Dropping
    /// the store closes them too, in the background.
    pub async fn close(&self) {
        // An open group gives its connection back, rolled back (see
        // `GroupCommit`: uncommitted, it is lost).
        drop(self.main.group.lock().await.take());
        self.inbox.close().await;
        self.main.close().await;
    }
}

impl InjectFault for SqliteStore {
    fn inject_fault(&self, point: FaultPoint) {
        self.fault.arm(point);
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
    connect_patiently(|| {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
    })
    .await
}

/// Connects, trying again while the file is busy: a connection's set-up
/// (switching a new file to WAL) can meet another process's set-up of the
/// same file and be answered `SQLITE_BUSY` without the busy timeout being
/// consulted (several commands opening one new store at once).
async fn connect_patiently<F, Fut>(connect: F) -> Result<SqlitePool, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<SqlitePool, sqlx::Error>>,
{
    const ATTEMPTS: u32 = 100;
    let mut attempt = 1;
    loop {
        match connect().await {
            Err(e) if attempt < ATTEMPTS && is_busy(&e) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            done => return done,
        }
    }
}

/// Whether SQLite answered `SQLITE_BUSY` (5) or `SQLITE_LOCKED` (6).
fn is_busy(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "5" || c == "6")
}

/// A file's read-only pool of `size` connections.
async fn reader_pool(options: SqliteConnectOptions, size: u32) -> Result<SqlitePool, sqlx::Error> {
    let options = options.pragma("query_only", "ON");
    connect_patiently(|| {
        SqlitePoolOptions::new()
            .max_connections(size)
            .test_before_acquire(false)
            .connect_with(options.clone())
    })
    .await
}
