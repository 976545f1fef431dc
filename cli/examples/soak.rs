//! The soak run (issue 16): `creatorflow serve` and a separate
//! `creatorflow worker` (the built binaries, as separate processes) on a
//! PostgreSQL store, under signed TikTok ORDER_STATUS_CHANGE webhooks at a
//! fixed rate for a long time (every n-th one a re-sent duplicate, as TikTok
//! does), with one PostgreSQL restart (`pg_ctl -m fast stop`, start) at about
//! 1/3 of the run and one SIGKILL of the worker at about 2/3 (a new worker is
//! started at once). Every refused push (503 while the store is down) or
//! failed request is retried until it is acknowledged, as TikTok retries.
//!
//! Serve runs workers in-process too (`serve` always does): serve's workers
//! and the worker process claim from the same leased queue, whichever asks
//! first; the steps the killed worker held stay locked until their lease
//! lapses (each lane's step timeout, 6 minutes by default), then serve's
//! workers or the new worker take them over.
//!
//! Every `--sample-seconds` the resident set (RSS) of serve and of the
//! worker is read from `/proc`. At the end the run waits for the inbox and
//! the queue to drain (allow more than the lease), then checks on the
//! database itself (as the superuser, no row-level security): every
//! acknowledged notification became exactly one order (by TikTok order id),
//! none lost, none extra, no order recorded a step twice; and memory: serve's
//! RSS at the end of the load is at most `--rss-bound` (1.5) times its RSS
//! after the warm-up. It prints a JSON report (also written to
//! `OUT/report.json`) and exits 1 if a check fails, 2 if the harness could
//! not run.
//!
//! ```sh
//! scripts/soak.sh [--minutes 30] [--rate 200]      # builds, starts PostgreSQL, runs this
//! # or, against a cluster of scripts/pg-test-cluster.sh (CREATORFLOW_TEST_PG, CREATORFLOW_PG_DIR):
//! cargo run --release -p creatorflow-cli --example soak -- --minutes 2 --rate 200
//! ```
//!
//! Flags: `--minutes M` (30), `--rate R` (200), `--duplicate-every N` (10),
//! `--concurrency C` (64), `--outage-seconds S` (5), `--sample-seconds S`
//! (60), `--warmup-seconds S` (120, at most a sixth of the run),
//! `--drain-minutes M` (15), `--rss-bound X` (1.5), `--worker-lease-ms MS`
//! (the worker's `--lease-ms`, for short runs that should not wait the
//! 6-minute lease out; default: the lanes' own), `--rules DIR` (serve's and the worker's pack; default: the
//! shipped one), `--bin PATH` (the
//! `creatorflow` next to this example's directory), `--out DIR`
//! (`target/soak`), `--store URL` and `--pg-dir DIR` (default: the
//! environment variables above).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::{get, post};
use creatorflow::tiktok::sign_webhook;
use creatorflow_cli::load::{APP_KEY, APP_SECRET, Percentiles, SHOP, order_json, percentiles};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Semaphore;

/// The tenant the soak run's shop is routed to.
const TENANT: &str = "creator-soak";
/// The admin token serve is given.
const ADMIN_TOKEN: &str = "soak-admin-token";
/// The shop's cipher in the mock Order API.
const CIPHER: &str = "ROW_soak";
/// The first TikTok order id.
const FIRST_ORDER: u64 = 576_000_000_000_000_000;

type Result<T> = std::result::Result<T, String>;

