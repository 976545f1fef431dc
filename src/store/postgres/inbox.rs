//! The inbox, event-time guard and cursors on PostgreSQL (migration 0003),
//! each call one transaction as the application role for the tenant.

use crate::store::Result;
use chrono::{DateTime, TimeDelta, Utc};

use super::rows::{column, count, db};

use super::retry::{lock_order, retrying, unsort};
use super::{Mode, PostgresStore, Role, literal};
use crate::store::inbox::validate_entry;
use crate::store::logic::{to_i64, trunc};
use crate::store::{Inbox, InboxDone, InboxEntry, InboxItem, InboxStats, OrderEvent};

/// Batches whose bodies total at most this many bytes are appended in one
/// round trip ([`PostgresStore::append_in_one_trip`]); larger ones bind
/// their values as arrays (four round trips).
const ONE_TRIP_BYTES: usize = 1 << 20;

impl PostgresStore {
    /// Runs the statement `query` makes of each item, in order, in one
    /// transaction for `tenant`; whether each changed exactly one row.
    async fn each_changes_one<'a, T>(
        &self,
        tenant: &str,
        items: &'a [T],
        context: &'static str,
        query: impl Fn(&'a T) -> super::rows::Q<'a> + Send,
    ) -> Result<Vec<bool>>
    where
        T: Sync,
    {
        self.for_tenant(tenant, Mode::Write, async |conn| {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let done = query(item).execute(&mut *conn).await.map_err(db(context))?;
                out.push(done.rows_affected() == 1);
            }
            Ok(out)
        })
        .await
    }
}

/// Which of `keys` are among the `stored` ones (each key counts once: a key
/// repeated within the batch is new only the first time).
fn new_keys(keys: &[String], stored: Vec<String>) -> Vec<bool> {
    let mut stored: std::collections::HashSet<String> = stored.into_iter().collect();
    keys.iter().map(|k| stored.remove(k)).collect()
}

