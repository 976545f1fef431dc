//! `creatorflow ingest`, `worker` and `status` on an SQLite store in a temp dir.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("spawn creatorflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn ingest_worker_status_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let n = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/orders.jsonl"
    ))
    .expect("orders")
    .lines()
    .filter(|l| !l.trim().is_empty())
    .count();

    let out = run(&[
        "ingest",
        "--orders",
        "examples/orders.jsonl",
        "--store",
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out).trim(), format!("{n} new, 0 already known"));
    let out = run(&[
        "ingest",
        "--orders",
        "examples/orders.jsonl",
        "--store",
        &url,
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["new"], 0);
    assert_eq!(v["known"], n);

    let out = run(&["worker", "--store", &url, "--exit-when-idle"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = run(&["status", "--store", &url, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(v["orders"], n);
    assert_eq!(v["integrity"]["ok"], true);
    assert!(
        v["integrity"]["problems"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // Nothing is left in the early states: orders are shipped (waiting for
    // the carrier) or in manual review.
    let by_state = v["by_state"].as_object().expect("by_state");
    let settled: u64 = ["shipped", "failed", "delivered", "cancelled"]
        .iter()
        .filter_map(|s| by_state.get(*s).and_then(serde_json::Value::as_u64))
        .sum();
    assert_eq!(settled, n as u64, "{by_state:?}");
    let lanes: u64 = v["by_lane"]
        .as_object()
        .expect("by_lane")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(lanes, n as u64);

    let out = run(&["status", "--store", &url]);
    assert!(stdout(&out).contains("integrity: ok"), "{}", stdout(&out));
}

#[test]
fn ingest_reports_bad_lines_with_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let out = run(&[
        "ingest",
        "--orders",
        "examples/bad-orders.jsonl",
        "--store",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stderr.is_empty());
}

#[test]
fn unreadable_store_is_exit_2() {
    let out = run(&["status", "--store", "nosuch://x"]);
    assert_eq!(out.status.code(), Some(2));
}
