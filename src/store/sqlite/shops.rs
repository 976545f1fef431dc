//! Connected shops and pending authorizations on SQLite (migration 0007):
//! reads on the read pool, each write one `BEGIN IMMEDIATE` transaction on
//! the main file's writer (so a rotation's compare-and-set and a state's
//! single use need nothing more: writers take turns).

use chrono::{DateTime, Utc};

use super::SqliteStore;
use super::rows::db;
use crate::store::Result;
use crate::store::decode::{self, Columns, SHOP_COLUMNS};
use crate::store::error::db_secret;
use crate::store::logic::ms;
use crate::store::shops::{
    check_state, check_tenant, prepare_shops, prepare_tokens, state_taken, state_valid,
};
use crate::store::{ShopAuth, ShopStore, TokenSet};

impl ShopStore for SqliteStore {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<()> {
        let shops = prepare_shops(tenant, shops)?;
        let mut tx = self.main.write().await?;
        for s in &shops {
            sqlx::query(
                "INSERT INTO tiktok_shops (user_id, shop_id, cipher, name, region, access_token, \
                   access_expires_at, refresh_token, refresh_expires_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (user_id, shop_id) DO UPDATE SET cipher = excluded.cipher, \
                   name = excluded.name, region = excluded.region, \
                   access_token = excluded.access_token, \
                   access_expires_at = excluded.access_expires_at, \
                   refresh_token = excluded.refresh_token, \
                   refresh_expires_at = excluded.refresh_expires_at, \
                   updated_at = excluded.updated_at",
            )
            .bind(tenant)
            .bind(&s.shop_id)
            .bind(&s.cipher)
            .bind(&s.name)
            .bind(&s.region)
            .bind(&s.tokens.access_token)
            .bind(ms(s.tokens.access_expires_at))
            .bind(&s.tokens.refresh_token)
            .bind(ms(s.tokens.refresh_expires_at))
            .bind(ms(s.updated_at))
            .execute(&mut *tx)
            .await
            .map_err(db_secret("storing a shop"))?;
        }
        tx.commit().await.map_err(db("committing shops"))
    }

    async fn shop(&self, tenant: &str, shop_id: &str) -> Result<Option<ShopAuth>> {
        let sql =
            format!("SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = ? AND shop_id = ?");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .bind(shop_id)
            .fetch_optional(&self.main.reader)
            .await
            .map_err(db("reading a shop"))?
            .as_ref()
            .map(decode::shop)
            .transpose()
    }

    async fn shops(&self, tenant: &str) -> Result<Vec<ShopAuth>> {
        let sql =
            format!("SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = ? ORDER BY shop_id");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(tenant)
            .fetch_all(&self.main.reader)
            .await
            .map_err(db("reading shops"))?
            .iter()
            .map(decode::shop)
            .collect()
    }

    async fn rotate_tokens(
        &self,
        tenant: &str,
        previous_refresh_token: &str,
        tokens: &TokenSet,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        check_tenant(tenant)?;
        let t = prepare_tokens(tokens)?;
        let mut tx = self.main.write().await?;
        let done = sqlx::query(
            "UPDATE tiktok_shops SET access_token = ?, access_expires_at = ?, \
               refresh_token = ?, refresh_expires_at = ?, updated_at = ? \
             WHERE user_id = ? AND refresh_token = ?",
        )
        .bind(&t.access_token)
        .bind(ms(t.access_expires_at))
        .bind(&t.refresh_token)
        .bind(ms(t.refresh_expires_at))
        .bind(ms(now))
        .bind(tenant)
        .bind(previous_refresh_token)
        .execute(&mut *tx)
        .await
        .map_err(db_secret("rotating tokens"))?;
        tx.commit().await.map_err(db("committing rotated tokens"))?;
        Ok(done.rows_affected())
    }

    async fn put_auth_state(
        &self,
        tenant: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        check_state(tenant, state)?;
        let mut tx = self.main.write().await?;
        let done = sqlx::query(
            "INSERT INTO tiktok_auth_states (state, user_id, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (state) DO NOTHING",
        )
        .bind(state)
        .bind(tenant)
        .bind(ms(expires_at))
        .execute(&mut *tx)
        .await
        .map_err(db("storing an authorization state"))?;
        if done.rows_affected() == 0 {
            return Err(state_taken());
        }
        tx.commit()
            .await
            .map_err(db("committing an authorization state"))
    }

    async fn take_auth_state(&self, state: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let mut tx = self.main.write().await?;
        let row = sqlx::query(
            "DELETE FROM tiktok_auth_states WHERE state = ? RETURNING user_id, expires_at",
        )
        .bind(state)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("taking an authorization state"))?;
        tx.commit()
            .await
            .map_err(db("committing a taken authorization state"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        state_valid(row.time("expires_at")?, now)
            .then(|| row.text("user_id"))
            .transpose()
    }
}
