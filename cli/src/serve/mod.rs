//! `creatorflow serve`: the TikTok Shop webhook receiver, the workers, the
//! inbox processor, reconciliation and the dashboard, in one process.
//!
//! | route | token | what |
//! |---|---|---|
//! | `POST /webhooks/tiktok-shop` | none (signed by TikTok) | verify the signature over the raw bytes, parse, append to the durable inbox, answer 200 (empty body); 401 bad or missing signature, 400 malformed, 413 too large, 503 if the inbox cannot be written |
//! | `GET /healthz` | none | liveness |
//! | `GET /readyz` | none | readiness: 200 when the store answers and its migrations are current, else 503 with the reason |
//! | `POST /api/tiktok/connect[?tenant=]` | tenant's or admin | the authorization link to connect a shop, with a fresh single-use `state` |
//! | `GET /tiktok/callback?code=&state=` | none (the single-use `state`) | TikTok's redirect: 403 for an unknown, used or expired `state`; else the code is exchanged, the shops and tokens stored, their webhooks routed |
//! | `GET /api/metrics[?tenant=]` | tenant's or admin | the dashboard figures of `model.md` (JSON); the process-wide counters for admins only |
//! | `GET /api/orders[?tenant=&state=&priority=&limit=]` | tenant's or admin | orders, most urgent first |
//! | `GET /api/orders/{id}`, `GET /api/review`, `POST /api/orders/{id}/approve\|reject\|retry\|cancel` | tenant's or admin | people act on orders: see `operator.rs` |
//! | `GET /metrics` | admin or `metrics_token` | Prometheus text format, every tenant |
//! | `GET /` | none (a page with no data; its scripts send the token) | the dashboard (self-contained HTML, refreshing live) |
//! | `POST /api/rules/reload` | admin | load the rule packs again and swap them (`reload`), and record their versions for every replica (`sync`); 422 with every diagnostic when wrong |
//! | `GET /api/rules` | tenant's or admin | this replica, the pack versions it runs, the active (recorded) ones, whether it is in step (`sync`) |
//!
//! Tokens ([`auth`]): `Authorization: Bearer TOKEN`; none or an unknown
//! one: 401; a tenant's token on another tenant (or on `/metrics`): 404,
//! worded exactly as an absent order. Every read is scoped to one tenant:
//! a tenant token's own; an admin's `?tenant=`, else the default one.
//!
//! Shops map to tenants by configuration. Processing happens after the
//! acknowledgement, in the library's [`creatorflow::service`]: the inbox
//! processor claims entries, applies them to the tenant's engine, and marks
//! them processed. This module is only the HTTP layer over it.

mod api;
pub mod auth;
mod connect;
mod dashboard;
mod operator;
mod ready;
pub mod reload;
pub mod sync;
mod webhook;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use creatorflow::service::{self, InboxAppender, Service};
use creatorflow::store::ShopStore;
use creatorflow::tiktok::{OrderApi, Processor};
use creatorflow::{AnyStore, BuildError, Engine, EngineBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use auth::{Principal, Tokens};
pub use connect::Connector;
pub use reload::{PackSource, Packs, ReloadError};
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
    /// The bearer tokens (hashed) routes that need one accept.
    pub tokens: Tokens,
    /// Connecting shops through TikTok's authorization (`None`: the
    /// connect routes answer 503).
    pub connector: Option<Connector>,
    /// Where `POST /api/rules/reload` loads the packs from (`None`: it
    /// answers 503).
    pub rules: Option<PackSource>,
    /// This replica's name among several on one database: the label
    /// `replica` of the per-process counters in `/metrics`, the holder of
    /// its singleton leases (default `HOST-PID`).
    pub replica: String,
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
            tokens: Tokens::none(),
            connector: None,
            rules: None,
            replica: service::default_replica_name(),
        }
    }
}

/// How long a stopping server waits for the requests in flight.
pub const HTTP_STOP_GRACE: Duration = Duration::from_secs(10);

/// What the handlers share.
pub(crate) struct AppState<A> {
    pub(crate) processor: Arc<Processor<SharedStore, A>>,
    pub(crate) config: ServeConfig,
    pub(crate) inbox: InboxAppender,
    pub(crate) stats: Arc<WebhookStats>,
    pub(crate) started: std::time::Instant,
    pub(crate) rules_sync: Arc<sync::RulesSync>,
    pub(crate) singletons: service::Singletons<SharedStore>,
}

/// A running server: the HTTP layer over a running [`service`](creatorflow::service).
pub struct Running<A: OrderApi + 'static> {
    /// The address it listens on.
    pub addr: SocketAddr,
    processor: Arc<Processor<SharedStore, A>>,
    service: Option<service::Running<SharedStore, A>>,
    stats: Arc<WebhookStats>,
    http_stop: watch::Sender<bool>,
    http: Option<JoinHandle<()>>,
    runtimes: Vec<tokio::runtime::Runtime>,
}

impl<A: OrderApi + 'static> Drop for Running<A> {
    fn drop(&mut self) {
        let _ = self.http_stop.send(true);
        drop(self.service.take());
        // Allowed in an async context, unlike dropping a runtime.
        for rt in self.runtimes.drain(..) {
            rt.shutdown_background();
        }
    }
}

