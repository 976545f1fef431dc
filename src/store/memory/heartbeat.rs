//! [`HeartbeatStore`] on the in-memory store.

use chrono::{DateTime, TimeDelta, Utc};

use super::MemoryStore;
use crate::store::Result;
use crate::store::heartbeat::alive_until;
use crate::store::logic::trunc;
use crate::store::{HeartbeatStore, Holders, TenantScope, WorkId};

impl HeartbeatStore for MemoryStore {
    async fn beat(&self, worker: &str, lapse: TimeDelta, now: DateTime<Utc>) -> Result<()> {
        let until = alive_until(worker, lapse, now)?;
        self.lock().heartbeats.insert(worker.to_owned(), until);
        Ok(())
    }

    async fn retire(&self, worker: &str, now: DateTime<Utc>) -> Result<()> {
        if let Some(until) = self.lock().heartbeats.get_mut(worker) {
            *until = trunc(now);
        }
        Ok(())
    }

    async fn take_over(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<u64> {
        let now = trunc(now);
        let mut inner = self.lock();
        let lapsed = |w: &str| inner.heartbeats.get(w).is_some_and(|u| *u <= now);
        let ids: Vec<WorkId> = inner
            .queue
            .iter()
            .filter(|(_, i)| scope.includes(&i.tenant))
            .filter(|(_, i)| i.owner.as_deref().is_some_and(lapsed))
            .map(|(id, _)| id)
            .collect();
        for id in &ids {
            inner.queue.release(*id, now, None);
        }
        if scope == TenantScope::All {
            let holding: std::collections::HashSet<String> = inner
                .queue
                .iter()
                .filter_map(|(_, i)| i.owner.clone())
                .collect();
            inner
                .heartbeats
                .retain(|w, until| *until > now || holding.contains(w));
        }
        Ok(ids.len() as u64)
    }

    async fn holders(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<Holders> {
        let now = trunc(now);
        let inner = self.lock();
        let mut h = Holders {
            live_workers: inner.heartbeats.values().filter(|u| **u > now).count() as u64,
            ..Holders::default()
        };
        for (_, item) in inner
            .queue
            .iter()
            .filter(|(_, i)| scope.includes(&i.tenant))
        {
            let Some(owner) = item.owner.as_deref() else {
                continue;
            };
            if item.expires_at.is_none_or(|e| e <= now) {
                continue;
            }
            h.steps += 1;
            if inner.heartbeats.get(owner).is_some_and(|u| *u > now) {
                h.held_by_live += 1;
            } else {
                h.held_by_dead += 1;
            }
        }
        Ok(h)
    }
}
