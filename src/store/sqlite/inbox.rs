//! The inbox, event-time guard and cursors on SQLite (migration 0002).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::SqliteStore;
use super::orders::count;
use super::rows::{column, db, placeholders};
use crate::store::inbox::validate_entry;
use crate::store::logic::{from_ms, ms, to_i64};
use crate::store::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent, StoreError};

/// Entries per INSERT statement (6 parameters each).
const APPEND_CHUNK: usize = 500;

impl Inbox for SqliteStore {
    async fn inbox_append(
        &self,
        tenant: &str,
        entries: &[InboxEntry],
    ) -> Result<Vec<bool>, StoreError> {
        for e in entries {
            validate_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
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
    ) -> Result<Vec<InboxItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let rows = sqlx::query(
            "UPDATE tiktok_inbox SET attempts = attempts + 1, claimable_at = ? \
             WHERE id IN (SELECT id FROM tiktok_inbox \
                          WHERE user_id = ? AND processed_at IS NULL AND claimable_at <= ? \
                          ORDER BY id LIMIT ?) \
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
            .map(|r| {
                Ok(InboxItem {
                    id: column(r, "id")?,
                    tenant: tenant.to_owned(),
                    dedup_key: column(r, "dedup_key")?,
                    topic: u64::try_from(column::<i64>(r, "topic")?)
                        .map_err(|_| StoreError::database("inbox: negative topic"))?,
                    body: column(r, "body")?,
                    received_at: from_ms(column(r, "received_at")?)?,
                    attempt: u32::try_from(column::<i64>(r, "attempts")?)
                        .map_err(|_| StoreError::database("inbox: attempts out of range"))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn inbox_done(
        &self,
        tenant: &str,
        done: &[InboxDone],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(done.len());
        for d in done {
            let r = sqlx::query(
                "UPDATE tiktok_inbox SET processed_at = ?, claimable_at = NULL, outcome = ? \
                 WHERE user_id = ? AND id = ? AND attempts = ? AND processed_at IS NULL",
            )
            .bind(ms(now))
            .bind(d.outcome.clone())
            .bind(tenant.to_owned())
            .bind(d.id)
            .bind(i64::from(d.attempt))
            .execute(&mut *tx)
            .await
            .map_err(db("marking an inbox entry processed"))?;
            out.push(r.rows_affected() == 1);
        }
        tx.commit()
            .await
            .map_err(db("committing processed inbox entries"))?;
        Ok(out)
    }

    async fn inbox_prune(
        &self,
        tenant: &str,
        processed_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
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

    async fn inbox_stats(&self, tenant: &str) -> Result<InboxStats, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS received, \
                    SUM(processed_at IS NULL) AS pending, \
                    SUM(processed_at IS NOT NULL) AS processed, \
                    SUM(processed_at IS NOT NULL AND attempts > 1) AS reclaimed \
             FROM tiktok_inbox WHERE user_id = ?",
        )
        .bind(tenant.to_owned())
        .fetch_one(&self.reader)
        .await
        .map_err(db("counting the inbox"))?;
        Ok(InboxStats {
            received: count(&row, "received")?,
            pending: count(&row, "pending")?,
            processed: count(&row, "processed")?,
            reclaimed: count(&row, "reclaimed")?,
        })
    }

    async fn note_order_events(
        &self,
        tenant: &str,
        events: &[OrderEvent],
    ) -> Result<Vec<bool>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write().await?;
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let r = sqlx::query(
                "INSERT INTO tiktok_order_events (user_id, tiktok_order_id, event_time, event_rank) \
                 VALUES (?, ?, ?, ?) ON CONFLICT (user_id, tiktok_order_id) DO UPDATE \
                 SET event_time = excluded.event_time, event_rank = excluded.event_rank \
                 WHERE (excluded.event_time, excluded.event_rank) >= (event_time, event_rank)",
            )
            .bind(tenant.to_owned())
            .bind(e.tiktok_order_id.clone())
            .bind(e.time)
            .bind(i64::from(e.rank))
            .execute(&mut *tx)
            .await
            .map_err(db("noting an order event"))?;
            out.push(r.rows_affected() == 1);
        }
        tx.commit().await.map_err(db("committing order events"))?;
        Ok(out)
    }

    async fn cursor(&self, tenant: &str, name: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT value FROM tiktok_cursors WHERE user_id = ? AND name = ?")
            .bind(tenant.to_owned())
            .bind(name.to_owned())
            .fetch_optional(&self.reader)
            .await
            .map_err(db("reading a cursor"))?;
        row.map(|r| r.try_get::<i64, _>("value"))
            .transpose()
            .map_err(db("reading a cursor"))
    }

    async fn set_cursor(&self, tenant: &str, name: &str, value: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
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
