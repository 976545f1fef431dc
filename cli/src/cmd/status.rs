//! `creatorflow status`: counts by state and lane, and the integrity check.

use super::{ConfigArgs, Format, Prepared, open_engine_with, runtime, store_url};
use crate::Outcome;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…` (default:
    /// the configuration's, else sqlite://creatorflow.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The tenant (creator) whose orders to count and check.
    #[arg(long, value_name = "ID", default_value = "default")]
    tenant: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Prints the counts and the integrity check (histories replayed on the
/// configuration's machine, or `--machine`); exit 1 if the check fails.
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup()? else {
        return Ok(Outcome::Invalid);
    };
    let url = store_url(args.store.clone(), &setup);
    let status = runtime()?.block_on(async {
        let engine = open_engine_with(&url, &args.tenant, None, |b| {
            b.machine(setup.machine.clone())
                .rules(setup.pack_of(&args.tenant).clone())
        })
        .await?;
        let status = engine.status().await;
        engine.store().close().await;
        status.map_err(|e| e.to_string())
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&status).map_err(|e| e.to_string())?
        ),
        Format::Text => {
            println!("orders: {}", status.orders);
            let join = |m: &std::collections::BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("by state: {}", join(&status.by_state));
            println!("by lane: {}", join(&status.by_lane));
            let held = &status.in_flight;
            println!(
                "in flight: {} step(s), held by live workers {}, by dead workers {} ({} live worker(s))",
                held.steps, held.held_by_live, held.held_by_dead, held.live_workers
            );
            if status.integrity.ok {
                println!("integrity: ok");
            } else {
                println!("integrity: {} problem(s)", status.integrity.problems.len());
            }
        }
    }
    for p in &status.integrity.problems {
        eprintln!("integrity: {p}");
    }
    Ok(if status.integrity.ok {
        Outcome::Ok
    } else {
        Outcome::Invalid
    })
}
