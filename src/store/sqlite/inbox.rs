//! The inbox, event-time guard and cursors on SQLite.
//!
//! # The inbox file
//!
//! The inbox lives in a database file of its own, `PATH-inbox` beside the
//! store's `PATH` (with its own `-wal` and `-shm`), with its own writer
//! connection: appending a push (what an acknowledgement waits for) never
//! queues behind an order or queue transaction on the main file's writer,
//! and each commit syncs only the inbox's small WAL. Claims, completions,
//! pruning and counts of inbox entries use that file too; the per-order
//! event-time guard (`tiktok_order_events`) and the cursors stay in the
//! main file, beside the orders they protect. The inbox file has its own
//! schema versions (migrations under `migrations/inbox/`, run like the
//! main file's); the main file's migration 0005 hands the inbox
//! table of an older database over ([`open`]).
//!
//! Processing an entry therefore spans both files: claim (inbox file),
//! guard and apply (main file), mark processed (inbox file), each its own
//! transaction, as they already were when both tables shared a file. A
//! crash between "applied" and "marked processed" leaves the entry pending;
//! its lease lapses and it is applied again, which changes nothing: the
//! guard admits an event equal to the newest one recorded, ingest is
//! idempotent on `tiktok_order_id`, and confirmations and cancellations of
//! an order already in that state are no-ops (see `store/inbox.rs`, "Exactly once across the inbox and the orders").

use crate::store::Result;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection, SqlitePool};

use super::rows::{Q, column, count, db, placeholders};
use super::{File, SqliteStore};
use crate::store::inbox::validate_entry;
use crate::store::logic::{ms, to_i64};
use crate::store::url::SqliteTarget;
use crate::store::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent, StoreError};

/// Entries per INSERT statement (6 parameters each).
const APPEND_CHUNK: usize = 500;

/// Entries per completion statement (3 parameters each).
const DONE_CHUNK: usize = 300;

/// Runs the statement `query` makes of each item, in order, on `conn`;
/// whether each changed exactly one row.
async fn each_changes_one<'a, T>(
    conn: &mut SqliteConnection,
    items: &'a [T],
    context: &'static str,
    query: impl Fn(&'a T) -> Q<'a>,
) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let done = query(item).execute(&mut *conn).await.map_err(db(context))?;
        out.push(done.rows_affected() == 1);
    }
    Ok(out)
}

impl SqliteStore {
    /// The inbox file of the database at `database`: the same path with
    /// `-inbox` appended (`cf.db` → `cf.db-inbox`). A backup or a move of
    /// the store takes both files (and, while it runs, their `-wal` files).
    pub fn inbox_path(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push("-inbox");
        PathBuf::from(name)
    }
}

/// Opens (creating if missing) the inbox file of `target` (one writer
/// connection for appends, claims, completions and pruning; a small
/// read-only pool for counts), brings its schema up to date, and moves in
/// the inbox table an older main file still has (renamed
/// `tiktok_inbox_moved` by migration 0005; `main` is the main file's
/// writer, already migrated).
pub(super) async fn open(
    target: &SqliteTarget,
    shown_url: &str,
    main: &SqlitePool,
) -> Result<File> {
    let open_error = |e: sqlx::Error| StoreError::Open {
        url: shown_url.to_owned(),
        message: format!("inbox file: {e}"),
    };
    // The main file's `synchronous`: with `full`, an acknowledged push
    // is on disk before the 200 goes out.
    let options = super::file_options(&SqliteStore::inbox_path(&target.path), target)
        .pragma("temp_store", "MEMORY");
    let writer = super::writer_pool(&options).await.map_err(open_error)?;
    super::migrate::run(&writer, &super::migrate::INBOX).await?;
    adopt_moved_table(&options, main, &target.path).await?;
    let reader = super::reader_pool(options, 2).await.map_err(open_error)?;
    Ok(File {
        writer,
        reader,
        group: super::group::Shared::default(),
    })
}

/// Whether the main file still has `tiktok_inbox_moved`.
async fn moved_table_exists(main: &SqlitePool) -> Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                        WHERE type = 'table' AND name = 'tiktok_inbox_moved')",
    )
    .fetch_one(main)
    .await
    .map_err(db("looking for an older inbox"))
}