/// What to run.
#[derive(Debug, Clone, Serialize)]
struct Config {
    minutes: f64,
    rate: u32,
    duplicate_every: u64,
    concurrency: usize,
    outage_seconds: u64,
    sample_seconds: u64,
    warmup_seconds: u64,
    drain_minutes: f64,
    rss_bound: f64,
    /// The worker processes' `--lease-ms` (none: each lane's own).
    worker_lease_ms: Option<u64>,
    /// A rule pack for serve and the worker (`--rules`; none: the shipped one).
    rules: Option<PathBuf>,
    bin: PathBuf,
    out: PathBuf,
    #[serde(skip)]
    store: String,
    #[serde(skip)]
    pg_dir: String,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Config {
    fn parse(args: &[String]) -> Result<Config> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        // target/<profile>/examples/soak → target/<profile>/creatorflow
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("creatorflow"))
            .unwrap_or_else(|| PathBuf::from("creatorflow"));
        let config = Config {
            minutes: arg(args, "--minutes", 30.0f64)?,
            rate: arg(args, "--rate", 200u32)?.max(1),
            duplicate_every: arg(args, "--duplicate-every", 10u64)?,
            concurrency: arg(args, "--concurrency", 64usize)?.max(1),
            outage_seconds: arg(args, "--outage-seconds", 5u64)?,
            sample_seconds: arg(args, "--sample-seconds", 60u64)?.max(1),
            warmup_seconds: arg(args, "--warmup-seconds", 120u64)?,
            drain_minutes: arg(args, "--drain-minutes", 15.0f64)?,
            rss_bound: arg(args, "--rss-bound", 1.5f64)?,
            worker_lease_ms: match arg(args, "--worker-lease-ms", 0u64)? {
                0 => None,
                ms => Some(ms),
            },
            rules: match arg(args, "--rules", String::new())? {
                r if r.is_empty() => None,
                r => Some(PathBuf::from(r)),
            },
            bin: arg(args, "--bin", bin)?,
            out: arg(args, "--out", PathBuf::from("target/soak"))?,
            store: arg(
                args,
                "--store",
                env("CREATORFLOW_TEST_PG").unwrap_or_default(),
            )?,
            pg_dir: arg(
                args,
                "--pg-dir",
                env("CREATORFLOW_PG_DIR").unwrap_or_default(),
            )?,
        };
        if config.store.is_empty() || config.pg_dir.is_empty() {
            return Err(
                "needs a cluster of scripts/pg-test-cluster.sh: CREATORFLOW_TEST_PG and \
                 CREATORFLOW_PG_DIR (or --store and --pg-dir); scripts/soak.sh starts one"
                    .into(),
            );
        }
        if config.minutes.is_nan() || config.minutes <= 0.0 {
            return Err("--minutes must be positive".into());
        }
        if !config.bin.is_file() {
            return Err(format!(
                "{}: no creatorflow binary (build it: cargo build --release -p creatorflow-cli, or pass --bin)",
                config.bin.display()
            ));
        }
        Ok(config)
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.minutes * 60.0)
    }

    /// When serve's baseline RSS is taken: after the warm-up, at most a
    /// sixth into the run (before the restart).
    fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_seconds).min(self.duration() / 6)
    }
}

// ---------------------------------------------------------------- the mock

/// A loopback Order API: the shop and, for any id asked for, an order
/// awaiting shipment (requests are not verified; the serve under test signs
/// them).
async fn mock_api() -> Result<String> {
    async fn shops() -> String {
        format!(
            r#"{{"code":0,"message":"Success","request_id":"r","data":{{"shops":[{{"id":"{SHOP}","cipher":"{CIPHER}"}}]}}}}"#
        )
    }
    async fn details(Query(q): Query<HashMap<String, String>>) -> String {
        let orders: Vec<String> = q
            .get("ids")
            .map(|s| {
                s.split(',')
                    .filter_map(|i| i.parse::<u64>().ok())
                    .map(order_json)
                    .collect()
            })
            .unwrap_or_default();
        format!(
            r#"{{"code":0,"message":"Success","request_id":"r","data":{{"orders":[{}]}}}}"#,
            orders.join(",")
        )
    }
    async fn search() -> String {
        r#"{"code":0,"message":"Success","request_id":"r","data":{"orders":[],"next_page_token":""}}"#
            .to_owned()
    }
    let app = Router::new()
        .route("/authorization/202309/shops", get(shops))
        .route("/order/202309/orders", get(details))
        .route("/order/202309/orders/search", post(search));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

// ---------------------------------------------------------------- processes

/// A `creatorflow` process; killed when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `None` while it runs, else how it ended.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(s)) => Some(s.to_string()),
            Err(e) => Some(e.to_string()),
        }
    }

    /// SIGTERM, then how it ended (`exit status: 0` for a graceful stop).
    fn terminate(&mut self) -> String {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => e.to_string(),
        }
    }
}

