//! Several `serve` replicas on one PostgreSQL (issue 18), through the real
//! binary: two `creatorflow serve` processes on one schema.
//!
//! - Every notification delivered to both replicas at once, many at a time
//!   and twice over (TikTok's duplicate deliveries landing on different
//!   replicas): no delivery is refused (no 503: inbox appends lock their
//!   keys in one order and retry a deadlock inside the store), and each
//!   notification becomes exactly one order.
//! - Reconciliation: one replica polls a shop (the mock Order API counts
//!   one poller's calls, not two); killed, the other takes the shop over
//!   within seconds (`creatorflow_singleton_held` in `/metrics`).
//! - A reload on one replica reaches the other (`GET /api/rules`), an
//!   invalid pack changes nothing anywhere, and a replica whose directory
//!   holds another pack says so instead of running it.
//!
//! Needs `CREATORFLOW_TEST_PG` (`scripts/pg-test-cluster.sh`); skipped
//! loudly without it, and fails under `CI=true`.

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// A `creatorflow serve` replica; killed when dropped.
struct Replica {
    name: &'static str,
    base: String,
    child: Child,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test server's URL, or `None` after a loud skip.
fn pg_url() -> Option<String> {
    support::pg_server("replica")
}

/// A store URL on a schema of its own.
fn store_url(url: &str, test: &str) -> (String, String) {
    let schema = format!("cf_replicas_{test}_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    (format!("{url}{sep}schema={schema}"), schema)
}

/// Starts the replica `name` on `store`: `serve` with [`SHOP`] routed to
/// [`TENANT`], the Order API at `api`, and `extra` flags.
fn replica(name: &'static str, store: &str, api: &str, extra: &[&str]) -> Replica {
    let mut c = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.args([
        "serve",
        "--store",
        store,
        "--listen",
        "127.0.0.1:0",
        "--shop",
        &format!("{SHOP}={TENANT}"),
        "--api-base",
        api,
        "--poll-ms",
        "20",
        "--replica",
        name,
    ])
    .args(extra)
    .env("CREATORFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::inherit());
    app_env(&mut c);
    let mut child = c.spawn().expect("spawn creatorflow serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve printed its address")
            .expect("stdout");
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Replica { name, base, child }
}

/// POSTs a signed webhook; its status (0: no answer).
async fn push(client: &reqwest::Client, base: &str, body: &[u8]) -> u16 {
    client
        .post(format!("{base}/webhooks/tiktok-shop"))
        .header("content-type", "application/json")
        .header("authorization", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// How many notifications the crossing test sends.
const NOTIFICATIONS: usize = 300;
/// How many are in flight at once (each to both replicas).
const IN_FLIGHT: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_crossing_two_replicas_are_never_refused_and_make_one_order_each() {
    let Some(url) = pg_url() else { return };
    let (store, schema) = store_url(&url, "cross");
    let (mock, api) = mock_api().await;
    mock.every_order.store(true, Ordering::SeqCst);
    let a = replica("a", &store, &api, &["--poll-every", "0"]);
    let b = replica("b", &store, &api, &["--poll-every", "0"]);

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let refused = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    // Twice over: every delivery to both replicas at once, then all again.
    for round in 0..2 {
        let next = Arc::new(AtomicU64::new(0));
        let senders: Vec<_> = (0..IN_FLIGHT)
            .map(|lane| {
                let (client, next, refused, accepted) = (
                    client.clone(),
                    next.clone(),
                    refused.clone(),
                    accepted.clone(),
                );
                let (a, b) = (a.base.clone(), b.base.clone());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                        if n >= NOTIFICATIONS {
                            return;
                        }
                        let body = status_push(
                            Some(&format!("x-{n}")),
                            &format!("57{n:06}"),
                            "AWAITING_SHIPMENT",
                            1_718_305_600 + n as i64,
                        );
                        // Opposite orders on alternate lanes and rounds.
                        let (first, second) = if (lane + round) % 2 == 0 {
                            (&a, &b)
                        } else {
                            (&b, &a)
                        };
                        let (x, y) =
                            tokio::join!(push(&client, first, &body), push(&client, second, &body));
                        for s in [x, y] {
                            if s == 200 {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            } else {
                                eprintln!("delivery {n} answered {s}");
                                refused.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            })
            .collect();
        for s in senders {
            s.await.expect("sender");
        }
    }
    assert_eq!(refused.load(Ordering::SeqCst), 0, "no delivery refused");
    assert_eq!(accepted.load(Ordering::SeqCst), 4 * NOTIFICATIONS as u64);

    // Processed by both replicas' inbox processors: one order each.
    let settled = wait_for(Duration::from_secs(60), || {
        let (url, schema) = (url.clone(), schema.clone());
        async move {
            let pending = psql(
                &url,
                &format!("SELECT count(*) FROM {schema}.tiktok_inbox WHERE processed_at IS NULL"),
            );
            let orders = psql(&url, &format!("SELECT count(*) FROM {schema}.orders"));
            (pending[0][0] == "0" && orders[0][0] == NOTIFICATIONS.to_string()).then_some(())
        }
    })
    .await;
    assert!(settled.is_some(), "every notification processed");
    let inbox = psql(&url, &format!("SELECT count(*) FROM {schema}.tiktok_inbox"));
    assert_eq!(
        inbox[0][0],
        NOTIFICATIONS.to_string(),
        "each notification stored once"
    );
    let orders = psql(
        &url,
        &format!("SELECT tiktok_order_id, count(*) FROM {schema}.orders GROUP BY 1"),
    );
    assert_eq!(orders.len(), NOTIFICATIONS);
    assert!(orders.iter().all(|r| r[1] == "1"), "exactly one order each");

    // The figures read from the store are the same on both replicas (read
    // once the workers are quiet: two reads of one replica agree); the
    // per-process counters of `/metrics` carry each one's name.
    let path = format!("/api/metrics?tenant={TENANT}");
    let shared = |v: &Value| {
        [
            "orders_total",
            "orders_by_state",
            "orders_by_priority",
            "viral_orders",
            "inbox",
        ]
        .map(|k| v[k].clone())
    };
    let agreed = wait_for(Duration::from_secs(60), || {
        let (ab, bb, path) = (a.base.clone(), b.base.clone(), path.clone());
        async move {
            let first = shared(&get_json(&ab, &path).await);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let other = shared(&get_json(&bb, &path).await);
            let again = shared(&get_json(&ab, &path).await);
            (first == again).then_some((again, other))
        }
    })
    .await;
    let (on_a, on_b) = agreed.expect("the workers went quiet");
    assert_eq!(on_a, on_b, "replicas a and b read the same figures");
    assert_eq!(on_a[0], NOTIFICATIONS as u64, "every order counted");
    for r in [&a, &b] {
        let (status, text) = get_admin(&r.base, "/metrics").await;
        assert_eq!(status, 200, "{text}");
        let label = format!("replica=\"{}\"", r.name);
        assert!(
            text.lines()
                .any(|l| l.starts_with("creatorflow_webhooks") && l.contains(&label)),
            "{} labels its webhook counters: {text}",
            r.name
        );
    }
    drop((a, b));
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// The jobs `/metrics` says a replica runs.
async fn held(base: &str) -> Vec<String> {
    let (status, text) = get_admin(base, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|l| l.starts_with("creatorflow_singleton_held{"))
        .filter_map(|l| l.split("job=\"").nth(1))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_polls_each_shop_and_another_takes_over_when_it_dies() {
    let Some(url) = pg_url() else { return };
    let (store, schema) = store_url(&url, "poll");
    let (mock, api) = mock_api().await;
    let job = format!("reconcile:{TENANT}:{SHOP}");
    let mut a = replica("a", &store, &api, &["--poll-every", "1"]);
    let mut b = replica("b", &store, &api, &["--poll-every", "1"]);
    let calls = || *mock.search_calls.lock().expect("calls");

    // One of them takes the shop's lease; the other does not poll it.
    let holder = wait_for(Duration::from_secs(15), || {
        let (a, b, job) = (a.base.clone(), b.base.clone(), job.clone());
        async move {
            let (ha, hb) = (held(&a).await.contains(&job), held(&b).await.contains(&job));
            match (ha, hb) {
                (true, false) => Some("a"),
                (false, true) => Some("b"),
                (true, true) => panic!("both replicas hold {job}"),
                _ => None,
            }
        }
    })
    .await
    .expect("a replica holds the shop's reconciliation");
    // One poller's worth: about one poll a second, not two.
    let window = Duration::from_secs(8);
    let before = calls();
    tokio::time::sleep(window).await;
    let polled = calls() - before;
    assert!(
        (3..=window.as_secs() + 2).contains(&polled),
        "{polled} polls in {window:?}: expected one poller's (about one a second), not two"
    );

    // The holder dies (no graceful release): the other takes over once
    // the lease lapses.
    let (dead, survivor) = if holder == "a" {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    assert_ne!(dead.name, survivor.name);
    dead.child.kill().expect("kill the holder");
    let _ = dead.child.wait();
    let killed = Instant::now();
    let took = wait_for(Duration::from_secs(20), || {
        let (base, job) = (survivor.base.clone(), job.clone());
        async move { held(&base).await.contains(&job).then_some(()) }
    })
    .await;
    assert!(took.is_some(), "{} took the shop over", survivor.name);
    eprintln!("taken over {:?} after the kill", killed.elapsed());
    let before = calls();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(calls() > before, "the survivor polls the shop");
    drop((a, b));
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

/// A pack of one rule raising orders over `over` to `lane`.
fn rule(over: u32, lane: &str) -> String {
    format!(
        "rules:\n  - id: lane-by-price\n    name: lane by price\n    category: priority_classification\n    priority: 10\n    conditions:\n      - field: price\n        operator: greater_than\n        value: {over}\n    actions:\n      - type: escalate_priority\n        parameters: {{ new_priority: {lane} }}\n"
    )
}

fn write_pack(dir: &Path, text: &str) {
    std::fs::write(dir.join("pack.yaml"), text).expect("write the pack");
}

async fn reload(base: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/rules/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("reload");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET /api/rules` of a replica.
async fn rules(base: &str) -> Value {
    get_json(base, "/api/rules").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_every_replica_and_an_invalid_pack_changes_nothing() {
    let Some(url) = pg_url() else { return };
    let (store, schema) = store_url(&url, "rules");
    let (_mock, api) = mock_api().await;
    // Each replica reads its own directory, as on two hosts.
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    for d in [da.path(), db.path()] {
        write_pack(d, &rule(10, "high"));
    }
    let da_s = da.path().display().to_string();
    let db_s = db.path().display().to_string();
    let a = replica("a", &store, &api, &["--poll-every", "0", "--rules", &da_s]);
    let b = replica("b", &store, &api, &["--poll-every", "0", "--rules", &db_s]);

    // Both run the recorded version from the start.
    let first = wait_for(Duration::from_secs(10), || {
        let (a, b) = (a.base.clone(), b.base.clone());
        async move {
            let (ra, rb) = (rules(&a).await, rules(&b).await);
            (ra["in_sync"] == true
                && rb["in_sync"] == true
                && !ra["active"].is_null()
                && ra["active"] == rb["active"]
                && ra["running"] == ra["active"])
                .then(|| ra["active"][TENANT].clone())
        }
    })
    .await
    .expect("both replicas name the active version");
    assert_eq!(rules(&a.base).await["replica"], "a");
    assert_eq!(rules(&b.base).await["replica"], "b");

    // A new pack in both directories, reloaded on `a` only: `b` follows.
    for d in [da.path(), db.path()] {
        write_pack(d, &rule(20, "urgent"));
    }
    let (status, body) = reload(&a.base).await;
    assert_eq!(status, 200, "{body}");
    let second = body["versions"][TENANT].clone();
    assert_ne!(second, first);
    let followed = wait_for(Duration::from_secs(10), || {
        let (b, second) = (b.base.clone(), second.clone());
        async move {
            let rb = rules(&b).await;
            (rb["running"][TENANT] == second
                && rb["active"][TENANT] == second
                && rb["in_sync"] == true)
                .then_some(())
        }
    })
    .await;
    assert!(
        followed.is_some(),
        "b switched to a's reload: {}",
        rules(&b.base).await
    );

    // An invalid pack: 422 on `a`, nothing changes on either.
    write_pack(da.path(), "rules:\n  - id: broken\n    conditions: 7\n");
    let (status, body) = reload(&a.base).await;
    assert_eq!(status, 422, "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for r in [&a, &b] {
        let v = rules(&r.base).await;
        assert_eq!(v["running"][TENANT], second, "{}: {v}", r.name);
        assert_eq!(v["active"][TENANT], second, "{}: {v}", r.name);
        assert_eq!(v["in_sync"], true, "{}: {v}", r.name);
    }

    // `a`'s directory drifts and is reloaded: `b`'s files do not yield the
    // recorded version, so `b` keeps its pack and says so.
    write_pack(da.path(), &rule(30, "high"));
    let (status, body) = reload(&a.base).await;
    assert_eq!(status, 200, "{body}");
    let third = body["versions"][TENANT].clone();
    let loud = wait_for(Duration::from_secs(10), || {
        let b = b.base.clone();
        async move {
            let rb = rules(&b).await;
            (rb["in_sync"] == false).then_some(rb)
        }
    })
    .await
    .expect("b reports the mismatch");
    assert_eq!(loud["running"][TENANT], second, "{loud}");
    assert_eq!(loud["active"][TENANT], third, "{loud}");
    assert!(
        loud["problem"]
            .as_str()
            .is_some_and(|p| p.contains("yields")),
        "{loud}"
    );
    let (_, metrics) = get_admin(&b.base, "/metrics").await;
    assert!(
        metrics.contains("creatorflow_rules_in_sync{replica=\"b\"} 0"),
        "{metrics}"
    );
    drop((a, b));
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
