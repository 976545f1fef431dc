//! `creatorflow eval`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use creatorflow::Order;
use creatorflow::packtest::Evaluator;
use creatorflow::rules::{Decision, PackError};
use serde::Serialize;

use super::{load_pack, parse_time, print_pack_version};
use crate::Outcome;

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON-lines file of orders, or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    orders: String,
    /// Rule pack directory (default: the shipped pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// Evaluation time for every order (default: each order's created_at).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// Evaluate the orders' facts exactly as given, without viral detection.
    #[arg(long)]
    no_enrich: bool,
    /// Add an `explanations` array: for each rule, each condition's actual
    /// value and result, and why the rule did or did not fire.
    #[arg(long)]
    explain: bool,
    /// With --explain: explain only this rule.
    #[arg(long, value_name = "ID", requires = "explain")]
    rule: Option<String>,
}

#[derive(Serialize)]
struct LineError<'a> {
    line: usize,
    error: &'a str,
}

/// Evaluates every order in input order, one JSON object per line.
pub fn run(args: Args) -> Result<Outcome, String> {
    let pack = match load_pack(args.rules.as_deref()) {
        Ok(p) => Arc::new(p),
        Err(PackError::Invalid(diags)) => {
            for d in diags {
                eprintln!("{d}");
            }
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.to_string()),
    };
    print_pack_version(&pack, args.rules.as_deref());
    if let Some(id) = &args.rule
        && pack.rule(id).is_none()
    {
        return Err(format!("--rule: no rule `{id}` in the pack"));
    }
    let input: Box<dyn BufRead> = if args.orders == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.orders)
            .map_err(|e| format!("cannot read {}: {e}", args.orders))?;
        Box::new(std::io::BufReader::with_capacity(1 << 16, f))
    };
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut engine = Evaluator::new(Arc::clone(&pack), !args.no_enrich);
    let mut decision = Decision::default();
    let mut bad = 0usize;
    let write_err = |e: std::io::Error| format!("cannot write output: {e}");
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read {}: {e}", args.orders))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut order = match Order::from_json(&line) {
            Ok(o) => o,
            Err(e) => {
                bad += 1;
                let msg = e.to_string();
                serde_json::to_writer(
                    &mut out,
                    &LineError {
                        line: i + 1,
                        error: &msg,
                    },
                )
                .map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(write_err)?;
                continue;
            }
        };
        if args.explain {
            let (d, mut explanations) = engine.evaluate_explained(&mut order, args.now);
            if let Some(id) = &args.rule {
                explanations.retain(|x| &x.rule == id);
            }
            #[derive(Serialize)]
            struct Explained<'a> {
                #[serde(flatten)]
                report: creatorflow::rules::DecisionReport<'a>,
                explanations: Vec<creatorflow::rules::Explanation>,
            }
            let report = d.report(&pack, &order.tiktok_order_id);
            serde_json::to_writer(
                &mut out,
                &Explained {
                    report,
                    explanations,
                },
            )
            .map_err(|e| e.to_string())?;
        } else {
            engine.evaluate_into(&mut order, args.now, &mut decision);
            serde_json::to_writer(&mut out, &decision.report(&pack, &order.tiktok_order_id))
                .map_err(|e| e.to_string())?;
        }
        out.write_all(b"\n").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    Ok(if bad > 0 {
        Outcome::Invalid
    } else {
        Outcome::Ok
    })
}
