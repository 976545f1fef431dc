//! Singleton leases and shared values on SQLite (migration 0013): each
//! write one `BEGIN IMMEDIATE` transaction on the main file's writer, which
//! reads the row and decides with `cluster::acquire` (writers take turns, so
//! nothing changes in between).

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::Row;

use super::SqliteStore;
use super::rows::db;
use crate::store::Cluster;
use crate::store::Result;
use crate::store::cluster::{LeaseRow, Shared, acquire, check_name};
use crate::store::logic::{from_ms, ms, trunc};

impl Cluster for SqliteStore {
    async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        check_name("lease name", name)?;
        check_name("lease holder", holder)?;
        let mut tx = self.main.write().await?;
        let current =
            sqlx::query("SELECT holder, fence, expires_at FROM singleton_leases WHERE name = ?1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("reading a lease"))?
                .map(|r| -> Result<LeaseRow> {
                    Ok(LeaseRow {
                        holder: r.try_get("holder").map_err(db("reading a lease"))?,
                        fence: r.try_get("fence").map_err(db("reading a lease"))?,
                        expires_at: from_ms(
                            r.try_get("expires_at").map_err(db("reading a lease"))?,
                        )?,
                    })
                })
                .transpose()?;
        let Some(next) = acquire(current.as_ref(), holder, trunc(now + ttl), trunc(now)) else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO singleton_leases (name, holder, fence, expires_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, fence = excluded.fence, \
             expires_at = excluded.expires_at",
        )
        .bind(name)
        .bind(&next.holder)
        .bind(next.fence)
        .bind(ms(next.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db("taking a lease"))?;
        tx.commit().await.map_err(db("committing a lease"))?;
        Ok(Some(next.fence))
    }

    async fn lease_release(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.main.write().await?;
        let done = sqlx::query(
            "UPDATE singleton_leases SET expires_at = ?1 \
             WHERE name = ?2 AND holder = ?3 AND fence = ?4",
        )
        .bind(ms(now))
        .bind(name)
        .bind(holder)
        .bind(fence)
        .execute(&mut *tx)
        .await
        .map_err(db("releasing a lease"))?;
        tx.commit().await.map_err(db("committing a lease"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn lease_holder(&self, name: &str, now: DateTime<Utc>) -> Result<Option<(String, i64)>> {
        sqlx::query(
            "SELECT holder, fence FROM singleton_leases WHERE name = ?1 AND expires_at > ?2",
        )
        .bind(name)
        .bind(ms(now))
        .fetch_optional(&mut *self.main.reading().await?)
        .await
        .map_err(db("reading a lease"))?
        .map(|r| {
            Ok((
                r.try_get("holder").map_err(db("reading a lease"))?,
                r.try_get("fence").map_err(db("reading a lease"))?,
            ))
        })
        .transpose()
    }

    async fn shared(&self, name: &str) -> Result<Option<Shared>> {
        sqlx::query("SELECT value, revision, at FROM shared_values WHERE name = ?1")
            .bind(name)
            .fetch_optional(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading a shared value"))?
            .map(|r| {
                Ok(Shared {
                    value: r.try_get("value").map_err(db("reading a shared value"))?,
                    revision: r
                        .try_get("revision")
                        .map_err(db("reading a shared value"))?,
                    at: from_ms(r.try_get("at").map_err(db("reading a shared value"))?)?,
                })
            })
            .transpose()
    }

    async fn set_shared(&self, name: &str, value: &str, now: DateTime<Utc>) -> Result<i64> {
        check_name("shared value name", name)?;
        let mut tx = self.main.write().await?;
        let revision: i64 = sqlx::query_scalar(
            "INSERT INTO shared_values (name, value, revision, at) VALUES (?1, ?2, 1, ?3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             revision = shared_values.revision + 1, at = excluded.at RETURNING revision",
        )
        .bind(name)
        .bind(value)
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await
        .map_err(db("writing a shared value"))?;
        tx.commit().await.map_err(db("committing a shared value"))?;
        Ok(revision)
    }
}
