//! Issue 13's "done when", through the real binary: `creatorflow serve
//! --config FILE` with a creator's own rule pack, `http` effects bound to a
//! local receiver, the TikTok API bound to a local mock, a shop connected
//! through the authorization flow, signed webhooks in, and the order
//! waiting for TikTok's IN_TRANSIT in `label_generated`.
//!
//! Everything is on loopback: the receiver and the mock are
//! `creatorflow-testkit`'s, written from the wire format alone.

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use creatorflow_testkit::receiver::{Failure, Receiver};
use creatorflow_testkit::tiktok::TikTokMock;
use serde_json::Value;
use support::*;

const HOOK_SECRET: &str = "hook-secret-for-the-e2e-test";
const TENANT_TOKEN: &str = "creator-1-token-e2e";
/// The product the creator's own rule makes urgent.
const HOT_PRODUCT: &str = "1729587769570529000";
const OTHER_PRODUCT: &str = "1729587769570529999";
const SELLER: &str = "seller-1";

/// The server process; killed when dropped (a failed test leaves nothing).
struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Order API's JSON of one order of `product` awaiting shipment.
fn api_order(id: &str, product: &str) -> Value {
    let json = order_json(id, "AWAITING_SHIPMENT").replace(HOT_PRODUCT, product);
    serde_json::from_str(&json).expect("order JSON")
}

