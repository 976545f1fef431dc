//! Group commit on SQLite ([`GroupCommit`]) and the connection handles every
//! call of the store takes, which follow the open group.
//!
//! While a group is open its `BEGIN IMMEDIATE` transaction holds the file's
//! one writer connection; every call then runs on that connection (reads
//! too, so that they see the group's writes), one at a time, and a call
//! that writes runs inside a savepoint: released when the call commits,
//! rolled back when it fails or is dropped half-way (before the next call
//! runs), so a failed call writes nothing while the group goes on.
//! `commit_group` commits once: one WAL sync for the whole group under
//! `synchronous=full`.
//!
//! Round trips to SQLite's thread are what a call costs, so a committed
//! call's savepoint is released by the next call's `SAVEPOINT` statement
//! or in front of the next single statement ([`File::writing_after`]: the
//! claim, a schedule; never left open under a run of statements, whose
//! cost would grow with each), and a call that sends scripts (a transition batch, an ingest) opens its
//! savepoint with its first script ([`File::write_deferred`],
//! [`Tx::script`]) instead of a statement of its own.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use futures_util::StreamExt;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteQueryResult, SqliteRow};
use sqlx::{Either, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use super::rows::{Q, db, script_steps};
use super::{File, SqliteStore};
use crate::store::{GroupCommit, Result};

/// A file's open group, if any (shared by the store's clones).
pub(super) type Shared = Arc<Mutex<Option<Open>>>;

/// An open group.
#[derive(Debug)]
pub(super) struct Open {
    /// The group's transaction, on the writer connection.
    tx: Transaction<'static, Sqlite>,
    /// A call's savepoint is still open (the call failed or was dropped):
    /// rolled back before the next call.
    abandoned: bool,
    /// The last writing call committed, and its savepoint is released with
    /// the next call's `SAVEPOINT` (one statement instead of two) or by the
    /// group's `COMMIT`: a savepoint that is committed needs no statement
    /// of its own.
    release_pending: bool,
}

/// The open group, locked for one call.
type Held = OwnedMappedMutexGuard<Option<Open>, Open>;

/// The savepoint of one writing call inside a group.
const SAVEPOINT: &str = "SAVEPOINT cf_call";
/// Releases the last call's savepoint and opens the next one's.
const NEXT_SAVEPOINT: &str = "RELEASE cf_call; SAVEPOINT cf_call";
/// [`SAVEPOINT`] in front of a script.
const SAVEPOINT_THEN: &str = "SAVEPOINT cf_call; ";
/// [`NEXT_SAVEPOINT`] in front of a script.
const NEXT_SAVEPOINT_THEN: &str = "RELEASE cf_call; SAVEPOINT cf_call; ";
/// Releases the last call's savepoint.
const RELEASE: &str = "RELEASE cf_call";
/// [`RELEASE`] in front of a statement.
const RELEASE_THEN: &str = "RELEASE cf_call; ";
/// Undoes and ends an abandoned call's savepoint.
const ROLLBACK: &str = "ROLLBACK TO cf_call; RELEASE cf_call";

/// A connection for one call that needs no transaction of its own: a
/// pool's, or the open group's.
pub(super) enum Conn {
    /// From a pool.
    Pool(PoolConnection<Sqlite>),
    /// The open group's connection.
    Group(Held),
}

impl Deref for Conn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Conn::Pool(c) => c,
            Conn::Group(g) => &g.tx,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Conn::Pool(c) => c,
            Conn::Group(g) => &mut g.tx,
        }
    }
}