fn log_file(out: &Path, name: &str) -> Result<File> {
    File::create(out.join(name)).map_err(|e| format!("{}: {e}", out.join(name).display()))
}

/// `--rules DIR` if a pack was given.
fn rules_args(config: &Config) -> Vec<std::ffi::OsString> {
    match &config.rules {
        Some(dir) => vec!["--rules".into(), dir.clone().into_os_string()],
        None => Vec::new(),
    }
}

/// Serve on `store`, its Order API at `api`; its base URL.
fn spawn_serve(config: &Config, store: &str, api: &str) -> Result<(Proc, String)> {
    let mut child = Command::new(&config.bin)
        .args(["serve", "--store", store, "--listen", "127.0.0.1:0"])
        .args(["--shop", &format!("{SHOP}={TENANT}"), "--api-base", api])
        .args(["--poll-every", "0", "--poll-ms", "20"])
        .args(rules_args(config))
        .env("TIKTOK_APP_KEY", APP_KEY)
        .env("TIKTOK_APP_SECRET", APP_SECRET)
        .env("TIKTOK_ACCESS_TOKEN", "soak-token")
        .env("CREATORFLOW_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(log_file(&config.out, "serve.log")?)
        .spawn()
        .map_err(|e| format!("{}: {e}", config.bin.display()))?;
    let stdout = child.stdout.take().ok_or("serve: no stdout")?;
    let proc = Proc {
        name: "serve".into(),
        child,
    };
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.trim().strip_prefix("listening on ") {
                    break addr.to_owned();
                }
            }
            _ => return Err("serve ended before listening (see serve.log)".into()),
        }
    };
    // Keep draining stdout so that serve never blocks on it.
    std::thread::spawn(move || for _ in lines {});
    Ok((proc, base))
}

fn spawn_worker(config: &Config, store: &str, n: u32) -> Result<Proc> {
    let mut command = Command::new(&config.bin);
    command.args(["worker", "--store", store, "--poll-ms", "20"]);
    command.args(rules_args(config));
    if let Some(ms) = config.worker_lease_ms {
        command.args(["--lease-ms", &ms.to_string()]);
    }
    let child = command
        .stdout(log_file(&config.out, &format!("worker-{n}.out"))?)
        .stderr(log_file(&config.out, &format!("worker-{n}.log"))?)
        .spawn()
        .map_err(|e| format!("{}: {e}", config.bin.display()))?;
    Ok(Proc {
        name: format!("worker {n}"),
        child,
    })
}

/// A process's resident set in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `scripts/pg-test-cluster.sh COMMAND DIR`.
fn cluster_script(command: &str, dir: &str) -> Result<()> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg-test-cluster.sh");
    let status = Command::new("bash")
        .args([script, command, dir])
        .status()
        .map_err(|e| format!("pg-test-cluster.sh {command}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("pg-test-cluster.sh {command} failed: {status}"))
    }
}

// ---------------------------------------------------------------- the load

/// What the senders saw.
#[derive(Debug, Default)]
struct Answers {
    /// Requests answered 200 (one per push; a retried push counts once).
    acked: AtomicU64,
    /// Answers 503 (retried).
    refused: AtomicU64,
    /// Requests with no answer (retried).
    transport: AtomicU64,
    /// Other answers (retried; none expected).
    other: AtomicU64,
    /// Pushes that needed more than one request.
    retried_pushes: AtomicU64,
    /// Acknowledgement latency of the request answered 200, ms.
    latencies: Mutex<Vec<f64>>,
    /// From the push's first request to its acknowledgement, ms, of the
    /// pushes that needed retries.
    retried_ms: Mutex<Vec<f64>>,
    /// The notifications acknowledged (by number).
    acked_n: Mutex<Vec<u64>>,
}

