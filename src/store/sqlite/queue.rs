//! The durable work queue on SQLite.

use crate::FastMap;
use crate::store::Result;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteRow;
use std::collections::HashSet;

use super::SqliteStore;
use super::orders::{CHUNK, insert_work};
use super::rows::{LIMIT, column, count, db, json, lane, placeholders, time};
use crate::model::Priority;
use crate::store::decode;
use crate::store::logic::{self, Enqueue, lease_expiry, lease_lost, leased_error, ms, trunc};
use crate::store::{
    ClaimRequest, Lease, OrderId, QueueDue, QueueStore, QueueSummary, Scheduled, StoreError,
    TenantScope, WorkId, WorkItem, WorkSpec,
};

/// The order's `viral` flag and `created_at`, if it is the tenant's.
async fn order_facts(
    conn: &mut sqlx::SqliteConnection,
    tenant: &str,
    order_id: OrderId,
) -> Result<(bool, DateTime<Utc>)> {
    let row = sqlx::query("SELECT viral, created_at FROM orders WHERE id = ? AND user_id = ?")
        .bind(order_id.to_string())
        .bind(tenant.to_owned())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("reading an order"))?
        .ok_or_else(|| StoreError::order_not_found(order_id))?;
    Ok((
        column(&row, "viral")?,
        logic::from_ms(column(&row, "created_at")?)?,
    ))
}

/// The id and live-lease flag of the order's item of `kind`, if any.
async fn find_item(
    conn: &mut sqlx::SqliteConnection,
    order_id: OrderId,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Option<(WorkId, bool)>> {
    let row = sqlx::query(
        "SELECT id, lease_owner IS NOT NULL AND lease_expires_at > ? AS leased \
         FROM work_queue WHERE order_id = ? AND kind = ?",
    )
    .bind(ms(now))
    .bind(order_id.to_string())
    .bind(kind.to_owned())
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("reading a work item"))?;
    row.map(|r| Ok((column(&r, "id")?, column(&r, "leased")?)))
        .transpose()
}

