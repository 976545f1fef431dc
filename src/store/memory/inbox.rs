//! The inbox, event-time guard and cursors of the `memory:` store.

use crate::store::Result;
use std::collections::HashMap;
use std::sync::{MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use super::MemoryStore;
use crate::store::inbox::validate_entry;
use crate::store::logic::trunc;
use crate::store::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent};

/// One inbox row.
#[derive(Debug)]
struct Row {
    item: InboxItem,
    /// Claimable at or after this time (the lease's expiry once claimed).
    claimable_at: DateTime<Utc>,
    processed: Option<(DateTime<Utc>, String)>,
    /// Deleted by retention (kept as a tombstone so ids stay positions).
    pruned: bool,
}

/// The three tables.
#[derive(Debug, Default)]
pub(super) struct Tables {
    rows: Vec<Row>,
    /// Rows before this index are all processed (where claims start).
    first_pending: usize,
    keys: HashMap<(String, String), usize>,
    events: HashMap<(String, String), (i64, u8)>,
    cursors: HashMap<(String, String), i64>,
}

impl MemoryStore {
    fn inbox(&self) -> MutexGuard<'_, Tables> {
        // The guarded code never panics; a poisoned lock still holds consistent data.
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inbox for MemoryStore {
    async fn inbox_append(&self, tenant: &str, entries: &[InboxEntry]) -> Result<Vec<bool>> {
        for e in entries {
            validate_entry(e)?;
        }
        let mut t = self.inbox();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let key = (tenant.to_owned(), e.dedup_key.clone());
            if t.keys.contains_key(&key) {
                out.push(false);
                continue;
            }
            let id = i64::try_from(t.rows.len())
                .unwrap_or(i64::MAX)
                .saturating_add(1);
            let at = trunc(e.received_at);
            let index = t.rows.len();
            t.keys.insert(key, index);
            t.rows.push(Row {
                item: InboxItem {
                    id,
                    tenant: tenant.to_owned(),
                    dedup_key: e.dedup_key.clone(),
                    topic: e.topic,
                    body: e.body.clone(),
                    received_at: at,
                    attempt: 0,
                },
                claimable_at: at,
                processed: None,
                pruned: false,
            });
            out.push(true);
        }
        Ok(out)
    }

    async fn inbox_claim(
        &self,
        tenant: &str,
        limit: usize,
        lease: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Vec<InboxItem>> {
        let now = trunc(now);
        let mut t = self.inbox();
        let mut out = Vec::new();
        let mut first = t.first_pending;
        while t.rows.get(first).is_some_and(|r| r.processed.is_some()) {
            first += 1;
        }
        t.first_pending = first;
        for row in t.rows.iter_mut().skip(first) {
            if out.len() >= limit {
                break;
            }
            if row.item.tenant == tenant && row.processed.is_none() && row.claimable_at <= now {
                row.item.attempt = row.item.attempt.saturating_add(1);
                row.claimable_at = trunc(now + lease);
                out.push(row.item.clone());
            }
        }
        Ok(out)
    }

    async fn inbox_done(
        &self,
        tenant: &str,
        done: &[InboxDone],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let mut t = self.inbox();
        let mut out = Vec::with_capacity(done.len());
        for d in done {
            let row = usize::try_from(d.id - 1)
                .ok()
                .and_then(|i| t.rows.get_mut(i))
                .filter(|r| r.item.tenant == tenant);
            out.push(match row {
                Some(r) if r.processed.is_none() && r.item.attempt == d.attempt => {
                    r.processed = Some((trunc(now), d.outcome.clone()));
                    true
                }
                _ => false,
            });
        }
        Ok(out)
    }

    async fn inbox_prune(&self, tenant: &str, processed_before: DateTime<Utc>) -> Result<u64> {
        let before = trunc(processed_before);
        let mut t = self.inbox();
        let mut gone = Vec::new();
        for r in t.rows.iter_mut() {
            if !r.pruned
                && r.item.tenant == tenant
                && r.processed.as_ref().is_some_and(|(at, _)| *at < before)
            {
                r.pruned = true;
                r.item.body = Vec::new();
                gone.push((tenant.to_owned(), r.item.dedup_key.clone()));
            }
        }
        for key in &gone {
            t.keys.remove(key);
        }
        Ok(gone.len() as u64)
    }

    async fn inbox_stats(&self, tenant: &str) -> Result<InboxStats> {
        let t = self.inbox();
        let mut s = InboxStats::default();
        for r in t
            .rows
            .iter()
            .filter(|r| r.item.tenant == tenant && !r.pruned)
        {
            s.received += 1;
            if r.processed.is_some() {
                s.processed += 1;
                if r.item.attempt > 1 {
                    s.reclaimed += 1;
                }
            } else {
                s.pending += 1;
            }
        }
        Ok(s)
    }

    async fn note_order_events(&self, tenant: &str, events: &[OrderEvent]) -> Result<Vec<bool>> {
        let mut t = self.inbox();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let key = (tenant.to_owned(), e.tiktok_order_id.clone());
            out.push(match t.events.get(&key) {
                Some(newest) if *newest > (e.time, e.rank) => false,
                _ => {
                    t.events.insert(key, (e.time, e.rank));
                    true
                }
            });
        }
        Ok(out)
    }

    async fn cursor(&self, tenant: &str, name: &str) -> Result<Option<i64>> {
        Ok(self
            .inbox()
            .cursors
            .get(&(tenant.to_owned(), name.to_owned()))
            .copied())
    }

    async fn set_cursor(&self, tenant: &str, name: &str, value: i64) -> Result<()> {
        self.inbox()
            .cursors
            .insert((tenant.to_owned(), name.to_owned()), value);
        Ok(())
    }
}
