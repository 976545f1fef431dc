//! What the serve tests share: a mock Order API on loopback, signed
//! webhook bodies, a small HTTP client, and polling helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use creatorflow::tiktok::sign_webhook;
use serde_json::Value;

pub const APP_KEY: &str = "test-app-key";
pub const APP_SECRET: &str = "test-app-secret";
pub const SHOP: &str = "7494049642642441621";
pub const SHOP2: &str = "7494049642642441622";
/// The tenant of [`SHOP2`] in the two-tenant servers.
pub const OTHER: &str = "creator-2";
pub const CIPHER: &str = "ROW_test";
pub const TENANT: &str = "creator-1";
/// The admin bearer token the test servers are given; [`get_json`] sends it.
pub const ADMIN_TOKEN: &str = "admin-token-for-tests";

/// The Order API's JSON for one order awaiting shipment.
pub fn order_json(id: &str, status: &str) -> String {
    format!(
        r#"{{"id":"{id}","status":"{status}","user_id":"7494560109732334000",
        "create_time":1718305585,"update_time":1718305600,"rts_sla_time":1718564785,
        "shipping_provider":"USPS","is_on_hold_order":false,
        "line_items":[
          {{"id":"1","product_id":"1729587769570529000","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99"}},
          {{"id":"2","product_id":"1729587769570529000","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99"}},
          {{"id":"3","product_id":"1729587769570529000","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99"}}],
        "payment":{{"total_amount":"35.97","currency":"USD"}},
        "recipient_address":{{"region_code":"US","postal_code":"94107","full_address":"1 Main St",
          "district_info":[{{"address_level":"L1","address_level_name":"State","address_name":"California"}},
                           {{"address_level":"L3","address_level_name":"City","address_name":"San Francisco"}}]}}}}"#
    )
}

/// A mock of the Order API (shops and order detail), loopback only.
#[derive(Default)]
pub struct MockApi {
    pub orders: Mutex<Vec<String>>,
    pub detail_calls: Mutex<u64>,
    pub search_calls: Mutex<u64>,
    /// Order Detail answers every id asked for (awaiting shipment), not
    /// only those in `orders`.
    pub every_order: std::sync::atomic::AtomicBool,
}

async fn shops(State(_): State<Arc<MockApi>>) -> String {
    format!(
        r#"{{"code":0,"message":"Success","request_id":"r","data":{{"shops":[{{"id":"{SHOP}","cipher":"{CIPHER}"}},{{"id":"{SHOP2}","cipher":"ROW_two"}}]}}}}"#
    )
}

async fn details(
    State(m): State<Arc<MockApi>>,
    Query(q): Query<HashMap<String, String>>,
) -> String {
    *m.detail_calls.lock().unwrap() += 1;
    let ids: Vec<String> = q
        .get("ids")
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let found: Vec<String> = if m.every_order.load(std::sync::atomic::Ordering::Relaxed) {
        ids.iter()
            .map(|i| order_json(i, "AWAITING_SHIPMENT"))
            .collect()
    } else {
        m.orders
            .lock()
            .unwrap()
            .iter()
            .filter(|o| {
                let v: Value = serde_json::from_str(o).unwrap();
                ids.iter().any(|i| v["id"] == i.as_str())
            })
            .cloned()
            .collect()
    };
    format!(
        r#"{{"code":0,"message":"Success","request_id":"r","data":{{"orders":[{}]}}}}"#,
        found.join(",")
    )
}

/// Search Orders: every order, one page (the mock ignores the window).
async fn search(State(m): State<Arc<MockApi>>) -> String {
    *m.search_calls.lock().unwrap() += 1;
    format!(
        r#"{{"code":0,"message":"Success","request_id":"r","data":{{"orders":[{}],"next_page_token":""}}}}"#,
        m.orders.lock().unwrap().join(",")
    )
}

