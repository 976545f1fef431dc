//! [`HeartbeatStore`]: workers say they are alive, and the steps of those
//! that stopped saying so are taken over long before their leases lapse.
//!
//! A claim's lease is long (twice the longest lane timeout, so that an
//! order's steps chain under one claim): waiting for it to lapse after a
//! crash would leave the crashed worker's orders still for minutes. So a
//! worker also keeps a *heartbeat* in the store: [`HeartbeatStore::beat`]
//! records that it is alive until `now + lapse`, renewed every few seconds
//! by a task of its own, independent of the steps it runs (a slow step or
//! a pause shorter than the lapse does not stop it). Any worker's
//! [`HeartbeatStore::take_over`] then gives back, due at once, every item
//! leased to a worker whose heartbeat lapsed; the next claim takes them.
//!
//! Fencing is the lease's, as before: taking over clears the item's lease,
//! and the next claim counts a new attempt, so the dead (or long-paused)
//! worker's completion, release, renewal or transition under its old
//! lease is refused with [`StoreError::LeaseLost`](super::StoreError::LeaseLost).
//! A worker that never beats (an embedding that runs single rounds) is
//! never taken over: its items return when their leases lapse.
//!
//! Heartbeats are not tenant data (a worker serves every tenant); taking
//! over and counting holders keep to a [`TenantScope`] like claims do.
//! Times come from the caller, as everywhere in the store.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{StoreError, TenantScope};

/// Who holds the steps in flight ([`HeartbeatStore::holders`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Holders {
    /// Items leased, lease not expired: steps in flight.
    pub steps: u64,
    /// Of those, the items whose worker's heartbeat is alive.
    pub held_by_live: u64,
    /// Of those, the items whose worker's heartbeat lapsed, or who keeps
    /// none: a live worker takes over the former at its next
    /// [`HeartbeatStore::take_over`]; the latter return when their leases lapse.
    pub held_by_dead: u64,
    /// Workers whose heartbeat is alive (every tenant's workers: they are
    /// shared).
    pub live_workers: u64,
}

/// Worker heartbeats and the takeover of dead workers' steps.
pub trait HeartbeatStore: Send + Sync {
    /// Records that `worker` is alive until `now + lapse` (created, or
    /// renewed whatever it said before). [`StoreError::Invalid`] for an
    /// empty worker name or a lapse that is not positive.
    fn beat(
        &self,
        worker: &str,
        lapse: TimeDelta,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A worker stopping for good: its heartbeat lapses at `now` (whatever
    /// it still holds is taken over at once). Unknown workers: nothing.
    fn retire(
        &self,
        worker: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives back, due at `now`, every item in `scope` leased to a worker
    /// whose heartbeat lapsed by `now` (its lease cleared, so it is refused
    /// to that worker from then on); returns how many. With
    /// [`TenantScope::All`] it also forgets the heartbeats that lapsed and
    /// hold nothing any more.
    fn take_over(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The steps in flight in `scope` at `now` and who holds them.
    fn holders(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Holders, StoreError>> + Send;
}

/// When a heartbeat of `lapse` taken at `now` lapses (milliseconds), for a
/// valid worker name.
pub(crate) fn alive_until(
    worker: &str,
    lapse: TimeDelta,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    if worker.is_empty() || worker.contains('\0') {
        return Err(StoreError::invalid(
            "a worker name must not be empty or contain NUL",
        ));
    }
    if lapse <= TimeDelta::zero() {
        return Err(StoreError::invalid("a heartbeat must last longer than 0"));
    }
    super::logic::lease_expiry(now, lapse)
}
