//! Singleton leases and shared values of the `memory:` store (one process:
//! the same contract as the SQL backends, decided by `cluster::acquire`).

use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use super::MemoryStore;
use crate::store::Cluster;
use crate::store::Result;
use crate::store::cluster::{LeaseRow, Shared, acquire, check_name};
use crate::store::logic::trunc;

/// The two tables.
#[derive(Debug, Default)]
pub(super) struct Tables {
    leases: HashMap<String, LeaseRow>,
    shared: HashMap<String, Shared>,
}

impl MemoryStore {
    fn cluster(&self) -> MutexGuard<'_, Tables> {
        self.cluster.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cluster for MemoryStore {
    async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        check_name("lease name", name)?;
        check_name("lease holder", holder)?;
        let mut t = self.cluster();
        let next = acquire(t.leases.get(name), holder, trunc(now + ttl), trunc(now));
        Ok(next.map(|row| {
            let fence = row.fence;
            t.leases.insert(name.to_owned(), row);
            fence
        }))
    }

    async fn lease_release(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut t = self.cluster();
        match t.leases.get_mut(name) {
            Some(row) if row.holder == holder && row.fence == fence => {
                row.expires_at = trunc(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn lease_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<(String, i64)>> {
        let t = self.cluster();
        Ok(t.leases
            .get(name)
            .filter(|row| row.expires_at > trunc(now))
            .map(|row| (row.holder.clone(), row.fence)))
    }

    async fn shared(&self, name: &str) -> Result<Option<Shared>> {
        Ok(self.cluster().shared.get(name).cloned())
    }

    async fn set_shared(&self, name: &str, value: &str, now: DateTime<Utc>) -> Result<i64> {
        check_name("shared value name", name)?;
        let mut t = self.cluster();
        let revision = t.shared.get(name).map_or(1, |s| s.revision + 1);
        t.shared.insert(
            name.to_owned(),
            Shared {
                value: value.to_owned(),
                revision,
                at: trunc(now),
            },
        );
        Ok(revision)
    }
}
