//! The durable webhook inbox: a capability of a [`Store`](super::Store).
//!
//! `creatorflow serve` acknowledges a TikTok Shop push only once its raw,
//! verified bytes are in the inbox, and processes it afterwards: a
//! processor claims pending entries (a lease, like the work queue), applies
//! them, and marks them processed. An entry whose lease lapses (the process
//! died mid-way) is claimed again; `attempt` counts claims. Appends are
//! de-duplicated on `(tenant, dedup_key)`, so a retried delivery is stored
//! once.
//!
//! Beside the inbox, two small tables the ingestion needs: per TikTok order,
//! the newest event applied (so a stale event never moves an order
//! backwards), and named cursors (the reconciliation poll's high-water
//! mark). Everything is tenant-scoped like the rest of the store; on
//! PostgreSQL the three tables have forced row-level security.
//!
//! An append is what an acknowledgement waits for, so backends keep it off
//! the path of order writes: SQLite keeps the inbox in a file of its own
//! with its own writer, PostgreSQL appends on reserved connections.
//! Processing therefore never relies on one transaction spanning the inbox
//! and the orders; it relies on every command being idempotent (see
//! "Exactly once across the inbox and the orders" below).
//!
//! A capability trait of its own: a backend implements it in a file of its
//! own.
//!
//! # Acknowledgements never wait for the order writer
//!
//! What a push's
//! 200 waits for is the inbox append; it must not queue behind order,
//! queue or processing transactions, whose size grows with the load.
//! *SQLite* (one writer per file): the inbox is a database file of its own,
//! `PATH-inbox`, beside `PATH` (its own WAL, writer connection, small read
//! pool and schema version, `PRAGMA user_version`), opened, migrated and
//! checked by the store like the main file; `synchronous` follows the URL,
//! so with the default `full` an acknowledged push is on disk. Claims,
//! completions, pruning and counts of entries use that file; the event-time
//! guard and the cursors stay in the main file with the orders. Migration
//! `0005` renames the inbox table of an older main file, and the store then
//! copies its rows (ids, attempts, leases, processed marks) into the inbox
//! file, syncs it, and drops the old table: a crash in between repeats the
//! copy, which skips rows already there. A second writer connection on the
//! *same* file would not do: SQLite has one writer per file, so it would
//! wait for the lock instead of in Rust. *PostgreSQL* (one WAL per
//! cluster): `PostgresStore::INBOX_CONNECTIONS` (2) connections, kept open
//! beside the pool, serve appends only, and an append is one round trip
//! (`BEGIN`, role, tenant, the `INSERT` with literal values, `COMMIT` in one
//! simple-protocol message, as the lease operations). `serve` keeps one
//! group-committing appender (writing two batches at once measured the
//! same). Several replicas on one database each have theirs, and the same
//! duplicate deliveries land on different replicas: two batches sharing
//! keys would deadlock if each inserted them in arrival order (each insert
//! waiting for the other's uncommitted key), so a batch inserts its keys
//! in sorted order (within a batch, ids follow the keys, not arrival), and
//! a deadlock or serialization failure that still happens is run again
//! inside the store before any caller sees it (`postgres/retry.rs`).
//! What an acknowledgement still shares with processing on PostgreSQL is
//! the WAL flush: its commit waits until all WAL before it is on disk.
//!
//! # Exactly once across the inbox and the orders
//!
//! Processing an entry is
//! claim (inbox) → guard and apply (orders) → mark processed (inbox), each
//! its own transaction; with the inbox in its own SQLite file these cannot
//! be one transaction, and they were not one before either. Every crash
//! point is covered by idempotence, not atomicity: (1) before "applied" is
//! committed, nothing happened and the lapsed lease hands the entry over;
//! (2) after it and before "processed", the entry is applied again — the
//! guard admits an event equal to the newest recorded (`>=`), ingest finds
//! the `tiktok_order_id` (unique per tenant) and answers `known` (the
//! processor also skips the Order API call for a stored order), a
//! confirmation or cancellation of an order already in that state is
//! `unchanged`, and a stale event stays stale — so the effect is applied
//! once and the entry marked once (`inbox_done` is conditional on the
//! claim's attempt, so of two processors holding the same entry after a
//! lease lapsed, one marks it). The guard rows sit in the main file because
//! their only job is to order effects on orders; being in the orders' file
//! they are never ahead of the orders by a whole file's fate (a restored
//! backup of the main file alone loses guard and orders together). What the
//! split gives up: a backup must take both files, and with
//! `synchronous=normal` a power loss may keep a "processed" mark whose
//! order write was lost — `normal` already gives up acknowledged pushes on
//! power loss (not on a process crash), so it promises nothing more here;
//! the default `full` syncs every commit before it returns, and an order
//! write is always committed before its entry's mark is written. Tested in
//! `tests/tiktok.rs` (a crash between applying and marking, ingest and
//! cancellation, SQLite and PostgreSQL) and `tests/store_conformance.rs`
//! (appends while the main file is locked, the inbox file across reopen,
//! an older inbox moved over, a PostgreSQL append beside an exhausted pool).

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::StoreError;

