//! Per-shop TikTok tokens against the testkit's mock of TikTok (loopback):
//! connecting a shop (state, code → tokens and shops stored), refreshing
//! before expiry and after an expired-token answer, rotation stored with
//! both expiries, single-flight refresh, the fallback token, the rate
//! limit's back-off, and no secret in any error or `Debug` output.

#[path = "tiktok_common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use creatorflow::store::{Cluster, MemoryStore, Shared, ShopAuth, ShopStore, StoreError, TokenSet};
use creatorflow::tiktok::{
    ApiError, AuthClient, AuthError, HttpOrderApi, PollConfig, Processor, poll_all,
};
use creatorflow::{EngineBuilder, SystemClock};

const DAY: i64 = 86_400;

#[tokio::test]
async fn connecting_a_shop_stores_its_shops_and_tokens() {
    let w = World::start(None).await;
    let now = Utc::now();
    let (url, state) = w
        .tokens
        .authorization_link(TENANT, now)
        .await
        .expect("link");
    assert_eq!(state.len(), 32);
    assert!(state.bytes().all(|b| b.is_ascii_hexdigit()), "{state}");
    assert!(url.ends_with(&format!("state={state}")), "{url}");
    let (_, other) = w
        .tokens
        .authorization_link(TENANT, now)
        .await
        .expect("link");
    assert_ne!(state, other, "a fresh state each time");

    w.mock.add_auth_code("code-1", SELLER);
    let (tenant, shops) = w
        .tokens
        .connect(&state, "code-1", now)
        .await
        .expect("connect");
    assert_eq!(tenant, TENANT);
    assert_eq!(shops.len(), 2, "every shop of the seller");
    let stored = w.stored().await;
    assert_eq!(stored.cipher, CIPHER);
    assert!(w.mock.access_token_valid(&stored.tokens.access_token));
    assert!(stored.tokens.access_expires_at > now + TimeDelta::days(6));
    assert!(stored.tokens.refresh_expires_at > now + TimeDelta::days(300));
    assert_eq!(w.store.shops(TENANT).await.expect("shops").len(), 2);
    assert!(
        w.store
            .shop("someone-else", SHOP)
            .await
            .expect("read")
            .is_none()
    );

    // The per-shop API works with the stored access.
    w.mock.put_order(CIPHER, order("576", "AWAITING_SHIPMENT"));
    let orders = w.details(SHOP).await.expect("details");
    assert_eq!(orders.len(), 1);
    assert_eq!(w.mock.count("bad_sign") + w.mock.count("bad_token"), 0);
}

