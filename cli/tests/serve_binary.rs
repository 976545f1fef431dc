//! `creatorflow serve` as a process: the built binary on an SQLite store,
//! its Order API a mock on loopback; webhooks through its HTTP server; the
//! dashboard in headless Chromium (driven over the DevTools protocol, as a
//! person uses it: a token typed into its form, buttons clicked) shows the
//! counts `/api/metrics` reports, and approves and rejects orders from its
//! review queue.

#[path = "support/mod.rs"]
mod support;

#[path = "support/cdp.rs"]
mod cdp;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cdp::Browser;
use serde_json::Value;
use support::*;

/// The tenant's API token (named `creator-1-1` in the history).
const TENANT_TOKEN: &str = "dashboard-tenant-token-secret";

/// A configuration for `serve` on `store` with the Order API at
/// `api_base`: one tenant with a token, an admin token, every action
/// type simulated.
fn config(dir: &std::path::Path, store: &str, api_base: &str) -> std::path::PathBuf {
    let simulated: String = [
        "validate_address",
        "check_inventory",
        "reserve_inventory",
        "generate_shipping_label",
        "send_customer_notification",
        "update_tiktok_status",
        "log_analytics_event",
        "trigger_webhook",
        "schedule_follow_up",
        "auto_reorder_inventory",
        "select_carrier",
        "enable_fast_track",
    ]
    .iter()
    .map(|a| format!("  {a}: simulated\n"))
    .collect();
    let file = dir.join("creatorflow.yaml");
    std::fs::write(
        &file,
        format!(
            "store: {store}\n\
             listen: 127.0.0.1:0\n\
             tiktok:\n  app_key: ${{TIKTOK_APP_KEY}}\n  app_secret: ${{TIKTOK_APP_SECRET}}\n  \
             api_base: {api_base}\n  auth_base: {api_base}\n  poll_every: 0\n\
             tenants:\n  - id: {TENANT}\n    shops: [\"{SHOP}\"]\n    \
             api_tokens: [\"${{CREATOR1_TOKEN}}\"]\n\
             admin_tokens: [\"${{ADMIN_TOKEN}}\"]\n\
             actions:\n{simulated}"
        ),
    )
    .expect("write the config");
    file
}

/// A `creatorflow` command with the configuration's secrets in its environment.
fn creatorflow(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.args(args)
        .env("TIKTOK_APP_KEY", APP_KEY)
        .env("TIKTOK_APP_SECRET", APP_SECRET)
        .env("TIKTOK_ACCESS_TOKEN", "token")
        .env("CREATOR1_TOKEN", TENANT_TOKEN)
        .env("ADMIN_TOKEN", ADMIN_TOKEN);
    c
}

/// The server process; killed when dropped (a failed test leaves nothing behind).
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(config: &std::path::Path) -> Server {
    let config = config.to_str().expect("a UTF-8 path");
    let mut c = creatorflow(&["serve", "--config", config, "--poll-ms", "20"]);
    c.stdout(Stdio::piped()).stderr(Stdio::inherit());
    start(c)
}

/// Starts `c`; returns once it prints where it listens.
fn start(mut c: Command) -> Server {
    let mut child = c.spawn().expect("spawn creatorflow serve");
    let base = listening(&mut child);
    Server { child, base }
}

/// Without `--config` and without `CREATORFLOW_ADMIN_TOKEN` there is no
/// token: `serve` says so at start-up, and every guarded route answers 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_token_serve_says_so_and_answers_401() {
    let (_mock, api) = mock_api().await;
    let mut c = serve_command("memory:", &api);
    c.env_remove("CREATORFLOW_ADMIN_TOKEN")
        .stderr(Stdio::piped());
    let mut server = start(c);
    let base = server.base.clone();
    for path in ["/api/orders", "/api/metrics", "/metrics"] {
        assert_eq!(get_admin(&base, path).await.0, 401, "{path}");
    }
    assert_eq!(get_admin(&base, "/healthz").await.0, 200);
    let _ = server.child.kill();
    let mut stderr = String::new();
    if let Some(mut pipe) = server.child.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).expect("stderr");
    }
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CREATORFLOW_ADMIN_TOKEN"))
        .collect();
    assert_eq!(said.len(), 1, "one line: {stderr}");
    assert!(said[0].contains("401"), "{stderr}");
}

