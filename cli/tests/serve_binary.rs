//! `creatorflow serve` as a process: the built binary on an SQLite store,
//! its Order API a mock on loopback; webhooks through its HTTP server; the
//! dashboard rendered by headless Chromium shows the counts `/api/metrics`
//! reports.

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

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

fn spawn(store: &str, api_base: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args([
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
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn creatorflow serve");
    let base = listening(&mut child);
    Server { child, base }
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
    let server = spawn(&store, &api);
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

/// Loads the dashboard in headless Chromium and compares the rendered
/// figures with `/api/metrics`. Without Chromium: a loud skip, or a failure
/// under CI (`CI=true`).
fn dashboard_matches(base: &str, metrics: &Value) {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let Some(chromium) = chromium else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("chromium is missing under CI (.ci/run installs it)");
        }
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: chromium not found; the dashboard was not rendered.\n\
             Install it (apt-get install -y chromium) to run this check.\n\
             ********************************************************************"
        );
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &format!("{base}/"),
        ])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-state=\"live\""),
        "the dashboard did not load its data: {}\n{}",
        &dom[..dom.len().min(2000)],
        String::from_utf8_lossy(&out.stderr)
    );
    let text = |id: &str| -> String {
        let open = format!("id=\"{id}\">");
        let start = dom
            .find(&open)
            .unwrap_or_else(|| panic!("#{id} missing from the DOM"))
            + open.len();
        let end = dom[start..].find('<').map_or(dom.len(), |e| start + e);
        dom[start..end].trim().to_owned()
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
    assert_eq!(
        text("webhooks-accepted"),
        n(&metrics["webhooks"]["accepted"])
    );
    assert_eq!(text("tenant"), TENANT);
    let rows = dom.matches("data-order-id=").count() as u64;
    assert_eq!(rows, metrics["active_orders"].as_u64().unwrap_or(0).min(50));
    assert_eq!(rows, 4, "four shipped orders are active");
}
