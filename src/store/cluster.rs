//! What the replicas of one deployment share through the store: singleton
//! leases with fencing tokens, and shared values (the active rule-pack
//! versions). A capability of a [`Store`](super::Store).
//!
//! # Singleton leases
//!
//! Several `serve` replicas on one PostgreSQL must not all do the per-shop
//! jobs (reconciliation polls, token refreshes, retention): one replica at a
//! time holds each job's **lease**, a row `(name, holder, fence,
//! expires_at)`. [`Cluster::lease_acquire`] takes a lease that is free
//! (never taken, released, or lapsed) or renews one the caller holds, in one
//! statement; a lease held by another holder until after `now` is refused.
//! Every time a lease changes hands its **fence** grows by one, and a
//! renewal keeps it: a holder that stalled past its lease and comes back
//! finds the fence moved on (its next acquire is refused or answers a
//! newer fence), so it can tell it lost the job in between. A released
//! lease keeps its row (and fence): the next holder's fence is still larger.
//!
//! Times come from the caller, like everywhere in the store: the replicas'
//! clocks are assumed to agree to well within a lease's length (NTP).
//!
//! # Shared values
//!
//! A named text value with a revision that grows by one on each write
//! ([`Cluster::set_shared`]); replicas poll it ([`Cluster::shared`]) and
//! act when the revision moved (`serve` records the rule-pack versions a
//! reload made active under the name `rules`).
//!
//! Neither is tenant-scoped: they describe the deployment, not a creator's
//! data. On PostgreSQL the tables have forced row-level security with a
//! policy that admits the application role to every row (there is no
//! tenant in them to separate). Memory and SQLite stores serve one process;
//! they keep the same contract (one replica always holds every lease it
//! asks for, unless it released or another name holds it).

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};

use super::StoreError;

/// A shared value and its revision ([`Cluster::shared`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// The value, as written.
    pub value: String,
    /// 1 for the first write, one more for each later one.
    pub revision: i64,
    /// When it was last written.
    pub at: DateTime<Utc>,
}

/// Singleton leases and shared values across replicas (see the docs of
/// `src/store/cluster.rs`).
pub trait Cluster: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`: the
    /// fence it holds it under (`Some`), or `None` when another holder's
    /// lease runs past `now`. Taking a lease from another holder (or
    /// taking it the first time) moves the fence on; renewing keeps it.
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Gives the lease `name` up at `now` if `holder` holds it under
    /// `fence`: `true` if it did (the next acquire by anyone succeeds),
    /// `false` if it had lost it already.
    fn lease_release(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Who holds the lease `name` at `now`, and under which fence.
    fn lease_holder(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<(String, i64)>, StoreError>> + Send;

    /// The shared value `name`, if ever written.
    fn shared(&self, name: &str)
    -> impl Future<Output = Result<Option<Shared>, StoreError>> + Send;

    /// Writes the shared value `name` at `now`; its new revision.
    fn set_shared(
        &self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// Checks a lease's or shared value's name and a holder before they are
/// stored.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.contains('\0') {
        return Err(StoreError::invalid(format!(
            "{what}: must be non-empty text without NUL"
        )));
    }
    Ok(())
}

/// A lease as stored: holder, fence, expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaseRow {
    pub holder: String,
    pub fence: i64,
    pub expires_at: DateTime<Utc>,
}

/// The one decision of [`Cluster::lease_acquire`] (the memory store's;
/// the SQL backends say the same in their statement): the row after the
/// call, or `None` when another holder's lease is live.
pub(crate) fn acquire(
    current: Option<&LeaseRow>,
    holder: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<LeaseRow> {
    match current {
        None => Some(LeaseRow {
            holder: holder.to_owned(),
            fence: 1,
            expires_at: until,
        }),
        Some(row) if row.holder == holder => Some(LeaseRow {
            expires_at: until,
            ..row.clone()
        }),
        Some(row) if row.expires_at <= now => Some(LeaseRow {
            holder: holder.to_owned(),
            fence: row.fence + 1,
            expires_at: until,
        }),
        Some(_) => None,
    }
}