#[test]
fn serve_requires_the_app_secret_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(["serve", "--store", "memory:", "--listen", "127.0.0.1:0"])
        .env_remove("TIKTOK_APP_SECRET")
        .env("TIKTOK_APP_KEY", APP_KEY)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIKTOK_APP_SECRET"));
    let out = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(["serve", "--shop", "no-equals-sign"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SHOP_ID=TENANT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_webhooks_and_a_dashboard_that_matches_the_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("cf.db").display());
    let (mock, api) = mock_api().await;
    for i in 0..6 {
        mock.orders
            .lock()
            .unwrap()
            .push(order_json(&format!("5760{i}"), "AWAITING_SHIPMENT"));
    }
    let started = chrono::Utc::now();
    let server = spawn(&config(dir.path(), &store, &api));
    let base = server.base.clone();

    // Refused: unsigned, forged, malformed, oversized.
    let body = status_push(Some("b-0"), "57600", "AWAITING_SHIPMENT", 100);
    assert_eq!(post(&base, &body, None).await.0, 401);
    assert_eq!(post(&base, &body, Some(&"0".repeat(64))).await.0, 401);
    assert_eq!(post_signed(&base, b"{\"type\":\"one\"}").await.0, 400);
    let big = vec![b'{'; 70 * 1024];
    assert_eq!(post_signed(&base, &big).await.0, 413);
    // Accepted: six orders (one delivered twice), an unknown topic, a cancellation.
    for i in 0..6 {
        let push = status_push(
            Some(&format!("b-{i}")),
            &format!("5760{i}"),
            "AWAITING_SHIPMENT",
            100,
        );
        assert_eq!(post_signed(&base, &push).await, (200, String::new()));
    }
    assert_eq!(
        post_signed(&base, &body).await,
        (200, String::new()),
        "duplicate"
    );
    let unknown = format!(r#"{{"type":99,"shop_id":"{SHOP}","timestamp":5,"data":{{}}}}"#);
    assert_eq!(post_signed(&base, unknown.as_bytes()).await.0, 200);
    // Orders reach shipped; one is cancelled once shipped, one delivered.
    for i in 0..6 {
        let id = format!("5760{i}");
        wait_for(Duration::from_secs(20), || in_state(&base, &id, "shipped"))
            .await
            .unwrap_or_else(|| panic!("order {i} shipped"));
    }
    assert_eq!(
        post_signed(&base, &cancel_push("b-c", "57605", 200))
            .await
            .0,
        200
    );
    let delivered = status_push(Some("b-d"), "57604", "DELIVERED", 300);
    assert_eq!(post_signed(&base, &delivered).await.0, 200);
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "57605", "cancelled")
    })
    .await
    .expect("cancelled");
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "57604", "delivered")
    })
    .await
    .expect("delivered");
    let metrics = get_json(&base, "/api/metrics").await;
    assert_eq!(metrics["orders_by_state"]["shipped"], 4, "{metrics}");
    assert_eq!(metrics["webhooks"]["accepted"], 9);
    assert_eq!(metrics["webhooks"]["duplicates"], 1);
    assert_eq!(metrics["webhooks"]["unauthorized"], 2);
    assert_eq!(metrics["inbox"]["pending"], 0);
    // Time to ship: the six orders shipped (one was cancelled afterwards,
    // one delivered) in this run, each placed at TikTok's `create_time`.
    assert_eq!(metrics["orders_shipped"], 6, "{metrics}");
    let placed = chrono::DateTime::from_timestamp(1_718_305_585, 0).expect("a time");
    let to_ship = metrics["avg_time_to_ship_s"]
        .as_f64()
        .expect("a time to ship");
    let (low, high) = (started - placed, chrono::Utc::now() - placed);
    assert!(
        (low.as_seconds_f64()..=high.as_seconds_f64()).contains(&to_ship),
        "{to_ship} s, not between {low} and {high}"
    );
    assert_eq!(metrics["avg_time_to_ship_change_pct"], Value::Null);
    assert!(metrics["avg_step_time_s"].is_number(), "{metrics}");
    // The same figures for Prometheus, with what they are in HELP.
    let (status, prom) = get_admin(&base, "/metrics").await;
    assert_eq!(status, 200, "{prom}");
    assert!(
        prom.contains(
            "# HELP creatorflow_time_to_ship_seconds Mean time from received (the order's \
             created_at) to shipped"
        ),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "creatorflow_orders_shipped_last_hour{{tenant=\"{TENANT}\"}} 6\n"
        )),
        "{prom}"
    );
    let gauge = prom
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "creatorflow_time_to_ship_seconds{{tenant=\"{TENANT}\"}} "
            ))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no time to ship gauge: {prom}"));
    assert_eq!(gauge, to_ship);

    dashboard_matches(&base, &metrics);

    // SIGTERM: a graceful stop, exit 0.
    let mut server = server;
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

