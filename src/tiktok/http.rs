//! [`HttpOrderApi`]: the Open API over HTTPS (reqwest with rustls), with
//! request signing, a timeout per attempt, retries of transient failures,
//! jittered exponential back-off on TikTok's rate limit (HTTP 429 / code
//! `36009002`), and per-shop access (cipher and token) from an
//! [`AccessSource`]: one retry after an expired-token answer (`105002`),
//! with the access the source refreshed.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use super::access::{AccessSource, StaticAccess};
use super::api::{ApiOrder, sign_request};
use super::client::{ApiError, OrderApi, OrderPage, SearchQuery, Shop};
use crate::clock::Clock;

/// TikTok Shop's Open API host.
pub const DEFAULT_BASE_URL: &str = "https://open-api.tiktokglobalshop.com";

/// How [`HttpOrderApi`] connects and retries. Its `Debug` output hides the
/// secret and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The API's base URL (default [`DEFAULT_BASE_URL`]; a mock in tests).
    pub base_url: String,
    /// The app key (`app_key` of every request).
    pub app_key: String,
    /// The app secret (signs every request).
    pub app_secret: String,
    /// The access token of every shop when no [`AccessSource`] is given
    /// ([`HttpOrderApi::new`]); empty otherwise.
    pub access_token: String,
    /// The timeout of one attempt.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry); only transient failures are retried.
    pub attempts: u32,
    /// The delay before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// Attempts per call while TikTok answers "rate limited" (HTTP 429 or
    /// code `36009002`); each wait is the doubled backoff times a random
    /// factor in [0.5, 1.5).
    pub rate_limit_attempts: u32,
}

impl HttpConfig {
    /// The defaults (TikTok's host, 10 s timeout, 3 attempts, 200 ms
    /// backoff, 6 attempts under the rate limit) with these credentials.
    pub fn new(app_key: &str, app_secret: &str, access_token: &str) -> Self {
        HttpConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            access_token: access_token.to_owned(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
            rate_limit_attempts: 6,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base_url", &self.base_url)
            .field("app_key", &self.app_key)
            .field("app_secret", &"***")
            .field("access_token", &"***")
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .field("backoff", &self.backoff)
            .field("rate_limit_attempts", &self.rate_limit_attempts)
            .finish()
    }
}

/// The Order API over HTTP.
#[derive(Clone)]
pub struct HttpOrderApi {
    config: HttpConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    access: Arc<dyn AccessSource>,
}

impl std::fmt::Debug for HttpOrderApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOrderApi")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The response envelope of every call: `{code, message, request_id, data}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct ShopsData {
    #[serde(default)]
    shops: Vec<Shop>,
}

