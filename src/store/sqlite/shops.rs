//! Connected shops and pending authorizations of the `sqlite://` store
//! (not yet stored: every method fails until its migration lands).

use chrono::{DateTime, Utc};

use super::SqliteStore;
use crate::store::{Result, ShopAuth, ShopStore, StoreError, TokenSet};

fn not_yet() -> StoreError {
    StoreError::database("connected shops are not stored by this backend yet")
}

impl ShopStore for SqliteStore {
    async fn put_shops(&self, _tenant: &str, _shops: &[ShopAuth]) -> Result<()> {
        Err(not_yet())
    }

    async fn shop(&self, _tenant: &str, _shop_id: &str) -> Result<Option<ShopAuth>> {
        Err(not_yet())
    }

    async fn shops(&self, _tenant: &str) -> Result<Vec<ShopAuth>> {
        Err(not_yet())
    }

    async fn rotate_tokens(
        &self,
        _tenant: &str,
        _previous_refresh_token: &str,
        _tokens: &TokenSet,
        _now: DateTime<Utc>,
    ) -> Result<u64> {
        Err(not_yet())
    }

    async fn put_auth_state(
        &self,
        _tenant: &str,
        _state: &str,
        _expires_at: DateTime<Utc>,
    ) -> Result<()> {
        Err(not_yet())
    }

    async fn take_auth_state(&self, _state: &str, _now: DateTime<Utc>) -> Result<Option<String>> {
        Err(not_yet())
    }
}
