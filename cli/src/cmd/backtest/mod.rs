//! `creatorflow backtest`: replays a tenant's stored orders with the pack
//! that decided them and with a new pack, and reports the difference
//! (rules.md, "Replaying history"). Nothing is written to the store.
//!
//! - **The orders** are read oldest first (`created_at`, ties by id) in
//!   pages of [`PAGE`] through `OrderReads::orders_by_created`, so memory
//!   stays bounded whatever the tenant's size.
//! - **Each order is evaluated as it came in**: its priority and impact are
//!   reset to the defaults (the stored ones are the decision's result), it
//!   is enriched as `eval` enriches by default (one enricher, shared by
//!   both sides: enrichment does not depend on the pack), then evaluated at
//!   its `created_at` by two `RuleEngine`s, each counting it in its own
//!   window facts as ingest does. With `--since`, the orders of the reach
//!   before it (the packs' longest window, a week for the enricher) are
//!   recorded first, as a restarting engine does.
//! - **The pack that decided them** ("before") is `--rules-before DIR`,
//!   else the tenant's pack in `--config FILE`, else the shipped pack: the
//!   pack `ingest` and `serve` choose. Orders whose stored decision names
//!   another pack version are counted and reported (a note on stderr and in
//!   the table), not re-decided by that version: only its hash is stored.

mod render;
mod tally;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::rules::{Decision, PackError, RuleEngine, RulePack};
use creatorflow::store::{AnyStore, CreatedRange, OrderReads};
use creatorflow::viral::Enricher;
use creatorflow_cli::config::{self, Overrides, SetupError};

use super::{DEFAULT_STORE, Format, load_pack, parse_time, runtime};
use crate::Outcome;

/// Orders read per page.
pub const PAGE: usize = 2_000;

/// How far back the enricher's state reaches (as `engine/restore.rs`).
const ENRICHER_REACH: TimeDelta = TimeDelta::days(7);

/// Arguments of `backtest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The store: `sqlite://PATH` or `postgres://…` (default: the
    /// configuration's, else sqlite://creatorflow.db). Only read.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The tenant (creator) whose orders are replayed.
    #[arg(long, value_name = "ID", default_value = "default")]
    tenant: String,
    /// The new rule pack directory.
    #[arg(long, value_name = "NEW_DIR")]
    rules: PathBuf,
    /// The pack that decided the orders (default: the tenant's pack in
    /// --config, else the shipped pack).
    #[arg(long, value_name = "DIR")]
    rules_before: Option<PathBuf>,
    /// The service configuration file: its store and the tenant's pack.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Only orders created at or after this time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only orders created before this time.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Where the two packs came from and what the stored decisions say.
#[derive(Debug, Default)]
pub struct Provenance {
    /// The tenant.
    pub tenant: String,
    /// The before pack's version.
    pub before: String,
    /// Where it came from.
    pub before_from: String,
    /// The new pack's version.
    pub after: String,
    /// Where it came from.
    pub after_from: String,
    /// Replayed orders whose stored decision names another pack version.
    pub other_versions: u64,
    /// Replayed orders stored without a decision.
    pub undecided: u64,
}

/// A pack, or `Ok(None)` once its diagnostics are printed.
fn pack_or_print(r: Result<RulePack, PackError>) -> Result<Option<RulePack>, String> {
    match r {
        Ok(p) => Ok(Some(p)),
        Err(PackError::Invalid(diags)) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            Ok(None)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The before pack, where it came from, and the configured store URL.
fn before_pack(args: &Args) -> Result<Option<(RulePack, String, Option<String>)>, String> {
    let Some(file) = &args.config else {
        let from = args
            .rules_before
            .as_ref()
            .map_or("the shipped pack".to_owned(), |d| d.display().to_string());
        return Ok(pack_or_print(load_pack(args.rules_before.as_deref()))?.map(|p| (p, from, None)));
    };
    let loaded = match config::load(file) {
        Ok(c) => c,
        Err(diags) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            return Ok(None);
        }
    };
    let overrides = Overrides {
        rules: args.rules_before.clone(),
        machine: None,
    };
    match config::resolve(Some(loaded), &overrides) {
        Ok(setup) => {
            let from = match &args.rules_before {
                Some(d) => d.display().to_string(),
                None => format!("{}, tenant `{}`", file.display(), args.tenant),
            };
            let url = setup.config.as_ref().map(|c| c.store.clone());
            Ok(Some((setup.pack_of(&args.tenant).clone(), from, url)))
        }
        Err(SetupError::Invalid(diags)) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            Ok(None)
        }
        Err(SetupError::Failed(e)) => Err(e),
    }
}

