//! Connected shops and pending authorizations on PostgreSQL (migration
//! 0006), as the application role under forced row-level security.
//!
//! # Taking a state without a tenant
//!
//! A shop, a rotation and the issue of a state are scoped to the tenant
//! like everything else (`creatorflow.tenant`). Taking a state is not: the
//! callback from TikTok brings the state alone, and the state (a 128-bit
//! random secret) is what names the tenant. It still runs as
//! `creatorflow_app`, never as a role that sees every tenant: the
//! transaction names the state it presents in a second transaction-local
//! setting, `creatorflow.auth_state`, and the policies on
//! `tiktok_auth_states` let the application read and delete only the row
//! whose state equals that setting. So a bug (or an injected query) that
//! forgets its `WHERE` still reaches at most the one row whose secret the
//! caller already holds: no role can list or scan the pending states, and
//! nothing runs with more rights than the application's (no `SECURITY
//! DEFINER` function, no use of the worker role, which would see every
//! tenant's states). The take is `DELETE … RETURNING`: under concurrency one
//! transaction deletes the row and the others find none, so a state is used
//! once; an expired one is deleted too, and reported as `None`.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnection;

use super::rows::db;
use super::{Mode, PostgresStore, Role};
use crate::store::Result;
use crate::store::decode::{self, Columns, SHOP_COLUMNS};
use crate::store::error::db_secret;
use crate::store::shops::{
    check_state, check_tenant, prepare_shops, prepare_tokens, state_taken, state_valid,
};
use crate::store::{ShopAuth, ShopStore, TokenSet};

impl ShopStore for PostgresStore {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<()> {
        let shops = prepare_shops(tenant, shops)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            for s in &shops {
                sqlx::query(
                    "INSERT INTO tiktok_shops (user_id, shop_id, cipher, name, region, \
                       access_token, access_expires_at, refresh_token, refresh_expires_at, \
                       updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (user_id, shop_id) DO UPDATE SET cipher = EXCLUDED.cipher, \
                       name = EXCLUDED.name, region = EXCLUDED.region, \
                       access_token = EXCLUDED.access_token, \
                       access_expires_at = EXCLUDED.access_expires_at, \
                       refresh_token = EXCLUDED.refresh_token, \
                       refresh_expires_at = EXCLUDED.refresh_expires_at, \
                       updated_at = EXCLUDED.updated_at",
                )
                .bind(tenant)
                .bind(&s.shop_id)
                .bind(&s.cipher)
                .bind(&s.name)
                .bind(&s.region)
                .bind(&s.tokens.access_token)
                .bind(s.tokens.access_expires_at)
                .bind(&s.tokens.refresh_token)
                .bind(s.tokens.refresh_expires_at)
                .bind(s.updated_at)
                .execute(&mut *conn)
                .await
                .map_err(db_secret("storing a shop"))?;
            }
            Ok(())
        })
        .await
    }

    async fn shop(&self, tenant: &str, shop_id: &str) -> Result<Option<ShopAuth>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let sql = format!(
                "SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = $1 AND shop_id = $2"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .bind(shop_id)
                .fetch_optional(conn)
                .await
                .map_err(db("reading a shop"))?
                .as_ref()
                .map(decode::shop)
                .transpose()
        })
        .await
    }

    async fn shops(&self, tenant: &str) -> Result<Vec<ShopAuth>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let sql = format!(
                "SELECT {SHOP_COLUMNS} FROM tiktok_shops WHERE user_id = $1 ORDER BY shop_id"
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(tenant)
                .fetch_all(conn)
                .await
                .map_err(db("reading shops"))?
                .iter()
                .map(decode::shop)
                .collect()
        })
        .await
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
        self.for_tenant(tenant, Mode::Write, async |conn| {
            let done = sqlx::query(
                "UPDATE tiktok_shops SET access_token = $1, access_expires_at = $2, \
                   refresh_token = $3, refresh_expires_at = $4, updated_at = $5 \
                 WHERE user_id = $6 AND refresh_token = $7",
            )
            .bind(&t.access_token)
            .bind(t.access_expires_at)
            .bind(&t.refresh_token)
            .bind(t.refresh_expires_at)
            .bind(crate::store::logic::trunc(now))
            .bind(tenant)
            .bind(previous_refresh_token)
            .execute(conn)
            .await
            .map_err(db_secret("rotating tokens"))?;
            Ok(done.rows_affected())
        })
        .await
    }

    async fn put_auth_state(
        &self,
        tenant: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        check_state(tenant, state)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            // Not `ON CONFLICT DO NOTHING`: that would have the new row pass
            // the read policy, which only admits the state being taken.
            sqlx::query(
                "INSERT INTO tiktok_auth_states (state, user_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(state)
            .bind(tenant)
            .bind(crate::store::logic::trunc(expires_at))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| match e.as_database_error() {
                // Its message would name the state.
                Some(d) if d.is_unique_violation() => state_taken(),
                _ => db("storing an authorization state")(e),
            })
        })
        .await
    }

    async fn take_auth_state(&self, state: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        if state.is_empty() || state.contains('\0') {
            // Never issued (see `check_state`).
            return Ok(None);
        }
        let mut tx = self.begin(Role::App, None, Mode::Write).await?;
        let taken = take(tx.conn(), state).await;
        let taken = tx.end(taken).await?;
        Ok(taken
            .filter(|(_, expires_at)| state_valid(*expires_at, now))
            .map(|(tenant, _)| tenant))
    }
}

/// Deletes the state (named first in `creatorflow.auth_state`, which the
/// policies require): its tenant and expiry, if it was there.
async fn take(conn: &mut PgConnection, state: &str) -> Result<Option<(String, DateTime<Utc>)>> {
    sqlx::query("SELECT set_config('creatorflow.auth_state', $1, true)")
        .bind(state)
        .execute(&mut *conn)
        .await
        .map_err(db("naming an authorization state"))?;
    let row = sqlx::query(
        "DELETE FROM tiktok_auth_states WHERE state = $1 RETURNING user_id, expires_at",
    )
    .bind(state)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("taking an authorization state"))?;
    row.map(|r| Ok((r.text("user_id")?, r.time("expires_at")?)))
        .transpose()
}
