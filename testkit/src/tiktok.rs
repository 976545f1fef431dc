//! A mock of TikTok Shop on 127.0.0.1:0: the token host
//! (`/api/v2/token/get`, `/api/v2/token/refresh`) and the Open API
//! (`/authorization/202309/shops`, orders, fulfillment, inventory) on one
//! server, told apart by path.
//!
//! It checks what TikTok checks, with its own code: the `sign` (HMAC-SHA256
//! of `secret + path + sorted key/values + body + secret`) and the
//! `timestamp` window [now − 5 min, now + 30 s] (`106001` otherwise); the
//! `x-tts-access-token` against the tokens it issued (expired: `105002`,
//! unknown: `36009004`); `shop_cipher` on shop-scoped paths (missing or not
//! the token's seller's: `106013`). Tests register auth codes (single use),
//! sellers' shops and orders (JSON), expire tokens, script rate limiting
//! (the next N Open API calls answer HTTP 429 with `36009002`) and failures,
//! and read counters and recorded calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// Unix seconds now.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An issued access token.
#[derive(Debug, Clone)]
struct Access {
    seller: String,
    expires: i64,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
struct Refresh {
    seller: String,
    expires: i64,
}

/// A shop of a seller.
#[derive(Debug, Clone)]
struct MockShop {
    seller: String,
    id: String,
    cipher: String,
}

#[derive(Debug, Default)]
struct Inner {
    codes: HashMap<String, String>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    shops: Vec<MockShop>,
    /// cipher → orders (the Order API's JSON).
    orders: HashMap<String, Vec<Value>>,
    /// order id → package id.
    packages: HashMap<String, String>,
    package_bodies: Vec<Value>,
    package_error: Option<i64>,
    inventory: Vec<(String, Value)>,
    failing_skus: Vec<String>,
    rate_limit: u64,
    counters: HashMap<String, u64>,
    access_ttl: i64,
    refresh_ttl: i64,
    issued: u64,
    /// How long the token endpoints take to answer (a slow TikTok, so
    /// that concurrent refreshes overlap in tests).
    token_delay: Duration,
}

/// The mock (see the module docs). Cheap to clone; the server runs until
/// the test's runtime ends.
#[derive(Debug, Clone)]
pub struct TikTokMock {
    inner: Arc<Mutex<Inner>>,
    app_key: Arc<str>,
    app_secret: Arc<str>,
    addr: SocketAddr,
}

type Answer = (StatusCode, Value);

fn ok(data: Value) -> Answer {
    (
        StatusCode::OK,
        json!({"code": 0, "message": "Success", "request_id": "mock", "data": data}),
    )
}

fn fail(code: i64, message: &str) -> Answer {
    (
        StatusCode::OK,
        json!({"code": code, "message": message, "request_id": "mock"}),
    )
}

/// TikTok's request signature, computed independently of CreatorFlow.
pub fn open_api_sign(
    secret: &str,
    path: &str,
    query: &HashMap<String, String>,
    body: &[u8],
) -> String {
    let mut keys: Vec<&String> = query
        .keys()
        .filter(|k| *k != "sign" && *k != "access_token")
        .collect();
    keys.sort();
    let mut s = Vec::new();
    s.extend_from_slice(secret.as_bytes());
    s.extend_from_slice(path.as_bytes());
    for k in keys {
        s.extend_from_slice(k.as_bytes());
        s.extend_from_slice(query[k].as_bytes());
    }
    s.extend_from_slice(body);
    s.extend_from_slice(secret.as_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&s);
    hex::encode(mac.finalize().into_bytes())
}

impl TikTokMock {
    /// Starts the mock for the app `app_key` / `app_secret` on 127.0.0.1:0.
    /// Access tokens live 7 days and refresh tokens 365 days unless told
    /// otherwise.
    pub async fn start(app_key: &str, app_secret: &str) -> std::io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            access_ttl: 7 * 86_400,
            refresh_ttl: 365 * 86_400,
            ..Inner::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mock = TikTokMock {
            inner,
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            addr,
        };
        let app = Router::new().fallback(handle).with_state(mock.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(mock)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT`: both `auth_base` and `api_base`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds the shop `id` with `cipher` to `seller`.
    pub fn add_shop(&self, seller: &str, id: &str, cipher: &str) {
        self.lock().shops.push(MockShop {
            seller: seller.to_owned(),
            id: id.to_owned(),
            cipher: cipher.to_owned(),
        });
    }

    /// Registers a single-use authorization code of `seller`.
    pub fn add_auth_code(&self, code: &str, seller: &str) {
        self.lock().codes.insert(code.to_owned(), seller.to_owned());
    }

    /// The token endpoints answer after `delay` from now on (default: at
    /// once), so that refreshes asked for at nearly the same time overlap.
    pub fn set_token_delay(&self, delay: Duration) {
        self.lock().token_delay = delay;
    }

    /// Lifetimes (seconds) of tokens issued from now on.
    pub fn set_token_ttl(&self, access_s: i64, refresh_s: i64) {
        let mut i = self.lock();
        i.access_ttl = access_s;
        i.refresh_ttl = refresh_s;
    }

    /// Issues tokens for `seller` directly (as if authorized earlier):
    /// `(access, refresh, access_expires, refresh_expires)`.
    pub fn issue_tokens(&self, seller: &str) -> (String, String, i64, i64) {
        issue(&mut self.lock(), seller)
    }

    /// Every issued access token expires now.
    pub fn expire_access_tokens(&self) {
        let t = now() - 1;
        for a in self.lock().access.values_mut() {
            a.expires = t;
        }
    }

    /// Whether `token` is a live access token.
    pub fn access_token_valid(&self, token: &str) -> bool {
        self.lock()
            .access
            .get(token)
            .is_some_and(|a| a.expires > now())
    }

    /// Adds or replaces (by `id`) an order of the shop `cipher`, as the
    /// Order API's JSON (`status`, `fulfillment_type`,
    /// `is_buyer_request_cancel`, …).
    pub fn put_order(&self, cipher: &str, order: Value) {
        let mut i = self.lock();
        let list = i.orders.entry(cipher.to_owned()).or_default();
        match list.iter_mut().find(|o| o["id"] == order["id"]) {
            Some(o) => *o = order,
            None => list.push(order),
        }
    }

    /// The next `n` Open API calls answer HTTP 429 with code `36009002`.
    pub fn rate_limit_next(&self, n: u64) {
        self.lock().rate_limit = n;
    }

    /// Create Packages answers `code` from now on (`None`: normally).
    pub fn set_package_error(&self, code: Option<i64>) {
        self.lock().package_error = code;
    }

    /// Inventory updates of `sku` fail in `data.errors[]`.
    pub fn fail_sku(&self, sku: &str) {
        self.lock().failing_skus.push(sku.to_owned());
    }

    /// How many times `what` happened: `token_get`, `token_refresh`,
    /// `shops`, `order_detail`, `order_search`, `create_package`,
    /// `shipping_document`, `inventory_update`, `rate_limited`, `expired`,
    /// `bad_token`, `bad_sign`, `no_cipher`.
    pub fn count(&self, what: &str) -> u64 {
        self.lock().counters.get(what).copied().unwrap_or(0)
    }

    /// The bodies of Create Packages calls that created a package.
    pub fn packages(&self) -> Vec<Value> {
        self.lock().package_bodies.clone()
    }

    /// The inventory updates: `(product_id, body)`.
    pub fn inventory_updates(&self) -> Vec<(String, Value)> {
        self.lock().inventory.clone()
    }
}

fn bump(i: &mut Inner, what: &str) {
    *i.counters.entry(what.to_owned()).or_default() += 1;
}

fn issue(i: &mut Inner, seller: &str) -> (String, String, i64, i64) {
    i.issued += 1;
    let n = i.issued;
    let (access, refresh) = (format!("mock-access-{n}"), format!("mock-refresh-{n}"));
    let (ae, re) = (now() + i.access_ttl, now() + i.refresh_ttl);
    i.access.insert(
        access.clone(),
        Access {
            seller: seller.to_owned(),
            expires: ae,
        },
    );
    i.refresh.insert(
        refresh.clone(),
        Refresh {
            seller: seller.to_owned(),
            expires: re,
        },
    );
    (access, refresh, ae, re)
}

fn token_answer(t: (String, String, i64, i64), seller: &str) -> Answer {
    ok(json!({
        "access_token": t.0, "access_token_expire_in": t.2,
        "refresh_token": t.1, "refresh_token_expire_in": t.3,
        "open_id": format!("open-{seller}"), "seller_name": seller,
        "seller_base_region": "US", "user_type": 0, "granted_scopes": ["seller.order.info"],
    }))
}

async fn handle(
    State(m): State<TikTokMock>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let (status, value) = if path.starts_with("/api/v2/token/") {
        let delay = m.lock().token_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        m.token(path, &q)
    } else {
        m.open_api(&method, path, &q, &headers, &body)
    };
    (status, axum::Json(value)).into_response()
}

impl TikTokMock {
    fn token(&self, path: &str, q: &HashMap<String, String>) -> Answer {
        let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
        if get("app_key") != &*self.app_key || get("app_secret") != &*self.app_secret {
            return fail(36004003, "invalid app_key or app_secret");
        }
        let mut i = self.lock();
        match (path, get("grant_type")) {
            ("/api/v2/token/get", "authorized_code") => {
                bump(&mut i, "token_get");
                let Some(seller) = i.codes.remove(get("auth_code")) else {
                    return fail(36004004, "invalid or used auth_code");
                };
                let t = issue(&mut i, &seller);
                token_answer(t, &seller)
            }
            ("/api/v2/token/refresh", "refresh_token") => {
                bump(&mut i, "token_refresh");
                let Some(r) = i.refresh.remove(get("refresh_token")) else {
                    return fail(36004004, "invalid refresh_token");
                };
                if r.expires <= now() {
                    return fail(105003, "refresh_token expired");
                }
                let t = issue(&mut i, &r.seller);
                token_answer(t, &r.seller)
            }
            _ => fail(36004004, "invalid grant_type"),
        }
    }

    fn open_api(
        &self,
        method: &Method,
        path: &str,
        q: &HashMap<String, String>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let mut i = self.lock();
        if i.rate_limit > 0 {
            i.rate_limit -= 1;
            bump(&mut i, "rate_limited");
            let (_, v) = fail(36009002, "too many requests");
            return (StatusCode::TOO_MANY_REQUESTS, v);
        }
        let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
        let t = now();
        let signed = q.get("sign").map(String::as_str)
            == Some(open_api_sign(&self.app_secret, path, q, body).as_str());
        if q.get("app_key").map(String::as_str) != Some(&*self.app_key)
            || !signed
            || ts < t - 300
            || ts > t + 30
        {
            bump(&mut i, "bad_sign");
            return fail(106001, "invalid sign");
        }
        let token = headers
            .get("x-tts-access-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(access) = i.access.get(token).cloned() else {
            bump(&mut i, "bad_token");
            return fail(36009004, "invalid credentials");
        };
        if access.expires <= t {
            bump(&mut i, "expired");
            return fail(105002, "access token expired");
        }
        if path == "/authorization/202309/shops" {
            bump(&mut i, "shops");
            let shops: Vec<Value> = i
                .shops
                .iter()
                .filter(|s| s.seller == access.seller)
                .map(|s| {
                    json!({"id": s.id, "cipher": s.cipher, "code": format!("C{}", s.id),
                        "name": format!("Shop {}", s.id), "region": "US", "seller_type": "LOCAL"})
                })
                .collect();
            return ok(json!({ "shops": shops }));
        }
        let cipher = q.get("shop_cipher").cloned().unwrap_or_default();
        if !i
            .shops
            .iter()
            .any(|s| s.cipher == cipher && s.seller == access.seller)
        {
            bump(&mut i, "no_cipher");
            return fail(106013, "shop_cipher missing or not authorized");
        }
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["order", "202309", "orders"]) => {
                bump(&mut i, "order_detail");
                let ids: Vec<&str> = q.get("ids").map_or(Vec::new(), |s| s.split(',').collect());
                let orders: Vec<Value> = i
                    .orders
                    .get(&cipher)
                    .into_iter()
                    .flatten()
                    .filter(|o| ids.contains(&o["id"].as_str().unwrap_or("")))
                    .cloned()
                    .collect();
                ok(json!({ "orders": orders }))
            }
            ("POST", ["order", "202309", "orders", "search"]) => {
                bump(&mut i, "order_search");
                let (ge, lt) = (
                    body["update_time_ge"].as_i64().unwrap_or(0),
                    body["update_time_lt"].as_i64().unwrap_or(i64::MAX),
                );
                let orders: Vec<Value> = i
                    .orders
                    .get(&cipher)
                    .into_iter()
                    .flatten()
                    .filter(|o| {
                        let u = o["update_time"].as_i64().unwrap_or(0);
                        u >= ge && u < lt
                    })
                    .cloned()
                    .collect();
                ok(json!({ "orders": orders, "next_page_token": "" }))
            }
            ("POST", ["fulfillment", "202309", "packages"]) => {
                bump(&mut i, "create_package");
                if let Some(code) = i.package_error {
                    return fail(code, "scripted failure");
                }
                let order_id = body["order_id"].as_str().unwrap_or("").to_owned();
                let order = i
                    .orders
                    .get(&cipher)
                    .and_then(|l| l.iter().find(|o| o["id"] == order_id.as_str()))
                    .cloned();
                let Some(order) = order else {
                    return fail(21011001, "order not found");
                };
                if matches!(order["status"].as_str(), Some("CANCELLED" | "CANCEL")) {
                    return fail(21011041, "order cancelled");
                }
                if i.packages.contains_key(&order_id) {
                    return fail(21011020, "order already shipped");
                }
                let package_id = format!("pkg-{order_id}");
                i.packages.insert(order_id, package_id.clone());
                i.package_bodies.push(body);
                ok(json!({ "package_id": package_id }))
            }
            (
                "GET",
                [
                    "fulfillment",
                    "202309",
                    "packages",
                    id,
                    "shipping_documents",
                ],
            ) => {
                bump(&mut i, "shipping_document");
                let id = (*id).to_owned();
                if q.get("document_type").map(String::as_str) != Some("SHIPPING_LABEL")
                    || !i.packages.values().any(|p| *p == id)
                {
                    return fail(21001001, "no such package or document type");
                }
                ok(json!({ "doc_url": format!("https://labels.mock/{id}.pdf") }))
            }
            (
                "POST",
                [
                    "product",
                    "202309",
                    "products",
                    product,
                    "inventory",
                    "update",
                ],
            ) => {
                bump(&mut i, "inventory_update");
                let product = (*product).to_owned();
                let errors: Vec<Value> = body["skus"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["id"].as_str())
                    .filter(|s| i.failing_skus.iter().any(|f| f == s))
                    .map(|s| json!({"code": 12052023, "message": "sku not found", "detail": {"sku_id": s}}))
                    .collect();
                i.inventory.push((product, body));
                ok(json!({ "errors": errors }))
            }
            _ => (
                StatusCode::NOT_FOUND,
                json!({"code": 40400, "message": "no such path"}),
            ),
        }
    }
}