/// Loads the dashboard in headless Chromium, signs in with the tenant's
/// token as a person does, and compares the rendered figures with
/// `/api/metrics`. Without Chromium: a loud skip, or a failure under CI
/// (`CI=true`).
fn dashboard_matches(base: &str, metrics: &Value) {
    let Some(chromium) = cdp::chromium() else {
        return;
    };
    let mut page = Browser::open(chromium, &format!("{base}/"));
    sign_in_live(&mut page, TENANT_TOKEN);
    let mut text = |id: &str| -> String {
        page.eval(&format!(
            "(document.getElementById({}) || {{}}).textContent",
            serde_json::json!(id)
        ))
        .as_str()
        .unwrap_or_else(|| panic!("#{id} missing from the page"))
        .trim()
        .to_owned()
    };
    let n = |v: &Value| v.as_u64().unwrap_or(0).to_string();
    for state in [
        "received",
        "validated",
        "processing",
        "inventory_reserved",
        "label_generated",
        "shipped",
        "delivered",
        "cancelled",
        "failed",
    ] {
        assert_eq!(
            text(&format!("state-{state}")),
            n(&metrics["orders_by_state"][state]),
            "pipeline count of {state}"
        );
    }
    for lane in ["high", "urgent", "standard", "automated"] {
        assert_eq!(
            text(&format!("priority-{lane}")),
            n(&metrics["orders_by_priority"][lane]),
            "priority {lane}"
        );
    }
    assert_eq!(text("viral-orders"), n(&metrics["viral_orders"]));
    assert_eq!(text("active-orders"), n(&metrics["active_orders"]));
    assert_eq!(text("orders-total"), n(&metrics["orders_total"]));
    // The webhook counters span tenants: an admin's figures, not shown to
    // a tenant's token.
    assert_eq!(text("webhooks-accepted"), "–");
    assert_eq!(text("tenant"), TENANT);
    // Time to ship, as a person reads a duration; its change, none here.
    assert_eq!(text("orders-shipped"), n(&metrics["orders_shipped"]));
    assert_eq!(
        text("time-to-ship-change"),
        "nothing to compare with the hour before"
    );
    let shown = text("time-to-ship");
    assert_eq!(
        page.eval(&format!(
            "CreatorFlow.duration({})",
            metrics["avg_time_to_ship_s"]
        )),
        shown.as_str()
    );
    assert!(shown.ends_with(" h") && shown.contains(" d "), "{shown}");
    // The page's duration format (the card's), value by value.
    for (seconds, expected) in [
        ("null", "–"),
        ("0", "0 ms"),
        ("0.3504", "350 ms"),
        ("0.9996", "1.0 s"),
        ("4.25", "4.3 s"),
        ("9.949", "9.9 s"),
        ("9.95", "10 s"),
        ("48", "48 s"),
        ("59.6", "1 min 0 s"),
        ("725", "12 min 5 s"),
        ("3599.6", "1 h 0 min"),
        ("8040", "2 h 14 min"),
        ("86399", "1 d 0 h"),
        ("273600", "3 d 4 h"),
    ] {
        assert_eq!(
            page.eval(&format!("CreatorFlow.duration({seconds})")),
            expected,
            "{seconds} s"
        );
    }
    let rows = page
        .eval("document.querySelectorAll('#orders tbody tr[data-order-id]').length")
        .as_u64()
        .unwrap_or(0);
    assert_eq!(rows, metrics["active_orders"].as_u64().unwrap_or(0).min(50));
    assert_eq!(rows, 4, "four shipped orders are active");
}

/// Signs in as a person does: the page asks for a token, it is typed into
/// the form and Enter pressed; the page keeps it in session storage,
/// never in its URL.
fn sign_in(page: &mut Browser, token: &str) {
    page.wait(
        "document.body.getAttribute('data-state') === 'login' && \
         !document.getElementById('login').hidden",
        Duration::from_secs(10),
    );
    page.type_into("#token-input", token);
    page.enter();
}

/// Signs in with a good token: the page goes live, keeping the token in
/// session storage, never in its URL.
fn sign_in_live(page: &mut Browser, token: &str) {
    sign_in(page, token);
    page.wait(
        "document.body.getAttribute('data-state') === 'live'",
        Duration::from_secs(10),
    );
    assert_eq!(
        page.eval("sessionStorage.getItem('creatorflow-token')"),
        token
    );
    let url = page.eval("location.href");
    assert!(!url.as_str().unwrap_or_default().contains(token), "{url}");
}

/// The history row was written by the tenant's token (`creator-1-1`).
fn assert_by_tenant(row: &Value) {
    assert_eq!(row["automated"], false, "{row}");
    assert_eq!(row["actor"], "creator-1-1", "{row}");
}

