//! `creatorflow worker`: runs the workflow workers.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use creatorflow::actions::{DefaultHandlers, SimConfig};
use creatorflow::engine::{HeartbeatPolicy, Lanes, RunPolicy};
use creatorflow::{Clock, SystemClock};

use creatorflow_cli::config::{TikTokApp, process_env};

use super::{ConfigArgs, Format, Prepared, engine_over, runtime, store_url};
use crate::Outcome;

/// Arguments of `worker`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…` (default:
    /// the configuration's, else sqlite://creatorflow.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// Return once no work is due and no step is held by another worker
    /// (orders waiting for a later time, such as delivery checks, don't
    /// count). Steps held by a live worker are waited for; those of a dead
    /// one (its heartbeat lapsed) are taken over and run.
    #[arg(long)]
    exit_when_idle: bool,
    /// How often an idle worker looks for work, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    poll_ms: u64,
    /// How long a claimed step may run (every lane's step timeout); a
    /// claim's lease is twice the longest. Default: each lane's own
    /// (model.md). A dead worker's claims do not wait for it: they are taken
    /// over once its heartbeat lapses (`--heartbeat-lapse-ms`).
    #[arg(long, value_name = "MS")]
    lease_ms: Option<u64>,
    /// How often this worker renews its heartbeat in the store (and looks
    /// for dead workers whose steps to take over), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    heartbeat_ms: u64,
    /// How long after its last heartbeat a worker counts as dead and its
    /// claimed steps are taken over by a live worker, in milliseconds; more
    /// than `--heartbeat-ms` (several beats, so a slow store or a short
    /// pause does not make a live worker look dead).
    #[arg(long, value_name = "MS", default_value_t = 15000)]
    heartbeat_lapse_ms: u64,
    /// Latency of each call to the simulated inventory and carrier (the
    /// CLI's default action handlers), in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Output format of the closing summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs workers for every tenant until idle (`--exit-when-idle`) or until
/// SIGINT / SIGTERM; the claim round in flight is finished and recorded first.
/// With `--config`, refuses to start (exit 1) when the file, a pack, the
/// machine or the bindings' coverage is wrong; the workers run the
/// configuration's machine and default pack (`--rules` overrides it).
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup()? else {
        return Ok(Outcome::Invalid);
    };
    setup.print_report();
    let sim = SimConfig {
        latency: Duration::from_millis(args.latency_ms),
        ..SimConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = TikTokApp::of(&setup, &process_env, None);
    let url = store_url(args.store.clone(), &setup);
    if args.heartbeat_ms == 0 || args.heartbeat_lapse_ms <= args.heartbeat_ms {
        return Err(format!(
            "--heartbeat-lapse-ms ({}) must be more than --heartbeat-ms ({}), which must be more than 0",
            args.heartbeat_lapse_ms, args.heartbeat_ms
        ));
    }
    let heartbeat = HeartbeatPolicy {
        every: Duration::from_millis(args.heartbeat_ms),
        lapse: Duration::from_millis(args.heartbeat_lapse_ms),
    };
    let worker = format!("worker-{}", std::process::id());
    let idle = runtime()?.block_on(async {
        let lease = args.lease_ms;
        let waits = setup.waits_for_world();
        let store = creatorflow::store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        // The TikTok effects act in each order's shop with its stored token.
        let tiktok = match &app {
            Some(app) => Some(
                app.open(store.clone(), clock.clone())
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let handlers = setup
            .registry(
                &DefaultHandlers::new(sim, sim, None),
                &clock,
                tiktok.as_ref().map(|t| &t.api),
            )
            .map_err(|e| e.to_string())?;
        let engine = engine_over(store, "default", Some(worker), |b| {
            let b = b
                .clock(clock)
                .machine(setup.machine.clone())
                .rules(setup.default_pack.clone())
                .handlers(handlers)
                .external_events(waits)
                .heartbeat(Some(heartbeat));
            match lease {
                Some(ms) => {
                    b.lanes(Lanes::default().with_timeout(TimeDelta::milliseconds(ms as i64)))
                }
                None => b,
            }
        })?;
        let r = if args.exit_when_idle {
            engine
                .run_until_drained(RunPolicy::polling(Duration::from_millis(args.poll_ms)))
                .await
        } else {
            engine
                .run(shutdown_signal(), Duration::from_millis(args.poll_ms))
                .await
        };
        engine.store().close().await;
        r.map_err(|e| e.to_string())
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&idle).map_err(|e| e.to_string())?
        ),
        Format::Text => println!(
            "{} steps claimed, {} recorded, {} taken over from dead workers; next due: {}",
            idle.claimed,
            idle.recorded,
            idle.taken_over,
            idle.next_due
                .map_or_else(|| "nothing queued".to_owned(), |t| t.to_rfc3339())
        ),
    }
    Ok(Outcome::Ok)
}

/// Completes on SIGINT or (on Unix) SIGTERM, and logs which.
pub async fn shutdown_signal() {
    let name = signal().await;
    tracing::info!(signal = name, "shutdown signal");
}

/// Waits for SIGINT or (on Unix) SIGTERM; its name.
async fn signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
