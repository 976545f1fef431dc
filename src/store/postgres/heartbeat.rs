//! [`HeartbeatStore`] on PostgreSQL: the `worker_heartbeats` table
//! (migration 0012), kept by the worker role, and the takeover of lapsed
//! workers' items (across tenants as the worker role, or in one tenant
//! under its row-level security).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::AssertSqlSafe;

use super::rows::{count, db};
use super::{Mode, PostgresStore, Role};
use crate::store::Result;
use crate::store::heartbeat::alive_until;
use crate::store::logic::trunc;
use crate::store::{HeartbeatStore, Holders, TenantScope};

/// The role, tenant and queue filter (`$n`: the tenant) of `scope`.
fn scoped<'a>(
    scope: TenantScope<'a>,
    column: &'static str,
    n: u8,
) -> (Role, Option<&'a str>, String) {
    match scope {
        TenantScope::Tenant(t) => (Role::App, Some(t), format!(" AND {column} = ${n}")),
        TenantScope::All => (Role::Worker, None, String::new()),
    }
}

impl HeartbeatStore for PostgresStore {
    async fn beat(&self, worker: &str, lapse: TimeDelta, now: DateTime<Utc>) -> Result<()> {
        let until = alive_until(worker, lapse, now)?;
        let mut tx = self.begin(Role::Worker, None, Mode::Write).await?;
        let result = sqlx::query(
            "INSERT INTO worker_heartbeats (worker, beat_at, alive_until) VALUES ($1, $2, $3) \
             ON CONFLICT (worker) DO UPDATE SET beat_at = $2, alive_until = $3",
        )
        .bind(worker)
        .bind(trunc(now))
        .bind(until)
        .execute(tx.conn())
        .await
        .map(|_| ())
        .map_err(db("recording a heartbeat"));
        tx.end(result).await
    }

    async fn retire(&self, worker: &str, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.begin(Role::Worker, None, Mode::Write).await?;
        let result = sqlx::query("UPDATE worker_heartbeats SET alive_until = $2 WHERE worker = $1")
            .bind(worker)
            .bind(trunc(now))
            .execute(tx.conn())
            .await
            .map(|_| ())
            .map_err(db("retiring a worker"));
        tx.end(result).await
    }

    async fn take_over(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<u64> {
        let now = trunc(now);
        let (role, tenant, filter) = scoped(scope, "user_id", 3);
        let mut tx = self.begin(role, tenant, Mode::Write).await?;
        let result = async {
            // Most calls find no lapsed worker: one small read, nothing written.
            let lapsed: Vec<String> =
                sqlx::query_scalar("SELECT worker FROM worker_heartbeats WHERE alive_until <= $1")
                    .bind(now)
                    .fetch_all(tx.conn())
                    .await
                    .map_err(db("reading heartbeats"))?;
            if lapsed.is_empty() {
                return Ok(0);
            }
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, run_at = $1, \
                 updated_at = $1, ready = false \
                 WHERE lease_owner = ANY($2){filter}"
            )))
            .bind(now)
            .bind(&lapsed);
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let taken = q
                .execute(tx.conn())
                .await
                .map_err(db("taking over a lapsed worker's work"))?
                .rows_affected();
            if tenant.is_none() {
                sqlx::query(
                    "DELETE FROM worker_heartbeats h WHERE h.alive_until <= $1 AND NOT EXISTS \
                     (SELECT 1 FROM work_queue q WHERE q.lease_owner = h.worker)",
                )
                .bind(now)
                .execute(tx.conn())
                .await
                .map_err(db("forgetting lapsed heartbeats"))?;
            }
            Ok(taken)
        }
        .await;
        tx.end(result).await
    }

    async fn holders(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<Holders> {
        let (role, tenant, filter) = scoped(scope, "q.user_id", 2);
        let mut tx = self.begin(role, tenant, Mode::Read).await?;
        let result = async {
            let mut q = sqlx::query(AssertSqlSafe(format!(
                "SELECT count(*) AS in_flight, \
                    count(*) FILTER (WHERE h.alive_until > $1) AS live, \
                    (SELECT count(*) FROM worker_heartbeats WHERE alive_until > $1) AS workers \
                 FROM work_queue q LEFT JOIN worker_heartbeats h ON h.worker = q.lease_owner \
                 WHERE q.lease_owner IS NOT NULL AND q.lease_expires_at > $1{filter}"
            )))
            .bind(trunc(now));
            if let Some(t) = tenant {
                q = q.bind(t);
            }
            let row = q
                .fetch_one(tx.conn())
                .await
                .map_err(db("counting the steps in flight"))?;
            let in_flight = count(&row, "in_flight")?;
            let live = count(&row, "live")?;
            Ok(Holders {
                steps: in_flight,
                held_by_live: live,
                held_by_dead: in_flight.saturating_sub(live),
                live_workers: count(&row, "workers")?,
            })
        }
        .await;
        tx.end(result).await
    }
}
