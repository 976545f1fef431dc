//! Per-shop access to the Open API: [`ShopAccess`] (cipher and access
//! token), the [`AccessSource`] `HttpOrderApi` asks for it, and the
//! [`TokenManager`] that keeps shops' tokens in a [`ShopStore`]:
//!
//! - [`TokenManager::access`] refreshes a token that expires within
//!   [`TokenConfig::refresh_margin`] (default 1 hour) before handing it out;
//!   one refresh per authorization at a time (single-flight: concurrent
//!   callers wait for it and use its answer), stored with
//!   [`ShopStore::rotate_tokens`] (a compare-and-set: when another process
//!   rotated first, its tokens are read back and used);
//! - [`TokenManager::after_expired`]: TikTok answered `105002` for a token:
//!   refresh once, unless the stored token already differs from the one
//!   rejected (someone refreshed meanwhile);
//! - a shop with no stored tokens uses the fallback token
//!   (`TIKTOK_ACCESS_TOKEN`, given by the caller), never refreshed, its
//!   cipher from Get Authorized Shops with that token (cached);
//! - connecting a shop: [`TokenManager::authorization_link`] (a fresh
//!   128-bit random `state`, stored for [`TokenConfig::state_ttl`], default
//!   15 minutes) and [`TokenManager::connect`] (the state consumed, the code
//!   exchanged, the shops of the new token stored with it in one write).
//!
//! Across processes (several `serve` replicas and workers on one
//! database), the refresh of an authorization is a singleton job: the
//! process that refreshes holds the store's lease `token:TENANT:HASH`
//! ([`Cluster`]; HASH a digest of the refresh token, never the token) for
//! the call; the others wait for it and read the rotated tokens back.
//! TikTok rotates the refresh token on each refresh, so two processes
//! refreshing with the same one would race, and the loser's answer (an
//! invalid refresh token) could leave the shop without access.
//!
//! Tokens are never logged and no error names one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use super::auth::AuthClient;
use super::client::{ApiError, Shop};
use super::http::{HttpConfig, HttpOrderApi};
use crate::actions::BoxFuture;
use crate::clock::Clock;
use crate::store::{Cluster, ShopAuth, ShopStore, StoreError, TokenSet};

/// What a shop-scoped call needs: the shop's cipher and an access token.
/// `Debug` hides the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ShopAccess {
    /// The shop id (webhooks' `shop_id`).
    pub shop_id: String,
    /// Its `shop_cipher`.
    pub cipher: String,
    /// The access token (`x-tts-access-token`).
    pub access_token: String,
}

impl std::fmt::Debug for ShopAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShopAccess")
            .field("shop_id", &self.shop_id)
            .field("cipher", &self.cipher)
            .field("access_token", &"***")
            .finish()
    }
}

/// Where `HttpOrderApi` gets a shop's access (object-safe, so the client
/// needs no store type parameter).
pub trait AccessSource: Send + Sync {
    /// A valid access for the tenant's shop.
    fn access<'a>(
        &'a self,
        tenant: &'a str,
        shop_id: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>>;

    /// TikTok refused `rejected` as expired: a fresh access, or an error
    /// when there is none to be had (the caller reports TikTok's answer).
    fn after_expired<'a>(
        &'a self,
        tenant: &'a str,
        shop_id: &'a str,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>>;
}

