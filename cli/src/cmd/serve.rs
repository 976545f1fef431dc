//! `creatorflow serve`: the webhook receiver, the workers and the dashboard
//! in one process (see `creatorflow_cli::serve`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creatorflow::actions::DefaultHandlers;
use creatorflow::{Clock, EngineBuilder, SystemClock};
use creatorflow_cli::config::{DEFAULT_POLL_EVERY, Overrides, Setup, TikTokApp, process_env};
use creatorflow_cli::serve::reload::reload_on_sighup;
use creatorflow_cli::serve::{Connector, PackSource, ServeConfig, SharedStore, Tokens, start_with};

use super::worker::shutdown_signal;
use super::{ConfigArgs, Prepared, runtime, store_url};
use crate::Outcome;

/// Where `serve` listens without `--listen` or `listen:`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The environment variable of the replica's name without `--replica`.
const REPLICA_ENV: &str = "CREATORFLOW_REPLICA";

/// The environment variable of the admin token without `--config`.
const ADMIN_TOKEN_ENV: &str = "CREATORFLOW_ADMIN_TOKEN";

/// Arguments of `serve`. TikTok credentials come from the configuration's
/// `tiktok:` section, else from the environment: `TIKTOK_APP_KEY` and
/// `TIKTOK_APP_SECRET` (required: they verify the webhooks),
/// `TIKTOK_ACCESS_TOKEN` (for the Order API). Bearer tokens come from the
/// configuration, else [`ADMIN_TOKEN_ENV`].
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Tokens: every route but the TikTok webhook, /healthz, /readyz, /tiktok/callback and the
dashboard page / needs `Authorization: Bearer TOKEN`. With --config the tokens are the
file's (admin_tokens, tenants[].api_tokens, metrics_token); without it, the admin token
is read from the environment variable CREATORFLOW_ADMIN_TOKEN. With neither, every
guarded route answers 401.")]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…` (default:
    /// the configuration's, else sqlite://creatorflow.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Where to listen (`127.0.0.1:0`: any free port, printed on start;
    /// default: the configuration's, else 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Routes a TikTok shop to a tenant (creator); repeat for several shops.
    /// Webhooks of shops not listed are acknowledged and dropped. Given,
    /// they replace the configuration's `shops`.
    #[arg(long = "shop", value_name = "SHOP_ID=TENANT", value_parser = parse_shop)]
    shops: Vec<(String, String)>,
    /// The tenant reads use without `?tenant=` (default: the first
    /// shop's tenant, else the first configured tenant, else `default`).
    #[arg(long, value_name = "ID")]
    default_tenant: Option<String>,
    /// The Order API's base URL (default: the configuration's, else TikTok's).
    #[arg(long, value_name = "URL")]
    api_base: Option<String>,
    /// Seconds between reconciliation polls of the Order API (0: off;
    /// default: the configuration's `poll_every`, else 300).
    #[arg(long, value_name = "SECONDS")]
    poll_every: Option<u64>,
    /// The largest webhook body accepted, in bytes (larger: HTTP 413).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    body_limit: usize,
    /// How often idle workers look for work, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    poll_ms: u64,
    /// This replica's name when several `serve` processes share one
    /// database: the `replica` label of the per-process metrics, the name
    /// in the logs, the holder of its singleton jobs (default: the
    /// environment variable CREATORFLOW_REPLICA, else HOST-PID).
    #[arg(long, value_name = "NAME")]
    replica: Option<String>,
}

fn parse_shop(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((shop, tenant)) if !shop.is_empty() && !tenant.is_empty() => {
            Ok((shop.to_owned(), tenant.to_owned()))
        }
        _ => Err(format!("`--shop {s}`: expected SHOP_ID=TENANT")),
    }
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is not set (TikTok credentials come from the environment or the `tiktok:` section of --config)"))
}

/// The tenants served: the configured ones, the shops' and the default one.
fn tenants(setup: &Setup, config: &ServeConfig) -> BTreeSet<String> {
    let configured = setup.config.iter().flat_map(|c| &c.tenants);
    configured
        .map(|t| t.id.value.clone())
        .chain(config.shops.iter().map(|(_, t)| t.clone()))
        .chain([config.default_tenant.clone()])
        .collect()
}