/// An order as the API shows it to the tenant.
async fn order_detail(base: &str, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/orders/{id}"))
        .bearer_auth(TENANT_TOKEN)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Two orders the shipped pack holds for a person (a new customer's large
/// order), ingested before the server starts; in the dashboard a wrong
/// token is refused, the right one shows the review queue, Approve sends
/// one order on and Reject (once a reason is typed) cancels the other —
/// checked through the API, with the token's name in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_approves_and_rejects_from_the_review_queue() {
    let Some(chromium) = cdp::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = format!("sqlite://{}", dir.path().join("cf.db").display());
    let (_mock, api) = mock_api().await;
    let cfg = config(dir.path(), &store, &api);
    let orders = dir.path().join("held.jsonl");
    let held = |id: &str| {
        format!(
            r#"{{"tiktok_order_id":"{id}","customer_handle":"@new","product_name":"Lamp","product_id":"p1","quantity":1,"price":"450.00","customer_tier":"new","created_at":"2025-06-12T10:00:00Z"}}"#
        )
    };
    std::fs::write(&orders, format!("{}\n{}\n", held("9001"), held("9002"))).expect("orders");
    let cfg_path = cfg.to_str().expect("utf-8");
    let out = creatorflow(&[
        "ingest",
        "--config",
        cfg_path,
        "--tenant",
        TENANT,
        "--orders",
        orders.to_str().expect("utf-8"),
    ])
    .output()
    .expect("run ingest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = spawn(&cfg);
    let base = server.base.clone();
    let mut ids = Vec::new();
    for tiktok in ["9001", "9002"] {
        let o = wait_for(Duration::from_secs(20), || async {
            let o = order_detail(&base, tiktok).await;
            (o["order"]["state"] == "failed").then_some(o)
        })
        .await
        .unwrap_or_else(|| panic!("order {tiktok} held for review"));
        ids.push(o["order"]["id"].as_str().expect("id").to_owned());
    }
    let (approve, reject) = (ids[0].clone(), ids[1].clone());

    let mut page = Browser::open(chromium, &format!("{base}/"));
    // A wrong token: refused, and asked again.
    sign_in(&mut page, "not-a-token");
    page.wait(
        "document.getElementById('token-message').textContent === 'token refused' && \
         !document.getElementById('login').hidden",
        Duration::from_secs(10),
    );
    assert_eq!(
        page.eval("sessionStorage.getItem('creatorflow-token')"),
        Value::Null
    );
    sign_in_live(&mut page, TENANT_TOKEN);
    let row = |id: &str| format!("#review tr[data-order-id=\"{id}\"]");
    page.wait(
        &format!(
            "!!document.querySelector({}) && !!document.querySelector({})",
            serde_json::json!(row(&approve)),
            serde_json::json!(row(&reject))
        ),
        Duration::from_secs(10),
    );

    // Approve: the order goes on.
    page.click(&format!(
        "{} button[data-command=\"approve\"]",
        row(&approve)
    ));
    let o = wait_for(Duration::from_secs(20), || async {
        let o = order_detail(&base, &approve).await;
        (o["order"]["state"] == "shipped").then_some(o)
    })
    .await
    .expect("the approved order ships");
    let rows = o["history"].as_array().expect("history");
    let by = rows
        .iter()
        .find(|r| r["from"] == "failed")
        .expect("approval row");
    assert_eq!(
        (&by["to"], &by["reason"]),
        (
            &serde_json::json!("processing"),
            &serde_json::json!("approve")
        )
    );
    assert_by_tenant(by);
    page.wait(
        &format!(
            "!document.querySelector({})",
            serde_json::json!(row(&approve))
        ),
        Duration::from_secs(10),
    );

    // Reject asks for a reason first; with one, the order is cancelled.
    let reject_button = format!("{} button[data-command=\"reject\"]", row(&reject));
    page.click(&reject_button);
    page.wait(
        "document.getElementById('action-status').textContent.indexOf('reason') >= 0",
        Duration::from_secs(5),
    );
    assert_eq!(
        order_detail(&base, &reject).await["order"]["state"],
        "failed"
    );
    page.type_into(&format!("{} input.reason", row(&reject)), "duplicate order");
    page.click(&reject_button);
    let o = wait_for(Duration::from_secs(10), || async {
        let o = order_detail(&base, &reject).await;
        (o["order"]["state"] == "cancelled").then_some(o)
    })
    .await
    .expect("the rejected order is cancelled");
    let last = o["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("a row");
    assert_eq!(last["reason"], "reject: duplicate order");
    assert_by_tenant(last);
    drop(page);
    drop(server);
}