impl<A: OrderApi + 'static> std::fmt::Debug for Running<A> {
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

    /// Stops accepting (the requests in flight are answered, for at most
    /// [`HTTP_STOP_GRACE`]), then stops the service gracefully (see
    /// [`service::Running::stop`]), and returns.
    pub async fn stop(mut self) {
        let _ = self.http_stop.send(true);
        if let Some(mut t) = self.http.take()
            && tokio::time::timeout(HTTP_STOP_GRACE, &mut t).await.is_err()
        {
            tracing::warn!(
                grace_ms = HTTP_STOP_GRACE.as_millis() as u64,
                "requests still in flight after the grace period are cut"
            );
            t.abort();
        }
        if let Some(s) = self.service.take() {
            s.stop().await;
        }
    }
}

/// One engine per tenant over the shared store (shipped machine and rules,
/// system clock, the simulated handlers).
pub fn engines(
    store: &SharedStore,
    config: &ServeConfig,
) -> Result<Vec<Engine<SharedStore>>, BuildError> {
    let mut tenants: BTreeSet<&str> = config.shops.iter().map(|(_, t)| t.as_str()).collect();
    tenants.insert(&config.default_tenant);
    tenants
        .into_iter()
        .map(|t| {
            EngineBuilder::new(store.clone())
                .tenant(t)
                .worker_name(format!("serve-{}", std::process::id()))
                .simulated_handlers()
                .build()
        })
        .collect()
}

/// Starts the server over `store` calling `api`: binds, spawns the HTTP
/// server, and starts the service (inbox appender and processor, workers,
/// retention and, if enabled, reconciliation).
pub async fn start<A: OrderApi + 'static>(
    config: ServeConfig,
    store: SharedStore,
    api: Arc<A>,
) -> Result<Running<A>, String> {
    let engines = engines(&store, &config).map_err(|e| e.to_string())?;
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
    // Acknowledgements never queue behind processing: the HTTP server and
    // the inbox appender run on a runtime of their own, the processor, the
    // workers and reconciliation on another.
    let http_rt = runtime("cf-http")?;
    let work_rt = runtime("cf-work")?;
    let mut builder = Service::builder(store)
        .order_api(api)
        .idle_poll(config.idle_poll)
        .min_round(config.inbox_round)
        .inbox_retention(config.inbox_retention)
        .reconcile_every(config.poll_every)
        .runtime(work_rt.handle().clone())
        .inbox_runtime(http_rt.handle().clone())
        .replica(config.replica.clone());
    for e in engines {
        builder = builder.engine(e);
    }
    for (shop, tenant) in &config.shops {
        builder = builder.shop(shop, tenant);
    }
    let service = builder.start().await.map_err(|e| e.to_string())?;
    route_connected_shops(&service, &config).await?;
    let stats = Arc::new(WebhookStats::default());
    let rules_sync = Arc::new(sync::RulesSync::default());
    work_rt.spawn(sync::follow(
        service.processor().clone(),
        config.rules.clone(),
        rules_sync.clone(),
        config.replica.clone(),
    ));
    let state = Arc::new(AppState {
        processor: service.processor().clone(),
        config: config.clone(),
        inbox: service.inbox().clone(),
        stats: stats.clone(),
        started: std::time::Instant::now(),
        rules_sync,
        singletons: service.singletons(),
    });
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let app = router(state, config.body_limit);
    let (http_stop, mut rx) = watch::channel(false);
    let http = http_rt.spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(task = "http", error = %e, "http server failed");
                return;
            }
        };
        let stopped = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
        if let Err(e) = served {
            tracing::error!(task = "http", error = %e, "http server failed");
        }
    });
    Ok(Running {
        addr,
        processor: service.processor().clone(),
        service: Some(service),
        stats,
        http_stop,
        http: Some(http),
        runtimes: vec![http_rt, work_rt],
    })
}

/// Routes the webhooks of every shop a served tenant connected (stored
/// with its tokens) to that tenant; shops named by the configuration keep
/// the tenant it gives them.
async fn route_connected_shops<A: OrderApi + 'static>(
    service: &service::Running<SharedStore, A>,
    config: &ServeConfig,
) -> Result<(), String> {
    let processor = service.processor();
    let tenants: Vec<String> = processor.tenants().map(str::to_owned).collect();
    for tenant in &tenants {
        let Some(engine) = processor.engine(tenant) else {
            continue;
        };
        let shops = engine
            .store()
            .shops(tenant)
            .await
            .map_err(|e| format!("cannot read the connected shops of {tenant}: {e}"))?;
        for shop in shops {
            processor.add_shop(&shop.shop_id, tenant);
        }
    }
    for (shop, tenant) in &config.shops {
        processor.add_shop(shop, tenant);
    }
    Ok(())
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
        .route("/readyz", get(ready::readyz::<A>))
        .route("/api/tiktok/connect", post(connect::connect::<A>))
        .route("/tiktok/callback", get(connect::callback::<A>))
        .route("/api/metrics", get(api::metrics::<A>))
        .route("/api/orders", get(api::orders::<A>))
        .route("/api/orders/{id}", get(operator::order::<A>))
        .route("/api/orders/{id}/{command}", post(operator::command::<A>))
        .route("/api/review", get(operator::review::<A>))
        .route("/metrics", get(api::prometheus::<A>))
        .route("/api/rules/reload", post(reload::reload_rules::<A>))
        .route("/api/rules", get(sync::rules::<A>))
        .route("/", get(dashboard::page))
        .with_state(state)
}
