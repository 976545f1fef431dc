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
