//! `creatorflow serve`: the TikTok Shop webhook receiver, the workers, the
//! inbox processor, reconciliation and the dashboard, in one process.
//!
//! | route | what |
//! |---|---|
//! | `POST /webhooks/tiktok-shop` | verify the signature over the raw bytes, parse, append to the durable inbox, answer 200 (empty body); 401 bad or missing signature, 400 malformed, 413 too large, 503 if the inbox cannot be written |
//! | `GET /healthz` | liveness |
//! | `GET /api/metrics[?tenant=]` | the dashboard figures of `model.md` (JSON) |
//! | `GET /api/orders[?tenant=&state=&priority=&limit=]` | orders, most urgent first |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /` | the dashboard (self-contained HTML, refreshing live) |
//!
//! Shops map to tenants by configuration; every read is scoped to one
//! tenant (`?tenant=`, or the default one). Processing happens after the
//! acknowledgement: the inbox processor claims entries, applies them to the
//! tenant's engine, and marks them processed.

mod api;
mod dashboard;
mod webhook;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use creatorflow::store::{Inbox, Store};
use creatorflow::tiktok::{OrderApi, PollConfig, Processor, poll_all};
use creatorflow::{AnyStore, Engine, EngineBuilder};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use webhook::WebhookStats;

/// The store every engine of the server shares (clones share the database).
pub type SharedStore = AnyStore;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The TikTok app key (the signature covers it).
    pub app_key: String,
    /// The TikTok app secret (the signature's key).
    pub app_secret: String,
    /// Shop id → tenant.
    pub shops: Vec<(String, String)>,
    /// The tenant reads use without `?tenant=`.
    pub default_tenant: String,
    /// The largest webhook body accepted, in bytes (larger: 413).
    pub body_limit: usize,
    /// How often the reconciliation poll runs; `None` disables it.
    pub poll_every: Option<Duration>,
    /// How often idle workers and the idle inbox processor look for work.
    pub idle_poll: Duration,
    /// The shortest time between two inbox rounds: entries arriving
    /// meanwhile are processed together (fewer, larger store transactions).
    pub inbox_round: Duration,
    /// How long processed inbox entries are kept (checked hourly); longer
    /// than TikTok's retries (about 16 hours), so a late retry is still
    /// recognised as a duplicate.
    pub inbox_retention: Duration,
}

impl ServeConfig {
    /// Defaults: a 64 KiB body limit, reconciliation every 5 minutes,
    /// 100 ms idle polling, inbox rounds at most every 25 ms, processed
    /// inbox entries kept 7 days, tenant `default`.
    pub fn new(listen: SocketAddr, app_key: &str, app_secret: &str) -> Self {
        ServeConfig {
            listen,
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            shops: Vec::new(),
            default_tenant: "default".to_owned(),
            body_limit: 64 * 1024,
            poll_every: Some(Duration::from_secs(300)),
            idle_poll: Duration::from_millis(100),
            inbox_round: Duration::from_millis(25),
            inbox_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What the handlers share.
pub(crate) struct AppState<A> {
    pub(crate) processor: Arc<Processor<SharedStore, A>>,
    pub(crate) config: ServeConfig,
    pub(crate) appender: webhook::Appender,
    pub(crate) stats: Arc<WebhookStats>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) started: std::time::Instant,
}

/// A running server.
pub struct Running<A> {
    /// The address it listens on.
    pub addr: SocketAddr,
    processor: Arc<Processor<SharedStore, A>>,
    stats: Arc<WebhookStats>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    runtimes: Vec<tokio::runtime::Runtime>,
}

impl<A> Drop for Running<A> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // Allowed in an async context, unlike dropping a runtime.
        for rt in self.runtimes.drain(..) {
            rt.shutdown_background();
        }
    }
}

impl<A> std::fmt::Debug for Running<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl<A: OrderApi + 'static> Running<A> {
    /// The processor (engines per tenant, counters).
    pub fn processor(&self) -> &Arc<Processor<SharedStore, A>> {
        &self.processor
    }

    /// The webhook counters.
    pub fn webhook_stats(&self) -> &WebhookStats {
        &self.stats
    }

    /// Stops accepting, finishes the work in flight, and returns.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
    }

    /// Completes when the server is told to stop (by [`Running::stop`]).
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        stopped(self.stop.subscribe())
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// One engine per tenant over the shared store (shipped machine and rules,
/// system clock, default handlers).
pub fn engines(store: &SharedStore, config: &ServeConfig) -> Vec<Engine<SharedStore>> {
    let mut tenants: BTreeSet<&str> = config.shops.iter().map(|(_, t)| t.as_str()).collect();
    tenants.insert(&config.default_tenant);
    tenants
        .into_iter()
        .map(|t| {
            EngineBuilder::new(store.clone())
                .tenant(t)
                .worker_name(format!("serve-{}", std::process::id()))
                .build()
        })
        .collect()
}

/// Starts the server over `store` calling `api`: binds, spawns the HTTP
/// server, the inbox appender and processor, the workers and (if enabled)
/// reconciliation.
pub async fn start<A: OrderApi + 'static>(
    config: ServeConfig,
    store: SharedStore,
    api: Arc<A>,
) -> Result<Running<A>, String> {
    let engines = engines(&store, &config);
    start_with(config, engines, store, api).await
}