/// Starts the mock; its base URL.
pub async fn mock_api() -> (Arc<MockApi>, String) {
    let m = Arc::new(MockApi::default());
    let app = Router::new()
        .route("/authorization/202309/shops", get(shops))
        .route("/order/202309/orders", get(details))
        .route("/order/202309/orders/search", axum::routing::post(search))
        .with_state(m.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (m, format!("http://{addr}"))
}

/// `creatorflow serve` (the built binary) on `store`, routing [`SHOP`] to
/// [`TENANT`], its Order API at `api_base`, on any free port, with no
/// reconciliation and 20 ms polling; stdout piped (it prints `listening on
/// URL`), stderr inherited.
pub fn serve_command(store: &str, api_base: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.args([
        "serve",
        "--store",
        store,
        "--listen",
        "127.0.0.1:0",
        "--shop",
        &format!("{SHOP}={TENANT}"),
        "--api-base",
        api_base,
        "--poll-every",
        "0",
        "--poll-ms",
        "20",
    ])
    .env("TIKTOK_APP_KEY", APP_KEY)
    .env("TIKTOK_APP_SECRET", APP_SECRET)
    .env("TIKTOK_ACCESS_TOKEN", "token")
    .env("CREATORFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit());
    c
}

/// An ORDER_STATUS_CHANGE push.
pub fn status_push(notification: Option<&str>, order: &str, status: &str, t: i64) -> Vec<u8> {
    let n = notification.map_or(String::new(), |n| {
        format!(r#""tts_notification_id":"{n}","#)
    });
    format!(
        r#"{{"type":1,{n}"shop_id":"{SHOP}","timestamp":{t},"data":{{"order_id":"{order}","order_status":"{status}","is_on_hold_order":false,"update_time":{t}}}}}"#
    )
    .into_bytes()
}

/// A CANCELLATION_STATUS_CHANGE push, request succeeded.
pub fn cancel_push(notification: &str, order: &str, t: i64) -> Vec<u8> {
    format!(
        r#"{{"type":11,"tts_notification_id":"{notification}","shop_id":"{SHOP}","timestamp":{t},"data":{{"order_id":"{order}","cancellations_role":"BUYER","cancel_status":"CANCELLATION_REQUEST_SUCCESS","cancel_id":"77","create_time":{t}}}}}"#
    )
    .into_bytes()
}

pub fn sign(body: &[u8]) -> String {
    sign_webhook(APP_KEY, APP_SECRET, body)
}

/// POSTs a webhook with an optional `Authorization`; (status, body).
pub async fn post(base: &str, body: &[u8], auth: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{base}/webhooks/tiktok-shop"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// POSTs a correctly signed webhook.
pub async fn post_signed(base: &str, body: &[u8]) -> (u16, String) {
    post(base, body, Some(&sign(body))).await
}

/// Sends `method path` with `Authorization: Bearer TOKEN` if a token is
/// given; (status, body).
pub async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// GETs with the admin token; (status, body).
pub async fn get_admin(base: &str, path: &str) -> (u16, String) {
    call(base, reqwest::Method::GET, path, Some(ADMIN_TOKEN)).await
}

/// GETs JSON with the admin token.
pub async fn get_json(base: &str, path: &str) -> Value {
    let (status, body) = get_admin(base, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The state of a TikTok order as `/api/orders?state=` sees it, if in `state`.
pub async fn in_state(base: &str, tiktok_id: &str, state: &str) -> Option<Value> {
    let v = get_json(base, &format!("/api/orders?state={state}&limit=1000")).await;
    v["orders"]
        .as_array()?
        .iter()
        .find(|o| o["tiktok_order_id"] == tiktok_id)
        .cloned()
}

/// Gives `creatorflow serve` the test app's credentials (and an access
/// token for the Order API) through the environment.
pub fn app_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("TIKTOK_APP_KEY", APP_KEY)
        .env("TIKTOK_APP_SECRET", APP_SECRET)
        .env("TIKTOK_ACCESS_TOKEN", "token")
}

/// Reads a started `serve`'s first stdout line, `listening on URL`: the URL.
pub fn listening(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the listening line");
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned()
}

/// Collects a child's stderr as it comes (echoed to ours when `echo`),
/// until the child closes it; the text so far, and the reading thread.
pub fn capture_stderr(
    child: &mut std::process::Child,
    echo: bool,
) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    use std::io::Read;
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().expect("stderr");
    let sink = stderr.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if echo {
                eprint!("{text}");
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&text);
        }
    });
    (stderr, reader)
}

/// A loopback server of two tenants, [`TENANT`] (shop [`SHOP`]) and
/// [`OTHER`] (shop [`SHOP2`]), accepting `tokens`; no reconciliation,
/// quick idle polling.
pub fn two_tenants(tokens: creatorflow_cli::serve::Tokens) -> creatorflow_cli::serve::ServeConfig {
    let mut c = creatorflow_cli::serve::ServeConfig::new(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        APP_KEY,
        APP_SECRET,
    );
    c.shops = vec![
        (SHOP.to_owned(), TENANT.to_owned()),
        (SHOP2.to_owned(), OTHER.to_owned()),
    ];
    c.default_tenant = TENANT.to_owned();
    c.poll_every = None;
    c.idle_poll = Duration::from_millis(20);
    c.tokens = tokens;
    c
}

/// `psql` on the test cluster as its superuser (row-level security does not
/// apply): the rows of `sql`, `|`-separated.
pub fn psql(url: &str, sql: &str) -> Vec<Vec<String>> {
    let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let out = std::process::Command::new(format!("{bin}/psql"))
        .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(str::to_owned).collect())
        .collect()
}

/// The PostgreSQL server of `CREATORFLOW_TEST_PG` for the tests of `what`;
/// `None` when it is not set (the test skips, saying how to run it), except
/// under CI, where a missing server fails the test.
pub fn pg_server(what: &str) -> Option<String> {
    match std::env::var("CREATORFLOW_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CREATORFLOW_TEST_PG must be set under CI (.ci/run starts scripts/pg-test-cluster.sh)"
            );
            eprintln!(
                "SKIPPED: the PostgreSQL {what} tests did not run: CREATORFLOW_TEST_PG is not set \
                 (eval \"$(bash scripts/pg-test-cluster.sh start)\", then run them again)"
            );
            None
        }
    }
}

/// `url` on a schema of its own, `PREFIX_PID_NANOS` (a fresh one per call).
pub fn fresh_schema(url: &str, prefix: &str) -> String {
    let schema = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// The built `creatorflow`, run from the repository's root.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

/// `creatorflow ARGS`, to its end.
pub fn run(args: &[&str]) -> std::process::Output {
    bin().args(args).output().expect("spawn creatorflow")
}

/// The standard output of a run that must have succeeded (its stderr in
/// the failure).
pub fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