#[derive(Debug, Deserialize)]
struct OrdersData {
    #[serde(default)]
    orders: Vec<ApiOrder>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// One request, before signing.
#[derive(Debug, Clone)]
pub(super) struct Request {
    post: bool,
    path: String,
    query: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A GET of `path` with `query`.
    pub(super) fn get(path: impl Into<String>, query: Vec<(&'static str, String)>) -> Self {
        Request {
            post: false,
            path: path.into(),
            query,
            body: Vec::new(),
        }
    }

    /// A POST of `path` with `query` and the JSON `body`.
    pub(super) fn post(
        path: impl Into<String>,
        query: Vec<(&'static str, String)>,
        body: &Value,
    ) -> Self {
        Request {
            post: true,
            path: path.into(),
            query,
            body: body.to_string().into_bytes(),
        }
    }

    /// The same request for the shop `cipher` (`shop_cipher` query parameter).
    fn for_shop(&self, cipher: &str) -> Self {
        let mut r = self.clone();
        r.query.push(("shop_cipher", cipher.to_owned()));
        r
    }
}

impl HttpOrderApi {
    /// A client with `config` whose `access_token` acts for every shop (the
    /// cipher of a shop from Get Authorized Shops with that token, cached;
    /// never refreshed); `clock` gives the signed `timestamp`.
    pub fn new(config: HttpConfig, clock: Arc<dyn Clock>) -> Result<Self, ApiError> {
        let token = config.access_token.clone();
        let mut api = Self::with_access(config, Arc::new(StaticAccess::unresolved()), clock)?;
        api.access = Arc::new(StaticAccess::new(api.clone(), token));
        Ok(api)
    }

    /// A client with `config` that asks `access` for each shop's cipher and
    /// access token (e.g. a [`TokenManager`](super::TokenManager));
    /// `config.access_token` is not used.
    pub fn with_access(
        config: HttpConfig,
        access: Arc<dyn AccessSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ApiError::Transport {
                message: e.without_url().to_string(),
            })?;
        Ok(HttpOrderApi {
            config,
            client,
            clock,
            access,
        })
    }

    /// Get Authorized Shops with the configured `access_token`.
    pub async fn authorized_shops(&self) -> Result<Vec<Shop>, ApiError> {
        self.authorized_shops_with(&self.config.access_token).await
    }

    /// Get Authorized Shops with `access_token`: every shop it may act for,
    /// with its cipher.
    pub async fn authorized_shops_with(&self, access_token: &str) -> Result<Vec<Shop>, ApiError> {
        let data = self
            .call(
                &Request::get("/authorization/202309/shops", Vec::new()),
                access_token,
            )
            .await?;
        Ok(decode::<ShopsData>(data)?.shops)
    }

    /// Sends a shop-scoped `req` for the tenant's shop with its access (the
    /// cipher added as `shop_cipher`); after an expired-token answer asks
    /// the access source to refresh and tries once more.
    pub(super) async fn shop_call(
        &self,
        tenant: &str,
        shop_id: &str,
        req: &Request,
    ) -> Result<Value, ApiError> {
        let access = self.access.access(tenant, shop_id).await?;
        match self
            .call(&req.for_shop(&access.cipher), &access.access_token)
            .await
        {
            Err(e) if e.is_expired_token() => {
                let fresh = match self
                    .access
                    .after_expired(tenant, shop_id, &access.access_token)
                    .await
                {
                    Ok(fresh) => fresh,
                    // The refresh may work later: say so.
                    Err(refresh) if refresh.is_transient() => return Err(refresh),
                    // No fresh token to be had: TikTok's answer.
                    Err(_) => return Err(e),
                };
                self.call(&req.for_shop(&fresh.cipher), &fresh.access_token)
                    .await
            }
            other => other,
        }
    }

    /// Sends `req` with `token` (signed afresh for each attempt), retrying
    /// transient failures with exponential backoff and rate-limit answers
    /// with jittered exponential backoff; returns `data` of a `code: 0`
    /// answer.
    async fn call(&self, req: &Request, token: &str) -> Result<Value, ApiError> {
        let c = &self.config;
        let mut delay = c.backoff;
        let (mut attempt, mut limited) = (1, 1);
        loop {
            match self.attempt(req, token).await {
                Err(e) if e.is_rate_limited() && limited < c.rate_limit_attempts.max(1) => {
                    let jitter = rand::rng().random_range(0.5..1.5);
                    tokio::time::sleep(delay.mul_f64(jitter)).await;
                    delay = delay.saturating_mul(2);
                    limited += 1;
                }
                Err(e)
                    if e.is_transient() && !e.is_rate_limited() && attempt < c.attempts.max(1) =>
                {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, req: &Request, token: &str) -> Result<Value, ApiError> {
        let c = &self.config;
        let mut query: Vec<(&str, String)> = req.query.clone();
        query.push(("app_key", c.app_key.clone()));
        query.push(("timestamp", self.clock.now().timestamp().to_string()));
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sign = sign_request(&c.app_secret, &req.path, &pairs, &req.body);
        query.push(("sign", sign));
        let url = format!("{}{}", c.base_url.trim_end_matches('/'), req.path);
        let builder = if req.post {
            self.client.post(&url).body(req.body.clone())
        } else {
            self.client.get(&url)
        };
        let response = builder
            .query(&query)
            .header("x-tts-access-token", token)
            .header("content-type", "application/json")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        envelope_data(status, &bytes, true)
    }

    fn transport(&self, e: reqwest::Error) -> ApiError {
        transport_error(e, self.config.timeout)
    }
}

/// A reqwest error without its URL (the query may hold secrets).
pub(super) fn transport_error(e: reqwest::Error, timeout: Duration) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout {
            ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }
    } else {
        ApiError::Transport {
            message: e.without_url().to_string(),
        }
    }
}

/// `data` of an HTTP 200 answer with `code: 0`; the start of the body of
/// another status only if `echo_body`. A decoding error says where, not
/// what (serde would quote the value, which may be a token).
pub(super) fn envelope_data(status: u16, bytes: &[u8], echo_body: bool) -> Result<Value, ApiError> {
    if status != 200 {
        let body = if echo_body {
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
        } else {
            String::new()
        };
        return Err(ApiError::Status { status, body });
    }
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| ApiError::Decode {
        message: format!(
            "answer not as documented (line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    if envelope.code != 0 {
        return Err(ApiError::Api {
            code: envelope.code,
            message: envelope.message,
            request_id: envelope.request_id,
        });
    }
    Ok(envelope.data.unwrap_or(Value::Null))
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(|e| ApiError::Decode {
        message: e.to_string(),
    })
}

impl OrderApi for HttpOrderApi {
    async fn order_details(
        &self,
        tenant: &str,
        shop_id: &str,
        ids: &[String],
    ) -> Result<Vec<ApiOrder>, ApiError> {
        let req = Request::get("/order/202309/orders", vec![("ids", ids.join(","))]);
        let data = self.shop_call(tenant, shop_id, &req).await?;
        Ok(decode::<OrdersData>(data)?.orders)
    }

    async fn search_orders(
        &self,
        tenant: &str,
        shop_id: &str,
        q: &SearchQuery,
    ) -> Result<OrderPage, ApiError> {
        let mut query = vec![("page_size", q.page_size.clamp(1, 100).to_string())];
        if let Some(t) = &q.page_token {
            query.push(("page_token", t.clone()));
        }
        let body = serde_json::json!({
            "update_time_ge": q.update_time_ge,
            "update_time_lt": q.update_time_lt,
        });
        let req = Request::post("/order/202309/orders/search", query, &body);
        let d = decode::<OrdersData>(self.shop_call(tenant, shop_id, &req).await?)?;
        Ok(OrderPage {
            orders: d.orders,
            next_page_token: d.next_page_token.filter(|t| !t.is_empty()),
        })
    }
}