fn config(dir: &std::path::Path, mock: &str, receiver: &Receiver) -> std::path::PathBuf {
    let rules = dir.join("creator-rules");
    std::fs::create_dir_all(&rules).expect("rules dir");
    std::fs::write(
        rules.join("hot.yaml"),
        format!(
            "rules:
  - id: hot-product-is-urgent
    name: The viral serum ships first
    category: priority_classification
    priority: 90
    conditions:
      - {{ field: product_id, operator: equals, value: \"{HOT_PRODUCT}\" }}
    actions:
      - type: escalate_priority
        parameters: {{ new_priority: urgent }}
      - type: trigger_webhook
        parameters: {{ event: hot_order }}
"
        ),
    )
    .expect("write the pack");
    let file = dir.join("creatorflow.yaml");
    std::fs::write(
        &file,
        format!(
            "store: sqlite://cf.db
listen: 127.0.0.1:0
rules: creator-rules/
tiktok:
  app_key: ${{TIKTOK_APP_KEY}}
  app_secret: ${{TIKTOK_APP_SECRET}}
  api_base: {mock}
  auth_base: {mock}
  service_id: \"7000\"
  poll_every: 0
tenants:
  - id: {TENANT}
    shops: [\"{SHOP}\"]
    api_tokens: [\"${{CREATOR1_TOKEN}}\"]
admin_tokens: [\"${{ADMIN_TOKEN}}\"]
actions:
  send_customer_notification: {{ http: {{ url: \"{notify}\", secret: \"${{HOOK_SECRET}}\", timeout: 5s }} }}
  trigger_webhook: {{ http: {{ url: \"{events}\", secret: \"${{HOOK_SECRET}}\" }} }}
  generate_shipping_label: {{ tiktok: ship_package }}
  update_tiktok_status: {{ tiktok: order_status }}
  validate_address: log
  check_inventory: simulated
  reserve_inventory: simulated
  select_carrier: simulated
",
            notify = receiver.url("/notify"),
            events = receiver.url("/events"),
        ),
    )
    .expect("write the config");
    file
}

fn spawn(config: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(["serve", "--config"])
        .arg(config)
        .args(["--poll-ms", "20"])
        .env("TIKTOK_APP_KEY", APP_KEY)
        .env("TIKTOK_APP_SECRET", APP_SECRET)
        .env("HOOK_SECRET", HOOK_SECRET)
        .env("CREATOR1_TOKEN", TENANT_TOKEN)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("TIKTOK_ACCESS_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn creatorflow serve");
    let (stderr, reader) = capture_stderr(&mut child, true);
    let base = listening(&mut child);
    Server {
        child,
        base,
        stderr,
        reader: Some(reader),
    }
}

async fn request(method: reqwest::Method, url: String, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Connects the creator's shop through the authorization flow: the link
/// (with a single-use state) for the tenant's token, then TikTok's
/// redirect with the code.
async fn connect_shop(base: &str) {
    let connect = format!("{base}/api/tiktok/connect");
    let (status, _) = request(reqwest::Method::POST, connect.clone(), None).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = request(reqwest::Method::POST, connect.clone(), Some("wrong")).await;
    assert_eq!(status, 401, "an unknown token");
    let other = format!("{connect}?tenant=someone-else");
    let (status, _) = request(reqwest::Method::POST, other, Some(TENANT_TOKEN)).await;
    assert_eq!(status, 404, "another tenant looks absent");
    let (status, link) = request(reqwest::Method::POST, connect, Some(TENANT_TOKEN)).await;
    assert_eq!(status, 200, "{link}");
    let state = link["state"].as_str().expect("state").to_owned();
    let url = link["authorization_url"].as_str().expect("link");
    assert!(
        url.contains(&format!("state={state}")) && url.contains("service_id=7000"),
        "{url}"
    );
    let callback =
        |code: &str, state: &str| format!("{base}/tiktok/callback?code={code}&state={state}");
    let (status, _) = request(reqwest::Method::GET, callback("code-1", "forged"), None).await;
    assert_eq!(status, 403, "an unknown state");
    let (status, body) = request(reqwest::Method::GET, callback("code-1", &state), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenant"], TENANT);
    assert_eq!(body["shops"][0]["id"], SHOP);
    let (status, _) = request(reqwest::Method::GET, callback("code-1", &state), None).await;
    assert_eq!(status, 403, "a used state");
}

async fn orders_in(base: &str, state: &str) -> Vec<Value> {
    get_json(base, &format!("/api/orders?state={state}&limit=1000")).await["orders"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn wait_until_all_in(base: &str, ids: &[String], state: &str) -> Vec<Value> {
    let found = wait_for(Duration::from_secs(30), || async {
        let orders = orders_in(base, state).await;
        let all = ids
            .iter()
            .all(|id| orders.iter().any(|o| o["tiktok_order_id"] == id.as_str()));
        all.then_some(orders)
    })
    .await;
    found.unwrap_or_else(|| panic!("not every order reached `{state}`"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_creators_rules_with_real_effects_and_waits_for_tiktok() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mock = TikTokMock::start(APP_KEY, APP_SECRET).await.expect("mock");
    mock.add_shop(SELLER, SHOP, CIPHER);
    mock.add_auth_code("code-1", SELLER);
    let receiver = Receiver::start(HOOK_SECRET).await.expect("receiver");
    // Forced retries: the first two trigger_webhook deliveries answer 500,
    // the first notification 429 with Retry-After.
    receiver.fail_next_for("trigger_webhook", 2, Failure::Status(500));
    receiver.fail_next_for(
        "send_customer_notification",
        1,
        Failure::RateLimited {
            retry_after_secs: 1,
        },
    );
    let ids: Vec<String> = (0..4).map(|i| format!("57700{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let product = if i % 2 == 0 {
            HOT_PRODUCT
        } else {
            OTHER_PRODUCT
        };
        mock.put_order(CIPHER, api_order(id, product));
    }
    let file = config(dir.path(), &mock.url(), &receiver);
    let server = spawn(&file);
    let base = server.base.clone();

    connect_shop(&base).await;

    // Two orders arrive; then every access token expires (TikTok answers
    // 105002) and two more arrive: the token is refreshed, nothing is lost.
    let mut t = 1_718_305_600;
    for id in &ids[..2] {
        t += 1;
        let push = status_push(Some(&format!("n-{id}")), id, "AWAITING_SHIPMENT", t);
        assert_eq!(post_signed(&base, &push).await, (200, String::new()));
    }
    wait_until_all_in(&base, &ids[..2], "label_generated").await;
    mock.expire_access_tokens();
    for id in &ids[2..] {
        t += 1;
        let push = status_push(Some(&format!("n-{id}")), id, "AWAITING_SHIPMENT", t);
        assert_eq!(post_signed(&base, &push).await, (200, String::new()));
    }
    // Every order waits in label_generated for TikTok (no simulated carrier).
    let waiting = wait_until_all_in(&base, &ids, "label_generated").await;
    assert!(
        mock.count("expired") >= 1,
        "the mock refused an expired token"
    );
    assert!(mock.count("token_refresh") >= 1, "the token was refreshed");
    assert_eq!(mock.count("create_package"), 4, "one package per order");
    assert_eq!(mock.count("shipping_document"), 4);
    // The creator's own rule decided the priority.
    for o in &waiting {
        let i = ids
            .iter()
            .position(|id| o["tiktok_order_id"] == id.as_str());
        let hot = i.is_some_and(|i| i % 2 == 0);
        let want = if hot { "urgent" } else { "standard" };
        assert_eq!(o["priority"], want, "{o}");
    }

    assert!(
        orders_in(&base, "shipped").await.is_empty(),
        "nothing ships before TikTok says so"
    );

    // TikTok says IN_TRANSIT: shipped. One is delivered.
    for id in &ids {
        t += 1;
        let push = status_push(Some(&format!("t-{id}")), id, "IN_TRANSIT", t);
        assert_eq!(post_signed(&base, &push).await.0, 200);
    }
    wait_until_all_in(&base, &ids, "shipped").await;
    t += 1;
    let delivered = status_push(Some("d-0"), &ids[0], "DELIVERED", t);
    assert_eq!(post_signed(&base, &delivered).await.0, 200);
    wait_until_all_in(&base, &ids[..1], "delivered").await;

    // The receiver: correctly signed, idempotent calls — one effect per
    // step although some were retried (same key on every retry).
    let deliveries = receiver.deliveries();
    assert!(deliveries.iter().all(|d| d.signature_ok), "{deliveries:?}");
    let keys = |action: &str| -> Vec<String> {
        let mut k: Vec<String> = deliveries
            .iter()
            .filter(|d| d.action.as_deref() == Some(action))
            .filter_map(|d| d.idempotency_key.clone())
            .collect();
        k.sort();
        k
    };
    let webhook_keys = keys("trigger_webhook");
    let mut distinct = webhook_keys.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        2,
        "one trigger_webhook step per hot order: {webhook_keys:?}"
    );
    assert_eq!(webhook_keys.len(), 4, "two forced retries, same key");
    let effects = receiver.effects();
    for k in &distinct {
        assert_eq!(
            effects.iter().filter(|e| *e == k).count(),
            1,
            "one effect for {k}"
        );
    }
    let notify = keys("send_customer_notification");
    let mut notified = notify.clone();
    notified.dedup();
    assert_eq!(
        notified.len(),
        1,
        "the delivered order's notification: {notify:?}"
    );
    assert_eq!(
        notify.len(),
        2,
        "a 429 with Retry-After, then the same key again"
    );
    for d in deliveries.iter().filter(|d| d.action.is_some()) {
        assert_eq!(d.body["tenant"], TENANT);
        assert!(d.body["order"]["tiktok_order_id"].is_string());
    }

    // The start-up report named the bindings, never a secret.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    if let Some(r) = server.reader.take() {
        r.join().expect("the stderr reader");
    }
    let log = server
        .stderr
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert!(log.contains("action trigger_webhook -> http"), "{log}");
    assert!(
        log.contains("action generate_shipping_label -> tiktok ship_package"),
        "{log}"
    );
    for secret in [HOOK_SECRET, TENANT_TOKEN, ADMIN_TOKEN, APP_SECRET] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}