#[tokio::test]
async fn used_unknown_and_expired_states_are_refused() {
    let w = World::start(None).await;
    let now = Utc::now();
    w.mock.add_auth_code("code-1", SELLER);
    w.mock.add_auth_code("code-2", SELLER);
    let (_, state) = w
        .tokens
        .authorization_link(TENANT, now)
        .await
        .expect("link");
    w.tokens
        .connect(&state, "code-1", now)
        .await
        .expect("connect");
    // Used.
    let used = w.tokens.connect(&state, "code-2", now).await.unwrap_err();
    assert!(matches!(used, AuthError::InvalidState), "{used}");
    // Unknown.
    let unknown = w
        .tokens
        .connect("00000000000000000000000000000000", "code-2", now)
        .await
        .unwrap_err();
    assert!(matches!(unknown, AuthError::InvalidState), "{unknown}");
    // Expired (issued 20 minutes ago; states live 15).
    let (_, old) = w
        .tokens
        .authorization_link(TENANT, now - TimeDelta::minutes(20))
        .await
        .expect("link");
    let expired = w.tokens.connect(&old, "code-2", now).await.unwrap_err();
    assert!(matches!(expired, AuthError::InvalidState), "{expired}");
    // The code was never exchanged for a refused state.
    assert_eq!(w.mock.count("token_get"), 1);
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_and_the_rotation_stored() {
    let w = World::start(None).await;
    // Issued for 30 minutes: within the 1 h margin.
    w.mock.set_token_ttl(1800, 30 * DAY);
    let first = w.connect().await;
    w.mock.set_token_ttl(7 * DAY, 400 * DAY);
    w.mock.put_order(CIPHER, order("576", "AWAITING_SHIPMENT"));
    w.details(SHOP).await.expect("details");
    assert_eq!(w.mock.count("token_refresh"), 1);
    assert_eq!(
        w.mock.count("expired"),
        0,
        "refreshed before TikTok refused"
    );
    let now = Utc::now();
    for shop in w.store.shops(TENANT).await.expect("shops") {
        // The rotated refresh token and both new expiries, on every shop of
        // the authorization.
        assert_ne!(shop.tokens.refresh_token, first.refresh_token);
        assert_ne!(shop.tokens.access_token, first.access_token);
        assert!(shop.tokens.access_expires_at > now + TimeDelta::days(6));
        assert!(shop.tokens.refresh_expires_at > now + TimeDelta::days(399));
    }
    // Fresh now: no further refresh.
    w.tokens.access(TENANT, SHOP).await.expect("access");
    assert_eq!(w.mock.count("token_refresh"), 1);
}

#[tokio::test]
async fn an_expired_token_answer_refreshes_once_and_the_call_succeeds() {
    let w = World::start(None).await;
    w.connect().await;
    w.mock.put_order(CIPHER, order("576", "AWAITING_SHIPMENT"));
    w.mock.expire_access_tokens();
    let orders = w.details(SHOP).await.expect("details after a refresh");
    assert_eq!(orders.len(), 1);
    assert_eq!(w.mock.count("expired"), 1);
    assert_eq!(w.mock.count("token_refresh"), 1);
    // The refreshed token was stored: the next call uses it at once.
    w.details(SHOP).await.expect("details");
    assert_eq!(w.mock.count("expired"), 1);
    assert_eq!(w.mock.count("token_refresh"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh() {
    let w = World::start(None).await;
    w.mock.set_token_ttl(600, 30 * DAY);
    w.connect().await;
    w.mock.set_token_ttl(7 * DAY, 30 * DAY);
    let calls = (0..6).map(|i| {
        let t = w.tokens.clone();
        // Both shops of the one authorization.
        let shop = if i % 2 == 0 { SHOP } else { SHOP2 };
        tokio::spawn(async move { t.access(TENANT, shop).await })
    });
    // Spawned all at once, then awaited.
    let calls: Vec<_> = calls.collect();
    let mut tokens = Vec::new();
    for c in calls {
        tokens.push(c.await.expect("task").expect("access").access_token);
    }
    assert_eq!(w.mock.count("token_refresh"), 1, "one refresh for everyone");
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "everyone got the refreshed token");
    assert!(w.mock.access_token_valid(&tokens[0]));
}

#[tokio::test]
async fn the_rate_limit_is_backed_off_and_bounded() {
    let w = World::start(None).await;
    w.connect().await;
    w.mock.put_order(CIPHER, order("576", "AWAITING_SHIPMENT"));
    w.mock.rate_limit_next(3);
    let orders = w.details(SHOP).await.expect("succeeds after backing off");
    assert_eq!(orders.len(), 1);
    assert_eq!(w.mock.count("rate_limited"), 3);
    assert_eq!(w.mock.count("order_detail"), 1);
    // Limited for longer than the attempts allow: a transient error.
    w.mock.rate_limit_next(100);
    let err = w.details(SHOP).await.unwrap_err();
    assert!(err.is_rate_limited() && err.is_transient(), "{err}");
    assert_eq!(
        w.mock.count("rate_limited"),
        3 + u64::from(RATE_LIMIT_ATTEMPTS)
    );
}

#[tokio::test]
async fn the_fallback_token_serves_shops_with_none_stored_and_is_never_refreshed() {
    let mock = start_mock().await;
    let (access, ..) = mock.issue_tokens(SELLER);
    let w = World::with_mock(mock, Some(access.clone())).await;
    w.mock.put_order(CIPHER, order("576", "AWAITING_SHIPMENT"));
    for _ in 0..2 {
        let orders = w.details(SHOP).await.expect("details");
        assert_eq!(orders.len(), 1);
    }
    assert_eq!(w.mock.count("shops"), 1, "the cipher is cached");
    // A shop the token does not act for.
    let err = w.details("404").await.unwrap_err();
    assert!(
        matches!(err, creatorflow::tiktok::ApiError::UnknownShop { .. }),
        "{err}"
    );
    // Expired: TikTok's answer, no refresh.
    w.mock.expire_access_tokens();
    let err = w.details(SHOP).await.unwrap_err();
    assert!(err.is_expired_token(), "{err}");
    assert_eq!(w.mock.count("token_refresh"), 0);
    assert!(!format!("{:?} {err}", w.tokens).contains(&access));
}

#[tokio::test]
async fn no_secret_or_token_in_errors_or_debug_output() {
    let w = World::start(None).await;
    let tokens = w.connect().await;
    let stored = w.stored().await;
    let access = w.tokens.access(TENANT, SHOP).await.expect("access");
    let mut texts = vec![
        format!("{stored:?}"),
        format!("{access:?}"),
        format!("{:?}", w.tokens),
        format!("{:?}", w.api),
        format!("{tokens:?}"),
    ];
    // A wrong secret, an unknown refresh token, nothing listening, a
    // timeout: the errors name none of the query's secrets.
    let bad = AuthClient::new(
        &w.mock.url(),
        APP_KEY,
        "wrong-secret-123",
        Duration::from_secs(2),
    )
    .expect("client");
    let e = bad.refresh(&tokens.refresh_token).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let auth =
        AuthClient::new(&w.mock.url(), APP_KEY, SECRET, Duration::from_secs(2)).expect("client");
    let e = auth.refresh("refresh-never-issued-42").await.unwrap_err();
    assert!(
        matches!(e, creatorflow::tiktok::ApiError::Api { .. }),
        "{e}"
    );
    texts.push(format!("{e} {e:?}"));
    let down = AuthClient::new(
        "http://127.0.0.1:1",
        APP_KEY,
        SECRET,
        Duration::from_secs(2),
    )
    .expect("client");
    let e = down.refresh(&tokens.refresh_token).await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let e = down.get_token("auth-code-secret-7").await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let e = w
        .tokens
        .connect("nope", "auth-code-secret-7", Utc::now())
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    for t in &texts {
        for secret in [
            SECRET,
            "wrong-secret-123",
            tokens.access_token.as_str(),
            tokens.refresh_token.as_str(),
            "refresh-never-issued-42",
            "auth-code-secret-7",
        ] {
            assert!(!t.contains(secret), "`{secret}` leaked in: {t}");
        }
    }
}

/// A store where another process rotates the tokens just before we do
/// (when armed): our compare-and-set then changes nothing.
struct Racing {
    inner: MemoryStore,
    rival: Mutex<Option<TokenSet>>,
}

impl ShopStore for Racing {
    async fn put_shops(&self, tenant: &str, shops: &[ShopAuth]) -> Result<(), StoreError> {
        self.inner.put_shops(tenant, shops).await
    }

    async fn shop(&self, tenant: &str, shop_id: &str) -> Result<Option<ShopAuth>, StoreError> {
        self.inner.shop(tenant, shop_id).await
    }

    async fn shops(&self, tenant: &str) -> Result<Vec<ShopAuth>, StoreError> {
        self.inner.shops(tenant).await
    }

    async fn rotate_tokens(
        &self,
        tenant: &str,
        previous: &str,
        tokens: &TokenSet,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let rival = self.rival.lock().expect("lock").take();
        if let Some(r) = rival {
            assert_eq!(
                self.inner.rotate_tokens(tenant, previous, &r, now).await?,
                2
            );
        }
        self.inner
            .rotate_tokens(tenant, previous, tokens, now)
            .await
    }

    async fn put_auth_state(
        &self,
        tenant: &str,
        state: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.put_auth_state(tenant, state, expires_at).await
    }

    async fn take_auth_state(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.inner.take_auth_state(state, now).await
    }
}

/// The leases and shared values are the inner store's.
impl Cluster for Racing {
    async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        self.inner.lease_acquire(name, holder, ttl, now).await
    }

    async fn lease_release(
        &self,
        name: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.lease_release(name, holder, fence, now).await
    }

    async fn lease_holder(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, i64)>, StoreError> {
        self.inner.lease_holder(name, now).await
    }

    async fn shared(&self, name: &str) -> Result<Option<Shared>, StoreError> {
        self.inner.shared(name).await
    }

    async fn set_shared(
        &self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        self.inner.set_shared(name, value, now).await
    }
}

#[tokio::test]
async fn a_rotation_lost_to_another_process_uses_the_winners_tokens() {
    let mock = start_mock().await;
    mock.set_token_ttl(600, 30 * DAY);
    let store = Arc::new(Racing {
        inner: MemoryStore::new(),
        rival: Mutex::new(None),
    });
    let w = World::with_store(mock, store.clone(), None);
    w.connect().await;
    let (access, refresh, ae, re) = w.mock.issue_tokens(SELLER);
    let time = |s| DateTime::<Utc>::from_timestamp(s, 0).expect("time");
    *store.rival.lock().expect("lock") = Some(TokenSet {
        access_token: access.clone(),
        access_expires_at: time(ae),
        refresh_token: refresh.clone(),
        refresh_expires_at: time(re),
    });
    let got = w.tokens.access(TENANT, SHOP).await.expect("access");
    assert_eq!(w.mock.count("token_refresh"), 1, "we did refresh");
    assert!(got.access_token == access, "the winner's token is used");
    let stored = w.stored().await;
    assert!(
        stored.tokens.refresh_token == refresh,
        "the winner's tokens stay"
    );
}

#[tokio::test]
async fn the_mock_refuses_bad_signatures_and_unknown_tokens() {
    let w = World::start(None).await;
    let tokens = w.connect().await;
    let mut config = http_config(&w.mock);
    config.app_secret = "not-the-secret".into();
    config.access_token = tokens.access_token.clone();
    let forged = HttpOrderApi::new(config, Arc::new(SystemClock)).expect("api");
    let e = forged.authorized_shops().await.unwrap_err();
    assert!(matches!(e, ApiError::Api { code: 106001, .. }), "{e}");
    let mut config = http_config(&w.mock);
    config.access_token = "never-issued".into();
    let unknown = HttpOrderApi::new(config, Arc::new(SystemClock)).expect("api");
    let e = unknown.authorized_shops().await.unwrap_err();
    assert!(matches!(e, ApiError::Api { code: 36009004, .. }), "{e}");
    // A clock 10 minutes behind: outside TikTok's timestamp window.
    let mut config = http_config(&w.mock);
    config.access_token = tokens.access_token;
    let late = creatorflow::ManualClock::new(Utc::now() - TimeDelta::minutes(10));
    let stale = HttpOrderApi::new(config, Arc::new(late)).expect("api");
    let e = stale.authorized_shops().await.unwrap_err();
    assert!(matches!(e, ApiError::Api { code: 106001, .. }), "{e}");
    assert_eq!(w.mock.count("bad_sign"), 2);
}

#[tokio::test]
async fn reconciliation_reads_through_the_shops_own_access_and_keeps_the_shop() {
    let w = World::start(None).await;
    w.connect().await;
    let mut o = order("576", "AWAITING_SHIPMENT");
    o["update_time"] = serde_json::json!(Utc::now().timestamp() - 100);
    w.mock.put_order(CIPHER, o);
    let engine = EngineBuilder::new(MemoryStore::new())
        .tenant(TENANT)
        .simulated_handlers()
        .build()
        .expect("engine");
    let mut p = Processor::new(w.api.clone());
    p.add_engine(engine.clone());
    p.add_shop(SHOP, TENANT);
    let p = Arc::new(p);
    // TikTok expired the token early: the poll refreshes and goes on.
    w.mock.expire_access_tokens();
    let reports = poll_all(&p, &PollConfig::default()).await.expect("poll");
    assert_eq!((reports.len(), reports[0].orders), (1, 1));
    let stored = engine
        .find_by_tiktok_id("576")
        .await
        .expect("read")
        .expect("ingested");
    assert_eq!(stored.order.shop_id.as_deref(), Some(SHOP));
    assert_eq!(w.mock.count("token_refresh"), 1);
    assert_eq!(w.mock.count("order_search"), 1);
}

/// Two replicas (two managers, each with its own single-flight map) on one
/// store: a stale token is refreshed once between them, not once each
/// (TikTok rotates the refresh token; a second refresh with the old one
/// races the first and can lock the shop out). The store's singleton lease
/// `token:…` makes one of them refresh and the other read its tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_refresh() {
    for round in 0..5 {
        let w = World::start(None).await;
        w.mock.set_token_ttl(600, 30 * DAY);
        w.connect().await;
        w.mock.set_token_ttl(7 * DAY, 30 * DAY);
        // A refresh takes long enough for both replicas to find the token
        // stale before either has stored the new one.
        w.mock.set_token_delay(Duration::from_millis(200));
        // The second replica: its own manager on the same store and mock.
        let other = World::with_store(w.mock.clone(), w.store.clone(), None);
        let calls = (0..8).map(|i| {
            let t = if i % 2 == 0 {
                w.tokens.clone()
            } else {
                other.tokens.clone()
            };
            let shop = if i % 4 < 2 { SHOP } else { SHOP2 };
            tokio::spawn(async move { t.access(TENANT, shop).await })
        });
        // Spawned all at once, then awaited.
        let calls: Vec<_> = calls.collect();
        let mut tokens = Vec::new();
        for c in calls {
            tokens.push(c.await.expect("task").expect("access").access_token);
        }
        assert_eq!(
            w.mock.count("token_refresh"),
            1,
            "round {round}: one refresh across both replicas"
        );
        tokens.sort();
        tokens.dedup();
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: everyone got the one new token"
        );
        assert!(w.mock.access_token_valid(&tokens[0]));
    }
}