/// Why a token operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The authorization `state` is unknown, used or expired (a forged or
    /// replayed callback: the HTTP layer answers 400/403).
    #[error("unknown, used or expired authorization state")]
    InvalidState,
    /// The shop is not connected for the tenant and no fallback token
    /// acts for it.
    #[error("shop {shop_id} is not connected")]
    NotConnected {
        /// The shop.
        shop_id: String,
    },
    /// The seller's authorization (the refresh token) expired: the shop
    /// must be connected again.
    #[error("the authorization of shop {shop_id} expired: connect it again")]
    Reauthorize {
        /// The shop.
        shop_id: String,
    },
    /// The fallback token cannot be refreshed.
    #[error("the fixed access token of shop {shop_id} expired and cannot be refreshed")]
    NotRefreshable {
        /// The shop.
        shop_id: String,
    },
    /// A token endpoint or Get Authorized Shops failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The store failed.
    #[error("shop store: {0}")]
    Store(#[from] StoreError),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Api(e) => e,
            AuthError::Store(e) => ApiError::Store {
                message: e.to_string(),
            },
            AuthError::NotConnected { shop_id } => ApiError::UnknownShop { shop_id },
            other => ApiError::Decode {
                message: other.to_string(),
            },
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fixed access token for every shop: the cipher of a shop from Get
/// Authorized Shops with that token (cached). Never refreshed.
pub struct StaticAccess {
    api: Option<HttpOrderApi>,
    token: String,
    ciphers: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for StaticAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticAccess")
            .field("token", &"***")
            .finish_non_exhaustive()
    }
}

impl StaticAccess {
    /// `token` for every shop; `api` reads the shops it may act for.
    pub fn new(api: HttpOrderApi, token: String) -> Self {
        StaticAccess {
            api: Some(api),
            token,
            ciphers: Mutex::new(HashMap::new()),
        }
    }

    /// No shop at all (every shop is [`ApiError::UnknownShop`]).
    pub(super) fn unresolved() -> Self {
        StaticAccess {
            api: None,
            token: String::new(),
            ciphers: Mutex::new(HashMap::new()),
        }
    }

    /// The access of `shop_id` with the fixed token.
    pub async fn shop(&self, shop_id: &str) -> Result<ShopAccess, ApiError> {
        let known = lock(&self.ciphers).get(shop_id).cloned();
        let cipher = match (known, &self.api) {
            (Some(c), _) => c,
            (None, None) => {
                return Err(ApiError::UnknownShop {
                    shop_id: shop_id.to_owned(),
                });
            }
            (None, Some(api)) => {
                let shops = api.authorized_shops_with(&self.token).await?;
                let mut ciphers = lock(&self.ciphers);
                for s in shops {
                    ciphers.insert(s.id, s.cipher);
                }
                ciphers
                    .get(shop_id)
                    .cloned()
                    .ok_or_else(|| ApiError::UnknownShop {
                        shop_id: shop_id.to_owned(),
                    })?
            }
        };
        Ok(ShopAccess {
            shop_id: shop_id.to_owned(),
            cipher,
            access_token: self.token.clone(),
        })
    }
}

impl AccessSource for StaticAccess {
    fn access<'a>(
        &'a self,
        _tenant: &'a str,
        shop_id: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>> {
        Box::pin(self.shop(shop_id))
    }

    fn after_expired<'a>(
        &'a self,
        _tenant: &'a str,
        shop_id: &'a str,
        _rejected: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>> {
        let e = AuthError::NotRefreshable {
            shop_id: shop_id.to_owned(),
        };
        Box::pin(std::future::ready(Err(e.into())))
    }
}

/// TikTok Shop's authorization page (the seller's browser is sent there).
pub const DEFAULT_AUTHORIZE_URL: &str = "https://services.tiktokshop.com/open/authorize";

/// How a [`TokenManager`] refreshes and authorizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// A token expiring within this margin is refreshed before use
    /// (default 1 hour).
    pub refresh_margin: TimeDelta,
    /// How long an authorization `state` may be used (default 15 minutes).
    pub state_ttl: TimeDelta,
    /// The authorization page (default [`DEFAULT_AUTHORIZE_URL`]); the link
    /// is `{authorize_url}?service_id={service_id}&state={state}`.
    pub authorize_url: String,
    /// The app's service id on TikTok Shop Partner Center.
    pub service_id: String,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            refresh_margin: TimeDelta::hours(1),
            state_ttl: TimeDelta::minutes(15),
            authorize_url: DEFAULT_AUTHORIZE_URL.to_owned(),
            service_id: String::new(),
        }
    }
}