/// The server's settings: flags, else the configuration, else the defaults.
fn serve_config(
    args: &Args,
    setup: &Setup,
    app_key: &str,
    app_secret: &str,
) -> Result<ServeConfig, String> {
    let file = setup.config.as_ref();
    let listen = match args.listen.or_else(|| file.and_then(|c| c.listen)) {
        Some(a) => a,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|e| format!("{DEFAULT_LISTEN}: {e}"))?,
    };
    let mut config = ServeConfig::new(listen, app_key, app_secret);
    config.shops = if args.shops.is_empty() {
        file.iter()
            .flat_map(|c| &c.tenants)
            .flat_map(|t| {
                t.shops
                    .iter()
                    .map(|s| (s.value.clone(), t.id.value.clone()))
            })
            .collect()
    } else {
        args.shops.clone()
    };
    config.default_tenant = args
        .default_tenant
        .clone()
        .or_else(|| config.shops.first().map(|(_, t)| t.clone()))
        .or_else(|| {
            file.and_then(|c| c.tenants.first())
                .map(|t| t.id.value.clone())
        })
        .unwrap_or_else(|| "default".to_owned());
    config.body_limit = args.body_limit;
    config.poll_every = match args.poll_every {
        Some(s) => (s > 0).then(|| Duration::from_secs(s)),
        None => match file.and_then(|c| c.tiktok.as_ref()) {
            Some(t) => t.poll_every,
            None => Some(DEFAULT_POLL_EVERY),
        },
    };
    config.idle_poll = Duration::from_millis(args.poll_ms.max(1));
    if let Some(name) = args
        .replica
        .clone()
        .or_else(|| std::env::var(REPLICA_ENV).ok())
        .filter(|n| !n.trim().is_empty())
    {
        config.replica = name;
    }
    Ok(config)
}

/// Serves until SIGINT / SIGTERM, then stops gracefully; SIGHUP reloads
/// the rule packs (`serve::reload`). With `--config`,
/// refuses to start (exit 1) when the file, a pack, the machine or the
/// bindings' coverage is wrong; each tenant's engine evaluates its own pack.
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup()? else {
        return Ok(Outcome::Invalid);
    };
    let app = TikTokApp::of(&setup, &process_env, args.api_base.clone()).ok_or_else(|| {
        env("TIKTOK_APP_KEY")
            .and_then(|_| env("TIKTOK_APP_SECRET"))
            .err()
            .unwrap_or_default()
    })?;
    let mut config = serve_config(&args, &setup, &app.app_key, &app.app_secret)?;
    config.tokens = tokens(&setup, &process_env);
    let packs = PackSource::from_config(
        setup.config.clone(),
        Overrides {
            rules: args.config.rules.clone(),
            machine: args.config.machine.clone(),
        },
    );
    config.rules = Some(packs.clone());
    setup.print_report();
    if config.tokens.is_empty() {
        tracing::warn!(
            "no API tokens (none in --config, {ADMIN_TOKEN_ENV} not set): every route but the webhook, the health checks, the callback and the dashboard page answers 401"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let url = store_url(args.store.clone(), &setup);
    runtime()?.block_on(async {
        let store: SharedStore = creatorflow::store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        let tiktok = app
            .open(store.clone(), clock.clone())
            .map_err(|e| e.to_string())?;
        let handlers = setup
            .registry(&DefaultHandlers::default(), &clock, Some(&tiktok.api))
            .map_err(|e| e.to_string())?;
        config.connector = Some(Connector(tiktok.tokens.clone()));
        let worker = format!("serve-{}", std::process::id());
        let engines = tenants(&setup, &config)
            .into_iter()
            .map(|t| {
                let pack = setup.pack_of(&t).clone();
                EngineBuilder::new(store.clone())
                    .tenant(t)
                    .worker_name(worker.clone())
                    .clock(clock.clone())
                    .machine(setup.machine.clone())
                    .rules(pack)
                    .handlers(handlers.clone())
                    .external_events(setup.waits_for_world())
                    .build()
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        let replica = config.replica.clone();
        let server = start_with(config, engines, store.clone(), tiktok.api).await?;
        println!("listening on http://{}", server.addr);
        let _ = std::io::stdout().flush();
        let hup = tokio::spawn(reload_on_sighup(server.processor().clone(), packs));
        tracing::info!(addr = %server.addr, replica = %replica, "serving");
        shutdown_signal().await;
        hup.abort();
        server.stop().await;
        store.close().await;
        Ok::<(), String>(())
    })?;
    Ok(Outcome::Ok)
}

/// The bearer tokens of the configuration: admins', tenants', metrics'.
/// Without `--config`: the admin token of [`ADMIN_TOKEN_ENV`], if set.
fn tokens(setup: &Setup, env: &dyn Fn(&str) -> Option<String>) -> Tokens {
    let Some(c) = &setup.config else {
        return match env(ADMIN_TOKEN_ENV) {
            Some(token) => Tokens::none().admin(&token),
            None => Tokens::none(),
        };
    };
    let mut t = Tokens::none();
    for token in &c.admin_tokens {
        t = t.admin(token.expose());
    }
    for tenant in &c.tenants {
        for token in &tenant.api_tokens {
            t = t.tenant(&tenant.id.value, token.expose());
        }
    }
    if let Some(m) = &c.metrics_token {
        t = t.metrics(m.expose());
    }
    t
}
