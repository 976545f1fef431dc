//! `creatorflow ingest`: durably ingests a JSON-lines stream of orders.
//!
//! # Streaming, and what a bad line or an interruption leaves
//!
//! The input is read by a thread of its own ([`reader`]) and ingested in
//! batches of [`BULK_BATCH`] orders, each one store transaction
//! ([`Engine::bulk_prepare`](creatorflow::Engine::bulk_prepare) then
//! [`Engine::bulk_write`](creatorflow::Engine::bulk_write), which keep no
//! per-order cache): one batch is written, on a task of its own, while the
//! next is evaluated, and the reader parses one part (1,000 orders) ahead,
//! gathered into batches ([`reader::Gather`]), so memory holds a few
//! batches, whatever the size of the file. Orders the tenant already
//! has are skipped in bulk (one indexed read per batch), counted as known.
//!
//! - **A bad line** (not JSON, a bad field, not UTF-8) is reported on stderr
//!   as `FILE:LINE: message` (the message names the field), counted as
//!   invalid, and the stream goes on: every good line before and after it is
//!   ingested, and the exit code is 1. Fixing the line and running the same
//!   command again ingests it and counts every other order as known.
//! - **An interruption** (the process killed, the store gone, a read error)
//!   leaves the batches committed before it stored, each whole; the batches
//!   in flight are not written. Running the same command again stores the rest:
//!   every order exactly once, as ingest is idempotent on `tiktok_order_id`.
//! - **Progress**: a bar on stderr when stderr is a terminal ([`progress`]);
//!   the summary line on stdout is the same as without it.

mod progress;
mod reader;

use std::io::BufRead;

use creatorflow::engine::{BULK_BATCH, IngestReport};
use serde::Serialize;

use super::{ConfigArgs, Format, Prepared, open_engine_with, runtime, store_url};
use crate::Outcome;
use progress::Progress;

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

/// Reads, validates and ingests the orders in batches (each one store
/// transaction), streaming; bad lines are reported on stderr and make the
/// exit code 1, the good ones are still ingested (see the module docs).
/// With `--config`, the tenant's engine evaluates the tenant's pack (else
/// the configuration's, else the shipped one; `--rules` overrides it).
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup()? else {
        return Ok(Outcome::Invalid);
    };
    let url = store_url(args.store.clone(), &setup);
    let (input, size): (Box<dyn BufRead + Send>, Option<u64>) = if args.orders == "-" {
        (Box::new(std::io::BufReader::new(std::io::stdin())), None)
    } else {
        let f = std::fs::File::open(&args.orders)
            .map_err(|e| format!("cannot read {}: {e}", args.orders))?;
        let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (
            Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
            size,
        )
    };
    let mut summary = Summary::default();
    let progress = Progress::new(size);
    let result = runtime()?.block_on(async {
        let engine = open_engine_with(&url, &args.tenant, None, |b| {
            b.machine(setup.machine.clone())
                .rules(setup.pack_of(&args.tenant).clone())
        })
        .await?;
        let mut in_flight: Option<std::sync::Arc<creatorflow::engine::InFlight>> = None;
        let (parts, reader) = reader::spawn(input, args.orders.clone(), reader::PART);
        let mut batches = reader::Gather::new(parts, BULK_BATCH);
        // One batch is written (a task of its own) while the next one is
        // evaluated: the store's work overlaps the rules'.
        let mut writing: Option<tokio::task::JoinHandle<Result<IngestReport, String>>> = None;
        let mut outcome = Ok(());
        while let Some(message) = batches.recv().await {
            let batch = match message {
                Ok(b) => b,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for bad in &batch.bad {
                progress.println(&format!("{}:{}: {}", args.orders, bad.line, bad.message));
            }
            summary.invalid += batch.bad.len();
            if batch.orders.is_empty() {
                continue;
            }
            let prepared = engine
                .bulk_prepare(batch.orders, in_flight.as_deref())
                .await;
            if let Some(w) = writing.take()
                && let Err(e) = settle(w.await, &mut summary, &progress, &args.orders)
            {
                outcome = Err(e);
                break;
            }
            let prepared = match prepared {
                Ok(p) => p,
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
            };
            in_flight = Some(prepared.in_flight());
            let e = engine.clone();
            writing = Some(tokio::spawn(async move {
                e.bulk_write(prepared).await.map_err(|e| e.to_string())
            }));
            progress.update(batch.bytes, summary.new, summary.known);
        }
        if let Some(w) = writing.take()
            && let Err(e) = settle(w.await, &mut summary, &progress, &args.orders)
            && outcome.is_ok()
        {
            outcome = Err(e);
        }
        // The reader ends once the receiver is gone (an early stop).
        drop(batches);
        let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        // Leaves a SQLite store as one file (its WAL moved in), as the
        // next command would find it anyway.
        engine.store().close().await;
        outcome
    });
    progress.finish();
    result?;
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

/// Adds a written batch's report to the summary (its refusals on stderr);
/// the error that ended the write, if any.
fn settle(
    written: Result<Result<IngestReport, String>, tokio::task::JoinError>,
    summary: &mut Summary,
    progress: &Progress,
    name: &str,
) -> Result<(), String> {
    let report = written.map_err(|e| format!("the store write stopped: {e}"))??;
    summary.new += report.new;
    summary.known += report.known;
    summary.rule_failures += report.rule_failures;
    for (_, why) in &report.refused {
        progress.println(&format!("{name}: refused: {why}"));
    }
    summary.invalid += report.refused.len();
    Ok(())
}