/// The lock of one refresh in flight.
type Flight = Arc<tokio::sync::Mutex<()>>;

/// How long a process may hold an authorization's refresh lease (longer
/// than a refresh call takes; a holder that dies frees it after this).
const REFRESH_LEASE: TimeDelta = TimeDelta::seconds(30);

/// The longest a refresh waits for another process's refresh of the same
/// authorization before reporting the store unavailable (transient).
pub const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(35);

/// How often a waiting refresh looks for the other process's tokens.
const REFRESH_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// The store lease of one authorization's refresh: the tenant and a digest
/// of the refresh token (the token itself never leaves the shops table).
fn refresh_lease(tenant: &str, refresh_token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(refresh_token.as_bytes());
    let mut name = format!("token:{tenant}:");
    for b in &digest[..8] {
        name.push_str(&format!("{b:02x}"));
    }
    name
}

/// Keeps every connected shop's tokens fresh; see the module docs.
pub struct TokenManager<S> {
    store: Arc<S>,
    auth: AuthClient,
    api: HttpOrderApi,
    fallback: Option<StaticAccess>,
    config: TokenConfig,
    clock: Arc<dyn Clock>,
    /// (tenant, refresh token) → the lock of its refresh in flight.
    flights: Mutex<HashMap<(String, String), Flight>>,
    /// This process's name as a holder of refresh leases.
    holder: String,
}

impl<S> std::fmt::Debug for TokenManager<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("auth", &self.auth)
            .field("fallback", &self.fallback)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn access_of(shop: &ShopAuth) -> ShopAccess {
    ShopAccess {
        shop_id: shop.shop_id.clone(),
        cipher: shop.cipher.clone(),
        access_token: shop.tokens.access_token.clone(),
    }
}

/// The per-shop Open API and the [`TokenManager`] behind it, from one
/// configuration: `config` for the Open API (its `access_token` is not
/// used), `auth_base` the token host (e.g.
/// [`DEFAULT_AUTH_BASE`](super::DEFAULT_AUTH_BASE)), the shops' tokens in
/// `store`, `fallback_token` (`TIKTOK_ACCESS_TOKEN`) for shops with none.
pub fn per_shop_api<S: ShopStore + Cluster + 'static>(
    config: HttpConfig,
    auth_base: &str,
    store: Arc<S>,
    fallback_token: Option<String>,
    tokens: TokenConfig,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<TokenManager<S>>, HttpOrderApi), ApiError> {
    let auth = AuthClient::new(
        auth_base,
        &config.app_key,
        &config.app_secret,
        config.timeout,
    )?;
    let plain = HttpOrderApi::new(config.clone(), clock.clone())?;
    let manager = Arc::new(TokenManager::new(
        store,
        auth,
        plain,
        fallback_token,
        tokens,
        clock.clone(),
    ));
    let api = HttpOrderApi::with_access(config, manager.clone(), clock)?;
    Ok((manager, api))
}

