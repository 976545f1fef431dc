//! Worker heartbeats through the real binary (issue 16): the steps of a
//! `creatorflow worker` killed with SIGKILL are taken over by a live worker
//! within 30 s of its death (not after its 6-minute lease), on SQLite and
//! PostgreSQL; `worker --exit-when-idle` started after the crash waits for
//! them instead of reporting nothing to do; `status` shows them held by a
//! dead worker; a worker stopped (SIGSTOP) past its heartbeat's lapse and
//! then resumed records none of the steps taken over from it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{bin, ok, run};

/// `n` plain orders as JSON Lines in `dir`, ingested into `url`.
fn ingest(dir: &std::path::Path, url: &str, n: usize) {
    let path = dir.join("orders.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    for i in 0..n {
        writeln!(
            f,
            r#"{{"tiktok_order_id":"h{i}","customer_handle":"@buyer{i}","product_name":"Lamp","product_id":"p{}","quantity":1,"price":"19.99","created_at":"2025-06-12T10:00:00Z"}}"#,
            i % 3
        )
        .expect("write");
    }
    f.flush().expect("flush");
    ok(&run(&[
        "ingest",
        "--orders",
        &path.display().to_string(),
        "--store",
        url,
    ]));
}

fn status(url: &str) -> serde_json::Value {
    let out = run(&["status", "--store", url, "--format", "json"]);
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("status json")
}

fn shipped(s: &serde_json::Value) -> u64 {
    s["by_state"]["shipped"].as_u64().unwrap_or(0)
}

fn held(s: &serde_json::Value, key: &str) -> u64 {
    s["in_flight"][key].as_u64().expect("in_flight key")
}

/// A worker process, killed if the test ends (or fails) while it runs.
struct Worker(Option<Child>);

