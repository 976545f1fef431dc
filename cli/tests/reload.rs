//! Rule-pack hot reload of `serve`: `POST /api/rules/reload` through the
//! real HTTP server (`start_with`; who may, 422 with every diagnostic and
//! nothing changed, 200 with the new versions and later orders decided by
//! the new pack), and SIGHUP to the built binary.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use creatorflow::model::Priority;
use creatorflow::rules::RulePack;
use creatorflow::store::OrderStore;
use creatorflow::tiktok::FakeOrderApi;
use creatorflow::{EngineBuilder, Order};
use creatorflow_cli::config::Overrides;
use creatorflow_cli::serve::{PackSource, ServeConfig, SharedStore, Tokens, start_with};
use serde_json::Value;
use support::*;

/// A pack of one rule, `lane-by-price`, raising orders over `over` to `lane`.
fn rule(over: u32, lane: &str) -> String {
    format!(
        "rules:\n  - id: lane-by-price\n    name: lane by price\n    category: priority_classification\n    priority: 10\n    conditions:\n      - field: price\n        operator: greater_than\n        value: {over}\n    actions:\n      - type: escalate_priority\n        parameters: {{ new_priority: {lane} }}\n"
    )
}

fn write_pack(dir: &Path, text: &str) {
    std::fs::write(dir.join("pack.yaml"), text).expect("write the pack");
}

fn order(n: usize) -> Order {
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"r{n}","customer_handle":"@c{n}","product_name":"Lamp",
        "product_id":"p1","quantity":1,"price":"25.00","created_at":"2025-06-12T10:00:00Z"}}"#
    ))
    .expect("valid order")
}

async fn reload(base: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(format!("{base}/api/rules/reload"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_through_http_swaps_every_tenant_or_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_pack(dir.path(), &rule(10, "high"));
    let store: SharedStore = creatorflow::store::open("memory:").await.expect("store");
    let mut config = ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), APP_KEY, APP_SECRET);
    config.shops = vec![(SHOP.to_owned(), "t1".to_owned())];
    config.default_tenant = "t1".to_owned();
    config.poll_every = None;
    config.tokens = Tokens::none()
        .admin("admin-secret")
        .tenant("t1", "t1-secret")
        .metrics("metrics-secret");
    config.rules = Some(PackSource::from_config(
        None,
        Overrides {
            rules: Some(dir.path().to_owned()),
            machine: None,
        },
    ));
    let first = RulePack::load_dir(dir.path()).expect("pack");
    let engines = ["t1", "t2"]
        .into_iter()
        .map(|t| {
            EngineBuilder::new(store.clone())
                .tenant(t)
                .rules(first.clone())
                .simulated_handlers()
                .build()
                .expect("engine")
        })
        .collect();
    let running = start_with(config, engines, store, Arc::new(FakeOrderApi::new()))
        .await
        .expect("start");
    let base = format!("http://{}", running.addr);
    let t1 = running.processor().engine("t1").expect("t1").clone();

    // Only an admin may: 401 without or with an unknown token, 404 for a
    // tenant's or the metrics token.
    assert_eq!(reload(&base, None).await.0, 401);
    assert_eq!(reload(&base, Some("nobody")).await.0, 401);
    assert_eq!(reload(&base, Some("t1-secret")).await.0, 404);
    assert_eq!(reload(&base, Some("metrics-secret")).await.0, 404);
    let (status, body) = reload(&base, Some("admin-secret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"]["t1"], first.version());
    assert_eq!(body["versions"]["t2"], first.version());

    // An invalid pack: 422 with every diagnostic, located; nothing changed.
    write_pack(
        dir.path(),
        &rule(10, "high")
            .replace("greater_than", "greater_thn")
            .replace("priority: 10", "priority: ten"),
    );
    let (status, body) = reload(&base, Some("admin-secret")).await;
    assert_eq!(status, 422, "{body}");
    let diags = body["diagnostics"].as_array().expect("diagnostics");
    assert!(diags.len() >= 2, "every diagnostic: {body}");
    for d in diags {
        assert!(
            d["file"].as_str().is_some_and(|f| f.ends_with("pack.yaml")),
            "{d}"
        );
        assert!(d["line"].as_u64().is_some_and(|l| l > 1), "{d}");
        assert!(
            d["code"].as_str().is_some_and(|c| c.starts_with('E')),
            "{d}"
        );
    }
    assert_eq!(t1.rules_version(), first.version());
    let o = t1.ingest(order(1)).await.expect("ingest").order;
    assert_eq!(
        o.order.priority,
        Priority::High,
        "the old pack still decides"
    );

    // A valid new pack: 200 with the new versions; later orders get it.
    write_pack(dir.path(), &rule(10, "urgent"));
    let second = RulePack::load_dir(dir.path()).expect("pack");
    assert_ne!(second.version(), first.version());
    let (status, body) = reload(&base, Some("admin-secret")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"]["t1"], second.version());
    assert_eq!(body["versions"]["t2"], second.version());
    let o = t1.ingest(order(2)).await.expect("ingest").order;
    assert_eq!(o.order.priority, Priority::Urgent, "the new pack decides");
    let h = t1
        .store()
        .order_with_history("t1", o.id)
        .await
        .expect("store")
        .expect("order");
    let decision = h.decision.expect("decision").to_value();
    assert_eq!(decision["pack_version"], second.version());
    assert_eq!(decision["rules"], serde_json::json!(["lane-by-price"]));
    running.stop().await;
}

/// `creatorflow serve --rules DIR`, stderr read line by line on a thread
/// (so the pipe never fills); killed when dropped.
struct Server {
    child: std::process::Child,
    base: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Waits (up to 20 s) for a stderr line containing `text`.
    fn stderr_line(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {text:?}: {e}"),
            }
        }
    }
}

