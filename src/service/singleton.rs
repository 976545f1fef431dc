//! Singleton jobs across replicas: several `serve` processes on one
//! database each run the service, but each per-shop job (a shop's
//! reconciliation poll) and each deployment-wide one (retention) is done
//! by one replica at a time, the holder of its lease in the store
//! ([`Cluster`](crate::store::Cluster): a row with a fencing token).
//!
//! Every job loop asks its [`Elector`] before each run (every
//! [`TICK`] at most): the first replica to ask takes the lease for
//! [`LEASE_TTL`] and renews it on each tick; the others are refused while
//! it is live. A holder that dies stops renewing, and its lease lapses
//! within [`LEASE_TTL`]: the next replica to ask takes it over (its fence one
//! larger) and runs the job at once. A holder that stops gracefully
//! releases its leases, so the others take over on their next tick. A
//! holder that cannot reach the store stops running its jobs (it cannot
//! know whether it still holds them), so two replicas never run one job
//! on purpose; the rare overlap of a holder stalled past its lease while
//! running a job is harmless because every job is idempotent (a poll
//! applies what the inbox would). A shop's token refresh is not a loop but
//! a call: `tiktok/access.rs` holds the lease `token:…` for its duration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::Store;

/// How long a lease lasts without renewal: the longest a dead holder's
/// job waits for another replica.
pub const LEASE_TTL: Duration = Duration::from_secs(6);

/// How often the job loops renew their leases (and look for one to take):
/// well within [`LEASE_TTL`].
pub const TICK: Duration = Duration::from_secs(2);

/// Takes and renews this replica's singleton leases.
pub(crate) struct Elector<S> {
    store: S,
    holder: Arc<str>,
    /// The leases held, with their fence (as of the last ask).
    held: Mutex<BTreeMap<String, i64>>,
}

impl<S> std::fmt::Debug for Elector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

impl<S: Store> Elector<S> {
    /// An elector taking leases for `holder` (the replica's name).
    pub(crate) fn new(store: S, holder: Arc<str>) -> Self {
        Elector {
            store,
            holder,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    /// The replica's name.
    pub(crate) fn holder(&self) -> &str {
        &self.holder
    }

    /// The leases held as of the last ask, with their fence.
    pub(crate) fn held(&self) -> BTreeMap<String, i64> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes or renews the lease `name` at `now`: its fence if this
    /// replica holds it now, `None` if another does or the store cannot
    /// say (then the job is not run). Taking over and losing are logged.
    pub(crate) async fn hold(&self, name: &str, now: DateTime<Utc>) -> Option<i64> {
        let ttl = TimeDelta::from_std(LEASE_TTL).unwrap_or(TimeDelta::seconds(6));
        let asked = self.store.lease_acquire(name, &self.holder, ttl, now).await;
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let before = held.get(name).copied();
        let now_held = match asked {
            Ok(fence) => fence,
            Err(e) => {
                if before.is_some() {
                    tracing::warn!(task = "singleton", job = name, replica = %self.holder, error = %e, "cannot renew the lease; the job stops here until the store answers");
                }
                None
            }
        };
        match (before, now_held) {
            (None, Some(fence)) => {
                tracing::info!(task = "singleton", job = name, replica = %self.holder, fence, "took the lease: this replica runs the job");
                held.insert(name.to_owned(), fence);
            }
            (Some(old), Some(fence)) if old != fence => {
                tracing::warn!(task = "singleton", job = name, replica = %self.holder, fence, previous = old, "the lease changed hands in between; holding it again");
                held.insert(name.to_owned(), fence);
            }
            (Some(_), None) => {
                tracing::info!(task = "singleton", job = name, replica = %self.holder, "lost the lease: another replica runs the job");
                held.remove(name);
            }
            _ => {}
        }
        now_held
    }

    /// Gives back every lease held (a graceful stop), so that another
    /// replica takes the jobs over on its next tick.
    pub(crate) async fn release_all(&self, now: DateTime<Utc>) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(PoisonError::into_inner));
        for (name, fence) in held {
            if let Err(e) = self
                .store
                .lease_release(&name, &self.holder, fence, now)
                .await
            {
                tracing::warn!(task = "singleton", job = %name, error = %e, "releasing the lease failed; it lapses on its own");
            }
        }
    }
}

/// A handle on the singleton jobs this replica runs (from
/// [`Running::singletons`](super::Running::singletons)); cheap to clone.
pub struct Singletons<S>(pub(crate) Arc<Elector<S>>);

impl<S> Clone for Singletons<S> {
    fn clone(&self) -> Self {
        Singletons(self.0.clone())
    }
}

impl<S> std::fmt::Debug for Singletons<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: Store> Singletons<S> {
    /// The replica's name (what holds the leases).
    pub fn replica(&self) -> &str {
        self.0.holder()
    }

    /// The leases held as of the jobs' last ask, by name, with their
    /// fencing token: `reconcile:TENANT:SHOP`, `retention`.
    pub fn held(&self) -> BTreeMap<String, i64> {
        self.0.held()
    }
}

/// The default replica name: `HOST-PID` (the host from `HOSTNAME` or
/// `/etc/hostname`, else `replica`).
pub fn default_replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + s, 0).unwrap()
    }

    #[tokio::test]
    async fn one_holder_then_takeover_after_the_lease() {
        let store = MemoryStore::new();
        let a = Elector::new(store.clone(), Arc::from("a"));
        let b = Elector::new(store.clone(), Arc::from("b"));
        assert_eq!(a.hold("job", at(0)).await, Some(1));
        assert_eq!(b.hold("job", at(1)).await, None);
        assert_eq!(a.hold("job", at(2)).await, Some(1), "renewed");
        assert_eq!(b.hold("job", at(7)).await, None, "still live");
        assert_eq!(b.hold("job", at(9)).await, Some(2), "lapsed: taken over");
        assert_eq!(a.hold("job", at(10)).await, None);
        assert!(a.held().is_empty());
        b.release_all(at(11)).await;
        assert_eq!(
            a.hold("job", at(11)).await,
            Some(3),
            "released: free at once"
        );
    }
}