/// The body of notification `n` (TikTok order `FIRST_ORDER + n`).
fn webhook(n: u64) -> Vec<u8> {
    creatorflow_cli::load::webhook(n)
}

/// Sends push `n` until it is answered 200, retrying like TikTok (soon at
/// first, then backing off to 5 s).
async fn push(client: reqwest::Client, url: String, n: u64, answers: Arc<Answers>) {
    let body = webhook(n);
    let signature = sign_webhook(APP_KEY, APP_SECRET, &body);
    let first = Instant::now();
    let mut attempt = 0u32;
    loop {
        let t = Instant::now();
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", &signature)
            .body(body.clone())
            .send()
            .await;
        let status = match r {
            Ok(resp) => {
                let s = resp.status().as_u16();
                let _ = resp.bytes().await;
                Some(s)
            }
            Err(_) => None,
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        match status {
            Some(200) => {
                answers.acked.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut v) = answers.latencies.lock() {
                    v.push(ms);
                }
                if let Ok(mut v) = answers.acked_n.lock() {
                    v.push(n);
                }
                if attempt > 0 {
                    answers.retried_pushes.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut v) = answers.retried_ms.lock() {
                        v.push(first.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                return;
            }
            Some(503) => answers.refused.fetch_add(1, Ordering::Relaxed),
            Some(_) => answers.other.fetch_add(1, Ordering::Relaxed),
            None => answers.transport.fetch_add(1, Ordering::Relaxed),
        };
        attempt += 1;
        let wait = (250u64 << attempt.min(5)).min(5000);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

// ---------------------------------------------------------------- the report

/// One RSS sample.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    /// Seconds since the load started.
    at_s: f64,
    serve_kib: Option<u64>,
    worker: String,
    worker_kib: Option<u64>,
    /// Pushes acknowledged so far.
    acked: u64,
}

/// RSS figures of one process, KiB.
#[derive(Debug, Clone, Default, Serialize)]
struct Memory {
    start_kib: u64,
    after_warmup_kib: u64,
    end_kib: u64,
    max_kib: u64,
    after_drain_kib: u64,
    /// `end / after_warmup`.
    growth: f64,
}

/// What happened to the killed worker's claims.
#[derive(Debug, Clone, Default, Serialize)]
struct Kill {
    at_s: f64,
    worker: String,
    /// Queue items it held leased when it was killed.
    leased_at_kill: i64,
    /// Seconds after the kill until no item was leased by it any more
    /// (`None`: still some at the end).
    released_after_s: Option<f64>,
}

/// The run's report.
#[derive(Debug, Clone, Default, Serialize)]
struct Report {
    config: Option<Config>,
    sent_pushes: u64,
    duplicates_sent: u64,
    distinct_notifications: u64,
    acked: u64,
    refused_503: u64,
    transport_errors: u64,
    other_answers: u64,
    /// Requests beyond the first, per push (refused + transport + other).
    retries: u64,
    retried_pushes: u64,
    send_seconds: f64,
    achieved_rate: f64,
    /// Latency of the acknowledging request.
    ack_ms: Percentiles,
    /// First request → acknowledgement, pushes that needed retries.
    retried_push_ms: Percentiles,
    restart_at_s: f64,
    restart_down_s: f64,
    kill: Kill,
    drain_seconds: f64,
    drained: bool,
    orders: i64,
    orders_lost: u64,
    orders_extra: u64,
    orders_duplicated: i64,
    /// Orders whose history is not versions 1..=n with one row each.
    orders_bad_history: i64,
    by_state: BTreeMap<String, i64>,
    steps_completed: i64,
    inbox_pending: i64,
    queue_due_or_leased: i64,
    serve_memory: Memory,
    worker1_memory: Memory,
    worker2_memory: Memory,
    samples: Vec<Sample>,
    /// Processes that ended during the run (a failure).
    died: Vec<String>,
    stopped: BTreeMap<String, String>,
    exactly_once: bool,
    memory_ok: bool,
}

fn memory(samples: &[(f64, Option<u64>)], warmup: f64, end: f64) -> Memory {
    let values: Vec<(f64, u64)> = samples
        .iter()
        .filter_map(|(t, v)| v.map(|v| (*t, v)))
        .collect();
    let Some(&(_, start)) = values.first() else {
        return Memory::default();
    };
    let after_warmup = values
        .iter()
        .find(|(t, _)| *t >= warmup)
        .map_or(start, |v| v.1);
    let during: Vec<&(f64, u64)> = values.iter().filter(|(t, _)| *t <= end).collect();
    let end_kib = during.last().map_or(start, |v| v.1);
    Memory {
        start_kib: start,
        after_warmup_kib: after_warmup,
        end_kib,
        max_kib: values.iter().map(|v| v.1).max().unwrap_or(0),
        after_drain_kib: values.last().map_or(0, |v| v.1),
        growth: end_kib as f64 / after_warmup.max(1) as f64,
    }
}

// ---------------------------------------------------------------- the run

/// The database as the superuser, for the checks.
struct Db {
    pool: PgPool,
    schema: String,
}

impl Db {
    async fn count(&self, sql: &str) -> Result<i64> {
        let sql = sql.replace("{s}", &self.schema);
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| format!("{sql}: {e}"))
    }

    /// (inbox entries pending, queue items due within a minute or leased).
    async fn backlog(&self) -> Result<(i64, i64)> {
        Ok((
            self.count("SELECT count(*) FROM {s}.tiktok_inbox WHERE processed_at IS NULL")
                .await?,
            self.count(
                "SELECT count(*) FROM {s}.work_queue \
                 WHERE run_at <= now() + interval '1 minute' OR lease_owner IS NOT NULL",
            )
            .await?,
        ))
    }

    async fn leased_by(&self, owner: &str) -> Result<i64> {
        let sql = format!(
            "SELECT count(*) FROM {}.work_queue WHERE lease_owner = $1",
            self.schema
        );
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(owner)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| e.to_string())
    }
}

async fn run(config: Config) -> Result<Report> {
    std::fs::create_dir_all(&config.out).map_err(|e| format!("{}: {e}", config.out.display()))?;
    let schema = format!("soak_{}", std::process::id());
    let sep = if config.store.contains('?') { '&' } else { '?' };
    let store = format!("{}{sep}schema={schema}", config.store);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&config.store)
        .await
        .map_err(|e| format!("connecting to the cluster: {e}"))?;
    let db = Arc::new(Db { pool, schema });
    let api = mock_api().await?;
    let (mut serve, base) = spawn_serve(&config, &store, &api)?;
    // Serve has migrated the schema: the worker opens it as it is.
    let worker = Arc::new(Mutex::new(spawn_worker(&config, &store, 1)?));
    eprintln!(
        "soak: serve (pid {}) at {base}, worker 1 (pid {}), store schema {}, out {}",
        serve.pid(),
        worker.lock().map_err(|e| e.to_string())?.pid(),
        db.schema,
        config.out.display()
    );

    let answers = Arc::new(Answers::default());
    let duration = config.duration();
    let started = Instant::now();
    let serve_pid = serve.pid();
    let died = Arc::new(Mutex::new(Vec::<String>::new()));

    // RSS samples, every `sample_seconds` until told to stop.
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sample_now = {
        let (samples, worker, answers) = (samples.clone(), worker.clone(), answers.clone());
        move || {
            let (name, pid) = match worker.lock() {
                Ok(w) => (w.name.clone(), w.pid()),
                Err(_) => (String::new(), 0),
            };
            let s = Sample {
                at_s: started.elapsed().as_secs_f64(),
                serve_kib: rss_kib(serve_pid),
                worker: name,
                worker_kib: rss_kib(pid),
                acked: answers.acked.load(Ordering::Relaxed),
            };
            eprintln!(
                "soak: {:>6.0} s: serve {} KiB, {} {} KiB, {} acknowledged",
                s.at_s,
                s.serve_kib.unwrap_or(0),
                s.worker,
                s.worker_kib.unwrap_or(0),
                s.acked
            );
            if let Ok(mut v) = samples.lock() {
                v.push(s);
            }
        }
    };
    let sampler = {
        let sample_now = sample_now.clone();
        let every = Duration::from_secs(config.sample_seconds);
        tokio::spawn(async move {
            loop {
                sample_now();
                tokio::time::sleep(every).await;
            }
        })
    };

    // The restart at 1/3.
    let restart = {
        let (dir, outage) = (config.pg_dir.clone(), config.outage_seconds);
        tokio::spawn(async move {
            tokio::time::sleep_until((started + duration / 3).into()).await;
            let at = started.elapsed().as_secs_f64();
            eprintln!("soak: {at:.0} s: restarting PostgreSQL (pg_ctl -m fast stop, start)");
            let d = dir.clone();
            tokio::task::spawn_blocking(move || cluster_script("halt", &d))
                .await
                .map_err(|e| e.to_string())??;
            tokio::time::sleep(Duration::from_secs(outage)).await;
            tokio::task::spawn_blocking(move || cluster_script("resume", &dir))
                .await
                .map_err(|e| e.to_string())??;
            let down = started.elapsed().as_secs_f64() - at;
            eprintln!("soak: PostgreSQL back after {down:.1} s");
            Ok::<_, String>((at, down))
        })
    };

    // The SIGKILL at 2/3, a new worker at once, and a watch on the dead
    // worker's leases.
    let kill = {
        let (worker, db, config, store) =
            (worker.clone(), db.clone(), config.clone(), store.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until((started + duration * 2 / 3).into()).await;
            let at = started.elapsed().as_secs_f64();
            let fresh = spawn_worker(&config, &store, 2)?;
            let (name, pid) = {
                let mut w = worker.lock().map_err(|e| e.to_string())?;
                let old = std::mem::replace(&mut *w, fresh);
                (old.name.clone(), old.pid())
                // `old` is dropped here: SIGKILL, then reaped.
            };
            let owner = format!("worker-{pid}");
            let leased = db.leased_by(&owner).await.unwrap_or(-1);
            eprintln!(
                "soak: {at:.0} s: SIGKILLed {name} (pid {pid}), {leased} queue items leased by it; worker 2 started"
            );
            let mut report = Kill {
                at_s: at,
                worker: owner.clone(),
                leased_at_kill: leased,
                released_after_s: None,
            };
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if let Ok(0) = db.leased_by(&owner).await {
                    let after = started.elapsed().as_secs_f64() - at;
                    eprintln!(
                        "soak: the killed worker's leases were all taken over {after:.0} s after the kill"
                    );
                    report.released_after_s = Some(after);
                    return Ok::<_, String>(report);
                }
            }
        })
    };

    // The load.
    let url = format!("{base}/webhooks/tiktok-shop");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let total = (f64::from(config.rate) * duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.rate));
    let mut tasks = tokio::task::JoinSet::new();
    let (mut next_new, mut duplicates_sent) = (0u64, 0u64);
    let mut last_check = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let dup_every = config.duplicate_every;
        let n = if dup_every > 0 && (i + 1) % dup_every == 0 && next_new > 0 {
            duplicates_sent += 1;
            // A recent one, as TikTok re-sends soon after.
            next_new - 1 - (i % 97).min(next_new - 1)
        } else {
            next_new += 1;
            next_new - 1
        };
        let (client, url, answers) = (client.clone(), url.clone(), answers.clone());
        tasks.spawn(async move {
            push(client, url, n, answers).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
        if last_check.elapsed() > Duration::from_secs(5) {
            last_check = Instant::now();
            if let Some(e) = serve.exited() {
                return Err(format!("serve ended during the load: {e} (see serve.log)"));
            }
            let mut w = worker.lock().map_err(|e| e.to_string())?;
            if let Some(e) = w.exited() {
                let name = w.name.clone();
                if let Ok(mut d) = died.lock() {
                    d.push(format!("{name}: {e}"));
                }
                eprintln!("soak: {name} ended: {e}");
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let send_seconds = started.elapsed().as_secs_f64();
    sample_now();
    let end_of_load = started.elapsed().as_secs_f64();
    eprintln!("soak: load done after {send_seconds:.0} s; draining");

    // The drain.
    let drain_start = Instant::now();
    let limit = Duration::from_secs_f64(config.drain_minutes * 60.0);
    let mut last_log = Instant::now();
    let mut drained = false;
    while drain_start.elapsed() < limit {
        match db.backlog().await {
            Ok((0, 0)) => {
                drained = true;
                break;
            }
            Ok((inbox, queue)) if last_log.elapsed() > Duration::from_secs(30) => {
                last_log = Instant::now();
                eprintln!(
                    "soak: draining {:.0} s: {inbox} inbox entries pending, {queue} queue items due or leased",
                    drain_start.elapsed().as_secs_f64()
                );
            }
            Ok(_) => {}
            Err(e) => eprintln!("soak: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    sample_now();
    sampler.abort();

    let (restart_at_s, restart_down_s) = match restart.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(format!("the restart did not run: {e}")),
    };
    let kill = if kill.is_finished() {
        match kill.await {
            Ok(Ok(k)) => k,
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("the kill did not run: {e}")),
        }
    } else {
        kill.abort();
        Kill::default()
    };

    // The checks, on the database.
    let acked_n: Vec<u64> = answers.acked_n.lock().map_err(|e| e.to_string())?.clone();
    let acked_set: std::collections::BTreeSet<u64> = acked_n.iter().copied().collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tiktok_order_id, count(*) FROM {}.orders WHERE user_id = $1 GROUP BY 1",
        db.schema
    )))
    .bind(TENANT)
    .fetch_all(&db.pool)
    .await
    .map_err(|e| e.to_string())?;
    let stored: std::collections::BTreeSet<u64> = rows
        .iter()
        .filter_map(|(id, _)| id.parse::<u64>().ok())
        .filter_map(|id| id.checked_sub(FIRST_ORDER))
        .collect();
    let orders_duplicated = rows.iter().filter(|(_, c)| *c > 1).count() as i64;
    let orders_lost = acked_set.difference(&stored).count() as u64;
    let orders_extra = rows.len() as u64 - stored.intersection(&acked_set).count() as u64;
    let orders = db.count("SELECT count(*) FROM {s}.orders").await?;
    let orders_bad_history = db
        .count(
            "SELECT count(*) FROM (SELECT o.id, o.version, count(t.*) AS n, min(t.version) AS lo, \
             max(t.version) AS hi, count(DISTINCT (t.from_state, t.to_state)) AS d \
             FROM {s}.orders o LEFT JOIN {s}.order_transitions t ON t.order_id = o.id \
             GROUP BY o.id, o.version) h WHERE n <> version OR lo <> 1 OR hi <> version OR d <> n",
        )
        .await?;
    let by_state: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(format!(
            "SELECT current_state, count(*) FROM {}.orders GROUP BY 1 ORDER BY 1",
            db.schema
        )))
        .fetch_all(&db.pool)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let steps_completed = db
        .count("SELECT count(*) FROM {s}.order_transitions")
        .await?;
    let (inbox_pending, queue_due_or_leased) = db.backlog().await?;

    // Stop, gracefully.
    let mut stopped = BTreeMap::new();
    if let Some(e) = serve.exited()
        && let Ok(mut d) = died.lock()
    {
        d.push(format!("serve: {e}"));
    }
    {
        let mut w = worker.lock().map_err(|e| e.to_string())?;
        if let Some(e) = w.exited()
            && let Ok(mut d) = died.lock()
        {
            d.push(format!("{}: {e}", w.name));
        }
        let name = w.name.clone();
        stopped.insert(name, w.terminate());
    }
    stopped.insert("serve".to_owned(), serve.terminate());

    // Memory.
    let samples = samples.lock().map_err(|e| e.to_string())?.clone();
    let warmup = config.warmup().as_secs_f64();
    let serve_memory = memory(
        &samples
            .iter()
            .map(|s| (s.at_s, s.serve_kib))
            .collect::<Vec<_>>(),
        warmup,
        end_of_load,
    );
    let of = |name: &str| -> Vec<(f64, Option<u64>)> {
        samples
            .iter()
            .filter(|s| s.worker == name)
            .map(|s| (s.at_s, s.worker_kib))
            .collect()
    };
    let worker1_memory = memory(&of("worker 1"), warmup, end_of_load);
    let worker2_memory = memory(&of("worker 2"), 0.0, end_of_load);
    let memory_ok =
        serve_memory.growth <= config.rss_bound && worker1_memory.growth <= config.rss_bound;

    let died = died.lock().map_err(|e| e.to_string())?.clone();
    let distinct = next_new;
    let exactly_once = drained
        && acked_set.len() as u64 == distinct
        && orders_lost == 0
        && orders_extra == 0
        && orders_duplicated == 0
        && orders_bad_history == 0
        && orders == distinct as i64
        && died.is_empty();
    let refused = answers.refused.load(Ordering::Relaxed);
    let transport = answers.transport.load(Ordering::Relaxed);
    let other = answers.other.load(Ordering::Relaxed);
    let latencies = answers.latencies.lock().map_err(|e| e.to_string())?.clone();
    let retried_ms = answers
        .retried_ms
        .lock()
        .map_err(|e| e.to_string())?
        .clone();
    Ok(Report {
        config: Some(config),
        sent_pushes: total,
        duplicates_sent,
        distinct_notifications: distinct,
        acked: answers.acked.load(Ordering::Relaxed),
        refused_503: refused,
        transport_errors: transport,
        other_answers: other,
        retries: refused + transport + other,
        retried_pushes: answers.retried_pushes.load(Ordering::Relaxed),
        send_seconds,
        achieved_rate: total as f64 / send_seconds,
        ack_ms: percentiles(latencies),
        retried_push_ms: percentiles(retried_ms),
        restart_at_s,
        restart_down_s,
        kill,
        drain_seconds,
        drained,
        orders,
        orders_lost,
        orders_extra,
        orders_duplicated,
        orders_bad_history,
        by_state,
        steps_completed,
        inbox_pending,
        queue_due_or_leased,
        serve_memory,
        worker1_memory,
        worker2_memory,
        samples,
        died,
        stopped,
        exactly_once,
        memory_ok,
    })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let out = config.out.clone();
    let bound = config.rss_bound;
    let report = match runtime.block_on(run(config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let json = serde_json::to_string_pretty(&report).unwrap_or_default();
    println!("{json}");
    if let Err(e) = std::fs::write(out.join("report.json"), &json) {
        eprintln!("soak: {}: {e}", out.join("report.json").display());
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "soak: {} pushes at {:.1}/s, {} acknowledged ({} notifications), {} answered 503 and {} \
         failed requests retried; ack p50 {:.2} ms, p99 {:.2} ms, max {:.0} ms; \
         {} orders ({} lost, {} extra, {} duplicated, {} bad histories), {} steps; \
         drained in {:.0} s; serve RSS {:.1} → {:.1} MiB (max {:.1}, x{:.2}, bound x{bound}); \
         exactly once: {}, memory: {}",
        report.sent_pushes,
        report.achieved_rate,
        report.acked,
        report.distinct_notifications,
        report.refused_503,
        report.transport_errors + report.other_answers,
        report.ack_ms.p50,
        report.ack_ms.p99,
        report.ack_ms.max,
        report.orders,
        report.orders_lost,
        report.orders_extra,
        report.orders_duplicated,
        report.orders_bad_history,
        report.steps_completed,
        report.drain_seconds,
        mib(report.serve_memory.after_warmup_kib),
        mib(report.serve_memory.end_kib),
        mib(report.serve_memory.max_kib),
        report.serve_memory.growth,
        if report.exactly_once { "yes" } else { "NO" },
        if report.memory_ok { "ok" } else { "GREW" },
    );
    if report.exactly_once && report.memory_ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