impl Worker {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    /// The process, no longer killed on drop.
    fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A worker whose every simulated call takes a second (an order's chain of
/// steps several seconds, a round of a lane's 100 orders as long): killed,
/// it leaves steps held. Its log goes to `log`.
fn slow_worker(url: &str, log: &std::path::Path, extra: &[&str]) -> Worker {
    Worker(Some(
        bin()
            .args([
                "worker",
                "--store",
                url,
                "--poll-ms",
                "20",
                "--latency-ms",
                "1000",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("spawn worker"),
    ))
}

/// Polls `status` until `done` holds (at most `limit`); the last status.
fn wait_for(
    url: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(url);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the worker holds steps (its heartbeat alive), with most of
/// the work still ahead: mid-run.
fn mid_run(url: &str, n: usize) {
    let s = wait_for(
        url,
        Duration::from_secs(60),
        "the worker never got going",
        |s| held(s, "held_by_live") > 0,
    );
    assert!(shipped(&s) < n as u64 / 2, "too late to be mid-run: {s}");
}

/// A `worker --exit-when-idle` (fast handlers) whose log is read as it
/// comes: the moment it first says it took steps over is noted.
struct Drainer {
    child: Child,
    took_over: Arc<Mutex<Option<Instant>>>,
    log: std::thread::JoinHandle<String>,
}

impl Drainer {
    fn start(url: &str) -> Drainer {
        let mut child = bin()
            .args([
                "worker",
                "--store",
                url,
                "--exit-when-idle",
                "--format",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn worker");
        let took_over = Arc::new(Mutex::new(None));
        let (seen, stderr) = (took_over.clone(), child.stderr.take().expect("stderr"));
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("took over") {
                    seen.lock().unwrap().get_or_insert_with(Instant::now);
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Drainer {
            child,
            took_over,
            log,
        }
    }

    /// Waits for it to exit; its JSON summary, and when it took over.
    fn finish(self) -> (serde_json::Value, Option<Instant>) {
        let out = self.child.wait_with_output().expect("wait");
        let log = self.log.join().expect("log reader");
        assert!(out.status.success(), "exit {:?}: {log}", out.status.code());
        let summary = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
            .unwrap_or_else(|e| panic!("worker json: {e}: {log}"));
        let took_over = *self.took_over.lock().unwrap();
        (summary, took_over)
    }
}

/// The crash scenario on `url`: a slow worker (default heartbeat: every
/// 5 s, lapsing after 15 s; default 6-minute lease) is killed mid-run with
/// hundreds of orders left; `worker --exit-when-idle` started at once waits
/// for the dead worker's steps, takes them over within 30 s of the kill and
/// finishes every order, each step recorded once.
fn killed_worker_is_taken_over(url: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let n = 300;
    ingest(dir.path(), url, n);
    let mut a = slow_worker(url, &dir.path().join("a.log"), &[]);
    mid_run(url, n);
    a.child().kill().expect("SIGKILL");
    let killed = Instant::now();
    a.child().wait().expect("wait");
    let s = status(url);
    assert!(held(&s, "steps") > 0, "the dead worker holds steps: {s}");
    assert!(shipped(&s) < n as u64, "work left: {s}");
    let b = Drainer::start(url);
    let (summary, took_over) = b.finish();
    let took_over = took_over.expect("the drainer said it took steps over");
    let takeover = took_over.duration_since(killed);
    eprintln!("takeover {:.1} s after SIGKILL", takeover.as_secs_f64());
    assert!(
        takeover < Duration::from_secs(30),
        "taken over {takeover:?} after the kill"
    );
    assert!(summary["taken_over"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["recorded"].as_u64().unwrap() > 0, "{summary}");
    let s = status(url);
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
    assert_eq!(shipped(&s), n as u64, "{}", s["by_state"]);
    assert_eq!(held(&s, "steps"), 0, "{s}");
}

#[test]
fn a_killed_workers_steps_are_taken_over_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    killed_worker_is_taken_over(&url);
}

/// The PostgreSQL server from `CREATORFLOW_TEST_PG`, in a fresh schema;
/// under CI a missing server fails the test.
fn pg_url() -> Option<String> {
    support::pg_server("takeover").map(|url| support::fresh_schema(&url, "cf_takeover"))
}

#[test]
fn a_killed_workers_steps_are_taken_over_on_postgres() {
    let Some(url) = pg_url() else { return };
    killed_worker_is_taken_over(&url);
}

/// `status` tells steps held by a live worker from those of a dead one:
/// a worker (heartbeat every 200 ms, lapsing after 1 s) killed mid-run
/// shows as holding its steps alive, then, once its heartbeat lapsed and
/// while no live worker took them over, as dead (text and JSON, exit 0:
/// they are not lost); a worker run afterwards takes them over at once.
#[test]
fn status_shows_steps_held_by_a_dead_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let n = 200;
    ingest(dir.path(), &url, n);
    let beat = ["--heartbeat-ms", "200", "--heartbeat-lapse-ms", "1000"];
    let mut a = slow_worker(&url, &dir.path().join("a.log"), &beat);
    mid_run(&url, n);
    a.child().kill().expect("SIGKILL");
    a.child().wait().expect("wait");
    let s = wait_for(&url, Duration::from_secs(30), "never dead", |s| {
        held(s, "held_by_dead") > 0
    });
    assert_eq!(held(&s, "held_by_live"), 0, "{s}");
    assert_eq!(held(&s, "steps"), held(&s, "held_by_dead"), "{s}");
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
    let text = ok(&run(&["status", "--store", &url]));
    let line = text
        .lines()
        .find(|l| l.starts_with("in flight:"))
        .unwrap_or_else(|| panic!("no in-flight line: {text}"));
    assert!(
        line.contains(&format!(
            "held by live workers 0, by dead workers {}",
            held(&s, "held_by_dead")
        )),
        "{line}"
    );
    let (summary, took_over) = Drainer::start(&url).finish();
    assert!(took_over.is_some(), "{summary}");
    assert_eq!(
        summary["taken_over"].as_u64(),
        Some(held(&s, "held_by_dead")),
        "{summary}"
    );
    let s = status(&url);
    assert_eq!(shipped(&s), n as u64, "{}", s["by_state"]);
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
}

/// A worker that beats every 200 ms and lapses after 1 s, printing its
/// summary as JSON.
const FAST_BEAT: [&str; 6] = [
    "--heartbeat-ms",
    "200",
    "--heartbeat-lapse-ms",
    "1000",
    "--format",
    "json",
];

/// Fencing: a worker stopped with SIGSTOP mid-step, past its heartbeat's
/// lapse, has its steps taken over and finished by `worker
/// --exit-when-idle`; resumed (SIGCONT), it goes on with the steps it was
/// running and cannot record them (its leases are gone): the steps the two
/// workers recorded add up to exactly five per order, every history
/// replays, and the resumed worker stops cleanly on SIGTERM.
#[test]
fn a_worker_stopped_past_its_lapse_records_nothing_taken_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let n = 200;
    ingest(dir.path(), &url, n);
    let mut a = slow_worker(&url, &dir.path().join("a.log"), &FAST_BEAT);
    let pid = a.child().id().to_string();
    mid_run(&url, n);
    let signal = |name: &str| {
        let s = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(s.success(), "kill -{name}");
    };
    signal("STOP");
    let (b, took_over) = Drainer::start(&url).finish();
    assert!(took_over.is_some(), "{b}");
    assert!(b["taken_over"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(shipped(&status(&url)), n as u64);
    signal("CONT");
    // Let it finish the round it was in (its writes are refused), then stop it.
    std::thread::sleep(Duration::from_secs(3));
    signal("TERM");
    let out = a.take().wait_with_output().expect("wait");
    let a: serde_json::Value = serde_json::from_str(ok(&out).trim()).expect("worker json");
    let recorded = a["recorded"].as_u64().unwrap() + b["recorded"].as_u64().unwrap();
    assert_eq!(recorded, 5 * n as u64, "a: {a}, b: {b}");
    let s = status(&url);
    assert_eq!(s["integrity"]["ok"], true, "{}", s["integrity"]);
    assert_eq!(shipped(&s), n as u64, "{}", s["by_state"]);
    assert_eq!(held(&s, "steps"), 0, "{s}");
}

/// A live worker is never robbed: its steps take several seconds each
/// (much longer than its 1-s heartbeat lapse), and `worker
/// --exit-when-idle` started meanwhile waits for them instead of taking
/// them over, because the heartbeat is renewed while the steps run.
#[test]
fn a_live_worker_with_slow_steps_is_not_robbed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    // One lane's worth: the slow worker claims every order in its first round.
    let n = 100;
    ingest(dir.path(), &url, n);
    let mut a = slow_worker(&url, &dir.path().join("a.log"), &FAST_BEAT);
    mid_run(&url, n);
    let (b, took_over) = Drainer::start(&url).finish();
    assert!(took_over.is_none(), "{b}");
    assert_eq!(b["taken_over"], 0, "{b}");
    assert_eq!(b["recorded"], 0, "the live worker did every step: {b}");
    assert_eq!(shipped(&status(&url)), n as u64);
    let pid = a.child().id().to_string();
    let term = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = a.take().wait_with_output().expect("wait");
    let a: serde_json::Value = serde_json::from_str(ok(&out).trim()).expect("worker json");
    assert_eq!(a["recorded"], 5 * n as u64, "{a}");
}