/// [`start`] with engines built by the caller (one per tenant; the first
/// one also runs the workers for every tenant).
pub async fn start_with<A: OrderApi + 'static>(
    config: ServeConfig,
    engines: Vec<Engine<SharedStore>>,
    store: SharedStore,
    api: Arc<A>,
) -> Result<Running<A>, String> {
    let mut processor = Processor::new(api);
    let worker = engines
        .first()
        .cloned()
        .ok_or_else(|| "no tenant configured".to_owned())?;
    for e in engines {
        processor.add_engine(e);
    }
    for (shop, tenant) in &config.shops {
        processor.add_shop(shop, tenant);
    }
    let processor = Arc::new(processor);
    let (stop, stop_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let stats = Arc::new(WebhookStats::default());
    // Acknowledgements never queue behind processing: the HTTP server and
    // the inbox appender run on a runtime of their own, the processor, the
    // workers and reconciliation on another.
    let http_rt = runtime("cf-http")?;
    let work_rt = runtime("cf-work")?;
    let (appender, append_task) = {
        let _in = http_rt.enter();
        webhook::appender(store.clone(), wake.clone())
    };
    let state = Arc::new(AppState {
        processor: processor.clone(),
        config: config.clone(),
        appender,
        stats: stats.clone(),
        wake: wake.clone(),
        started: std::time::Instant::now(),
    });
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let app = router(state, config.body_limit);
    let mut tasks = Vec::new();
    let rx = stop_rx.clone();
    tasks.push(http_rt.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("creatorflow: http server: {e}");
                return;
            }
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(rx))
            .await;
        if let Err(e) = served {
            eprintln!("creatorflow: http server: {e}");
        }
    }));
    tasks.push(append_task);
    // The inbox processor: woken by each append, polling when idle.
    let (p, rx, w, pace) = (
        processor.clone(),
        stop_rx.clone(),
        wake.clone(),
        (config.idle_poll, config.inbox_round),
    );
    tasks.push(work_rt.spawn(async move {
        process_inbox(p, w, pace, stopped(rx)).await;
    }));
    // The workers, for every tenant.
    let (rx, pace) = (stop_rx.clone(), (config.idle_poll, config.inbox_round));
    tasks.push(work_rt.spawn(async move {
        run_workers(worker, pace, stopped(rx)).await;
    }));
    let (p, rx, keep) = (processor.clone(), stop_rx.clone(), config.inbox_retention);
    tasks.push(work_rt.spawn(async move {
        prune_inbox(p, keep, stopped(rx)).await;
    }));
    if let Some(every) = config.poll_every {
        let (p, rx) = (processor.clone(), stop_rx.clone());
        tasks.push(work_rt.spawn(async move {
            reconcile(p, every, stopped(rx)).await;
        }));
    }
    Ok(Running {
        addr,
        processor,
        stats,
        stop,
        tasks,
        runtimes: vec![http_rt, work_rt],
    })
}

/// A runtime of two worker threads named `name`.
fn runtime(name: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the {name} runtime: {e}"))
}

fn router<A: OrderApi + 'static>(state: Arc<AppState<A>>, body_limit: usize) -> Router {
    Router::new()
        .route(
            "/webhooks/tiktok-shop",
            post(webhook::receive::<A>).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/healthz", get(api::healthz))
        .route("/api/metrics", get(api::metrics::<A>))
        .route("/api/orders", get(api::orders::<A>))
        .route("/metrics", get(api::prometheus::<A>))
        .route("/", get(dashboard::page))
        .with_state(state)
}

/// Drains the inbox until stopped; each round is woken by an append or
/// the idle poll (`pace.0`), and rounds start at most every `pace.1`.
async fn process_inbox<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    wake: Arc<Notify>,
    pace: (Duration, Duration),
    stop: impl std::future::Future<Output = ()>,
) {
    let (idle, round_every) = pace;
    let mut stop = std::pin::pin!(stop);
    loop {
        let started = tokio::time::Instant::now();
        let round = tokio::select! {
            _ = &mut stop => return,
            r = processor.drain_once(512) => r,
        };
        let more = match round {
            Ok(n) => n > 0,
            Err(e) => {
                eprintln!("creatorflow: inbox: {e}");
                false
            }
        };
        if !more {
            tokio::select! {
                _ = &mut stop => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(started + round_every) => {}
        }
    }
}

/// Runs claim rounds for every tenant until stopped (the round in flight
/// finishes first): when idle every `pace.0`, and at most one round every
/// `pace.1`, so that under load a round claims more and each store
/// transaction carries more steps.
async fn run_workers(
    engine: Engine<SharedStore>,
    pace: (Duration, Duration),
    stop: impl std::future::Future<Output = ()>,
) {
    let (idle, round_every) = pace;
    let mut stop = std::pin::pin!(stop);
    loop {
        let started = tokio::time::Instant::now();
        let pause = match engine.run_once().await {
            Ok(r) if r.claimed.is_empty() => idle,
            Ok(_) => Duration::ZERO,
            Err(e) => {
                eprintln!("creatorflow: workers: {e}");
                idle
            }
        };
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(started + round_every.max(pause)) => {}
        }
    }
}

/// Deletes processed inbox entries older than `keep`, for every tenant,
/// at start and then hourly, until stopped.
async fn prune_inbox<A: OrderApi + 'static>(
    processor: Arc<Processor<SharedStore, A>>,
    keep: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let keep = chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::days(7));
    loop {
        for tenant in processor.tenants() {
            if let Some(e) = processor.engine(tenant)
                && let Err(err) = e.store().inbox_prune(tenant, e.now() - keep).await
            {
                eprintln!("creatorflow: pruning the inbox of {tenant}: {err}");
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// Polls the Order API for missed changes every `every` until stopped.
async fn reconcile<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let config = PollConfig::default();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            r = poll_all(&processor, &config) => {
                if let Err(e) = r {
                    eprintln!("creatorflow: reconciliation: {e}");
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