/// Inserts the order's item of `spec.kind` (it has none), with the order's
/// `viral` flag and `created_at`; returns the item's id.
async fn insert_item(
    conn: &mut sqlx::SqliteConnection,
    tenant: &str,
    order_id: OrderId,
    spec: WorkSpec,
    (viral, order_created_at): (bool, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<WorkId> {
    let item = Enqueue {
        tenant: tenant.to_owned(),
        order_id,
        spec,
        viral,
        order_created_at,
        at: trunc(now),
    };
    insert_work(&mut *conn, std::slice::from_ref(&item)).await?;
    find_item(conn, order_id, &item.spec.kind, now)
        .await?
        .map(|(id, _)| id)
        .ok_or_else(|| StoreError::database("the new work item vanished"))
}

impl QueueStore for SqliteStore {
    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<(WorkId, bool)> {
        let spec = logic::prepare_work(work)?;
        let mut tx = self.main.write().await?;
        let facts = order_facts(&mut tx, tenant, order_id).await?;
        let result = match find_item(&mut tx, order_id, &spec.kind, now).await? {
            Some((id, _)) => (id, false),
            None => (
                insert_item(&mut tx, tenant, order_id, spec, facts, now).await?,
                true,
            ),
        };
        tx.commit().await.map_err(db("committing work"))?;
        Ok(result)
    }

    async fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<WorkId> {
        let spec = logic::prepare_work(work)?;
        // The common case in one statement (atomic by itself, so no
        // savepoint): insert the item, or move it if no live lease holds
        // it. No row back means the order is not the tenant's or the item
        // is leased: the statements below tell which.
        let (mut conn, release) = self.main.writing_after().await?;
        let upserted: Option<WorkId> =
            sqlx::query_scalar(AssertSqlSafe(format!("{release}{SCHEDULE_UPSERT}")))
                .bind(spec.kind.clone())
                .bind(spec.lane.as_str())
                .bind(ms(spec.run_at))
                .bind(json(&spec.payload, "payload")?)
                .bind(ms(trunc(now)))
                .bind(spec.run_at <= trunc(now))
                .bind(order_id.to_string())
                .bind(tenant.to_owned())
                .fetch_optional(&mut *conn)
                .await
                .map_err(db("scheduling work"))?;
        drop(conn);
        if let Some(id) = upserted {
            return Ok(id);
        }
        let mut tx = self.main.write().await?;
        let facts = order_facts(&mut tx, tenant, order_id).await?;
        let id = match find_item(&mut tx, order_id, &spec.kind, now).await? {
            Some((id, true)) => return Err(leased_error(id)),
            Some((id, false)) => {
                sqlx::query(
                    "UPDATE work_queue SET lane = ?, run_at = ?, payload = ?, payload_ref = NULL, \
                     lease_owner = NULL, lease_expires_at = NULL, updated_at = ?, ready = 0 \
                     WHERE id = ?",
                )
                .bind(spec.lane.as_str())
                .bind(ms(spec.run_at))
                .bind(json(&spec.payload, "payload")?)
                .bind(ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("scheduling work"))?;
                id
            }
            None => insert_item(&mut tx, tenant, order_id, spec, facts, now).await?,
        };
        tx.commit().await.map_err(db("committing work"))?;
        Ok(id)
    }

    async fn schedule_many(
        &self,
        tenant: &str,
        items: &[Scheduled],
    ) -> Result<Vec<Result<WorkId>>> {
        // The common case of every item in one statement per chunk (atomic
        // by itself); an item without a row back (not the tenant's order,
        // leased, invalid, or named twice) goes through `schedule`, which
        // tells why. Payloads are serialised before the statement is built.
        let mut seen = HashSet::with_capacity(items.len());
        let mut batch = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Ok(spec) = logic::prepare_work(&item.work)
                && let Ok(payload) = json(&spec.payload, "payload")
                && seen.insert((item.order_id, spec.kind.clone()))
            {
                batch.push((i, spec, payload));
            }
        }
        let mut ids: Vec<Option<WorkId>> = vec![None; items.len()];
        for chunk in batch.chunks(CHUNK) {
            let (mut conn, release) = self.main.writing_after().await?;
            let mut sql = format!(
                "{release}WITH v(order_id, kind, lane, run_at, payload, now, ready) AS (VALUES "
            );
            sql.push_str(&placeholders(7, chunk.len()));
            sql.push_str(SCHEDULE_MANY_UPSERT);
            let mut q = sqlx::query(AssertSqlSafe(sql));
            // Nothing fails from here to the statement, which releases the
            // last call's savepoint.
            for (i, spec, payload) in chunk {
                let now = trunc(items[*i].now);
                q = q
                    .bind(items[*i].order_id.to_string())
                    .bind(spec.kind.clone())
                    .bind(spec.lane.as_str())
                    .bind(ms(spec.run_at))
                    .bind(payload.clone())
                    .bind(ms(now))
                    .bind(spec.run_at <= now);
            }
            let rows = q
                .bind(tenant.to_owned())
                .fetch_all(&mut *conn)
                .await
                .map_err(db("scheduling work"))?;
            drop(conn);
            let at: FastMap<(String, String), usize> = chunk
                .iter()
                .map(|(i, spec, _)| ((items[*i].order_id.to_string(), spec.kind.clone()), *i))
                .collect();
            for row in &rows {
                let key = (column(row, "order_id")?, column(row, "kind")?);
                if let Some(i) = at.get(&key) {
                    ids[*i] = Some(column(row, "id")?);
                }
            }
        }
        let mut out = Vec::with_capacity(items.len());
        for (item, id) in items.iter().zip(ids) {
            out.push(match id {
                Some(id) => Ok(id),
                None => {
                    self.schedule(tenant, item.order_id, &item.work, item.now)
                        .await
                }
            });
        }
        Ok(out)
    }

    async fn claim(&self, scope: TenantScope<'_>, req: &ClaimRequest<'_>) -> Result<Vec<WorkItem>> {
        let expires_at = lease_expiry(req.now, req.lease)?;
        let now = ms(trunc(req.now));
        let lanes: Vec<_> = req.lanes.iter().filter(|l| l.limit > 0).collect();
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let tenant_filter = match scope {
            TenantScope::Tenant(_) => " AND user_id = ?",
            TenantScope::All => "",
        };
        // Ready items in service order, straight off `work_queue_ready`: no
        // sort, no scan past items that are not due. (`+run_at <= now` guards
        // against a writer whose clock ran ahead; the `+` keeps the planner
        // from choosing `work_queue_pending` for it.)
        let per_lane = format!(
            "SELECT id FROM (SELECT id FROM work_queue WHERE lane = ? AND ready = 1 \
             AND +run_at <= ?{tenant_filter} ORDER BY viral DESC, order_created_at, id {LIMIT})"
        );
        let sql = format!(
            "UPDATE work_queue SET lease_owner = ?, lease_expires_at = ?, run_at = ?, \
             attempts = attempts + 1, updated_at = ?, ready = 0 WHERE id IN ({}) \
             RETURNING id, user_id, order_id, kind, lane, viral, order_created_at, \
             {SHARED_OR_OWN_PAYLOAD} AS payload, attempts",
            vec![per_lane; lanes.len()].join(" UNION ALL ")
        );
        // Promote what has come due since (scheduled checks, lapsed leases),
        // then claim: two statements sent as one (one round trip to the SQLite
        // thread), each its own transaction: promotion is idempotent and the
        // claim atomic, so a writer in between changes nothing. In a group,
        // the last call's savepoint is released in the same round trip.
        let (mut conn, release) = self.main.writing_after().await?;
        let sql = format!(
            "{release}UPDATE work_queue SET ready = 1 WHERE ready = 0 AND run_at <= ?; {sql}"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(req.worker.to_owned())
            .bind(ms(expires_at))
            .bind(ms(expires_at))
            .bind(now);
        for l in &lanes {
            q = q.bind(l.lane.as_str()).bind(now);
            if let TenantScope::Tenant(t) = scope {
                q = q.bind(t.to_owned());
            }
            q = q.bind(i64::try_from(l.limit).unwrap_or(i64::MAX));
        }
        let rows = q.fetch_all(&mut *conn).await.map_err(db("claiming work"))?;
        let claimed = rows
            .iter()
            .map(|row| decode::claimed_item(row, req.worker, expires_at))
            .collect::<Result<_, _>>()?;
        Ok(decode::in_service_order(&lanes, claimed))
    }

    async fn renew(&self, lease: &Lease, extend: TimeDelta, now: DateTime<Utc>) -> Result<Lease> {
        let until = lease_expiry(now, extend)?;
        let q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE work_queue SET lease_expires_at = ?, run_at = ?, updated_at = ?, ready = 0 \
             WHERE {LEASE_HOLDS}"
        )))
        .bind(ms(until))
        .bind(ms(until))
        .bind(ms(trunc(now)));
        self.on_lease(q, lease, now, "renewing a lease").await?;
        Ok(Lease {
            expires_at: until,
            ..lease.clone()
        })
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
        let q = sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM work_queue WHERE {LEASE_HOLDS}"
        )));
        self.on_lease(q, lease, now, "completing work").await
    }

    async fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, run_at = ?, \
             updated_at = ?, ready = 0 WHERE {LEASE_HOLDS}"
        )))
        .bind(ms(trunc(run_at.unwrap_or(now))))
        .bind(ms(trunc(now)));
        self.on_lease(q, lease, now, "releasing work").await
    }

    async fn queue_due(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<QueueDue> {
        // The due items per lane (a range of `work_queue_pending` up to now),
        // then the earliest `run_at` of each `ready` value: one index seek
        // each, where the summary's totals read every pending item (the
        // delivery checks of every shipped order among them).
        let sql = |tenant: &str| {
            let first = |ready: u8| {
                format!(
                    "SELECT * FROM (SELECT NULL AS lane, NULL AS due, run_at AS next_run_at \
                     FROM work_queue INDEXED BY work_queue_pending \
                     WHERE ready = {ready}{tenant} ORDER BY run_at LIMIT 1)"
                )
            };
            format!(
                "SELECT lane, COUNT(*) AS due, NULL AS next_run_at \
                 FROM work_queue WHERE ready IN (0, 1) AND run_at <= ?1{tenant} GROUP BY lane \
                 UNION ALL {} UNION ALL {}",
                first(0),
                first(1)
            )
        };
        let rows = self
            .queue_rows(sql, scope, now, "reading the queue's due items")
            .await?;
        let mut d = QueueDue {
            due: Priority::ALL.iter().map(|p| (*p, 0)).collect(),
            next_run_at: None,
        };
        for row in &rows {
            let lane_name: Option<String> = column(row, "lane")?;
            if lane_name.is_some() {
                d.due.insert(lane(row, "lane")?, count(row, "due")?);
            } else if let Some(t) = time(row, "next_run_at")? {
                d.next_run_at = Some(d.next_run_at.map_or(t, |n| n.min(t)));
            }
        }
        Ok(d)
    }

    async fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<QueueSummary> {
        // Two parts, both through `work_queue_pending` (`ready IN (0, 1)` makes
        // it the index; see migration 4): the due items per lane (the only rows
        // read from the table, for their lane), then one row of totals that
        // reads the index alone. A lease's expiry is set exactly when it has an
        // owner (a table CHECK), so the expiry tells leased items apart.
        let sql = |tenant: &str| {
            format!(
                "SELECT lane, COUNT(*) AS due, NULL AS leased, NULL AS expired, NULL AS scheduled, \
                    NULL AS next_run_at \
                 FROM work_queue WHERE ready IN (0, 1) AND run_at <= ?1{tenant} GROUP BY lane \
                 UNION ALL \
                 SELECT NULL, NULL, SUM(lease_expires_at > ?1), SUM(lease_expires_at <= ?1), \
                    SUM(run_at > ?1 AND lease_expires_at IS NULL), MIN(run_at) \
                 FROM work_queue INDEXED BY work_queue_pending WHERE ready IN (0, 1){tenant}"
            )
        };
        let rows = self
            .queue_rows(sql, scope, now, "summarizing the queue")
            .await?;
        let mut s = QueueSummary {
            due: Priority::ALL.iter().map(|p| (*p, 0)).collect(),
            ..QueueSummary::default()
        };
        for row in &rows {
            let lane_name: Option<String> = column(row, "lane")?;
            if lane_name.is_some() {
                s.due.insert(lane(row, "lane")?, count(row, "due")?);
                continue;
            }
            s.leased += count(row, "leased")?;
            s.expired_leases += count(row, "expired")?;
            s.scheduled += count(row, "scheduled")?;
            if let Some(t) = time(row, "next_run_at")? {
                s.next_run_at = Some(s.next_run_at.map_or(t, |n| n.min(t)));
            }
        }
        Ok(s)
    }
}

