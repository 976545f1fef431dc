//! Durability through the real binary: `creatorflow worker` processes
//! killed with SIGKILL at random moments lose nothing, and two workers on
//! one PostgreSQL never record a step twice.

mod support;

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use support::{bin, ok, run};

/// `n` plain orders (standard lane, no rule sends them to review) spread
/// over three products, as JSON Lines in `dir`.
fn orders_file(dir: &std::path::Path, n: usize) -> String {
    let path = dir.join("orders.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for i in 0..n {
        writeln!(
            f,
            r#"{{"tiktok_order_id":"c{i}","customer_handle":"@buyer{i}","product_name":"Lamp","product_id":"p{}","quantity":1,"price":"19.99","created_at":"2025-06-12T10:00:00Z"}}"#,
            i % 3
        )
        .expect("write");
    }
    f.flush().expect("flush");
    path.display().to_string()
}

fn status(url: &str) -> serde_json::Value {
    let out = run(&["status", "--store", url, "--format", "json"]);
    // Exit 1 means an integrity problem: the JSON still says which.
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("status json")
}

fn shipped(status: &serde_json::Value) -> u64 {
    status["by_state"]["shipped"].as_u64().unwrap_or(0)
}

fn worker(url: &str, lease_ms: u64, extra: &[&str]) -> Child {
    bin()
        .args([
            "worker",
            "--store",
            url,
            "--poll-ms",
            "5",
            "--latency-ms",
            "1",
        ])
        .args(["--lease-ms", &lease_ms.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

/// 1,000 orders; a worker process is started and killed with SIGKILL at a
/// random moment, again and again, mid-step (handlers take a millisecond);
/// then a last worker runs until idle. Every order ends `shipped` with its
/// five steps recorded once each, and `status` reports no problem.
#[test]
fn sigkilled_workers_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let orders = orders_file(dir.path(), 1000);
    ok(&run(&["ingest", "--orders", &orders, "--store", &url]));

    let lease_ms = 300;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Kill until most of the work has been done under fire (at least 8 kills).
    while kills < 8 || shipped(&status(&url)) < 700 {
        assert!(Instant::now() < deadline, "workers made no progress");
        let mut w = worker(&url, lease_ms, &[]);
        std::thread::sleep(Duration::from_millis(rng.random_range(30..400)));
        w.kill().expect("SIGKILL");
        let died = w.wait().expect("wait");
        assert!(!died.success(), "the worker was killed, not finished");
        kills += 1;
    }
    eprintln!(
        "{kills} workers killed; {} orders shipped under fire",
        shipped(&status(&url))
    );
    // The last worker starts once the dead workers' leases have lapsed.
    std::thread::sleep(Duration::from_millis(lease_ms + 100));
    let last = worker(&url, lease_ms, &["--exit-when-idle", "--format", "json"]);
    let out = last.wait_with_output().expect("wait");
    ok(&out);

    let s = status(&url);
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
    assert_eq!(s["orders"], 1000);
    // Five steps per order, no more: the integrity check above replays each
    // history (a step recorded twice is a duplicate version or a bad replay).
    assert_eq!(shipped(&s), 1000, "{}", s["by_state"]);
}

/// The PostgreSQL server from `CREATORFLOW_TEST_PG`, in a fresh schema;
/// under CI a missing server fails the test.
fn pg_url() -> Option<String> {
    support::pg_server("worker").map(|url| support::fresh_schema(&url, "cf_crash"))
}

/// Two worker processes on one PostgreSQL database share 5,000 orders:
/// both do work, the steps they recorded add up to exactly five per order,
/// and `status` finds every history intact.
#[test]
fn two_postgres_workers_never_record_a_step_twice() {
    let Some(url) = pg_url() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let orders = orders_file(dir.path(), 5000);
    ok(&run(&["ingest", "--orders", &orders, "--store", &url]));
    let a = worker(&url, 30_000, &["--exit-when-idle", "--format", "json"]);
    let b = worker(&url, 30_000, &["--exit-when-idle", "--format", "json"]);
    let mut recorded = Vec::new();
    for w in [a, b] {
        let out = w.wait_with_output().expect("wait");
        let v: serde_json::Value = serde_json::from_str(ok(&out).trim()).expect("worker json");
        recorded.push(v["recorded"].as_u64().expect("recorded"));
    }
    assert!(
        recorded.iter().all(|&r| r > 0),
        "both workers worked: {recorded:?}"
    );
    assert_eq!(recorded.iter().sum::<u64>(), 5 * 5000, "{recorded:?}");
    let s = status(&url);
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
    assert_eq!(shipped(&s), 5000, "{}", s["by_state"]);
}
