//! The Order API behind a trait: [`OrderApi`], its errors, and
//! [`FakeOrderApi`], an in-memory implementation for tests and the
//! simulator. The HTTP implementation is `HttpOrderApi` (cargo feature
//! `tiktok-api`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;

use super::api::ApiOrder;

/// A shop the app is authorized for (Get Authorized Shops, `data.shops[]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Shop {
    /// The shop id, as webhooks carry it (`shop_id`).
    #[serde(deserialize_with = "super::api::id")]
    pub id: String,
    /// The cipher Order API calls name the shop by (`shop_cipher`).
    pub cipher: String,
    /// The shop's code.
    #[serde(default)]
    pub code: String,
    /// The shop's name.
    #[serde(default)]
    pub name: String,
    /// Its region (`US`, `GB`, …).
    #[serde(default)]
    pub region: String,
    /// `LOCAL` or `CROSS_BORDER`.
    #[serde(default)]
    pub seller_type: String,
}

/// A Search Orders query: orders updated in `[update_time_ge, update_time_lt)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Updated at or after (Unix seconds).
    pub update_time_ge: i64,
    /// Updated before (Unix seconds).
    pub update_time_lt: i64,
    /// At most this many orders per page (TikTok allows 1 to 100).
    pub page_size: u32,
    /// The page to read (from the previous page's `next_page_token`).
    pub page_token: Option<String>,
}

/// One page of Search Orders.
#[derive(Debug, Clone, Default)]
pub struct OrderPage {
    /// The orders, with the same fields as Get Order Detail.
    pub orders: Vec<ApiOrder>,
    /// The next page, if any.
    pub next_page_token: Option<String>,
}

/// TikTok's code for "too many requests" (with HTTP 429).
pub const RATE_LIMITED: i64 = 36009002;
/// TikTok's code for an expired access token.
pub const EXPIRED_TOKEN: i64 = 105002;

/// Why an Order API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request could not be sent or the response not read.
    #[error("Order API transport error: {message}")]
    Transport {
        /// What failed.
        message: String,
    },
    /// No answer within the timeout.
    #[error("Order API timed out after {ms} ms")]
    Timeout {
        /// The timeout.
        ms: u64,
    },
    /// An HTTP status other than 200.
    #[error("Order API answered HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// A response with `code` other than 0.
    #[error("Order API error {code}: {message} (request {request_id})")]
    Api {
        /// TikTok's code.
        code: i64,
        /// TikTok's message.
        message: String,
        /// For support requests.
        request_id: String,
    },
    /// The response is not what the API documents.
    #[error("Order API response: {message}")]
    Decode {
        /// What is wrong with it.
        message: String,
    },
    /// The app is not authorized for this shop (no cipher).
    #[error("shop {shop_id} is not among the authorized shops")]
    UnknownShop {
        /// The shop.
        shop_id: String,
    },
    /// The shop's tokens or authorization could not be read or written.
    #[error("shop store: {message}")]
    Store {
        /// What failed.
        message: String,
    },
    /// The order does not exist (or not in this shop).
    #[error("order {order_id} not found")]
    NoSuchOrder {
        /// The order.
        order_id: String,
    },
}

impl ApiError {
    /// Whether trying again later may succeed (transport failures,
    /// timeouts, HTTP 429 and 5xx, TikTok's rate limit `36009002`, a store
    /// failure).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::Timeout { .. } | ApiError::Store { .. } => true,
            ApiError::Status { status, .. } => *status == 429 || *status >= 500,
            ApiError::Api { code, .. } => *code == RATE_LIMITED,
            _ => false,
        }
    }

    /// Whether TikTok refused the call for its rate limit (HTTP 429 or
    /// code `36009002`).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, ApiError::Status { status: 429, .. })
            || matches!(self, ApiError::Api { code, .. } if *code == RATE_LIMITED)
    }

    /// Whether TikTok said the access token expired (code `105002`).
    pub fn is_expired_token(&self) -> bool {
        matches!(self, ApiError::Api { code, .. } if *code == EXPIRED_TOKEN)
    }
}

