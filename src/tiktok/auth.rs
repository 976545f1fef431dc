//! [`AuthClient`]: TikTok Shop's token endpoints (`auth_base`, default
//! [`DEFAULT_AUTH_BASE`]): an authorization code exchanged for tokens, and
//! a refresh. Both are `GET`s with query parameters, not signed.
//!
//! The query carries the app secret and the tokens, so no error of this
//! module names the URL (reqwest's errors are stripped of it), the body of
//! a failed answer, or a token; `Debug` hides the secret.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::client::ApiError;
use super::http::{envelope_data, transport_error};
use crate::store::TokenSet;

/// TikTok Shop's token host.
pub const DEFAULT_AUTH_BASE: &str = "https://auth.tiktok-shops.com";

/// The token endpoints' client.
#[derive(Clone)]
pub struct AuthClient {
    base: String,
    app_key: String,
    app_secret: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("base", &self.base)
            .field("app_key", &self.app_key)
            .field("app_secret", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenData {
    access_token: String,
    access_token_expire_in: i64,
    refresh_token: String,
    refresh_token_expire_in: i64,
}

impl AuthClient {
    /// A client of the token endpoints at `base` (e.g. [`DEFAULT_AUTH_BASE`]
    /// or a local mock) for the app `app_key` / `app_secret`; `timeout` per
    /// request.
    pub fn new(
        base: &str,
        app_key: &str,
        app_secret: &str,
        timeout: Duration,
    ) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ApiError::Transport {
                message: e.without_url().to_string(),
            })?;
        Ok(AuthClient {
            base: base.trim_end_matches('/').to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            timeout,
            client,
        })
    }

    /// `GET /api/v2/token/get`: the tokens of an authorization code.
    pub async fn get_token(&self, auth_code: &str) -> Result<TokenSet, ApiError> {
        self.tokens(
            "/api/v2/token/get",
            ("auth_code", auth_code),
            "authorized_code",
        )
        .await
    }

    /// `GET /api/v2/token/refresh`: new tokens for a refresh token (the
    /// refresh token may rotate: store the whole answer).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ApiError> {
        self.tokens(
            "/api/v2/token/refresh",
            ("refresh_token", refresh_token),
            "refresh_token",
        )
        .await
    }

    async fn tokens(
        &self,
        path: &str,
        grant: (&str, &str),
        grant_type: &str,
    ) -> Result<TokenSet, ApiError> {
        let transport = |e| transport_error(e, self.timeout);
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(&[
                ("app_key", self.app_key.as_str()),
                ("app_secret", self.app_secret.as_str()),
                grant,
                ("grant_type", grant_type),
            ])
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport)?;
        // The body of a failed answer is not echoed: it might repeat the query.
        let data = envelope_data(status, &bytes, false)?;
        let data: TokenData = serde_json::from_value(data).map_err(|e| ApiError::Decode {
            // serde's message may quote a value: only say what is wrong.
            message: format!("token answer not as documented ({:?})", e.classify()),
        })?;
        let time = |secs: i64, field: &str| {
            DateTime::<Utc>::from_timestamp(secs, 0).ok_or_else(|| ApiError::Decode {
                message: format!("token answer: `{field}` is not a time"),
            })
        };
        Ok(TokenSet {
            access_expires_at: time(data.access_token_expire_in, "access_token_expire_in")?,
            refresh_expires_at: time(data.refresh_token_expire_in, "refresh_token_expire_in")?,
            access_token: data.access_token,
            refresh_token: data.refresh_token,
        })
    }
}
