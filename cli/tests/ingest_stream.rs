//! `creatorflow ingest` as a stream, through the binary on an SQLite store:
//! a generated file in several batches, the same file again (all known), a
//! run killed part-way then run again (every order exactly once), and a bad
//! line mid-file (a located error, the batches around it kept, a rerun
//! after the fix completes). Speed and memory are measured, not asserted
//! here (BENCHMARKS.md).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Orders per store transaction (`creatorflow::engine::BULK_BATCH`).
const BATCH: usize = 5_000;

/// The binary, logging errors only (stderr then holds what ingest reports,
/// not a slow statement's warning on a busy machine).
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_creatorflow"));
    c.env("RUST_LOG", "error");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spawn creatorflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Order `i` of a generated stream as a JSON line (several products and
/// customers, a few minutes apart, so windows and lanes vary).
fn line(i: usize) -> String {
    let secs = 1_749_700_000 + (i as i64) * 17;
    let created = chrono::DateTime::from_timestamp(secs, 0)
        .expect("a time")
        .format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        r#"{{"tiktok_order_id":"T{i}","customer_handle":"@c{}","customer_tier":"{}","product_name":"Product {}","product_id":"p{}","quantity":{},"price":"{}.{:02}","shipping_zone":"US-EAST","created_at":"{created}"}}"#,
        i % 997,
        if i.is_multiple_of(7) {
            "vip"
        } else {
            "regular"
        },
        i % 41,
        i % 41,
        1 + i % 5,
        5 + i % 300,
        i % 100,
    )
}

fn lines(n: usize) -> String {
    let mut s = String::with_capacity(n * 260);
    for i in 0..n {
        s.push_str(&line(i));
        s.push('\n');
    }
    s
}

/// A temp dir with an SQLite store URL in it.
fn store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    (dir, url)
}

/// `status --format json` of the store: (orders, integrity ok).
fn status(url: &str) -> (u64, bool) {
    let out = run(&["status", "--store", url, "--format", "json"]);
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (
        v["orders"].as_u64().expect("orders"),
        v["integrity"]["ok"] == true,
    )
}

fn ingest(file: &str, url: &str) -> Output {
    run(&["ingest", "--orders", file, "--store", url])
}

#[test]
fn a_generated_file_in_batches_then_all_known() {
    let (dir, url) = store();
    let n = 2 * BATCH + 1_234;
    let file = dir.path().join("orders.jsonl");
    std::fs::write(&file, lines(n)).expect("write");
    let file = file.display().to_string();

    let out = ingest(&file, &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{n} new, 0 already known"));
    assert!(!stderr(&out).contains("ingest ["), "no bar off a terminal");
    assert_eq!(status(&url), (n as u64, true));

    let out = run(&[
        "ingest", "--orders", &file, "--store", &url, "--format", "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["new"], 0);
    assert_eq!(v["known"], n);
    assert_eq!(v["invalid"], 0);
    assert_eq!(status(&url), (n as u64, true));

    // Standard input, with duplicates inside the stream: known too.
    let mut child = bin()
        .args(["ingest", "--orders", "-", "--store", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let extra = format!("{}{}\n{}\n", lines(10), line(n), line(n));
    stdin.write_all(extra.as_bytes()).expect("write");
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1 new, 11 already known");
    assert_eq!(status(&url), (n as u64 + 1, true));
}

#[test]
fn a_killed_run_run_again_stores_every_order_once() {
    let (dir, url) = store();
    let n = 6 * BATCH;
    let all = lines(n);
    let file = dir.path().join("orders.jsonl");
    std::fs::write(&file, &all).expect("write");

    // Feed the first part through standard input and keep it open, so the
    // process is certainly mid-run when it is killed.
    let mut child = bin()
        .args(["ingest", "--orders", "-", "--store", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let head: String = all
        .lines()
        .take(3 * BATCH + 100)
        .map(|l| format!("{l}\n"))
        .collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(head.as_bytes()).expect("feed");
        stdin
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let stored = loop {
        let (orders, _) = status(&url);
        if orders >= BATCH as u64 {
            break orders;
        }
        assert!(Instant::now() < deadline, "no batch committed in time");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(stored < n as u64);
    child.kill().expect("kill");
    child.wait().expect("reaped");
    let _open = writer.join().expect("writer");

    let (before, ok) = status(&url);
    assert!(ok, "integrity after the kill");
    assert!(before >= stored && before < n as u64, "{before}");
    assert_eq!(before % BATCH as u64, 0, "batches are whole: {before}");

    let out = ingest(&file.display().to_string(), &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("{} new, {before} already known", n as u64 - before)
    );
    assert_eq!(status(&url), (n as u64, true));
}

#[test]
fn a_bad_line_mid_file_is_located_and_the_rest_is_kept() {
    let (dir, url) = store();
    let n = 2 * BATCH + 500;
    let bad_at = BATCH + 1_001; // 1-based: in the second batch
    let good = lines(n);
    let broken: String = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == bad_at {
                format!(
                    "{}\n",
                    l.replace(r#""quantity":"#, r#""quantity":"two","x":"#)
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let file = dir.path().join("orders.jsonl");
    std::fs::write(&file, broken).expect("write");
    let name = file.display().to_string();

    let out = ingest(&name, &url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{name}:{bad_at}: ")) && err.contains("quantity"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(
        stdout(&out),
        format!("{} new, 0 already known, 1 invalid", n - 1)
    );
    assert_eq!(status(&url), (n as u64 - 1, true));

    std::fs::write(&file, good).expect("fix");
    let out = ingest(&name, &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("1 new, {} already known", n - 1));
    assert_eq!(status(&url), (n as u64, true));
}