/// The Order API calls CreatorFlow makes, each for one shop of one tenant:
/// the implementation finds the shop's cipher and access token (for
/// `HttpOrderApi`, through its access source, e.g. a `TokenManager`).
///
/// Methods return `impl Future + Send`, like [`Store`](crate::store::Store).
pub trait OrderApi: Send + Sync {
    /// Get Order Detail of `ids` in the tenant's shop `shop_id` (orders not
    /// found are absent from the result).
    fn order_details(
        &self,
        tenant: &str,
        shop_id: &str,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<ApiOrder>, ApiError>> + Send;

    /// Search Orders: one page of the shop's orders updated in the window.
    fn search_orders(
        &self,
        tenant: &str,
        shop_id: &str,
        query: &SearchQuery,
    ) -> impl Future<Output = Result<OrderPage, ApiError>> + Send;
}

/// An in-memory Order API: shops (id → cipher) and orders (by cipher) put
/// in by the caller; a shop not added is [`ApiError::UnknownShop`]; counts
/// the calls made. Orders are given as the API's JSON, so tests exercise
/// the same decoding as the HTTP client.
#[derive(Debug, Default)]
pub struct FakeOrderApi {
    shops: Mutex<Vec<Shop>>,
    /// cipher → orders, in insertion order.
    orders: Mutex<HashMap<String, Vec<ApiOrder>>>,
    calls: AtomicU64,
    failures: AtomicU64,
}

impl FakeOrderApi {
    /// An API with no shops.
    pub fn new() -> Self {
        FakeOrderApi::default()
    }

    /// Authorizes the shop `id` with `cipher`.
    pub fn add_shop(&self, id: &str, cipher: &str) {
        lock(&self.shops).push(Shop {
            id: id.to_owned(),
            cipher: cipher.to_owned(),
            code: String::new(),
            name: format!("shop {id}"),
            region: "US".into(),
            seller_type: "LOCAL".into(),
        });
    }

    /// Adds or replaces (same id) an order of the shop `cipher`, given as
    /// the Order API's JSON for one order.
    pub fn put_order_json(&self, cipher: &str, json: &str) -> Result<(), ApiError> {
        let order: ApiOrder = serde_json::from_str(json).map_err(|e| ApiError::Decode {
            message: e.to_string(),
        })?;
        let mut orders = lock(&self.orders);
        let list = orders.entry(cipher.to_owned()).or_default();
        match list.iter_mut().find(|o| o.id == order.id) {
            Some(o) => *o = order,
            None => list.push(order),
        }
        Ok(())
    }

    /// The next `n` calls fail with a transient transport error.
    pub fn fail_next(&self, n: u64) {
        self.failures.store(n, Ordering::SeqCst);
    }

    /// How many calls were made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn call(&self) -> Result<(), ApiError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failed = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match failed {
            Ok(_) => Err(ApiError::Transport {
                message: "injected failure".into(),
            }),
            Err(_) => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeOrderApi {
    /// The cipher of an authorized shop.
    fn cipher(&self, shop_id: &str) -> Result<String, ApiError> {
        lock(&self.shops)
            .iter()
            .find(|s| s.id == shop_id)
            .map(|s| s.cipher.clone())
            .ok_or_else(|| ApiError::UnknownShop {
                shop_id: shop_id.to_owned(),
            })
    }
}

impl OrderApi for FakeOrderApi {
    async fn order_details(
        &self,
        _tenant: &str,
        shop_id: &str,
        ids: &[String],
    ) -> Result<Vec<ApiOrder>, ApiError> {
        self.call()?;
        let cipher = self.cipher(shop_id)?;
        let orders = lock(&self.orders);
        Ok(orders
            .get(&cipher)
            .into_iter()
            .flatten()
            .filter(|o| ids.contains(&o.id))
            .cloned()
            .collect())
    }

    async fn search_orders(
        &self,
        _tenant: &str,
        shop_id: &str,
        query: &SearchQuery,
    ) -> Result<OrderPage, ApiError> {
        self.call()?;
        let cipher = self.cipher(shop_id)?;
        let orders = lock(&self.orders);
        let matching: Vec<&ApiOrder> = orders
            .get(&cipher)
            .into_iter()
            .flatten()
            .filter(|o| {
                let t = o.update_time.unwrap_or(o.create_time);
                t >= query.update_time_ge && t < query.update_time_lt
            })
            .collect();
        let start = match &query.page_token {
            Some(t) => t.parse::<usize>().map_err(|_| ApiError::Decode {
                message: format!("bad page token `{t}`"),
            })?,
            None => 0,
        };
        let size = usize::try_from(query.page_size.clamp(1, 100)).unwrap_or(100);
        let end = (start + size).min(matching.len());
        Ok(OrderPage {
            orders: matching
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|o| (*o).clone())
                .collect(),
            next_page_token: (end < matching.len()).then(|| end.to_string()),
        })
    }
}