impl PostgresStore {
    /// Appends as one transaction in **one round trip**, like the lease
    /// operations (`one_shot`): `BEGIN`, role, tenant, the `INSERT` with its
    /// values as literals (text escaped by `literal`, bodies hex-encoded,
    /// times in RFC 3339) and `COMMIT` in one simple-protocol message, on the
    /// reserved inbox connections. An acknowledgement then costs one
    /// exchange with the server and its WAL flush, with no other wake-up of
    /// the server process in between.
    async fn append_in_one_trip(&self, tenant: &str, entries: &[InboxEntry]) -> Result<Vec<bool>> {
        use std::fmt::Write;

        let bytes: usize = entries.iter().map(|e| 2 * e.body.len() + 96).sum();
        let mut values = String::with_capacity(bytes);
        let mut keys = Vec::with_capacity(entries.len());
        for (n, e) in entries.iter().enumerate() {
            let sep = if n == 0 { "" } else { ", " };
            let at = trunc(e.received_at).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let _ = write!(
                values,
                "{sep}({n}, {}, {}::int8, decode('{}', 'hex'), '{at}'::timestamptz)",
                literal(&e.dedup_key)?,
                to_i64(e.topic, "topic")?,
                hex::encode(&e.body),
            );
            keys.push(e.dedup_key.clone());
        }
        let statement = format!(
            "INSERT INTO tiktok_inbox \
                 (user_id, dedup_key, topic, body, received_at, claimable_at) \
             SELECT {}, k, t, b, r, r FROM (VALUES {values}) AS u(n, k, t, b, r) \
             ORDER BY k, n \
             ON CONFLICT DO NOTHING RETURNING dedup_key",
            literal(tenant)?,
        );
        let rows = super::one_shot_rows(
            &self.inbox_pool,
            Role::App,
            tenant,
            &statement,
            "appending to the inbox",
        )
        .await?;
        let stored = rows
            .iter()
            .map(|r| column::<String>(r, "dedup_key"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(new_keys(&keys, stored))
    }
}

impl PostgresStore {
    /// One run of [`Inbox::inbox_append`] (one transaction): the keys are
    /// inserted in sorted order, so two appends sharing keys (duplicate
    /// deliveries on two replicas) wait for each other in one direction
    /// and cannot deadlock (`retry.rs`).
    async fn append_once(&self, tenant: &str, entries: &[InboxEntry]) -> Result<Vec<bool>> {
        let bytes: usize = entries.iter().map(|e| e.body.len()).sum();
        if bytes <= ONE_TRIP_BYTES {
            return self.append_in_one_trip(tenant, entries).await;
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut topics = Vec::with_capacity(entries.len());
        let mut bodies = Vec::with_capacity(entries.len());
        let mut times = Vec::with_capacity(entries.len());
        for e in entries {
            keys.push(e.dedup_key.clone());
            topics.push(to_i64(e.topic, "topic")?);
            bodies.push(e.body.clone());
            times.push(trunc(e.received_at));
        }
        // On the reserved connections: an acknowledgement waits for no
        // order or queue transaction (see [`PostgresStore::INBOX_CONNECTIONS`]).
        let mut tx = self
            .begin_on(&self.inbox_pool, Role::App, Some(tenant), Mode::Write)
            .await?;
        // One statement for the batch; the keys it returns are the new
        // entries (a key repeated within the batch is new only the first time).
        let result = sqlx::query_scalar::<_, String>(
            "INSERT INTO tiktok_inbox (user_id, dedup_key, topic, body, received_at, claimable_at) \
             SELECT $1, k, t, b, r, r \
             FROM UNNEST($2::text[], $3::int8[], $4::bytea[], $5::timestamptz[]) \
                  WITH ORDINALITY AS u(k, t, b, r, n) \
             ORDER BY k, n \
             ON CONFLICT DO NOTHING RETURNING dedup_key",
        )
        .bind(tenant)
        .bind(&keys)
        .bind(&topics)
        .bind(&bodies)
        .bind(&times)
        .fetch_all(tx.conn())
        .await
        .map_err(db("appending to the inbox"))
        .map(|stored| new_keys(&keys, stored));
        tx.end(result).await
    }
}

impl Inbox for PostgresStore {
    async fn inbox_append(&self, tenant: &str, entries: &[InboxEntry]) -> Result<Vec<bool>> {
        for e in entries {
            validate_entry(e)?;
        }
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        retrying(|| self.append_once(tenant, entries)).await
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
        let limit = to_i64(limit as u64, "limit")?;
        let mut items = self
            .for_tenant(tenant, Mode::Write, async |conn| {
                sqlx::query(
                    "UPDATE tiktok_inbox SET attempts = attempts + 1, claimable_at = $1 \
                     WHERE id IN (SELECT id FROM tiktok_inbox \
                                  WHERE user_id = $2 AND processed_at IS NULL \
                                    AND claimable_at <= $3 \
                                  ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, dedup_key, topic, body, received_at, attempts",
                )
                .bind(trunc(now + lease))
                .bind(tenant)
                .bind(trunc(now))
                .bind(limit)
                .fetch_all(conn)
                .await
                .map_err(db("claiming inbox entries"))?
                .iter()
                .map(|r| crate::store::decode::inbox_item(r, tenant))
                .collect::<Result<Vec<_>>>()
            })
            .await?;
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
        // In id order (the lock order; see `retry.rs`), answered in the
        // caller's: an entry named twice is marked by its first naming.
        let order = lock_order(done, |d| d.id);
        let sorted: Vec<&InboxDone> = order.iter().map(|&i| &done[i]).collect();
        let marked = retrying(|| {
            self.each_changes_one(tenant, &sorted, "marking an inbox entry processed", |d| {
                sqlx::query(
                    "UPDATE tiktok_inbox SET processed_at = $1, claimable_at = NULL, outcome = $2 \
                 WHERE user_id = $3 AND id = $4 AND attempts = $5 AND processed_at IS NULL",
                )
                .bind(trunc(now))
                .bind(&d.outcome)
                .bind(tenant)
                .bind(d.id)
                .bind(i64::from(d.attempt))
            })
        })
        .await?;
        Ok(unsort(&order, marked))
    }

    async fn inbox_prune(&self, tenant: &str, processed_before: DateTime<Utc>) -> Result<u64> {
        self.for_tenant(tenant, Mode::Write, async |conn| {
            sqlx::query(
                "DELETE FROM tiktok_inbox WHERE user_id = $1 AND processed_at IS NOT NULL \
                 AND processed_at < $2",
            )
            .bind(tenant)
            .bind(trunc(processed_before))
            .execute(conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(db("pruning the inbox"))
        })
        .await
    }

    async fn inbox_stats(&self, tenant: &str) -> Result<InboxStats> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let row = sqlx::query(
                "SELECT COUNT(*)::int8 AS received, \
                        COUNT(*) FILTER (WHERE processed_at IS NULL)::int8 AS pending, \
                        COUNT(*) FILTER (WHERE processed_at IS NOT NULL)::int8 AS processed, \
                        COUNT(*) FILTER (WHERE processed_at IS NOT NULL \
                                           AND attempts > 1)::int8 AS reclaimed \
                 FROM tiktok_inbox WHERE user_id = $1",
            )
            .bind(tenant)
            .fetch_one(conn)
            .await
            .map_err(db("counting the inbox"))?;
            Ok(InboxStats {
                received: count(&row, "received")?,
                pending: count(&row, "pending")?,
                processed: count(&row, "processed")?,
                reclaimed: count(&row, "reclaimed")?,
            })
        })
        .await
    }

    async fn note_order_events(&self, tenant: &str, events: &[OrderEvent]) -> Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Grouped by TikTok order (the lock order; see `retry.rs`), each
        // order's events in the caller's order; answered in the caller's.
        let order = lock_order(events, |e| e.tiktok_order_id.clone());
        let sorted: Vec<&OrderEvent> = order.iter().map(|&i| &events[i]).collect();
        let noted = retrying(|| {
            self.each_changes_one(tenant, &sorted, "noting an order event", |e| {
            sqlx::query(
                "INSERT INTO tiktok_order_events AS e (user_id, tiktok_order_id, event_time, event_rank) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, tiktok_order_id) DO UPDATE \
                 SET event_time = EXCLUDED.event_time, event_rank = EXCLUDED.event_rank \
                 WHERE (EXCLUDED.event_time, EXCLUDED.event_rank) >= (e.event_time, e.event_rank)",
            )
            .bind(tenant)
            .bind(&e.tiktok_order_id)
            .bind(e.time)
            .bind(i16::from(e.rank))
            })
        })
        .await?;
        Ok(unsort(&order, noted))
    }

    async fn cursor(&self, tenant: &str, name: &str) -> Result<Option<i64>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT value FROM tiktok_cursors WHERE user_id = $1 AND name = $2",
            )
            .bind(tenant)
            .bind(name)
            .fetch_optional(conn)
            .await
            .map_err(db("reading a cursor"))
        })
        .await
    }

    async fn set_cursor(&self, tenant: &str, name: &str, value: i64) -> Result<()> {
        self.for_tenant(tenant, Mode::Write, async |conn| {
            sqlx::query(
                "INSERT INTO tiktok_cursors (user_id, name, value) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, name) DO UPDATE SET value = EXCLUDED.value",
            )
            .bind(tenant)
            .bind(name)
            .bind(value)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(db("setting a cursor"))
        })
        .await
    }
}
