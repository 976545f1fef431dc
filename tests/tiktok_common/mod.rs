//! Shared by the `tiktok_*` tests: the testkit's mock of TikTok with one
//! seller of two shops (and another seller), a memory store, a
//! `TokenManager` and the per-shop `HttpOrderApi` on top of it.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use creatorflow::SystemClock;
use creatorflow::store::{Cluster, MemoryStore, ShopAuth, ShopStore, TokenSet};
use creatorflow::tiktok::{
    ApiError, ApiOrder, HttpConfig, HttpOrderApi, OrderApi, TokenConfig, TokenManager, per_shop_api,
};
use creatorflow_testkit::tiktok::TikTokMock;
use serde_json::{Value, json};

pub const APP_KEY: &str = "app-key-1";
pub const SECRET: &str = "app-secret-s3cr3t";
pub const TENANT: &str = "creator-1";
pub const SELLER: &str = "seller-1";
pub const SHOP: &str = "7494049642642441621";
pub const SHOP2: &str = "7494049642642441622";
pub const CIPHER: &str = "ROW_c1";
pub const CIPHER2: &str = "ROW_c2";
/// Attempts per call under the rate limit in these tests.
pub const RATE_LIMIT_ATTEMPTS: u32 = 4;

/// The mock, a store, the token manager and the per-shop API.
pub struct World<S = MemoryStore> {
    pub mock: TikTokMock,
    pub store: Arc<S>,
    pub tokens: Arc<TokenManager<S>>,
    pub api: Arc<HttpOrderApi>,
}

/// The Open API's configuration for `mock` (no token; quick retries).
pub fn http_config(mock: &TikTokMock) -> HttpConfig {
    let mut config = HttpConfig::new(APP_KEY, SECRET, "");
    config.base_url = mock.url();
    config.timeout = Duration::from_secs(2);
    config.backoff = Duration::from_millis(2);
    config.rate_limit_attempts = RATE_LIMIT_ATTEMPTS;
    config
}

/// The mock with `SELLER`'s two shops and another seller's.
pub async fn start_mock() -> TikTokMock {
    let mock = TikTokMock::start(APP_KEY, SECRET).await.expect("mock");
    mock.add_shop(SELLER, SHOP, CIPHER);
    mock.add_shop(SELLER, SHOP2, CIPHER2);
    mock.add_shop("seller-2", "777", "ROW_other");
    mock
}

impl World {
    /// A new mock and world; `fallback` as `TIKTOK_ACCESS_TOKEN`.
    pub async fn start(fallback: Option<String>) -> Self {
        Self::with_mock(start_mock().await, fallback).await
    }

    /// A world around `mock`.
    pub async fn with_mock(mock: TikTokMock, fallback: Option<String>) -> Self {
        World::with_store(mock, Arc::new(MemoryStore::new()), fallback)
    }
}

impl<S: ShopStore + Cluster + 'static> World<S> {
    /// A world around `mock` and `store`.
    pub fn with_store(mock: TikTokMock, store: Arc<S>, fallback: Option<String>) -> Self {
        let config = http_config(&mock);
        let (tokens, api) = per_shop_api(
            config,
            &mock.url(),
            store.clone(),
            fallback,
            TokenConfig::default(),
            Arc::new(SystemClock),
        )
        .expect("api");
        let api = Arc::new(api);
        World {
            mock,
            store,
            tokens,
            api,
        }
    }

    /// Get Order Detail of order `576` in the tenant's `shop`.
    pub async fn details(&self, shop: &str) -> Result<Vec<ApiOrder>, ApiError> {
        self.api
            .order_details(TENANT, shop, &["576".to_owned()])
            .await
    }

    /// Connects `SELLER`'s shops to `TENANT`; the tokens stored.
    pub async fn connect(&self) -> TokenSet {
        let now = Utc::now();
        let (_, state) = self
            .tokens
            .authorization_link(TENANT, now)
            .await
            .expect("link");
        let code = format!("code-{state}");
        self.mock.add_auth_code(&code, SELLER);
        self.tokens
            .connect(&state, &code, now)
            .await
            .expect("connect");
        self.stored().await.tokens
    }

    /// The tenant's stored `SHOP`.
    pub async fn stored(&self) -> ShopAuth {
        self.store
            .shop(TENANT, SHOP)
            .await
            .expect("read")
            .expect("stored")
    }
}

/// The Order API's JSON of an order `id` with `status`.
pub fn order(id: &str, status: &str) -> Value {
    json!({
        "id": id, "status": status, "user_id": "7494560109732334000",
        "create_time": 1718305585, "update_time": 1718305600, "rts_sla_time": 1718564785,
        "shipping_provider": "USPS", "is_on_hold_order": false,
        "fulfillment_type": "FULFILLMENT_BY_SELLER", "is_buyer_request_cancel": false,
        "line_items": [{"id": "1", "product_id": "1729587769570529000", "product_name": "Glow Serum",
            "sku_id": "s1", "sale_price": "11.99", "currency": "USD"}],
        "payment": {"total_amount": "11.99", "currency": "USD"},
    })
}