/// Replays the tenant's orders with both packs and prints the difference.
pub fn run(args: Args) -> Result<Outcome, String> {
    let Some((before, before_from, configured)) = before_pack(&args)? else {
        return Ok(Outcome::Invalid);
    };
    let Some(after) = pack_or_print(RulePack::load_dir(&args.rules))? else {
        return Ok(Outcome::Invalid);
    };
    let url = args
        .store
        .clone()
        .or(configured)
        .unwrap_or_else(|| DEFAULT_STORE.to_owned());
    let mut prov = Provenance {
        tenant: args.tenant.clone(),
        before: before.version().to_owned(),
        before_from,
        after: after.version().to_owned(),
        after_from: args.rules.display().to_string(),
        ..Provenance::default()
    };
    let report = runtime()?.block_on(async {
        let store = creatorflow::store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        let range = CreatedRange {
            since: args.since,
            until: args.until,
            after: None,
        };
        let result = replay(&store, &args.tenant, range, before, after, &mut prov).await;
        // A SQLite file is left as it was found.
        store.close().await;
        result
    })?;
    if prov.other_versions > 0 {
        eprintln!(
            "note: {} of {} order(s) were decided by another pack version than the before pack {}",
            prov.other_versions,
            report.orders,
            prov.before.get(..12).unwrap_or(&prov.before)
        );
    }
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        ),
        Format::Text => print!("{}", render::text(&report, &prov)),
    }
    Ok(Outcome::Ok)
}

/// Reads the orders page by page and folds both decisions of each.
async fn replay(
    store: &AnyStore,
    tenant: &str,
    range: CreatedRange,
    before: RulePack,
    after: RulePack,
    prov: &mut Provenance,
) -> Result<tally::Report, String> {
    let (before, after) = (Arc::new(before), Arc::new(after));
    let mut tally = tally::Tally::new(&before, &after);
    let mut old = RuleEngine::new(Arc::clone(&before));
    let mut new = RuleEngine::new(Arc::clone(&after));
    let mut enricher = creatorflow::packtest::Evaluator::default_enricher();
    let err = |e: creatorflow::store::StoreError| e.to_string();
    if let Some(since) = range.since {
        // The reach before `since`: counted in the windows, not evaluated.
        let reach = old
            .window_reach()
            .max(new.window_reach())
            .max(ENRICHER_REACH);
        let mut warm = CreatedRange {
            since: Some(since - reach),
            until: Some(since),
            after: None,
        };
        loop {
            let page = store
                .orders_by_created(tenant, &warm, PAGE)
                .await
                .map_err(err)?;
            let Some(last) = page.last() else { break };
            warm = warm.after_order(&last.order);
            for d in &page {
                let o = &d.order.order;
                old.record(o);
                new.record(o);
                enricher.record(&o.product_id, &o.customer_handle, o.created_at, o.quantity);
            }
        }
    }
    let (mut b, mut a) = (Decision::default(), Decision::default());
    let mut range = range;
    loop {
        let page = store
            .orders_by_created(tenant, &range, PAGE)
            .await
            .map_err(err)?;
        let Some(last) = page.last() else { break };
        range = range.after_order(&last.order);
        for d in page {
            match d.decision.as_ref().map(|j| j.to_value()) {
                Some(v) if v["pack_version"].as_str() != Some(prov.before.as_str()) => {
                    prov.other_versions += 1;
                }
                Some(_) => {}
                None => prov.undecided += 1,
            }
            let mut o = d.order.order;
            // The stored priority and impact are the decision's; the rules
            // start from the defaults, as for an order that came in without.
            o.priority = Default::default();
            o.impact = Default::default();
            let at = o.created_at;
            enricher.enrich(&mut o, at);
            old.evaluate_into(&o, None, &mut b);
            new.evaluate_into(&o, None, &mut a);
            tally.add(&o.tiktok_order_id, (&before, &b), (&after, &a));
        }
    }
    Ok(tally.finish())
}
