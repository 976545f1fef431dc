//! `creatorflow ingest`: durably ingests a JSON-lines batch of orders.

use std::io::BufRead;

use creatorflow::Order;
use serde::Serialize;

use super::{ConfigArgs, Format, Prepared, open_engine_with, runtime, store_url};
use crate::Outcome;

/// Arguments of `ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON-lines file of orders (the `eval` format), or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    orders: String,
    #[command(flatten)]
    config: ConfigArgs,
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…` (default:
    /// the configuration's, else sqlite://creatorflow.db).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The tenant (creator) the orders belong to.
    #[arg(long, value_name = "ID", default_value = "default")]
    tenant: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    new: usize,
    known: usize,
    invalid: usize,
    rule_failures: usize,
}

const BATCH: usize = 1_000;

/// Reads, validates and ingests the orders in batches (each one store
/// transaction); bad lines are reported on stderr and make the exit code 1,
/// the good ones are still ingested. With `--config`, the tenant's engine
/// evaluates the tenant's pack (else the configuration's, else the shipped
/// one; `--rules` overrides it).
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup()? else {
        return Ok(Outcome::Invalid);
    };
    let url = store_url(args.store.clone(), &setup);
    let input: Box<dyn BufRead> = if args.orders == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.orders)
            .map_err(|e| format!("cannot read {}: {e}", args.orders))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, f))
    };
    let mut orders = Vec::new();
    let mut summary = Summary::default();
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", args.orders))?;
        if line.trim().is_empty() {
            continue;
        }
        match Order::from_json(&line) {
            Ok(o) => orders.push(o),
            Err(e) => {
                eprintln!("{}:{}: {e}", args.orders, n + 1);
                summary.invalid += 1;
            }
        }
    }
    runtime()?.block_on(async {
        let engine = open_engine_with(&url, &args.tenant, None, |b| {
            b.machine(setup.machine.clone())
                .rules(setup.pack_of(&args.tenant).clone())
        })
        .await?;
        let mut rest = orders;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(BATCH));
            let report = engine.ingest_many(rest).await.map_err(|e| e.to_string())?;
            summary.new += report.new;
            summary.known += report.known;
            summary.rule_failures += report.rule_failures;
            for (_, why) in &report.refused {
                eprintln!("{}: refused: {why}", args.orders);
            }
            summary.invalid += report.refused.len();
            rest = tail;
        }
        Ok::<_, String>(())
    })?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&summary).map_err(|e| e.to_string())?
        ),
        Format::Text => {
            println!(
                "{} new, {} already known{}",
                summary.new,
                summary.known,
                if summary.invalid > 0 {
                    format!(", {} invalid", summary.invalid)
                } else {
                    String::new()
                }
            );
            if summary.rule_failures > 0 {
                println!(
                    "{} sent to manual review (rule pack errors)",
                    summary.rule_failures
                );
            }
        }
    }
    Ok(if summary.invalid > 0 {
        Outcome::Invalid
    } else {
        Outcome::Ok
    })
}
