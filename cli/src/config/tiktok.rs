//! The TikTok Shop app the service acts as: from the configuration's
//! `tiktok:` section, else from the environment (`TIKTOK_APP_KEY`,
//! `TIKTOK_APP_SECRET`, as without `--config`), and the per-shop Open API
//! it opens over the store's connected shops.
//!
//! `TIKTOK_ACCESS_TOKEN`, if set, is the token of any shop that has none
//! stored (not refreshed; service.md).

use std::sync::Arc;

use creatorflow::Clock;
use creatorflow::store::{Cluster, ShopStore};
use creatorflow::tiktok::{
    ApiError, DEFAULT_AUTH_BASE, DEFAULT_BASE_URL, HttpConfig, HttpOrderApi, TokenConfig,
    TokenManager, per_shop_api,
};

use super::{EnvLookup, Setup};

/// The app's credentials and hosts. `Debug` hides the secret and the
/// fallback token.
#[derive(Clone)]
pub struct TikTokApp {
    /// The app key (webhook signatures cover it; every API call names it).
    pub app_key: String,
    /// The app secret (verifies webhooks, signs API calls).
    pub app_secret: String,
    /// The Open API's base URL.
    pub api_base: String,
    /// The token service's base URL.
    pub auth_base: String,
    /// The authorization link's settings (page, service id).
    pub tokens: TokenConfig,
    /// `TIKTOK_ACCESS_TOKEN`: the token of shops with none stored.
    pub fallback_token: Option<String>,
}

impl std::fmt::Debug for TikTokApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TikTokApp")
            .field("app_key", &self.app_key)
            .field("app_secret", &"***")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field(
                "fallback_token",
                &self.fallback_token.as_ref().map(|_| "***"),
            )
            .finish_non_exhaustive()
    }
}

/// The per-shop Open API over a store's connected shops, and the token
/// manager behind it (authorization links, connecting shops, refreshes).
pub struct TikTokRuntime<S> {
    /// Tokens: refresh, authorization, connecting.
    pub tokens: Arc<TokenManager<S>>,
    /// The Open API, each call with its shop's own token.
    pub api: Arc<HttpOrderApi>,
}

impl TikTokApp {
    /// The app of `setup`'s `tiktok:` section, else of the environment
    /// (`TIKTOK_APP_KEY` and `TIKTOK_APP_SECRET`, both set and not empty);
    /// `api_base` (the `--api-base` flag) overrides the configured host.
    /// `None` when neither names an app.
    pub fn of(setup: &Setup, env: EnvLookup<'_>, api_base: Option<String>) -> Option<TikTokApp> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let section = setup.config.as_ref().and_then(|c| c.tiktok.as_ref());
        let (app_key, app_secret) = match section {
            Some(t) => (
                t.app_key.expose().to_owned(),
                t.app_secret.expose().to_owned(),
            ),
            None => (var("TIKTOK_APP_KEY")?, var("TIKTOK_APP_SECRET")?),
        };
        let mut tokens = TokenConfig::default();
        if let Some(url) = section.and_then(|t| t.authorize_url.clone()) {
            tokens.authorize_url = url;
        }
        if let Some(id) = section.and_then(|t| t.service_id.clone()) {
            tokens.service_id = id;
        }
        Some(TikTokApp {
            app_key,
            app_secret,
            api_base: api_base
                .or_else(|| section.and_then(|t| t.api_base.clone()))
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            auth_base: section
                .and_then(|t| t.auth_base.clone())
                .unwrap_or_else(|| DEFAULT_AUTH_BASE.to_owned()),
            tokens,
            fallback_token: var("TIKTOK_ACCESS_TOKEN"),
        })
    }

    /// The per-shop Open API over the shops connected in `store`.
    pub fn open<S: ShopStore + Cluster + 'static>(
        &self,
        store: S,
        clock: Arc<dyn Clock>,
    ) -> Result<TikTokRuntime<S>, ApiError> {
        let mut http = HttpConfig::new(&self.app_key, &self.app_secret, "");
        http.base_url = self.api_base.clone();
        let (tokens, api) = per_shop_api(
            http,
            &self.auth_base,
            Arc::new(store),
            self.fallback_token.clone(),
            self.tokens.clone(),
            clock,
        )?;
        Ok(TikTokRuntime {
            tokens,
            api: Arc::new(api),
        })
    }
}
