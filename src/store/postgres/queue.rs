//! The durable work queue on PostgreSQL, shared safely by several processes.

use crate::store::Result;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use super::rows::{column, count, db, field, json, lane, opt_time};
use super::{Mode, PostgresStore, Role, literal, time_literal};
use crate::model::Priority;
use crate::store::decode;
use crate::store::logic::{self, lease_expiry, lease_lost, leased_error, trunc};
use crate::store::{
    ClaimRequest, Lease, OrderId, QueueDue, QueueStore, QueueSummary, StoreError, TenantScope,
    WorkId, WorkItem, WorkSpec,
};

/// Inserts the order's item of `spec.kind` from the order's own row
/// (`viral`, `created_at`), unless it exists; with `replace`, an existing
/// unleased item is moved to `spec` instead. Returns the item's id and
/// whether it was inserted, or `None` if nothing was written (the order is
/// not the tenant's, or the item exists and is not to be moved).
async fn upsert(
    conn: &mut PgConnection,
    tenant: &str,
    order_id: OrderId,
    spec: &WorkSpec,
    now: DateTime<Utc>,
    replace: bool,
) -> Result<Option<(WorkId, bool)>> {
    let on_conflict = if replace {
        "ON CONFLICT (order_id, kind) DO UPDATE SET lane = excluded.lane, \
         run_at = excluded.run_at, payload = excluded.payload, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = excluded.updated_at, ready = excluded.ready \
         WHERE work_queue.lease_owner IS NULL OR work_queue.lease_expires_at <= $7"
    } else {
        "ON CONFLICT (order_id, kind) DO NOTHING"
    };
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, run_at, \
         payload, created_at, updated_at, ready) \
         SELECT o.user_id, o.id, $3, $4, o.viral, o.created_at, $5, $6::json, $7, $7, $5 <= $7 \
         FROM orders o WHERE o.id = $2 AND o.user_id = $1 \
         {on_conflict} RETURNING id, (xmax = 0) AS inserted"
    )))
    .bind(tenant)
    .bind(order_id)
    .bind(&spec.kind)
    .bind(spec.lane.as_str())
    .bind(spec.run_at)
    .bind(json(&spec.payload, "payload")?)
    .bind(trunc(now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("enqueueing work"))?;
    row.map(|r| Ok((column(&r, "id")?, column(&r, "inserted")?)))
        .transpose()
}

/// Why [`upsert`] wrote nothing: the order's item of `kind` (its id and
/// whether a live lease holds it), or [`StoreError::NotFound`] when the
/// order is not the tenant's.
async fn existing(
    conn: &mut PgConnection,
    tenant: &str,
    order_id: OrderId,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(WorkId, bool)> {
    let row = sqlx::query(
        "SELECT id, (lease_owner IS NOT NULL AND lease_expires_at > $4) AS leased \
         FROM work_queue WHERE user_id = $1 AND order_id = $2 AND kind = $3",
    )
    .bind(tenant)
    .bind(order_id)
    .bind(kind)
    .bind(trunc(now))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("reading a work item"))?
    .ok_or_else(|| StoreError::order_not_found(order_id))?;
    Ok((column(&row, "id")?, column(&row, "leased")?))
}