/// A claimed item's payload: the shared text it names (a bulk insert's,
/// see `bulk.rs` and migration 0015), else its own. Every statement that
/// sets `payload` clears `payload_ref`.
const SHARED_OR_OWN_PAYLOAD: &str = "COALESCE((SELECT p.body FROM work_payloads p WHERE p.id = work_queue.payload_ref), work_queue.payload)";

/// [`QueueStore::schedule`] in one statement: the tenant's order's item of
/// `kind` is inserted (with the order's `viral` and `created_at`), or, if
/// no live lease holds it, moved to the new lane, time and payload and
/// unleased. Returns the item's id; no row when the order is not the
/// tenant's or a live lease holds the item. (`WHERE` on the `SELECT` keeps
/// SQLite's parser from reading `ON CONFLICT` as a join constraint.)
const SCHEDULE_UPSERT: &str = "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, \
     order_created_at, run_at, payload, attempts, created_at, updated_at, ready) \
     SELECT user_id, id, ?1, ?2, viral, created_at, ?3, ?4, 0, ?5, ?5, ?6 FROM orders \
     WHERE id = ?7 AND user_id = ?8 \
     ON CONFLICT (order_id, kind) DO UPDATE SET lane = excluded.lane, run_at = excluded.run_at, \
     payload = excluded.payload, payload_ref = NULL, lease_owner = NULL, lease_expires_at = NULL, \
     updated_at = excluded.updated_at, ready = 0 \
     WHERE NOT (work_queue.lease_owner IS NOT NULL AND work_queue.lease_expires_at > ?5) \
     RETURNING id";

