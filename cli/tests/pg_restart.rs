//! The store going away (issue 14, service.md "Operating it"): PostgreSQL is
//! stopped (`pg_ctl -m fast`, every session ends with "terminating
//! connection due to administrator command") and started again while
//! `creatorflow serve` and two `creatorflow worker` processes (the real
//! binary) run under a stream of signed webhooks for new orders.
//!
//! Every push is retried until it is answered 200, as TikTok does; while
//! the store is down the answers are 503. Afterwards: every acknowledged
//! push became exactly one order, every order reached the state the machine
//! takes it to, no step was recorded twice (history rows per order, counted
//! on the database itself), `creatorflow status` reports a clean integrity
//! check, and none of the three processes exited.
//!
//! Needs the throwaway cluster of `scripts/pg-test-cluster.sh`
//! (`CREATORFLOW_TEST_PG` and `CREATORFLOW_PG_DIR`, as `.ci/run` sets them):
//! the test halts and resumes that cluster's server. Without them it is
//! skipped loudly, and fails under `CI=true`.

#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// How long the store stays down while pushes keep coming.
const OUTAGE: Duration = Duration::from_secs(4);
/// Concurrent webhook senders.
const SENDERS: usize = 4;
/// How long pushes keep coming after the store is back.
const AFTER: Duration = Duration::from_secs(6);
/// From this long after the store is back, no push may be refused: every
/// process has reconnected (a push answered 503 later than this means a
/// connection the restart closed was used again).
const RECONNECTED_WITHIN: Duration = Duration::from_secs(3);

/// A `creatorflow` process; killed when dropped (a failed test leaves
/// nothing behind).
struct Proc {
    name: &'static str,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Panics if the process has exited.
    fn assert_running(&mut self) {
        match self.child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => panic!("{} exited: {status}", self.name),
            Err(e) => panic!("{}: {e}", self.name),
        }
    }

    /// SIGTERM, then its exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {}", self.name);
        self.child.wait().expect("wait")
    }
}

/// The test cluster (URL, directory), or `None` after a loud skip.
fn cluster() -> Option<(String, String)> {
    let url = std::env::var("CREATORFLOW_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty());
    let dir = std::env::var("CREATORFLOW_PG_DIR")
        .ok()
        .filter(|v| !v.is_empty());
    match (url, dir) {
        (Some(url), Some(dir)) => Some((url, dir)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CREATORFLOW_TEST_PG and CREATORFLOW_PG_DIR must be set under CI \
                     (.ci/run starts scripts/pg-test-cluster.sh)"
                );
            }
            eprintln!(
                "\n********************************************************************\n\
                 SKIPPED: the PostgreSQL restart test needs a throwaway cluster:\n\
                 eval \"$(bash scripts/pg-test-cluster.sh start)\" (sets CREATORFLOW_TEST_PG\n\
                 and CREATORFLOW_PG_DIR), then run it again.\n\
                 ********************************************************************"
            );
            None
        }
    }
}

/// Runs `scripts/pg-test-cluster.sh COMMAND DIR`.
fn cluster_script(command: &str, dir: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-test-cluster.sh");
    let status = Command::new("bash")
        .args([script, command, dir])
        .status()
        .expect("run pg-test-cluster.sh");
    assert!(status.success(), "pg-test-cluster.sh {command} failed");
}

/// The cluster's server while halted: resumed when dropped, so a failing
/// test does not leave the cluster down for the tests after it.
struct Halted<'a>(Option<&'a str>);

impl Halted<'_> {
    fn resume(mut self) {
        if let Some(dir) = self.0.take() {
            cluster_script("resume", dir);
        }
    }
}

impl Drop for Halted<'_> {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            cluster_script("resume", dir);
        }
    }
}

fn creatorflow(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.args(args);
    c
}

fn spawn_serve(store: &str, api_base: &str) -> (Proc, String) {
    let mut child = serve_command(store, api_base)
        .spawn()
        .expect("spawn creatorflow serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve printed its address")
            .expect("stdout");
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.to_owned();
        }
    };
    // Keep draining stdout so that serve never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    (
        Proc {
            name: "serve",
            child,
        },
        base,
    )
}