impl QueueStore for PostgresStore {
    async fn enqueue(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<(WorkId, bool)> {
        let spec = logic::prepare_work(work)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            match upsert(conn, tenant, order_id, &spec, now, false).await? {
                Some(done) => Ok(done),
                None => existing(conn, tenant, order_id, &spec.kind, now)
                    .await
                    .map(|(id, _)| (id, false)),
            }
        })
        .await
    }

    async fn schedule(
        &self,
        tenant: &str,
        order_id: OrderId,
        work: &WorkSpec,
        now: DateTime<Utc>,
    ) -> Result<WorkId> {
        let spec = logic::prepare_work(work)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            match upsert(conn, tenant, order_id, &spec, now, true).await? {
                Some((id, _)) => Ok(id),
                None => match existing(conn, tenant, order_id, &spec.kind, now).await? {
                    (id, true) => Err(leased_error(id)),
                    (_, false) => Err(StoreError::database(
                        "a work item was neither scheduled nor leased",
                    )),
                },
            }
        })
        .await
    }

    async fn claim(&self, scope: TenantScope<'_>, req: &ClaimRequest<'_>) -> Result<Vec<WorkItem>> {
        let expires_at = lease_expiry(req.now, req.lease)?;
        let now = trunc(req.now);
        let lanes: Vec<_> = req.lanes.iter().filter(|l| l.limit > 0).collect();
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let (role, tenant, filter) = match scope {
            TenantScope::Tenant(t) => (Role::App, Some(t), "AND user_id = $6"),
            TenantScope::All => (Role::Worker, None, ""),
        };
        let mut tx = self.begin(role, tenant, Mode::Write).await?;
        let result = async {
            // Promote what has come due since (scheduled checks, lapsed leases);
            // rows another worker holds are left to it.
            let mut promote = sqlx::query(AssertSqlSafe(PROMOTE.replace(
                "TENANT_FILTER",
                if tenant.is_some() {
                    "AND user_id = $2"
                } else {
                    ""
                },
            )))
            .bind(now);
            if let Some(t) = tenant {
                promote = promote.bind(t);
            }
            promote
                .execute(tx.conn())
                .await
                .map_err(db("promoting due work"))?;
            let mut q = sqlx::query(AssertSqlSafe(CLAIM.replace("TENANT_FILTER", filter)))
                .bind(field(&lanes, |l| l.lane.as_str()))
                .bind(field(&lanes, |l| super::orders::limit(l.limit)))
                .bind(now)
                .bind(req.worker)
                .bind(expires_at);
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let rows = q.fetch_all(tx.conn()).await.map_err(db("claiming work"))?;
            rows.iter()
                .map(|row| decode::claimed_item(row, req.worker, expires_at))
                .collect::<Result<_, _>>()
        }
        .await;
        let claimed = tx.end(result).await?;
        Ok(decode::in_service_order(&lanes, claimed))
    }

    async fn renew(&self, lease: &Lease, extend: TimeDelta, now: DateTime<Utc>) -> Result<Lease> {
        let until = lease_expiry(now, extend)?;
        let (until_sql, now_sql) = (time_literal(until), time_literal(trunc(now)));
        on_lease(
            self,
            lease,
            now,
            &format!(
                "UPDATE work_queue SET lease_expires_at = {until_sql}, run_at = {until_sql}, \
                 updated_at = {now_sql}, ready = false WHERE HOLDS"
            ),
            "renewing a lease",
        )
        .await?;
        Ok(Lease {
            expires_at: until,
            ..lease.clone()
        })
    }

    async fn complete(&self, lease: &Lease, now: DateTime<Utc>) -> Result<()> {
        on_lease(
            self,
            lease,
            now,
            "DELETE FROM work_queue WHERE HOLDS",
            "completing work",
        )
        .await
    }

    async fn release(
        &self,
        lease: &Lease,
        run_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (run_sql, now_sql) = (
            time_literal(trunc(run_at.unwrap_or(now))),
            time_literal(trunc(now)),
        );
        on_lease(
            self,
            lease,
            now,
            &format!(
                "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, \
                 run_at = {run_sql}, updated_at = {now_sql}, ready = false WHERE HOLDS"
            ),
            "releasing work",
        )
        .await
    }

    async fn queue_due(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<QueueDue> {
        // One statement either way on PostgreSQL, whose summary totals read
        // the pending index only.
        Ok(self.queue_summary(scope, now).await?.into())
    }

    async fn queue_summary(
        &self,
        scope: TenantScope<'_>,
        now: DateTime<Utc>,
    ) -> Result<QueueSummary> {
        let (role, tenant, filter) = match scope {
            TenantScope::Tenant(t) => (Role::App, Some(t), "WHERE user_id = $2"),
            TenantScope::All => (Role::Worker, None, ""),
        };
        let mut tx = self.begin(role, tenant, Mode::Read).await?;
        let result = async {
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT lane, \
                    count(*) FILTER (WHERE run_at <= $1) AS due, \
                    count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at > $1) AS leased, \
                    count(*) FILTER (WHERE lease_owner IS NOT NULL AND lease_expires_at <= $1) AS expired, \
                    count(*) FILTER (WHERE run_at > $1 AND lease_owner IS NULL) AS scheduled, \
                    min(run_at) AS next_run_at \
                 FROM work_queue {filter} GROUP BY lane"
            )))
            .bind(trunc(now));
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let rows = q
                .fetch_all(tx.conn())
                .await
                .map_err(db("summarizing the queue"))?;
            let mut s = QueueSummary {
                due: Priority::ALL.iter().map(|p| (*p, 0)).collect(),
                ..QueueSummary::default()
            };
            for row in &rows {
                s.due.insert(lane(row, "lane")?, count(row, "due")?);
                s.leased += count(row, "leased")?;
                s.expired_leases += count(row, "expired")?;
                s.scheduled += count(row, "scheduled")?;
                if let Some(t) = opt_time(row, "next_run_at")? {
                    s.next_run_at = Some(s.next_run_at.map_or(t, |n| n.min(t)));
                }
            }
            Ok(s)
        }
        .await;
        tx.end(result).await
    }
}