impl<S: ShopStore + Cluster> TokenManager<S> {
    /// A manager of the tokens in `store`: `auth` for the token endpoints,
    /// `api` (an [`HttpOrderApi`] of the Open API host; its own token is
    /// not used) for Get Authorized Shops; `fallback_token` (e.g.
    /// `TIKTOK_ACCESS_TOKEN`) for shops with no stored tokens.
    pub fn new(
        store: Arc<S>,
        auth: AuthClient,
        api: HttpOrderApi,
        fallback_token: Option<String>,
        config: TokenConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let fallback = fallback_token
            .filter(|t| !t.is_empty())
            .map(|t| StaticAccess::new(api.clone(), t));
        TokenManager {
            store,
            auth,
            api,
            fallback,
            config,
            clock,
            flights: Mutex::new(HashMap::new()),
            holder: format!(
                "tokens-{}-{:016x}",
                std::process::id(),
                rand::rng().random::<u64>()
            ),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// A valid access for the tenant's shop, refreshed first when its token
    /// expires within the margin.
    pub async fn access(&self, tenant: &str, shop_id: &str) -> Result<ShopAccess, AuthError> {
        let margin = self.config.refresh_margin;
        let now = self.clock.now();
        self.ensure(tenant, shop_id, |t: &TokenSet| {
            t.access_expires_at - margin <= now
        })
        .await
    }

    /// After TikTok answered "expired" (`105002`) for `rejected`: refreshes
    /// once, unless the stored token already differs, and returns the
    /// access to try again with.
    pub async fn after_expired(
        &self,
        tenant: &str,
        shop_id: &str,
        rejected: &str,
    ) -> Result<ShopAccess, AuthError> {
        if self.store.shop(tenant, shop_id).await?.is_none() {
            return Err(AuthError::NotRefreshable {
                shop_id: shop_id.to_owned(),
            });
        }
        self.ensure(tenant, shop_id, |t: &TokenSet| t.access_token == rejected)
            .await
    }

    /// The shop's access; refreshed first (once, single-flight per
    /// authorization) when `stale` says so of its stored tokens.
    async fn ensure(
        &self,
        tenant: &str,
        shop_id: &str,
        stale: impl Fn(&TokenSet) -> bool,
    ) -> Result<ShopAccess, AuthError> {
        let Some(shop) = self.store.shop(tenant, shop_id).await? else {
            return match &self.fallback {
                Some(f) => Ok(f.shop(shop_id).await.map_err(|e| match e {
                    ApiError::UnknownShop { shop_id } => AuthError::NotConnected { shop_id },
                    e => AuthError::Api(e),
                })?),
                None => Err(AuthError::NotConnected {
                    shop_id: shop_id.to_owned(),
                }),
            };
        };
        if !stale(&shop.tokens) {
            return Ok(access_of(&shop));
        }
        let key = (tenant.to_owned(), shop.tokens.refresh_token.clone());
        let flight = lock(&self.flights).entry(key.clone()).or_default().clone();
        let result = {
            let _guard = flight.lock().await;
            self.refresh_if(tenant, shop_id, &stale).await
        };
        // Whoever comes later reads the rotated tokens first.
        lock(&self.flights).remove(&key);
        result
    }

    /// Under the shop's refresh lock: reads the shop again (whoever held
    /// the lock before may have refreshed) and refreshes if still `stale`,
    /// holding the authorization's lease in the store so that no other
    /// process refreshes it at the same time (module docs). While another
    /// process holds it, waits for its rotated tokens (at most
    /// [`REFRESH_WAIT`]; then the store is reported unavailable, a
    /// transient error the caller retries).
    async fn refresh_if(
        &self,
        tenant: &str,
        shop_id: &str,
        stale: &impl Fn(&TokenSet) -> bool,
    ) -> Result<ShopAccess, AuthError> {
        let waited = std::time::Instant::now();
        loop {
            let shop = self.current(tenant, shop_id).await?;
            if !stale(&shop.tokens) {
                return Ok(access_of(&shop));
            }
            let now = self.clock.now();
            if shop.tokens.refresh_expires_at <= now {
                return Err(AuthError::Reauthorize {
                    shop_id: shop_id.to_owned(),
                });
            }
            let lease = refresh_lease(tenant, &shop.tokens.refresh_token);
            let held = self
                .store
                .lease_acquire(&lease, &self.holder, REFRESH_LEASE, now)
                .await?;
            if let Some(fence) = held {
                // Read once more under the lease: another process may have
                // rotated between the read above and taking the lease.
                let result = match self.current(tenant, shop_id).await {
                    Ok(shop) if !stale(&shop.tokens) => Ok(access_of(&shop)),
                    Ok(shop) => self.refresh(tenant, &shop, now).await,
                    Err(e) => Err(e),
                };
                // A release that fails leaves the lease to lapse.
                let _ = self
                    .store
                    .lease_release(&lease, &self.holder, fence, self.clock.now())
                    .await;
                return result;
            }
            if waited.elapsed() >= REFRESH_WAIT {
                return Err(AuthError::Store(StoreError::Unavailable {
                    message: format!("another process is refreshing the tokens of shop {shop_id}"),
                    source: None,
                }));
            }
            tokio::time::sleep(REFRESH_POLL).await;
        }
    }

    /// The tenant's shop as stored.
    async fn current(&self, tenant: &str, shop_id: &str) -> Result<ShopAuth, AuthError> {
        self.store
            .shop(tenant, shop_id)
            .await?
            .ok_or_else(|| AuthError::NotConnected {
                shop_id: shop_id.to_owned(),
            })
    }

    async fn refresh(
        &self,
        tenant: &str,
        shop: &ShopAuth,
        now: DateTime<Utc>,
    ) -> Result<ShopAccess, AuthError> {
        let tokens = self.auth.refresh(&shop.tokens.refresh_token).await?;
        let changed = self
            .store
            .rotate_tokens(tenant, &shop.tokens.refresh_token, &tokens, now)
            .await?;
        if changed == 0 {
            // Another process rotated first: its tokens are the ones.
            let stored = self
                .store
                .shop(tenant, &shop.shop_id)
                .await?
                .ok_or_else(|| AuthError::NotConnected {
                    shop_id: shop.shop_id.clone(),
                })?;
            return Ok(access_of(&stored));
        }
        Ok(ShopAccess {
            shop_id: shop.shop_id.clone(),
            cipher: shop.cipher.clone(),
            access_token: tokens.access_token,
        })
    }

    /// The link that connects a shop to `tenant`, and its fresh single-use
    /// `state` (128 random bits, hex), stored until `now + state_ttl`.
    pub async fn authorization_link(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, String), AuthError> {
        let state = format!("{:032x}", rand::rng().random::<u128>());
        self.store
            .put_auth_state(tenant, &state, now + self.config.state_ttl)
            .await?;
        let url = format!(
            "{}?service_id={}&state={state}",
            self.config.authorize_url, self.config.service_id
        );
        Ok((url, state))
    }

    /// TikTok's callback: consumes `state` ([`AuthError::InvalidState`] when
    /// unknown, used or expired), exchanges `code` for tokens, reads the
    /// shops they act for, and stores them (tokens and cipher) for the
    /// state's tenant in one write. Returns the tenant and its new shops.
    pub async fn connect(
        &self,
        state: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<ShopAuth>), AuthError> {
        let tenant = self
            .store
            .take_auth_state(state, now)
            .await?
            .ok_or(AuthError::InvalidState)?;
        let tokens = self.auth.get_token(code).await?;
        let shops: Vec<Shop> = self.api.authorized_shops_with(&tokens.access_token).await?;
        let records: Vec<ShopAuth> = shops
            .into_iter()
            .map(|s| ShopAuth {
                shop_id: s.id,
                cipher: s.cipher,
                name: s.name,
                region: s.region,
                tokens: tokens.clone(),
                updated_at: now,
            })
            .collect();
        self.store.put_shops(&tenant, &records).await?;
        Ok((tenant, records))
    }
}

impl<S: ShopStore + Cluster> AccessSource for TokenManager<S> {
    fn access<'a>(
        &'a self,
        tenant: &'a str,
        shop_id: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>> {
        Box::pin(async move { Ok(TokenManager::access(self, tenant, shop_id).await?) })
    }

    fn after_expired<'a>(
        &'a self,
        tenant: &'a str,
        shop_id: &'a str,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<ShopAccess, ApiError>> {
        Box::pin(
            async move { Ok(TokenManager::after_expired(self, tenant, shop_id, rejected).await?) },
        )
    }
}
