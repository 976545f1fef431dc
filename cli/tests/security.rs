//! Who may do what (service.md, "Who may do what"), through the real HTTP
//! server: every route × every kind of token → the status the spec says,
//! from one table; and what each token may read.
//!
//! Two tenants, each with orders: `creator-1` (A, the default) and
//! `creator-2` (B). A row acts on A; "own" is A's token, "other" B's.
//! No token, an unknown one, or a token without the `Bearer ` scheme: 401.
//! A tenant's token on another tenant: 404, byte for byte as anything
//! absent. `/metrics` lists every tenant: an admin or the metrics token.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use creatorflow::store::OrderStore;
use creatorflow::tiktok::{HttpConfig, HttpOrderApi, TokenConfig, per_shop_api};
use creatorflow::{Clock, SystemClock};
use creatorflow_cli::serve::{
    Connector, Running, ServeConfig, SharedStore, Tokens, engines, start_with,
};
use reqwest::Method;
use serde_json::Value;
use support::*;

const OWN_TOKEN: &str = "creator-1-token-for-tests";
const OTHER_TOKEN: &str = "creator-2-token-for-tests";
const METRICS_TOKEN: &str = "metrics-token-for-tests";

/// Who a route admits.
#[derive(Debug, Clone, Copy)]
enum Guard {
    /// No token needed: this status whatever is sent.
    Open(&'static [u16]),
    /// The tenant's own token or an admin's: `ok`, else 401 / 404.
    Tenant(&'static [u16]),
    /// An admin token only (a tenant's token: 404, as absent): `ok`.
    Admin(&'static [u16]),
    /// `/metrics`: an admin token or the metrics token.
    Metrics,
}

/// One route: method, path (`{tenant}` is A, `{order}` one of A's
/// orders), body, guard.
struct Row {
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    guard: Guard,
}

impl Row {
    /// The path acting on `tenant` and `order`.
    fn on(&self, tenant: &str, order: &str) -> String {
        self.path
            .replace("{tenant}", tenant)
            .replace("{order}", order)
    }
}

/// An order id nobody has.
const MISSING: &str = "01900000-0000-7000-8000-000000000000";

fn row(method: Method, path: &'static str, guard: Guard) -> Row {
    Row {
        method,
        path,
        body: None,
        guard,
    }
}

/// Every route of `serve`.
fn routes() -> Vec<Row> {
    use Guard::*;
    vec![
        row(Method::GET, "/healthz", Open(&[200])),
        row(Method::GET, "/readyz", Open(&[200])),
        row(Method::GET, "/", Open(&[200])),
        // Signed by TikTok, not a bearer token: a bearer token is no
        // signature (401 every time); a signed push, without any bearer
        // token, is accepted (checked below).
        row(Method::POST, "/webhooks/tiktok-shop", Open(&[401])),
        // The single-use `state` guards it: a forged one is refused.
        row(
            Method::GET,
            "/tiktok/callback?code=c&state=forged",
            Open(&[403]),
        ),
        row(
            Method::POST,
            "/api/tiktok/connect?tenant={tenant}",
            Tenant(&[200]),
        ),
        row(Method::GET, "/api/metrics?tenant={tenant}", Tenant(&[200])),
        row(Method::GET, "/api/orders?tenant={tenant}", Tenant(&[200])),
        row(
            Method::GET,
            "/api/orders?tenant={tenant}&state=received&priority=high",
            Tenant(&[200]),
        ),
        // A malformed query is answered only to whoever may read.
        row(
            Method::GET,
            "/api/orders?tenant={tenant}&limit=0",
            Tenant(&[400]),
        ),
        row(Method::GET, "/metrics", Metrics),
        // ---- People acting on orders, and reloading rules (503: this
        // server has no pack source; the route was reached). A mutation on an order that is
        // not in a state allowing it answers 409 with its state: that is
        // the route reached, as 200 is.
        row(Method::GET, "/api/orders/{order}", Tenant(&[200])),
        row(Method::GET, "/api/review?tenant={tenant}", Tenant(&[200])),
        Row {
            body: Some(r#"{"reason":"checked by hand"}"#),
            ..row(
                Method::POST,
                "/api/orders/{order}/approve",
                Tenant(&[200, 409]),
            )
        },
        Row {
            body: Some(r#"{"reason":"fraud"}"#),
            ..row(
                Method::POST,
                "/api/orders/{order}/reject",
                Tenant(&[200, 409]),
            )
        },
        row(
            Method::POST,
            "/api/orders/{order}/retry",
            Tenant(&[200, 409]),
        ),
        row(
            Method::POST,
            "/api/orders/{order}/cancel",
            Tenant(&[200, 409]),
        ),
        row(Method::POST, "/api/rules/reload", Admin(&[200, 503])),
    ]
}

/// What a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Nobody,
    Unknown,
    /// A's own token, without the `Bearer ` scheme.
    NoScheme,
    Other,
    Own,
    Admin,
    MetricsToken,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Unknown,
    Who::NoScheme,
    Who::Other,
    Who::Own,
    Who::Admin,
    Who::MetricsToken,
];

impl Who {
    /// The `Authorization` header sent.
    fn header(self) -> Option<String> {
        let bearer = |t: &str| Some(format!("Bearer {t}"));
        match self {
            Who::Nobody => None,
            // Close to a real one: a prefix of the admin token.
            Who::Unknown => bearer(&ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1]),
            Who::NoScheme => Some(OWN_TOKEN.to_owned()),
            Who::Other => bearer(OTHER_TOKEN),
            Who::Own => bearer(OWN_TOKEN),
            Who::Admin => bearer(ADMIN_TOKEN),
            Who::MetricsToken => bearer(METRICS_TOKEN),
        }
    }

    /// The statuses `guard` allows for this token.
    fn expected(self, guard: Guard) -> &'static [u16] {
        let known = !matches!(self, Who::Nobody | Who::Unknown | Who::NoScheme);
        match guard {
            Guard::Open(any) => any,
            _ if !known => &[401],
            Guard::Tenant(ok) if matches!(self, Who::Own | Who::Admin) => ok,
            Guard::Admin(ok) if self == Who::Admin => ok,
            Guard::Metrics if matches!(self, Who::Admin | Who::MetricsToken) => &[200],
            _ => &[404],
        }
    }
}

/// A test server: two tenants with orders, every kind of token, a
/// connector (the authorization link needs no network).
struct World {
    running: Running<HttpOrderApi>,
    base: String,
    /// One of A's orders.
    order: String,
}

async fn world() -> World {
    let store: SharedStore = creatorflow::store::open("memory:").await.expect("store");
    for (tenant, id, priority) in [
        (TENANT, "a-1", "high"),
        (TENANT, "a-2", "standard"),
        (OTHER, "b-1", "high"),
    ] {
        let o = creatorflow::Order::from_json(&format!(
            r#"{{"tiktok_order_id":"{id}","customer_handle":"@{tenant}","product_name":"Lamp","product_id":"p1",
            "quantity":1,"price":"20","priority":"{priority}","created_at":"2025-06-12T10:00:00Z"}}"#
        ))
        .expect("order");
        store.create_order(tenant, &o).await.expect("stored");
    }
    let order = store
        .find_order(TENANT, "a-1")
        .await
        .expect("read")
        .expect("a-1")
        .id
        .to_string();
    let mut c = two_tenants(
        Tokens::none()
            .admin(ADMIN_TOKEN)
            .tenant(TENANT, OWN_TOKEN)
            .tenant(OTHER, OTHER_TOKEN)
            .metrics(METRICS_TOKEN),
    );
    // Nothing listens on port 9: no call may leave the machine.
    let mut http = HttpConfig::new(APP_KEY, APP_SECRET, "unused");
    http.base_url = "http://127.0.0.1:9".to_owned();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (manager, api) = per_shop_api(
        http,
        "http://127.0.0.1:9",
        Arc::new(store.clone()),
        None,
        TokenConfig::default(),
        clock,
    )
    .expect("token manager");
    c.connector = Some(Connector(manager));
    let list = engines(&store, &c).expect("engines");
    let running = start_with(c, list, store, Arc::new(api))
        .await
        .expect("start");
    let base = format!("http://{}", running.addr);
    World {
        running,
        base,
        order,
    }
}