/// Moves the rows of the main file's `tiktok_inbox_moved` (an inbox written
/// before the inbox had a file of its own) into the inbox file, then drops
/// that table. The copy keeps ids, attempts and leases, skips rows already
/// there, and is checkpointed to disk before the drop, so a crash at any
/// point loses nothing: the next open copies again.
async fn adopt_moved_table(
    options: &SqliteConnectOptions,
    main: &SqlitePool,
    main_path: &Path,
) -> Result<()> {
    if !moved_table_exists(main).await? {
        return Ok(());
    }
    let main_path = main_path.to_str().ok_or_else(|| {
        StoreError::invalid("the database path is not UTF-8: cannot move its inbox")
    })?;
    let mut conn = SqliteConnection::connect_with(options)
        .await
        .map_err(db("opening the inbox file"))?;
    sqlx::query("ATTACH DATABASE ? AS moved")
        .bind(main_path)
        .execute(&mut conn)
        .await
        .map_err(db("attaching the main file"))?;
    let copied = sqlx::query(
        "INSERT INTO main.tiktok_inbox (id, user_id, dedup_key, topic, body, received_at, \
                                        claimable_at, attempts, processed_at, outcome) \
         SELECT id, user_id, dedup_key, topic, body, received_at, claimable_at, attempts, \
                processed_at, outcome \
         FROM moved.tiktok_inbox_moved WHERE true ORDER BY id \
         ON CONFLICT DO NOTHING",
    )
    .execute(&mut conn)
    .await
    .map_err(db("copying the older inbox"));
    let _ = sqlx::query("DETACH DATABASE moved")
        .execute(&mut conn)
        .await;
    if let Err(e) = copied {
        // Another process opening the same new store at the same moment
        // (`status` while `ingest` starts) may have moved it and dropped
        // the table between the look above and the copy: nothing to do.
        let _ = conn.close().await;
        return match moved_table_exists(main).await? {
            false => Ok(()),
            true => Err(e),
        };
    }
    // On disk before the original goes, whatever `synchronous` says.
    sqlx::query("PRAGMA main.wal_checkpoint(FULL)")
        .execute(&mut conn)
        .await
        .map_err(db("checkpointing the inbox file"))?;
    let _ = conn.close().await;
    let mut tx = main
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db("starting a write transaction"))?;
    sqlx::query("DROP TABLE IF EXISTS tiktok_inbox_moved")
        .execute(&mut *tx)
        .await
        .map_err(db("dropping the moved inbox"))?;
    tx.commit().await.map_err(db("committing the inbox move"))
}