fn spawn(store: &str, api_base: &str, rules: &Path) -> Server {
    let mut cmd = serve_command(store, api_base);
    cmd.arg("--rules").arg(rules).stderr(Stdio::piped());
    let mut child = app_env(&mut cmd).spawn().expect("spawn creatorflow serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, stderr_lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let base = listening(&mut child);
    Server {
        child,
        base,
        stderr: stderr_lines,
    }
}

/// The priority `/api/orders` shows for a TikTok order, once it is stored.
async fn priority_of(base: &str, tiktok_id: &str) -> String {
    let o = wait_for(Duration::from_secs(20), || async {
        let v = get_json(base, "/api/orders?limit=1000").await;
        v["orders"]
            .as_array()?
            .iter()
            .find(|o| o["tiktok_order_id"] == tiktok_id)
            .cloned()
    })
    .await
    .unwrap_or_else(|| panic!("order {tiktok_id} stored"));
    o["priority"].as_str().unwrap_or_default().to_owned()
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_pack_of_the_binary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).expect("rules dir");
    write_pack(&rules, &rule(1000, "high"));
    let store = format!("sqlite://{}", dir.path().join("cf.db").display());
    let (mock, api) = mock_api().await;
    for id in ["57700", "57701", "57702"] {
        mock.orders
            .lock()
            .unwrap()
            .push(order_json(id, "AWAITING_SHIPMENT"));
    }
    let server = spawn(&store, &api, &rules);
    let base = server.base.clone();
    let push = |n: &str, id: &str| status_push(Some(n), id, "AWAITING_SHIPMENT", 100);
    assert_eq!(post_signed(&base, &push("h-0", "57700")).await.0, 200);
    assert_eq!(priority_of(&base, "57700").await, "standard");

    // An invalid pack: SIGHUP reports it and the running pack stays.
    write_pack(&rules, "rules:\n  - id: [\n");
    let hup = |pid: u32| {
        let ok = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    };
    hup(server.child.id());
    server.stderr_line("rules not reloaded");
    assert_eq!(post_signed(&base, &push("h-1", "57701")).await.0, 200);
    assert_eq!(priority_of(&base, "57701").await, "standard");

    // The new pack: a new order gets the new rule's priority.
    write_pack(&rules, &rule(10, "high"));
    let version = RulePack::load_dir(&rules)
        .expect("pack")
        .version()
        .to_owned();
    hup(server.child.id());
    let line = server.stderr_line("rules reloaded");
    assert!(line.contains(&format!("{TENANT}={version}")), "{line}");
    assert_eq!(post_signed(&base, &push("h-2", "57702")).await.0, 200);
    assert_eq!(priority_of(&base, "57702").await, "high");
}