/// A call's transaction: its own, or a savepoint (for a read, nothing) in
/// the open group. Dropped without [`Tx::commit`], it writes nothing.
pub(super) enum Tx {
    /// A transaction of its own.
    Own(Transaction<'static, Sqlite>),
    /// Part of the open group.
    Group(Call),
}

/// One call inside the open group.
pub(super) struct Call {
    held: Held,
    /// Whether the call opened a savepoint (a writing call).
    savepoint: bool,
    /// Whether the call committed (its savepoint released).
    done: bool,
    /// The statements that open the call's savepoint, not sent yet: they
    /// go in front of the call's first script ([`Tx::script`]), saving a
    /// round trip. With whether they release the last call's savepoint.
    deferred: Option<(&'static str, bool)>,
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some((_, releases)) = self.deferred {
            // Never opened: the last call's savepoint is still to release.
            self.held.release_pending |= releases;
            return;
        }
        if self.savepoint && !self.done {
            self.held.abandoned = true;
        }
    }
}

impl Tx {
    /// Commits the call: its own transaction, or releases its savepoint
    /// (durable when the group commits).
    pub(super) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Own(tx) => tx.commit().await,
            Tx::Group(mut call) => {
                // Released with the next call's savepoint or the group's
                // commit (`Open::release_pending`). A deferred savepoint
                // never sent was never opened (the call wrote nothing):
                // `Drop` keeps the last call's release pending.
                if call.deferred.is_none() {
                    call.held.release_pending |= call.savepoint;
                }
                call.done = true;
                Ok(())
            }
        }
    }

    /// The statements opening the call's savepoint if they were deferred
    /// ([`File::write_deferred`]), to put in front of the call's first
    /// script (with `; `), run by [`Tx::script`]; empty otherwise.
    pub(super) fn opening(&self) -> &'static str {
        match self {
            Tx::Group(Call {
                deferred: Some((prefix, _)),
                ..
            }) => prefix,
            _ => "",
        }
    }

    /// Runs a script ([`script_steps`]) in the call. Its SQL must begin with
    /// [`Tx::opening`]: those statements' steps are not returned. When the
    /// script fails, the savepoint counts as opened only if its statements
    /// ran (each yields one [`Either::Left`] step), so a failed call rolls
    /// back exactly its own writes.
    pub(super) async fn script(
        &mut self,
        q: Q<'_>,
    ) -> Result<Vec<Either<SqliteQueryResult, SqliteRow>>> {
        let opening = match self {
            Tx::Group(call) => call.deferred,
            Tx::Own(_) => None,
        };
        let Some((_, releases)) = opening else {
            return script_steps(self, q).await.map_err(db("running a script"));
        };
        let opening_steps = if releases { 2 } else { 1 };
        let mut steps = Vec::new();
        let mut done = 0;
        let mut failed = None;
        {
            let mut stream = sqlx::Executor::fetch_many(&mut **self, q);
            while let Some(step) = stream.next().await {
                match step {
                    Ok(Either::Left(_)) if done < opening_steps => done += 1,
                    Ok(step) => steps.push(step),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        if let Tx::Group(call) = self {
            call.deferred = None;
            if done < opening_steps {
                // The savepoint was not opened; the last call's is still
                // to release if its `RELEASE` did not run.
                call.savepoint = false;
                call.held.release_pending |= releases && done == 0;
            }
        }
        match failed {
            Some(e) => Err(db("running a script")(e)),
            None => Ok(steps),
        }
    }
}

impl Deref for Tx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            Tx::Own(tx) => tx,
            Tx::Group(call) => &call.held.tx,
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Tx::Own(tx) => tx,
            Tx::Group(call) => &mut call.held.tx,
        }
    }
}

impl File {
    /// The open group, locked for one call (an abandoned call's savepoint
    /// rolled back first); `None` when no group is open.
    async fn held(&self) -> Result<Option<Held>> {
        let guard = Arc::clone(&self.group).lock_owned().await;
        let Ok(mut held) = OwnedMutexGuard::try_map(guard, Option::as_mut) else {
            return Ok(None);
        };
        if held.abandoned {
            sqlx::raw_sql(ROLLBACK)
                .execute(&mut *held.tx)
                .await
                .map_err(db("rolling back a failed call"))?;
            held.abandoned = false;
        }
        Ok(Some(held))
    }

    /// A write transaction (`BEGIN IMMEDIATE`: the write lock is taken up
    /// front, so the rows read inside cannot change before commit), or a
    /// savepoint in the open group.
    pub(super) async fn write(&self) -> Result<Tx> {
        if let Some(mut held) = self.held().await? {
            let savepoint = if held.release_pending {
                NEXT_SAVEPOINT
            } else {
                SAVEPOINT
            };
            held.release_pending = false;
            sqlx::raw_sql(savepoint)
                .execute(&mut *held.tx)
                .await
                .map_err(db("starting a write in a group"))?;
            return Ok(Tx::Group(Call {
                held,
                savepoint: true,
                done: false,
                deferred: None,
            }));
        }
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map(Tx::Own)
            .map_err(db("starting a write transaction"))
    }

