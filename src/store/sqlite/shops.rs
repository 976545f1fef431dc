//! Connected shops and pending authorizations on SQLite (migration 0007),
//! with the statements shared by the SQL backends (`store/shop_sql.rs`):
//! reads on the read pool, each write one `BEGIN IMMEDIATE` transaction on
//! the main file's writer (so a rotation's compare-and-set and a state's
//! single use need nothing more: writers take turns).

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use super::SqliteStore;
use super::rows::db;
use crate::store::Result;
use crate::store::decode::{self, Columns};
use crate::store::error::db_secret;
use crate::store::logic::ms;
use crate::store::shop_sql::{
    PUT_SHOP, PUT_STATE, ROTATE_TOKENS, TAKE_STATE, bind, rotation_values, select_shop,
    select_shops, shop_values, state_insert_error, state_values,
};
use crate::store::shops::{check_state, check_tenant, prepare_shops, prepare_tokens, state_valid};
use crate::store::{ShopAuth, ShopStore, TokenSet};

impl ShopStore for SqliteStore {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<()> {
        let shops = prepare_shops(tenant, shops)?;
        let mut tx = self.main.write().await?;
        for s in &shops {
            bind(sqlx::query(PUT_SHOP), shop_values(tenant, s), ms)
                .execute(&mut *tx)
                .await
                .map_err(db_secret("storing a shop"))?;
        }
        tx.commit().await.map_err(db("committing shops"))
    }

    async fn shop(&self, tenant: &str, shop_id: &str) -> Result<Option<ShopAuth>> {
        sqlx::query(AssertSqlSafe(select_shop()))
            .bind(tenant)
            .bind(shop_id)
            .fetch_optional(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading a shop"))?
            .as_ref()
            .map(decode::shop)
            .transpose()
    }

    async fn shops(&self, tenant: &str) -> Result<Vec<ShopAuth>> {
        sqlx::query(AssertSqlSafe(select_shops()))
            .bind(tenant)
            .fetch_all(&mut *self.main.reading().await?)
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
        let tokens = prepare_tokens(tokens)?;
        let values = rotation_values(tenant, previous_refresh_token, &tokens, now);
        let q = bind(sqlx::query(ROTATE_TOKENS), values, ms);
        let mut tx = self.main.write().await?;
        let done = q
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
        bind(
            sqlx::query(PUT_STATE),
            state_values(tenant, state, expires_at),
            ms,
        )
        .execute(&mut *tx)
        .await
        .map_err(state_insert_error)?;
        tx.commit()
            .await
            .map_err(db("committing an authorization state"))
    }

    async fn take_auth_state(&self, state: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let mut tx = self.main.write().await?;
        let row = sqlx::query(TAKE_STATE)
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