/// Sends `method path` as `who`; (status, body).
async fn send(base: &str, r: &Row, path: &str, who: Who) -> (u16, String) {
    let mut req = reqwest::Client::new().request(r.method.clone(), format!("{base}{path}"));
    if let Some(h) = who.header() {
        req = req.header("authorization", h);
    }
    if let Some(b) = r.body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let answer = req.send().await.expect("request");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_token_as_the_spec_says() {
    let w = world().await;
    let mut failures = Vec::new();
    let mut not_found_bodies = std::collections::BTreeSet::new();
    for r in routes() {
        let path = r.on(TENANT, &w.order);
        for who in EVERYONE {
            let (status, body) = send(&w.base, &r, &path, who).await;
            let want = who.expected(r.guard);
            if !want.contains(&status) {
                failures.push(format!(
                    "{} {path} as {who:?}: {status}, expected {want:?} ({body})",
                    r.method
                ));
            }
            if status == 404 {
                not_found_bodies.insert(body);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Another tenant's data, an unserved tenant, an absent order: one
    // answer, byte for byte.
    for path in [
        format!("/api/orders?tenant={OTHER}"),
        "/api/orders?tenant=nobody".to_owned(),
        "/api/metrics?tenant=nobody".to_owned(),
        format!("/api/orders/{MISSING}"),
    ] {
        let (status, body) = call(&w.base, Method::GET, &path, Some(OWN_TOKEN)).await;
        assert_eq!(status, 404, "{path}");
        not_found_bodies.insert(body);
    }
    assert_eq!(
        not_found_bodies.len(),
        1,
        "every 404 is worded alike: {not_found_bodies:?}"
    );
    another_tenants_order_looks_absent(&w).await;
    w.running.stop().await;
}

/// The order routes: another tenant's order answers exactly as an order
/// that does not exist.
async fn another_tenants_order_looks_absent(w: &World) {
    let theirs = call(
        &w.base,
        Method::GET,
        &format!("/api/orders/{}", w.order),
        Some(OTHER_TOKEN),
    )
    .await;
    let nobodys = call(
        &w.base,
        Method::GET,
        &format!("/api/orders/{MISSING}"),
        Some(OTHER_TOKEN),
    )
    .await;
    assert_eq!(theirs.0, 404);
    assert_eq!(theirs, nobodys, "byte-identical");
}

async fn json(base: &str, path: &str, token: &str) -> Value {
    let (status, body) = call(base, Method::GET, path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

fn ids(v: &Value) -> Vec<&str> {
    v["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["tiktok_order_id"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_token_reads_its_own_tenant_and_nothing_that_spans_tenants() {
    let w = world().await;
    let base = &w.base;
    // Without `?tenant=`, a tenant's token reads its own tenant.
    let mine = json(base, "/api/orders", OWN_TOKEN).await;
    assert_eq!(mine["tenant"], TENANT);
    assert_eq!(ids(&mine), ["a-1", "a-2"]);
    let theirs = json(base, "/api/orders", OTHER_TOKEN).await;
    assert_eq!(theirs["tenant"], OTHER);
    assert_eq!(ids(&theirs), ["b-1"]);
    let theirs = json(base, "/api/orders?state=received", OTHER_TOKEN).await;
    assert_eq!(ids(&theirs), ["b-1"]);
    // An admin reads the default tenant, or any named one.
    assert_eq!(
        json(base, "/api/orders", ADMIN_TOKEN).await["tenant"],
        TENANT
    );
    let b = json(base, &format!("/api/orders?tenant={OTHER}"), ADMIN_TOKEN).await;
    assert_eq!(ids(&b), ["b-1"]);

    // /api/metrics: a tenant sees its own figures, queue and inbox; the
    // process-wide counters (webhooks, the inbox processor, actions) span
    // tenants: admins only.
    let m = json(base, "/api/metrics", OTHER_TOKEN).await;
    assert_eq!(
        (m["tenant"].as_str(), m["orders_total"].as_u64()),
        (Some(OTHER), Some(1))
    );
    assert!(m["queue"].is_object() && m["inbox"].is_object(), "{m}");
    for spanning in ["webhooks", "processor", "actions"] {
        assert!(
            m.get(spanning).is_none(),
            "{spanning} shown to a tenant: {m}"
        );
    }
    let m = json(base, &format!("/api/metrics?tenant={OTHER}"), ADMIN_TOKEN).await;
    assert_eq!(m["orders_total"], 1);
    for spanning in ["webhooks", "processor", "actions"] {
        assert!(m[spanning].is_object(), "{spanning} for an admin: {m}");
    }

    // Connecting a shop: a tenant's token, its own tenant.
    let (status, body) = call(base, Method::POST, "/api/tiktok/connect", Some(OTHER_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let link: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(link["tenant"], OTHER);

    // /metrics lists every tenant; the metrics token reads it, and no
    // secret is in it.
    let (status, prom) = call(base, Method::GET, "/metrics", Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200);
    for tenant in [TENANT, OTHER] {
        assert!(prom.contains(&format!("tenant=\"{tenant}\"")), "{prom}");
    }
    for secret in [ADMIN_TOKEN, OWN_TOKEN, OTHER_TOKEN, METRICS_TOKEN] {
        assert!(!prom.contains(secret));
    }
    // The webhook takes TikTok's signature, no bearer token.
    let push = status_push(Some("s-1"), "a-9", "ON_HOLD", 100);
    assert_eq!(post_signed(base, &push).await, (200, String::new()));
    w.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tokens_every_guarded_route_answers_401() {
    let store: SharedStore = creatorflow::store::open("memory:").await.expect("store");
    let c = ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), APP_KEY, APP_SECRET);
    let list = engines(&store, &c).expect("engines");
    let api = Arc::new(creatorflow::tiktok::FakeOrderApi::new());
    let running = start_with(c, list, store, api).await.expect("start");
    let base = format!("http://{}", running.addr);
    for r in routes() {
        let who = match r.guard {
            Guard::Open(_) => continue,
            _ => Who::Admin,
        };
        let path = r.on("default", MISSING);
        assert_eq!(send(&base, &r, &path, who).await.0, 401, "{path}");
    }
    assert_eq!(get_admin(&base, "/healthz").await.0, 200);
    running.stop().await;
}
