//! Connected TikTok shops and their tokens: a capability of a
//! [`Store`](super::Store).
//!
//! A tenant connects a shop through TikTok's authorization flow: the
//! service hands out a single-use `state` ([`ShopStore::put_auth_state`]),
//! TikTok sends the seller back with a code and that state
//! ([`ShopStore::take_auth_state`] refuses an unknown, used or expired one),
//! the code is exchanged for tokens, and the shops those tokens may act for
//! are stored with them ([`ShopStore::put_shops`]). Tokens are refreshed
//! before they expire ([`ShopStore::rotate_tokens`], a compare-and-set on
//! the refresh token, so two processes refreshing at once keep one answer).
//!
//! Tokens are secrets: [`ShopAuth`] and [`TokenSet`] print them as `***`;
//! no store error names them.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::StoreError;
use super::logic::trunc;

/// One seller authorization's tokens, as TikTok's token endpoints answer
/// them (both expiries are absolute times). `Debug` hides the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    /// The access token (`x-tts-access-token`).
    pub access_token: String,
    /// When the access token expires.
    pub access_expires_at: DateTime<Utc>,
    /// The refresh token.
    pub refresh_token: String,
    /// When the refresh token (the seller's authorization) expires.
    pub refresh_expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"***")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"***")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish()
    }
}

/// A shop a tenant connected: who it is (Get Authorized Shops) and the
/// tokens that act for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopAuth {
    /// The shop id, as webhooks carry it (`shop_id`).
    pub shop_id: String,
    /// The `shop_cipher` shop-scoped calls name it by.
    pub cipher: String,
    /// The shop's name.
    pub name: String,
    /// Its region (`US`, `GB`, …).
    pub region: String,
    /// The tokens.
    pub tokens: TokenSet,
    /// When this record was last written.
    pub updated_at: DateTime<Utc>,
}

/// Connected shops, their tokens and pending authorizations.
///
/// Every method but [`take_auth_state`](Self::take_auth_state) is scoped to
/// one tenant (another tenant's shop looks exactly like an absent one);
/// the state of an authorization is itself the secret that names its tenant.
pub trait ShopStore: Send + Sync {
    /// Stores (inserts or replaces, by `shop_id`) the tenant's shops in one
    /// transaction.
    fn put_shops(
        &self,
        tenant: &str,
        shops: &[ShopAuth],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The tenant's shop `shop_id`, if connected.
    fn shop(
        &self,
        tenant: &str,
        shop_id: &str,
    ) -> impl Future<Output = Result<Option<ShopAuth>, StoreError>> + Send;

    /// The tenant's connected shops, by `shop_id`.
    fn shops(&self, tenant: &str)
    -> impl Future<Output = Result<Vec<ShopAuth>, StoreError>> + Send;

    /// After a refresh: every shop of the tenant whose refresh token is
    /// `previous_refresh_token` gets `tokens` (one write); returns how many
    /// shops changed. 0 means another process rotated them first: read the
    /// shop again and use its tokens.
    fn rotate_tokens(
        &self,
        tenant: &str,
        previous_refresh_token: &str,
        tokens: &TokenSet,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records a pending authorization of `tenant`: `state` is a fresh
    /// random value sent with the authorization link, usable once until
    /// `expires_at`.
    fn put_auth_state(
        &self,
        tenant: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Consumes `state`: the tenant it was issued for, once, if it has not
    /// expired at `now`; `None` for an unknown, used or expired state
    /// (which is consumed too).
    fn take_auth_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Checks a tenant name before a shop method uses it.
pub(crate) fn check_tenant(tenant: &str) -> Result<(), StoreError> {
    check_text(tenant, "tenant")?;
    if tenant.is_empty() {
        return Err(StoreError::invalid("tenant must not be empty"));
    }
    Ok(())
}

/// A value of a text column: NUL is refused (no database stores it);
/// the message names the field, never the value (it may be a token).
fn check_text(value: &str, what: &str) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(StoreError::invalid(format!("{what} must not contain NUL")));
    }
    Ok(())
}

/// A token set as it is stored: checked, times truncated to milliseconds.
pub(crate) fn prepare_tokens(tokens: &TokenSet) -> Result<TokenSet, StoreError> {
    check_text(&tokens.access_token, "access token")?;
    check_text(&tokens.refresh_token, "refresh token")?;
    Ok(TokenSet {
        access_token: tokens.access_token.clone(),
        access_expires_at: trunc(tokens.access_expires_at),
        refresh_token: tokens.refresh_token.clone(),
        refresh_expires_at: trunc(tokens.refresh_expires_at),
    })
}

/// Shops as they are stored: checked (a non-empty `shop_id`, no NUL),
/// times truncated to milliseconds.
pub(crate) fn prepare_shops(tenant: &str, shops: &[ShopAuth]) -> Result<Vec<ShopAuth>, StoreError> {
    check_tenant(tenant)?;
    shops
        .iter()
        .map(|s| {
            if s.shop_id.is_empty() {
                return Err(StoreError::invalid("shop_id must not be empty"));
            }
            for (value, what) in [
                (&s.shop_id, "shop_id"),
                (&s.cipher, "shop cipher"),
                (&s.name, "shop name"),
                (&s.region, "shop region"),
            ] {
                check_text(value, what)?;
            }
            Ok(ShopAuth {
                tokens: prepare_tokens(&s.tokens)?,
                updated_at: trunc(s.updated_at),
                ..s.clone()
            })
        })
        .collect()
}

/// Checks a new authorization state (non-empty, no NUL).
pub(crate) fn check_state(tenant: &str, state: &str) -> Result<(), StoreError> {
    check_tenant(tenant)?;
    check_text(state, "authorization state")?;
    if state.is_empty() {
        return Err(StoreError::invalid("authorization state must not be empty"));
    }
    Ok(())
}

/// The error for a state issued twice (never naming it: it is a secret).
pub(crate) fn state_taken() -> StoreError {
    StoreError::invalid("this authorization state was issued already")
}

/// Whether a state expiring at `expires_at` may still be used at `now`
/// (to the millisecond: usable until, not at, its expiry).
pub(crate) fn state_valid(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    trunc(now) < expires_at
}