/// A verified push to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The de-duplication key (the notification id, or the spec's fallback).
    pub dedup_key: String,
    /// The topic code (`type`).
    pub topic: u64,
    /// The raw request body, exactly as received.
    pub body: Vec<u8>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// A claimed inbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxItem {
    /// The entry's id (increasing in append order within a backend; within
    /// one PostgreSQL batch, in the order of the keys).
    pub id: i64,
    /// The tenant.
    pub tenant: String,
    /// The de-duplication key.
    pub dedup_key: String,
    /// The topic code.
    pub topic: u64,
    /// The raw body.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// Which claim this is (1 for the first); pass it to [`Inbox::inbox_done`].
    pub attempt: u32,
}

/// Marks one claimed entry processed ([`Inbox::inbox_done`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxDone {
    /// The entry.
    pub id: i64,
    /// The claim it was processed under.
    pub attempt: u32,
    /// What was done (free text, kept for inspection).
    pub outcome: String,
}

/// An event applied to a TikTok order ([`Inbox::note_order_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// The TikTok order.
    pub tiktok_order_id: String,
    /// The event's time (Unix seconds).
    pub time: i64,
    /// Its rank among events of the same second.
    pub rank: u8,
}

/// Counts of one tenant's inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InboxStats {
    /// Entries appended (duplicates not counted).
    pub received: u64,
    /// Entries not yet processed.
    pub pending: u64,
    /// Entries processed.
    pub processed: u64,
    /// Processed entries that needed more than one claim.
    pub reclaimed: u64,
}

/// The durable inbox, event-time guard and cursors (see the docs of `src/store/inbox.rs`).
pub trait Inbox: Send + Sync {
    /// Appends entries for `tenant` in one transaction; one result per
    /// entry, `true` if new, `false` for a duplicate `dedup_key`.
    fn inbox_append(
        &self,
        tenant: &str,
        entries: &[InboxEntry],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Claims up to `limit` of the tenant's unprocessed entries that are not
    /// under a live lease, oldest first; each gets a lease until `now + lease`
    /// and its `attempt` incremented.
    fn inbox_claim(
        &self,
        tenant: &str,
        limit: usize,
        lease: TimeDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<InboxItem>, StoreError>> + Send;

    /// Marks claimed entries processed at `now`, in one transaction; one
    /// result per input: `false` when the entry is already processed or was
    /// claimed again since (a newer attempt), in which case nothing changes.
    fn inbox_done(
        &self,
        tenant: &str,
        done: &[InboxDone],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Deletes the tenant's entries processed before `processed_before`
    /// (retention); returns how many. A deleted entry's key may be appended
    /// again, so keep entries longer than TikTok retries (about 16 hours).
    fn inbox_prune(
        &self,
        tenant: &str,
        processed_before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The tenant's inbox counts.
    fn inbox_stats(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<InboxStats, StoreError>> + Send;

    /// Records that an event at `(time, rank)` is applied to the tenant's
    /// TikTok order `tiktok_order_id`, unless a newer one was: `true` if
    /// `(time, rank)` is not older than the newest recorded (then it becomes
    /// the newest), `false` for a stale event (nothing changes). See
    /// [`Inbox::note_order_events`].
    fn note_order_event(
        &self,
        tenant: &str,
        tiktok_order_id: &str,
        time: i64,
        rank: u8,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let events = [OrderEvent {
            tiktok_order_id: tiktok_order_id.to_owned(),
            time,
            rank,
        }];
        async move {
            self.note_order_events(tenant, &events)
                .await?
                .pop()
                .ok_or_else(|| StoreError::invalid("empty batch result"))
        }
    }

    /// [`Inbox::note_order_event`] for many events in one transaction, in
    /// order (a later event of the same order is compared with an earlier
    /// one of the batch); one result per event.
    fn note_order_events(
        &self,
        tenant: &str,
        events: &[OrderEvent],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// The tenant's cursor `name`, if set.
    fn cursor(
        &self,
        tenant: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Sets the tenant's cursor `name`.
    fn set_cursor(
        &self,
        tenant: &str,
        name: &str,
        value: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Checks an entry before it is stored.
pub(crate) fn validate_entry(e: &InboxEntry) -> Result<(), StoreError> {
    if e.dedup_key.is_empty() {
        return Err(StoreError::invalid(
            "inbox entry: `dedup_key` must not be empty",
        ));
    }
    if e.dedup_key.contains('\0') {
        return Err(StoreError::invalid(
            "inbox entry: `dedup_key` must not contain NUL",
        ));
    }
    Ok(())
}
