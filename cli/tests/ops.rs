//! Operating `creatorflow serve` as a process (service.md, "Operating it"):
//! JSON log lines without secrets, the `/readyz` probe, and SIGTERM while
//! webhooks stream in (exit 0; after a restart on the same SQLite store
//! every acknowledged webhook is an order, and no step ran twice).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::SqlitePool;
use support::*;

/// The access token the server is given: it must never be logged.
const ACCESS_TOKEN: &str = "tok-ops-9f8e7d6c5b4a";

/// A `serve` process; killed when dropped (a failed test leaves nothing).
struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `serve` on `store`, JSON logs or not, and reads its address.
    fn start(store: &str, api_base: &str, json: bool) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
        if json {
            cmd.args(["--log-format", "json"]);
        }
        let mut child = cmd
            .args(["serve", "--store", store, "--listen", "127.0.0.1:0"])
            .args([
                "--shop",
                &format!("{SHOP}={TENANT}"),
                "--api-base",
                api_base,
            ])
            .args(["--poll-every", "0", "--poll-ms", "20"])
            .env("TIKTOK_APP_KEY", APP_KEY)
            .env("TIKTOK_APP_SECRET", APP_SECRET)
            .env("TIKTOK_ACCESS_TOKEN", ACCESS_TOKEN)
            .env("CREATORFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn creatorflow serve");
        let (stderr, _reader) = capture_stderr(&mut child, false);
        let base = listening(&mut child);
        Server {
            child,
            base,
            stderr,
        }
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`; the exit code.
    fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.expect("kill").success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < limit,
                "serve did not exit within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the process wrote on stderr so far.
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

/// A signed push, or `None` if the server could not be reached.
async fn push(base: &str, body: &[u8]) -> Option<u16> {
    reqwest::Client::new()
        .post(format!("{base}/webhooks/tiktok-shop"))
        .header("content-type", "application/json")
        .header("authorization", sign(body))
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `GET /readyz`: status and body.
async fn readyz(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    let status = r.status().as_u16();
    (status, r.json().await.expect("a JSON body"))
}

/// The store's file and its inbox file, opened for reads and test edits.
async fn file(path: &Path) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the store file")
}

/// One number from `sql`.
async fn count(pool: &SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn store_in(dir: &Path) -> (String, PathBuf) {
    let path = dir.join("cf.db");
    (format!("sqlite://{}", path.display()), path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_json_lines_with_fields_and_no_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = store_in(dir.path());
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("58000", "AWAITING_SHIPMENT"));
    let mut server = Server::start(&store, &api, true);
    // Events with fields: a push for a shop no tenant has, an order.
    let stray = String::from_utf8(status_push(Some("s-1"), "58001", "AWAITING_SHIPMENT", 100))
        .unwrap()
        .replace(SHOP, "999");
    assert_eq!(push(&server.base, stray.as_bytes()).await, Some(200));
    let order = status_push(Some("s-2"), "58000", "AWAITING_SHIPMENT", 100);
    assert_eq!(push(&server.base, &order).await, Some(200));
    assert_eq!(server.terminate(Duration::from_secs(60)), Some(0));

    let stderr = server.stderr();
    let mut events = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        if !line.starts_with('{') {
            // The start-up report is output for people, not a log event.
            assert!(
                line.starts_with("action ") || line.starts_with("no --config"),
                "a stderr line neither JSON nor the start-up report: {line:?}"
            );
            continue;
        }
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        for key in ["timestamp", "level", "target"] {
            assert!(v[key].is_string(), "no `{key}` in {line}");
        }
        assert!(v["fields"]["message"].is_string(), "no message in {line}");
        events.push(v);
    }
    let with = |message: &str| {
        events
            .iter()
            .find(|e| e["fields"]["message"].as_str() == Some(message))
            .unwrap_or_else(|| panic!("no event `{message}` in:\n{stderr}"))
    };
    let stray = with("webhook for an unconfigured shop acknowledged and dropped");
    assert_eq!(stray["level"], "INFO");
    assert_eq!(stray["fields"]["shop"], "999");
    assert!(stray["target"].as_str().unwrap().starts_with("creatorflow"));
    assert_eq!(with("shutdown signal")["fields"]["signal"], "SIGTERM");
    with("service stopped");
    for secret in [APP_SECRET, ACCESS_TOKEN] {
        assert!(!stderr.contains(secret), "a secret in the logs:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_whether_the_store_answers_with_current_migrations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, path) = store_in(dir.path());
    let (_mock, api) = mock_api().await;
    let mut server = Server::start(&store, &api, false);
    let (status, body) = readyz(&server.base).await;
    assert_eq!(
        (status, &body["ready"]),
        (200, &Value::Bool(true)),
        "{body}"
    );
    // A newer binary migrated the file under us: not ready, and why.
    let pool = file(&path).await;
    let newer = "INSERT INTO creatorflow_schema (version, binary_version) VALUES (999, '9.9.9')";
    sqlx::raw_sql(newer).execute(&pool).await.expect("insert");
    let (status, body) = readyz(&server.base).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    let reason = body["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("999") && reason.contains("newer"),
        "{reason}"
    );
    // Liveness is another matter: the process still lives.
    let health = reqwest::get(format!("{}/healthz", server.base)).await;
    assert_eq!(health.expect("healthz").status().as_u16(), 200);
    // A migration missing (an older file): not ready either.
    sqlx::raw_sql("DELETE FROM creatorflow_schema WHERE version IN (1, 999)")
        .execute(&pool)
        .await
        .expect("delete");
    let (status, body) = readyz(&server.base).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("lacks 1"),
        "{body}"
    );
    pool.close().await;
    assert_eq!(server.terminate(Duration::from_secs(60)), Some(0));
}

/// SIGTERM while four clients stream webhooks: exit 0; every push answered
/// 200 is stored; after a restart on the same store every acknowledged
/// push became exactly one order, each order ran each step once, and
/// `status` finds the store consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_while_webhooks_stream_in_loses_nothing_and_repeats_nothing() {
    const CLIENTS: usize = 4;
    const PER_CLIENT: usize = 150;
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, path) = store_in(dir.path());
    let (mock, api) = mock_api().await;
    let id = |c: usize, i: usize| format!("59{c}{i:04}");
    for c in 0..CLIENTS {
        for i in 0..PER_CLIENT {
            mock.orders
                .lock()
                .unwrap()
                .push(order_json(&id(c, i), "AWAITING_SHIPMENT"));
        }
    }
    let mut server = Server::start(&store, &api, false);
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (base, acked) = (server.base.clone(), acked.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..PER_CLIENT {
                let order = id(c, i);
                let body = status_push(
                    Some(&format!("n-{order}")),
                    &order,
                    "AWAITING_SHIPMENT",
                    100,
                );
                match push(&base, &body).await {
                    Some(200) => {
                        acked.lock().unwrap().insert(order);
                    }
                    Some(_) => {}
                    // The server is gone.
                    None => return,
                }
            }
        }));
    }
    // SIGTERM mid-stream.
    let started = Instant::now();
    while acked.lock().unwrap().len() < 120 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let code = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(60)));
    assert_eq!(code, Some(0), "stderr:\n{}", server.stderr());
    for c in clients {
        c.await.expect("client");
    }
    let acked: BTreeSet<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 120, "only {} acknowledged", acked.len());
    assert!(
        acked.len() < CLIENTS * PER_CLIENT,
        "the stream had ended before SIGTERM: nothing was tested"
    );

    // Every acknowledged push is in the inbox file, durable.
    let inbox = file(&creatorflow::store::SqliteStore::inbox_path(&path)).await;
    let stored = count(&inbox, "SELECT COUNT(*) FROM tiktok_inbox").await;
    assert!(
        stored >= acked.len() as i64,
        "{stored} stored < {} acked",
        acked.len()
    );

    // Restart on the same store: everything acknowledged becomes an order
    // and is worked to `shipped`.
    let mut again = Server::start(&store, &api, false);
    let main = file(&path).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending = count(
            &inbox,
            "SELECT COUNT(*) FROM tiktok_inbox WHERE processed_at IS NULL",
        )
        .await;
        let unshipped = count(
            &main,
            "SELECT COUNT(*) FROM orders WHERE current_state <> 'shipped'",
        )
        .await;
        if pending == 0 && unshipped == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} inbox entries pending, {unshipped} orders not shipped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT tiktok_order_id FROM orders")
        .fetch_all(&main)
        .await
        .expect("orders");
    let orders: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(orders.len(), ids.len(), "an order stored twice");
    let lost: Vec<_> = acked.difference(&orders).collect();
    assert!(lost.is_empty(), "acknowledged but no order: {lost:?}");
    let repeated = count(
        &main,
        "SELECT COUNT(*) FROM (SELECT order_id, from_state, to_state FROM order_transitions \
         GROUP BY 1, 2, 3 HAVING COUNT(*) > 1)",
    )
    .await;
    assert_eq!(repeated, 0, "a step recorded twice");
    main.close().await;
    inbox.close().await;
    assert_eq!(again.terminate(Duration::from_secs(60)), Some(0));

    let status = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(["status", "--store", &store])
        .output()
        .expect("status");
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.contains("integrity: ok"), "{out}");
}

/// A private throwaway PostgreSQL cluster (`scripts/pg-test-cluster.sh`):
/// stopping the shared test cluster would break the tests running beside
/// this one. Stopped and deleted when dropped.
struct Cluster {
    url: String,
    dir: String,
}

impl Cluster {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-cluster.sh")
    }

    fn start() -> Cluster {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .output()
            .expect("run pg-test-cluster.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let exports = String::from_utf8_lossy(&out.stdout).into_owned();
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("no {name} in {exports}"))
                .to_owned()
        };
        Cluster {
            url: value("CREATORFLOW_TEST_PG"),
            dir: value("CREATORFLOW_PG_DIR"),
        }
    }

    /// `pg_ctl ARGS` as the cluster's OS user (`postgres` when we are root).
    fn pg_ctl(&self, args: &[&str]) {
        let bin = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
        let pg_ctl = format!("{bin}/pg_ctl");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        let mut cmd = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &pg_ctl]);
            c
        } else {
            Command::new(&pg_ctl)
        };
        let data = format!("{}/data", self.dir);
        let out = cmd.args(["-D", &data]).args(args).output().expect("pg_ctl");
        assert!(out.status.success(), "pg_ctl {args:?}: {out:?}");
    }

    fn stop_server(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again on its port and socket directory.
    fn start_server(&self) {
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .expect("the port in the URL")
            .to_owned();
        let log = format!("{}/server.log", self.dir);
        let options = format!("-k {} -p {port} -c listen_addresses=127.0.0.1", self.dir);
        self.pg_ctl(&["-l", &log, "-w", "-t", "30", "-o", &options, "start"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["stop", &self.dir])
            .output();
    }
}

/// PostgreSQL going away: `/readyz` answers 503 (quickly) while the server
/// is down and 200 again once it is back, on the same process. Runs where
/// the PostgreSQL tests run (`CREATORFLOW_TEST_PG` set), on a private
/// cluster; elsewhere a loud skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_postgres_that_goes_away_and_comes_back() {
    if std::env::var("CREATORFLOW_TEST_PG").is_err() {
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: CREATORFLOW_TEST_PG is not set (README: the PostgreSQL store\n\
             tests); /readyz on a stopped PostgreSQL was not tested.\n\
             ********************************************************************"
        );
        return;
    }
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("cluster");
    let (_mock, api) = mock_api().await;
    let mut server = Server::start(&cluster.url, &api, false);
    assert_eq!(readyz(&server.base).await.0, 200);

    tokio::task::block_in_place(|| cluster.stop_server());
    let asked = Instant::now();
    let (status, body) = readyz(&server.base).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "a probe answers quickly"
    );
    assert!(!body["reason"].as_str().unwrap_or("").is_empty(), "{body}");
    assert!(
        !body.to_string().contains(&cluster.url),
        "no URL in the reason: {body}"
    );
    // Reads and commands answer 503 with Retry-After while the store is
    // away (the same request succeeds once it is back), never 500.
    let client = reqwest::Client::new();
    let missing = "01900000-0000-7000-8000-000000000000";
    let calls = [
        (reqwest::Method::GET, "/api/metrics".to_owned()),
        (reqwest::Method::GET, "/api/orders?limit=50".to_owned()),
        (reqwest::Method::GET, "/api/review".to_owned()),
        (reqwest::Method::GET, format!("/api/orders/{missing}")),
        (
            reqwest::Method::POST,
            format!("/api/orders/{missing}/retry"),
        ),
    ];
    let asked = Instant::now();
    let answers: Vec<_> = calls
        .iter()
        .map(|(method, path)| {
            tokio::spawn(
                client
                    .request(method.clone(), format!("{}{path}", server.base))
                    .bearer_auth(ADMIN_TOKEN)
                    .send(),
            )
        })
        .collect();
    for ((method, path), r) in calls.iter().zip(answers) {
        let r = r.await.expect("task").expect("request");
        assert_eq!(r.status().as_u16(), 503, "{method} {path} while down");
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1"),
            "{method} {path}"
        );
    }
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "answered in seconds, not after the open's 30 s: {:?}",
        asked.elapsed()
    );

    tokio::task::block_in_place(|| cluster.start_server());
    let base = server.base.clone();
    let back = wait_for(Duration::from_secs(30), || {
        let base = base.clone();
        async move { (readyz(&base).await.0 == 200).then_some(()) }
    })
    .await;
    assert!(back.is_some(), "ready again once PostgreSQL is back");
    assert_eq!(server.terminate(Duration::from_secs(60)), Some(0));
}