impl Inbox for SqliteStore {
    async fn inbox_append(&self, tenant: &str, entries: &[InboxEntry]) -> Result<Vec<bool>> {
        for e in entries {
            validate_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.inbox.write().await?;
        // One multi-row statement per chunk; the keys it returns are the new
        // entries (a key repeated within the batch is new only the first time).
        let mut stored = std::collections::HashSet::new();
        for chunk in entries.chunks(APPEND_CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO tiktok_inbox (user_id, dedup_key, topic, body, received_at, claimable_at) \
                 VALUES {} ON CONFLICT DO NOTHING RETURNING dedup_key",
                placeholders(6, chunk.len())
            )));
            for e in chunk {
                let at = ms(e.received_at);
                q = q
                    .bind(tenant.to_owned())
                    .bind(e.dedup_key.clone())
                    .bind(to_i64(e.topic, "topic")?)
                    .bind(e.body.clone())
                    .bind(at)
                    .bind(at);
            }
            for row in q
                .fetch_all(&mut *tx)
                .await
                .map_err(db("appending to the inbox"))?
            {
                stored.insert(column::<String>(&row, "dedup_key")?);
            }
        }
        let out = entries
            .iter()
            .map(|e| stored.remove(&e.dedup_key))
            .collect();
        tx.commit().await.map_err(db("committing inbox entries"))?;
        Ok(out)
    }

    async fn inbox_claim(
        &self,
        tenant: &str,
        limit: usize,
        lease: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxItem>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.inbox.write().await?;
        // `? + 0`: see `rows::LIMIT`.
        let rows = sqlx::query(
            "UPDATE tiktok_inbox SET attempts = attempts + 1, claimable_at = ? \
             WHERE id IN (SELECT id FROM tiktok_inbox \
                          WHERE user_id = ? AND processed_at IS NULL AND claimable_at <= ? \
                          ORDER BY id LIMIT ? + 0) \
             RETURNING id, dedup_key, topic, body, received_at, attempts",
        )
        .bind(ms(now + lease))
        .bind(tenant.to_owned())
        .bind(ms(now))
        .bind(to_i64(limit as u64, "limit")?)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("claiming inbox entries"))?;
        tx.commit().await.map_err(db("committing an inbox claim"))?;
        let mut items = rows
            .iter()
            .map(|r| crate::store::decode::inbox_item(r, tenant))
            .collect::<Result<Vec<_>>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn inbox_done(
        &self,
        tenant: &str,
        done: &[InboxDone],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.inbox.write().await?;
        let mut seen = std::collections::HashSet::with_capacity(done.len());
        let out = if done.iter().all(|d| seen.insert(d.id)) {
            // Distinct ids (the processor's case): one statement per chunk,
            // returning the entries it marked.
            let mut marked = std::collections::HashSet::with_capacity(done.len());
            for chunk in done.chunks(DONE_CHUNK) {
                let mut q = sqlx::query(AssertSqlSafe(format!(
                    "WITH d (id, attempts, outcome) AS (VALUES {}) \
                     UPDATE tiktok_inbox SET processed_at = ?, claimable_at = NULL, \
                                             outcome = d.outcome \
                     FROM d WHERE tiktok_inbox.id = d.id AND tiktok_inbox.attempts = d.attempts \
                       AND tiktok_inbox.user_id = ? AND tiktok_inbox.processed_at IS NULL \
                     RETURNING tiktok_inbox.id",
                    placeholders(3, chunk.len())
                )));
                for d in chunk {
                    q = q
                        .bind(d.id)
                        .bind(i64::from(d.attempt))
                        .bind(d.outcome.clone());
                }
                for row in q
                    .bind(ms(now))
                    .bind(tenant.to_owned())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db("marking inbox entries processed"))?
                {
                    marked.insert(column::<i64>(&row, "id")?);
                }
            }
            done.iter().map(|d| marked.contains(&d.id)).collect()
        } else {
            // An id more than once: in order, so the first that matches wins.
            each_changes_one(&mut tx, done, "marking an inbox entry processed", |d| {
                sqlx::query(
                    "UPDATE tiktok_inbox SET processed_at = ?, claimable_at = NULL, outcome = ? \
                     WHERE user_id = ? AND id = ? AND attempts = ? AND processed_at IS NULL",
                )
                .bind(ms(now))
                .bind(d.outcome.clone())
                .bind(tenant.to_owned())
                .bind(d.id)
                .bind(i64::from(d.attempt))
            })
            .await?
        };
        tx.commit()
            .await
            .map_err(db("committing processed inbox entries"))?;
        Ok(out)
    }

    async fn inbox_prune(&self, tenant: &str, processed_before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.inbox.write().await?;
        let r = sqlx::query(
            "DELETE FROM tiktok_inbox WHERE user_id = ? AND processed_at IS NOT NULL \
             AND processed_at < ?",
        )
        .bind(tenant.to_owned())
        .bind(ms(processed_before))
        .execute(&mut *tx)
        .await
        .map_err(db("pruning the inbox"))?;
        tx.commit().await.map_err(db("committing an inbox prune"))?;
        Ok(r.rows_affected())
    }

    async fn inbox_stats(&self, tenant: &str) -> Result<InboxStats> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS received, \
                    SUM(processed_at IS NULL) AS pending, \
                    SUM(processed_at IS NOT NULL) AS processed, \
                    SUM(processed_at IS NOT NULL AND attempts > 1) AS reclaimed \
             FROM tiktok_inbox WHERE user_id = ?",
        )
        .bind(tenant.to_owned())
        .fetch_one(&self.inbox.reader)
        .await
        .map_err(db("counting the inbox"))?;
        Ok(InboxStats {
            received: count(&row, "received")?,
            pending: count(&row, "pending")?,
            processed: count(&row, "processed")?,
            reclaimed: count(&row, "reclaimed")?,
        })
    }

    async fn note_order_events(&self, tenant: &str, events: &[OrderEvent]) -> Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.main.write().await?;
        let out = each_changes_one(&mut tx, events, "noting an order event", |e| {
            sqlx::query(
                "INSERT INTO tiktok_order_events (user_id, tiktok_order_id, event_time, event_rank) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (user_id, tiktok_order_id) DO UPDATE \
                 SET event_time = excluded.event_time, event_rank = excluded.event_rank \
                 WHERE (excluded.event_time, excluded.event_rank) >= (event_time, event_rank)",
            )
            .bind(tenant.to_owned())
            .bind(e.tiktok_order_id.clone())
            .bind(e.time)
            .bind(i64::from(e.rank))
        })
        .await?;
        tx.commit().await.map_err(db("committing order events"))?;
        Ok(out)
    }

    async fn cursor(&self, tenant: &str, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT value FROM tiktok_cursors WHERE user_id = ? AND name = ?")
            .bind(tenant.to_owned())
            .bind(name.to_owned())
            .fetch_optional(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading a cursor"))?;
        row.map(|r| r.try_get::<i64, _>("value"))
            .transpose()
            .map_err(db("reading a cursor"))
    }

    async fn set_cursor(&self, tenant: &str, name: &str, value: i64) -> Result<()> {
        let mut tx = self.main.write().await?;
        sqlx::query(
            "INSERT INTO tiktok_cursors (user_id, name, value) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(tenant.to_owned())
        .bind(name.to_owned())
        .bind(value)
        .execute(&mut *tx)
        .await
        .map_err(db("setting a cursor"))?;
        tx.commit().await.map_err(db("committing a cursor"))
    }
}
