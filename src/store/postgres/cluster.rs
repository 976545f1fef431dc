//! Singleton leases and shared values on PostgreSQL (migration 0012): each
//! call one statement in its own transaction as the application role (no
//! tenant: these rows describe the deployment). A lease is taken or renewed
//! by one `INSERT … ON CONFLICT DO UPDATE … WHERE`: the row lock makes two
//! replicas asking at once take turns, and the second sees the first's
//! lease (`store/cluster.rs`).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::rows::db;
use super::{Mode, PostgresStore, Role};
use crate::store::Cluster;
use crate::store::Result;
use crate::store::cluster::{Shared, check_name};
use crate::store::logic::trunc;

impl PostgresStore {
    /// Runs `work` in a transaction as the application role, no tenant.
    async fn for_deployment<T>(
        &self,
        work: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T>,
    ) -> Result<T> {
        let mut tx = self.begin(Role::App, None, Mode::Write).await?;
        let result = work(tx.conn()).await;
        tx.end(result).await
    }
}

impl Cluster for PostgresStore {
    async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        check_name("lease name", name)?;
        check_name("lease holder", holder)?;
        self.for_deployment(async |conn| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO singleton_leases AS l (name, holder, fence, expires_at) \
                 VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                     fence = CASE WHEN l.holder = EXCLUDED.holder THEN l.fence ELSE l.fence + 1 END, \
                     expires_at = EXCLUDED.expires_at \
                 WHERE l.holder = EXCLUDED.holder OR l.expires_at <= $4 \
                 RETURNING fence",
            )
            .bind(name)
            .bind(holder)
            .bind(trunc(now + ttl))
            .bind(trunc(now))
            .fetch_optional(conn)
            .await
            .map_err(db("taking a lease"))
        })
        .await
    }

    async fn lease_release(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.for_deployment(async |conn| {
            sqlx::query(
                "UPDATE singleton_leases SET expires_at = $1 \
                 WHERE name = $2 AND holder = $3 AND fence = $4",
            )
            .bind(trunc(now))
            .bind(name)
            .bind(holder)
            .bind(fence)
            .execute(conn)
            .await
            .map(|d| d.rows_affected() == 1)
            .map_err(db("releasing a lease"))
        })
        .await
    }

    async fn lease_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<(String, i64)>> {
        self.for_deployment(async |conn| {
            sqlx::query(
                "SELECT holder, fence FROM singleton_leases WHERE name = $1 AND expires_at > $2",
            )
            .bind(name)
            .bind(trunc(now))
            .fetch_optional(conn)
            .await
            .map_err(db("reading a lease"))?
            .map(|r| {
                Ok((
                    r.try_get("holder").map_err(db("reading a lease"))?,
                    r.try_get("fence").map_err(db("reading a lease"))?,
                ))
            })
            .transpose()
        })
        .await
    }

    async fn shared(&self, name: &str) -> Result<Option<Shared>> {
        self.for_deployment(async |conn| {
            sqlx::query("SELECT value, revision, at FROM shared_values WHERE name = $1")
                .bind(name)
                .fetch_optional(conn)
                .await
                .map_err(db("reading a shared value"))?
                .map(|r| {
                    Ok(Shared {
                        value: r.try_get("value").map_err(db("reading a shared value"))?,
                        revision: r
                            .try_get("revision")
                            .map_err(db("reading a shared value"))?,
                        at: r.try_get("at").map_err(db("reading a shared value"))?,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn set_shared(&self, name: &str, value: &str, now: DateTime<Utc>) -> Result<i64> {
        check_name("shared value name", name)?;
        self.for_deployment(async |conn| {
            sqlx::query_scalar::<_, i64>(
                "INSERT INTO shared_values AS v (name, value, revision, at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, \
                     revision = v.revision + 1, at = EXCLUDED.at RETURNING revision",
            )
            .bind(name)
            .bind(value)
            .bind(trunc(now))
            .fetch_one(conn)
            .await
            .map_err(db("writing a shared value"))
        })
        .await
    }
}