/// Claims: per lane (in the order asked, each with its limit) the due items,
/// VIRAL first then oldest order, skipping rows other claimants hold locked.
/// Marks the items whose time has come as ready (see migration 0004).
const PROMOTE: &str = "UPDATE work_queue SET ready = true WHERE id IN ( \
        SELECT id FROM work_queue WHERE NOT ready AND run_at <= $1 TENANT_FILTER \
        FOR UPDATE SKIP LOCKED)";

const CLAIM: &str = "WITH picked AS ( \
        SELECT w.id FROM UNNEST($1::text[], $2::int8[]) AS l(lane, lim) \
        CROSS JOIN LATERAL ( \
            SELECT id FROM work_queue \
            WHERE lane = l.lane AND ready AND run_at <= $3 TENANT_FILTER \
            ORDER BY viral DESC, order_created_at, id LIMIT l.lim \
            FOR UPDATE SKIP LOCKED) w) \
    UPDATE work_queue q SET lease_owner = $4, lease_expires_at = $5, run_at = $5, \
        attempts = q.attempts + 1, updated_at = $3, ready = false \
    FROM picked WHERE q.id = picked.id \
    RETURNING q.id, q.user_id, q.order_id, q.kind, q.lane, q.viral, q.order_created_at, \
        q.payload::text AS payload, q.attempts";

/// Runs `statement` (an `UPDATE … WHERE HOLDS` or `DELETE … WHERE HOLDS`,
/// `HOLDS` standing for "this lease still holds at `now`") in the lease's
/// tenant, in one round trip; [`StoreError::LeaseLost`] if it matched no row.
async fn on_lease(
    store: &PostgresStore,
    lease: &Lease,
    now: DateTime<Utc>,
    statement: &str,
    context: &'static str,
) -> Result<()> {
    if lease.tenant.is_empty() || lease.tenant.contains('\0') || lease.worker.contains('\0') {
        return Err(lease_lost(lease));
    }
    let holds = format!(
        "id = {} AND user_id = {} AND lease_owner = {} AND attempts = {} \
         AND lease_expires_at > {}",
        lease.id,
        literal(&lease.tenant)?,
        literal(&lease.worker)?,
        lease.attempt,
        time_literal(trunc(now)),
    );
    let sql = format!("{} RETURNING 1", statement.replace("HOLDS", &holds));
    let matched = store
        .one_shot(Role::App, &lease.tenant, &sql, context)
        .await?;
    if matched == 0 {
        return Err(lease_lost(lease));
    }
    Ok(())
}