    /// [`File::write`] whose savepoint in the open group, if any, is opened
    /// by the call's first [`Tx::script`] (one round trip less). The caller
    /// must send its statements through `Tx::script` until the first one has
    /// run.
    pub(super) async fn write_deferred(&self) -> Result<Tx> {
        if let Some(mut held) = self.held().await? {
            let (opening, releases) = if held.release_pending {
                (NEXT_SAVEPOINT_THEN, true)
            } else {
                (SAVEPOINT_THEN, false)
            };
            held.release_pending = false;
            return Ok(Tx::Group(Call {
                held,
                savepoint: true,
                done: false,
                deferred: Some((opening, releases)),
            }));
        }
        self.write().await
    }

    /// A read transaction (one consistent snapshot), or the open group's
    /// connection.
    pub(super) async fn read(&self) -> Result<Tx> {
        if let Some(held) = self.held().await? {
            return Ok(Tx::Group(Call {
                held,
                savepoint: false,
                done: false,
                deferred: None,
            }));
        }
        self.reader
            .begin()
            .await
            .map(Tx::Own)
            .map_err(db("starting a read transaction"))
    }

    /// A read-only connection, or the open group's.
    pub(super) async fn reading(&self) -> Result<Conn> {
        match self.held().await? {
            Some(held) => Ok(Conn::Group(held)),
            None => self
                .reader
                .acquire()
                .await
                .map(Conn::Pool)
                .map_err(db("acquiring a connection")),
        }
    }

    /// The writer connection for a single statement (atomic by itself), or
    /// the open group's, the last call's savepoint released first.
    ///
    /// SQLite copies the pages a statement changes into its sub-journal
    /// while a savepoint is open, and ending each statement truncates that
    /// journal by walking it from its start: statements run one after
    /// another under a committed call's savepoint cost time quadratic in
    /// their number (a minute's schedule upserts after one transition
    /// batch took milliseconds each).
    pub(super) async fn writing(&self) -> Result<Conn> {
        let (mut conn, release) = self.writing_after().await?;
        if !release.is_empty() {
            sqlx::raw_sql(RELEASE)
                .execute(&mut *conn)
                .await
                .map_err(db("releasing a call's savepoint"))?;
        }
        Ok(conn)
    }

    /// [`File::writing`] whose release of the last call's savepoint, if
    /// due, is left to the caller: the statements to put in front of its
    /// own (`RELEASE cf_call; `, or nothing), saving a round trip. Should
    /// the release not run, the savepoint stays open until the group
    /// commits: slower statements, the same writes.
    pub(super) async fn writing_after(&self) -> Result<(Conn, &'static str)> {
        match self.held().await? {
            Some(mut held) => {
                let release = if held.release_pending {
                    RELEASE_THEN
                } else {
                    ""
                };
                held.release_pending = false;
                Ok((Conn::Group(held), release))
            }
            None => self
                .writer
                .acquire()
                .await
                .map(|c| (Conn::Pool(c), ""))
                .map_err(db("acquiring the writer")),
        }
    }
}

impl GroupCommit for SqliteStore {
    async fn begin_group(&self) -> Result<()> {
        let mut group = self.main.group.lock().await;
        if group.is_none() {
            let tx = self
                .main
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db("starting a group"))?;
            *group = Some(Open {
                tx,
                abandoned: false,
                release_pending: false,
            });
        }
        Ok(())
    }

    async fn commit_group(&self) -> Result<()> {
        let mut group = self.main.group.lock().await;
        let Some(mut open) = group.take() else {
            return Ok(());
        };
        if open.abandoned {
            sqlx::raw_sql(ROLLBACK)
                .execute(&mut *open.tx)
                .await
                .map_err(db("rolling back a failed call"))?;
        }
        open.tx.commit().await.map_err(db("committing a group"))
    }
}
