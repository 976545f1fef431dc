//! [`HeartbeatStore`] on SQLite: the `worker_heartbeats` table (migration
//! 13) and the takeover of lapsed workers' items.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::AssertSqlSafe;

use super::SqliteStore;
use super::rows::{count, db};
use crate::store::Result;
use crate::store::heartbeat::alive_until;
use crate::store::logic::{ms, trunc};
use crate::store::{HeartbeatStore, Holders, TenantScope};

/// The workers whose heartbeat lapsed by `?1`.
const LAPSED: &str = "SELECT worker FROM worker_heartbeats WHERE alive_until <= ?1";

impl HeartbeatStore for SqliteStore {
    async fn beat(&self, worker: &str, lapse: TimeDelta, now: DateTime<Utc>) -> Result<()> {
        let until = alive_until(worker, lapse, now)?;
        sqlx::query(
            "INSERT INTO worker_heartbeats (worker, beat_at, alive_until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (worker) DO UPDATE SET beat_at = ?2, alive_until = ?3",
        )
        .bind(worker.to_owned())
        .bind(ms(trunc(now)))
        .bind(ms(until))
        .execute(&mut *self.main.writing().await?)
        .await
        .map_err(db("recording a heartbeat"))?;
        Ok(())
    }

    async fn retire(&self, worker: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE worker_heartbeats SET alive_until = ?2 WHERE worker = ?1")
            .bind(worker.to_owned())
            .bind(ms(trunc(now)))
            .execute(&mut *self.main.writing().await?)
            .await
            .map_err(db("retiring a worker"))?;
        Ok(())
    }

    async fn take_over(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<u64> {
        let now = ms(trunc(now));
        // Most calls find no lapsed worker: a read, no write transaction.
        let lapsed = sqlx::query(LAPSED)
            .bind(now)
            .fetch_all(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading heartbeats"))?;
        if lapsed.is_empty() {
            return Ok(0);
        }
        let tenant = match scope {
            TenantScope::Tenant(_) => " AND user_id = ?2",
            TenantScope::All => "",
        };
        let mut tx = self.main.write().await?;
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "UPDATE work_queue SET lease_owner = NULL, lease_expires_at = NULL, run_at = ?1, \
             updated_at = ?1, ready = 0 \
             WHERE lease_owner IN ({LAPSED}){tenant}"
        )))
        .bind(now);
        if let TenantScope::Tenant(t) = scope {
            q = q.bind(t.to_owned());
        }
        let taken = q
            .execute(&mut *tx)
            .await
            .map_err(db("taking over a lapsed worker's work"))?
            .rows_affected();
        if scope == TenantScope::All {
            sqlx::query(
                "DELETE FROM worker_heartbeats WHERE alive_until <= ?1 AND NOT EXISTS \
                 (SELECT 1 FROM work_queue WHERE lease_owner = worker_heartbeats.worker)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db("forgetting lapsed heartbeats"))?;
        }
        tx.commit().await.map_err(db("committing a takeover"))?;
        Ok(taken)
    }

    async fn holders(&self, scope: TenantScope<'_>, now: DateTime<Utc>) -> Result<Holders> {
        let tenant = match scope {
            TenantScope::Tenant(_) => " AND q.user_id = ?2",
            TenantScope::All => "",
        };
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS in_flight, \
                COALESCE(SUM(h.alive_until > ?1), 0) AS live, \
                (SELECT COUNT(*) FROM worker_heartbeats WHERE alive_until > ?1) AS workers \
             FROM work_queue q LEFT JOIN worker_heartbeats h ON h.worker = q.lease_owner \
             WHERE q.lease_owner IS NOT NULL AND q.lease_expires_at > ?1{tenant}"
        )))
        .bind(ms(trunc(now)));
        if let TenantScope::Tenant(t) = scope {
            q = q.bind(t.to_owned());
        }
        let row = q
            .fetch_one(&mut *self.main.reading().await?)
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
}