/// [`SCHEDULE_UPSERT`] for the rows of `v` (after `WITH v(…) AS (VALUES …`),
/// each at its own `now`, the tenant the last parameter.
const SCHEDULE_MANY_UPSERT: &str = ") INSERT INTO work_queue (user_id, order_id, kind, lane, viral, \
     order_created_at, run_at, payload, attempts, created_at, updated_at, ready) \
     SELECT o.user_id, o.id, v.kind, v.lane, o.viral, o.created_at, v.run_at, v.payload, 0, v.now, \
     v.now, v.ready FROM v JOIN orders o ON o.id = v.order_id WHERE o.user_id = ? \
     ON CONFLICT (order_id, kind) DO UPDATE SET lane = excluded.lane, run_at = excluded.run_at, \
     payload = excluded.payload, payload_ref = NULL, lease_owner = NULL, lease_expires_at = NULL, \
     updated_at = excluded.updated_at, ready = 0 \
     WHERE NOT (work_queue.lease_owner IS NOT NULL AND work_queue.lease_expires_at > excluded.updated_at) \
     RETURNING id, order_id, kind";

/// The `WHERE` clause matching a lease that still holds.
const LEASE_HOLDS: &str =
    "id = ? AND user_id = ? AND lease_owner = ? AND attempts = ? AND lease_expires_at > ?";

