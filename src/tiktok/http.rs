//! [`HttpOrderApi`]: the Order API over HTTPS (reqwest with rustls), with
//! request signing, a timeout per attempt and retries of transient failures.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

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
    /// The shop's access token (`x-tts-access-token`).
    pub access_token: String,
    /// The timeout of one attempt.
    pub timeout: Duration,
    /// Attempts per call (1 = no retry); only transient failures are retried.
    pub attempts: u32,
    /// The delay before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl HttpConfig {
    /// The defaults (TikTok's host, 10 s timeout, 3 attempts, 200 ms
    /// backoff) with these credentials.
    pub fn new(app_key: &str, app_secret: &str, access_token: &str) -> Self {
        HttpConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            access_token: access_token.to_owned(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
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
            .finish()
    }
}

/// The Order API over HTTP.
#[derive(Clone)]
pub struct HttpOrderApi {
    config: HttpConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
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
struct Request<'a> {
    post: bool,
    path: &'a str,
    query: Vec<(&'a str, String)>,
    body: Vec<u8>,
}

impl<'a> Request<'a> {
    /// A GET of `path` with `query`.
    fn get(path: &'a str, query: Vec<(&'a str, String)>) -> Self {
        Request {
            post: false,
            path,
            query,
            body: Vec::new(),
        }
    }
}

impl HttpOrderApi {
    /// A client with `config`; `clock` gives the signed `timestamp`.
    pub fn new(config: HttpConfig, clock: Arc<dyn Clock>) -> Result<Self, ApiError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| ApiError::Transport {
                message: e.to_string(),
            })?;
        Ok(HttpOrderApi {
            config,
            client,
            clock,
        })
    }

    /// Sends `req` (signed afresh for each attempt), retrying transient
    /// failures with exponential backoff; returns `data` of a `code: 0` answer.
    async fn call(&self, req: Request<'_>) -> Result<Value, ApiError> {
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(&req).await {
                Err(e) if e.is_transient() && attempt < self.config.attempts.max(1) => {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, req: &Request<'_>) -> Result<Value, ApiError> {
        let c = &self.config;
        let mut query: Vec<(&str, String)> = req.query.clone();
        query.push(("app_key", c.app_key.clone()));
        query.push(("timestamp", self.clock.now().timestamp().to_string()));
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sign = sign_request(&c.app_secret, req.path, &pairs, &req.body);
        query.push(("sign", sign));
        let url = format!("{}{}", c.base_url.trim_end_matches('/'), req.path);
        let builder = if req.post {
            self.client.post(&url).body(req.body.clone())
        } else {
            self.client.get(&url)
        };
        let response = builder
            .query(&query)
            .header("x-tts-access-token", &c.access_token)
            .header("content-type", "application/json")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if status != 200 {
            let body = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            return Err(ApiError::Status { status, body });
        }
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            message: e.to_string(),
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

    fn transport(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            ApiError::Timeout {
                ms: u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX),
            }
        } else {
            ApiError::Transport {
                message: e.to_string(),
            }
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(data: Value) -> Result<T, ApiError> {
    serde_json::from_value(data).map_err(|e| ApiError::Decode {
        message: e.to_string(),
    })
}

impl OrderApi for HttpOrderApi {
    async fn authorized_shops(&self) -> Result<Vec<Shop>, ApiError> {
        let data = self
            .call(Request::get("/authorization/202309/shops", Vec::new()))
            .await?;
        Ok(decode::<ShopsData>(data)?.shops)
    }

    async fn order_details(
        &self,
        shop_cipher: &str,
        ids: &[String],
    ) -> Result<Vec<ApiOrder>, ApiError> {
        let data = self
            .call(Request::get(
                "/order/202309/orders",
                vec![
                    ("ids", ids.join(",")),
                    ("shop_cipher", shop_cipher.to_owned()),
                ],
            ))
            .await?;
        Ok(decode::<OrdersData>(data)?.orders)
    }

    async fn search_orders(
        &self,
        shop_cipher: &str,
        q: &SearchQuery,
    ) -> Result<OrderPage, ApiError> {
        let mut query = vec![
            ("page_size", q.page_size.clamp(1, 100).to_string()),
            ("shop_cipher", shop_cipher.to_owned()),
        ];
        if let Some(t) = &q.page_token {
            query.push(("page_token", t.clone()));
        }
        let body = serde_json::json!({
            "update_time_ge": q.update_time_ge,
            "update_time_lt": q.update_time_lt,
        })
        .to_string()
        .into_bytes();
        let data = self
            .call(Request {
                post: true,
                path: "/order/202309/orders/search",
                query,
                body,
            })
            .await?;
        let d = decode::<OrdersData>(data)?;
        Ok(OrderPage {
            orders: d.orders,
            next_page_token: d.next_page_token.filter(|t| !t.is_empty()),
        })
    }
}