fn spawn_worker(store: &str, name: &'static str) -> Proc {
    let child = creatorflow(&["worker", "--store", store, "--poll-ms", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn creatorflow worker");
    Proc { name, child }
}

/// What the senders saw.
#[derive(Default)]
struct Answers {
    ok: AtomicU64,
    unavailable: AtomicU64,
    /// Transport errors (no answer): retried too.
    transport: AtomicU64,
    /// 503 answers to pushes sent [`RECONNECTED_WITHIN`] after the store
    /// was back.
    late_unavailable: AtomicU64,
    /// When the store was back.
    resumed: std::sync::OnceLock<Instant>,
    acked: std::sync::Mutex<Vec<String>>,
}

/// Sends pushes for new orders until `stop`, each retried until 200.
async fn send(base: String, next: Arc<AtomicUsize>, stop: Arc<AtomicBool>, seen: Arc<Answers>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    while !stop.load(Ordering::SeqCst) {
        let n = next.fetch_add(1, Ordering::SeqCst);
        let order = format!("58{n:06}");
        let body = status_push(
            Some(&format!("pg-{n}")),
            &order,
            "AWAITING_SHIPMENT",
            1_718_305_600 + n as i64,
        );
        loop {
            let sent_at = Instant::now();
            let answer = client
                .post(format!("{base}/webhooks/tiktok-shop"))
                .header("content-type", "application/json")
                .header("authorization", sign(&body))
                .body(body.clone())
                .send()
                .await;
            match answer.map(|r| r.status().as_u16()) {
                Ok(200) => {
                    seen.ok.fetch_add(1, Ordering::SeqCst);
                    seen.acked.lock().expect("acked").push(order);
                    break;
                }
                Ok(503) => {
                    seen.unavailable.fetch_add(1, Ordering::SeqCst);
                    if seen
                        .resumed
                        .get()
                        .is_some_and(|r| sent_at > *r + RECONNECTED_WITHIN)
                    {
                        seen.late_unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Ok(other) => panic!("push {order}: unexpected answer {other}"),
                Err(_) => {
                    seen.transport.fetch_add(1, Ordering::SeqCst);
                }
            }
            // TikTok retries later; so do we, soon.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `creatorflow status --format json` of the tenant, and its exit code.
fn status(store: &str) -> (Value, Option<i32>) {
    let out = creatorflow(&[
        "status", "--store", store, "--tenant", TENANT, "--format", "json",
    ])
    .output()
    .expect("run status");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (json, out.status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_and_runs_nothing_twice() {
    let Some((url, dir)) = cluster() else { return };
    let schema = format!("cf_restart_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = format!("{url}{sep}schema={schema}");
    let (mock, api) = mock_api().await;
    mock.every_order.store(true, Ordering::SeqCst);

    let (mut serve, base) = spawn_serve(&store, &api);
    // Serve has migrated the schema: the workers open it as it is.
    let mut workers = [
        spawn_worker(&store, "worker 1"),
        spawn_worker(&store, "worker 2"),
    ];

    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Answers::default());
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| tokio::spawn(send(base.clone(), next.clone(), stop.clone(), seen.clone())))
        .collect();

    // Under load with the store up, then down, then up again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = seen.ok.load(Ordering::SeqCst);
    assert!(before > 0, "pushes are acknowledged before the outage");
    let halted = Halted(Some(&dir));
    cluster_script("halt", &dir);
    tokio::time::sleep(OUTAGE).await;
    let unavailable = seen.unavailable.load(Ordering::SeqCst);
    halted.resume();
    let resumed = Instant::now();
    let _ = seen.resumed.set(resumed);
    let ok_at_resume = seen.ok.load(Ordering::SeqCst);
    tokio::time::sleep(AFTER).await;
    stop.store(true, Ordering::SeqCst);
    for s in senders {
        s.await.expect("sender");
    }
    let acked: BTreeSet<String> = seen.acked.lock().expect("acked").iter().cloned().collect();
    let sent = next.load(Ordering::SeqCst);
    eprintln!(
        "pg_restart: {} acknowledged ({before} before the outage, {} after it), \
         {unavailable} answered 503 during the outage, {} in all, {} transport errors",
        acked.len(),
        acked.len() as u64 - ok_at_resume,
        seen.unavailable.load(Ordering::SeqCst),
        seen.transport.load(Ordering::SeqCst),
    );
    assert!(unavailable > 0, "the outage was seen as 503");
    assert_eq!(
        seen.late_unavailable.load(Ordering::SeqCst),
        0,
        "pushes answered 503 more than {RECONNECTED_WITHIN:?} after the store was back"
    );
    assert!(
        acked.len() as u64 > ok_at_resume,
        "pushes are acknowledged again after the restart"
    );
    assert_eq!(acked.len(), sent, "every push was acknowledged in the end");

    // Every acknowledged push becomes one order that reaches the end of
    // its workflow; the processes ride the restart out. Within 40 s: less
    // than the inbox lease (60 s) and the workers' (6 min), so what the
    // outage interrupted is taken up when the store is back, not when a
    // lease lapses.
    let limit = Instant::now() + Duration::from_secs(40);
    let mut polls = 0u32;
    let settled = loop {
        let (s, _) = status(&store);
        let total = s["orders"].as_u64().unwrap_or(0);
        let by_state: BTreeMap<String, u64> =
            serde_json::from_value(s["by_state"].clone()).unwrap_or_default();
        let moving = psql(
            &url,
            &format!(
                "SELECT count(*) FROM {schema}.work_queue WHERE run_at <= now() + interval '1 minute' \
                 OR lease_owner IS NOT NULL"
            ),
        );
        let pending = psql(
            &url,
            &format!("SELECT count(*) FROM {schema}.tiktok_inbox WHERE processed_at IS NULL"),
        );
        let idle = moving[0][0] == "0" && pending[0][0] == "0";
        let all_shipped = by_state.get("shipped").copied() == Some(acked.len() as u64);
        if total == acked.len() as u64 && idle && all_shipped {
            eprintln!(
                "pg_restart: settled {:?} after the restart",
                resumed.elapsed()
            );
            break by_state;
        }
        if polls.is_multiple_of(20) {
            eprintln!(
                "pg_restart: {:?} after the restart: {total} orders, {by_state:?}, \
                 {} queue items due or leased, {} inbox entries pending",
                resumed.elapsed(),
                moving[0][0],
                pending[0][0]
            );
        }
        polls += 1;
        if Instant::now() >= limit {
            // What holds the orders that did not reach `shipped`.
            let stuck = psql(
                &url,
                &format!(
                    "SELECT o.tiktok_order_id, o.current_state, o.version, w.kind, \
                     w.run_at - now(), w.lease_owner, w.attempts \
                     FROM {schema}.orders o LEFT JOIN {schema}.work_queue w ON w.order_id = o.id \
                     WHERE o.current_state <> 'shipped' LIMIT 20"
                ),
            );
            eprintln!(
                "pg_restart: orders not shipped (id, state, version, work kind, due in, lease, attempts): {stuck:?}"
            );
        }
        assert!(
            Instant::now() < limit,
            "not settled {:?} after the restart: {total} orders of {}, by state {by_state:?}, \
             {} queue items due, {} inbox entries pending",
            resumed.elapsed(),
            acked.len(),
            moving[0][0],
            pending[0][0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    serve.assert_running();
    for w in &mut workers {
        w.assert_running();
    }
    eprintln!("pg_restart: settled, by state {settled:?}");
    assert_eq!(
        settled.get("shipped").copied(),
        Some(acked.len() as u64),
        "every order shipped (the end this machine allows without a delivery): {settled:?}"
    );

    // Exactly one order per acknowledged push, of that push's TikTok order.
    let orders = psql(
        &url,
        &format!(
            "SELECT tiktok_order_id, count(*) FROM {schema}.orders \
             WHERE user_id = '{TENANT}' GROUP BY 1"
        ),
    );
    let stored: BTreeSet<String> = orders.iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        stored, acked,
        "the orders are exactly the acknowledged pushes"
    );
    assert!(orders.iter().all(|r| r[1] == "1"), "one order per push");

    // No step twice: versions 1..=n, one history row each, and every order
    // took the same number of steps to the same state.
    let histories = psql(
        &url,
        &format!(
            "SELECT o.tiktok_order_id, o.version, count(t.*), min(t.version), max(t.version), \
                    count(DISTINCT (t.from_state, t.to_state)) \
             FROM {schema}.orders o JOIN {schema}.order_transitions t ON t.order_id = o.id \
             GROUP BY o.id, o.tiktok_order_id, o.version"
        ),
    );
    assert_eq!(histories.len(), acked.len(), "every order has a history");
    let steps: BTreeSet<&str> = histories.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(steps.len(), 1, "every order took as many steps: {steps:?}");
    for r in &histories {
        let (order, version, rows, min, max, distinct) = (&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]);
        assert_eq!(rows, version, "order {order}: one history row per version");
        assert_eq!(
            (min.as_str(), max),
            ("1", version),
            "order {order}: versions"
        );
        assert_eq!(distinct, rows, "order {order}: a step recorded twice");
    }

    let (s, code) = status(&store);
    assert_eq!(code, Some(0), "status exit code: {s}");
    assert_eq!(s["integrity"]["ok"], true, "integrity: {s}");

    // Still a graceful stop after the restart.
    for w in workers {
        let name = w.name;
        let status = w.terminate();
        assert!(status.success(), "{name}: {status}");
    }
    let status = serve.terminate();
    assert!(status.success(), "serve: {status}");
    psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}
