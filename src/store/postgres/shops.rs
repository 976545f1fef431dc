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
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use super::rows::db;
use super::{Mode, PostgresStore, Role};
use crate::store::Result;
use crate::store::decode::{self, Columns};
use crate::store::error::db_secret;
use crate::store::logic::trunc;
use crate::store::shop_sql::{
    PUT_SHOP, PUT_STATE, ROTATE_TOKENS, TAKE_STATE, bind, rotation_values, select_shop,
    select_shops, shop_values, state_insert_error, state_values,
};
use crate::store::shops::{check_state, check_tenant, prepare_shops, prepare_tokens, state_valid};
use crate::store::{ShopAuth, ShopStore, TokenSet};

impl ShopStore for PostgresStore {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<()> {
        let shops = prepare_shops(tenant, shops)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            for s in &shops {
                bind(sqlx::query(PUT_SHOP), shop_values(tenant, s), trunc)
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
            sqlx::query(AssertSqlSafe(select_shop()))
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
            sqlx::query(AssertSqlSafe(select_shops()))
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
        let tokens = prepare_tokens(tokens)?;
        self.for_tenant(tenant, Mode::Write, async |conn| {
            let values = rotation_values(tenant, previous_refresh_token, &tokens, now);
            let q = bind(sqlx::query(ROTATE_TOKENS), values, trunc);
            let done = q
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
        // A plain insert, not `ON CONFLICT DO NOTHING`: that would have the
        // new row pass the read policy, which admits the state being taken only.
        self.for_tenant(tenant, Mode::Write, async |conn| {
            bind(
                sqlx::query(PUT_STATE),
                state_values(tenant, state, expires_at),
                trunc,
            )
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(state_insert_error)
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
    let row = sqlx::query(TAKE_STATE)
        .bind(state)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("taking an authorization state"))?;
    row.map(|r| Ok((r.text("user_id")?, r.time("expires_at")?)))
        .transpose()
}