impl SqliteStore {
    /// The rows of a queue read: `sql` given the tenant condition of
    /// `scope` (` AND user_id = ?2`, or nothing), with `?1` the time `now`.
    async fn queue_rows(
        &self,
        sql: impl FnOnce(&str) -> String,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
        context: &'static str,
    ) -> Result<Vec<SqliteRow>> {
        let tenant = match scope {
            TenantScope::Tenant(_) => " AND user_id = ?2",
            TenantScope::All => "",
        };
        let mut q = sqlx::query(AssertSqlSafe(sql(tenant))).bind(ms(trunc(now)));
        if let TenantScope::Tenant(t) = scope {
            q = q.bind(t.to_owned());
        }
        q.fetch_all(&mut *self.main.reading().await?)
            .await
            .map_err(db(context))
    }

    /// Runs `q` (a statement ending `WHERE {LEASE_HOLDS}`) with the lease
    /// bound; [`StoreError::LeaseLost`] if it matched no row.
    async fn on_lease(
        &self,
        q: super::rows::Q<'_>,
        lease: &Lease,
        now: DateTime<Utc>,
        context: &'static str,
    ) -> Result<()> {
        let done = q
            .bind(lease.id)
            .bind(lease.tenant.clone())
            .bind(lease.worker.clone())
            .bind(i64::from(lease.attempt))
            .bind(ms(trunc(now)))
            .execute(&mut *self.main.writing().await?)
            .await
            .map_err(db(context))?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(lease));
        }
        Ok(())
    }
}
