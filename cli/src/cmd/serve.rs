//! `creatorflow serve`: the webhook receiver, the workers and the dashboard
//! in one process (see `creatorflow_cli::serve`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creatorflow::tiktok::{DEFAULT_BASE_URL, HttpConfig, HttpOrderApi};
use creatorflow_cli::serve::{ServeConfig, start};

use super::worker::shutdown_signal;
use super::{DEFAULT_STORE, runtime};
use crate::Outcome;

/// Arguments of `serve`. TikTok credentials come from the environment:
/// `TIKTOK_APP_KEY` and `TIKTOK_APP_SECRET` (required: they verify the
/// webhooks), `TIKTOK_ACCESS_TOKEN` (for the Order API).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…`.
    #[arg(long, value_name = "URL", default_value = DEFAULT_STORE)]
    store: String,
    /// Where to listen (`127.0.0.1:0`: any free port, printed on start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Routes a TikTok shop to a tenant (creator); repeat for several shops.
    /// Webhooks of shops not listed are acknowledged and dropped.
    #[arg(long = "shop", value_name = "SHOP_ID=TENANT", value_parser = parse_shop)]
    shops: Vec<(String, String)>,
    /// The tenant reads use without `?tenant=` (default: the first
    /// `--shop`'s tenant, else `default`).
    #[arg(long, value_name = "ID")]
    default_tenant: Option<String>,
    /// The Order API's base URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_BASE_URL)]
    api_base: String,
    /// Seconds between reconciliation polls of the Order API (0: off).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    poll_every: u64,
    /// The largest webhook body accepted, in bytes (larger: HTTP 413).
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    body_limit: usize,
    /// How often idle workers look for work, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    poll_ms: u64,
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
        .ok_or_else(|| format!("{name} is not set (TikTok credentials come from the environment)"))
}

/// Serves until SIGINT / SIGTERM, then stops gracefully.
pub fn run(args: Args) -> Result<Outcome, String> {
    let app_key = env("TIKTOK_APP_KEY")?;
    let app_secret = env("TIKTOK_APP_SECRET")?;
    let token = std::env::var("TIKTOK_ACCESS_TOKEN").unwrap_or_default();
    let mut config = ServeConfig::new(args.listen, &app_key, &app_secret);
    config.default_tenant = args
        .default_tenant
        .or_else(|| args.shops.first().map(|(_, t)| t.clone()))
        .unwrap_or_else(|| "default".to_owned());
    config.shops = args.shops;
    config.body_limit = args.body_limit;
    config.poll_every = (args.poll_every > 0).then(|| Duration::from_secs(args.poll_every));
    config.idle_poll = Duration::from_millis(args.poll_ms.max(1));
    let mut http = HttpConfig::new(&app_key, &app_secret, &token);
    http.base_url = args.api_base;
    runtime()?.block_on(async {
        let api = HttpOrderApi::new(http, Arc::new(creatorflow::SystemClock))
            .map_err(|e| e.to_string())?;
        let store = creatorflow::store::open(&args.store)
            .await
            .map_err(|e| e.to_string())?;
        let server = start(config, store, Arc::new(api)).await?;
        println!("listening on http://{}", server.addr);
        let _ = std::io::stdout().flush();
        shutdown_signal().await;
        server.stop().await;
        Ok::<(), String>(())
    })?;
    Ok(Outcome::Ok)
}
