//! One module per subcommand, and what they share.

pub mod backtest;
pub mod check;
pub mod eval;
pub mod graph;
pub mod ingest;
pub mod schema;
pub mod serve;
pub mod simulate;
pub mod status;
pub mod test;
pub mod worker;

use std::path::{Path, PathBuf};

use creatorflow::diag::Diagnostic;
use creatorflow::machine::Machine;
use creatorflow::rules::{PackError, RulePack};
use creatorflow_cli::config::{self, Overrides, Setup, SetupError};

/// Loads `--rules DIR`, or the shipped pack built into the binary.
pub fn load_pack(dir: Option<&Path>) -> Result<RulePack, PackError> {
    match dir {
        Some(d) => RulePack::load_dir(d),
        None => Ok(RulePack::shipped()),
    }
}

/// Prints the pack's version on stderr, with where it came from:
/// `pack version 3f9c0a1b2d4e (rules/)`, `(shipped)` without `--rules`.
pub fn print_pack_version(pack: &RulePack, dir: Option<&Path>) {
    let from = dir.map_or_else(|| "shipped".to_owned(), |d| d.display().to_string());
    eprintln!("pack version {} ({from})", pack.version());
}

/// Parses an RFC 3339 time flag (`--now`, `--since`, `--until`).
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

/// Loads `--machine FILE`, or the shipped order workflow built into the binary.
pub fn load_machine(file: Option<&Path>) -> Result<Machine, Vec<Diagnostic>> {
    match file {
        Some(f) => Machine::from_file(f),
        None => Ok(Machine::default_order_workflow()),
    }
}

/// `--config FILE` and the flags that override it, `--rules DIR` and
/// `--machine FILE` (shared by `check`, `serve`, `worker`, `ingest`, `status`).
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// The service configuration file (docs/config.md); flags given override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Rule pack directory, for every tenant (default: the configuration's,
    /// else the shipped pack).
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// State machine file (default: the configuration's, else the shipped
    /// order workflow).
    #[arg(long, value_name = "FILE")]
    pub machine: Option<PathBuf>,
}

/// A setup, or the problems found (printed by [`ConfigArgs::setup`]).
pub enum Prepared {
    /// Everything loaded and checked.
    Ready(Box<Setup>),
    /// Found wrong: every diagnostic was printed; exit 1.
    Refused,
}

impl ConfigArgs {
    /// Loads the configuration (if any), the machine and the packs, and
    /// checks the bindings' coverage: every problem at once. Diagnostics
    /// go to `print` (stdout for `check`, stderr for the others).
    pub fn setup_with(&self, print: impl Fn(&Diagnostic)) -> Result<Prepared, String> {
        let config = match &self.config {
            Some(f) => match config::load(f) {
                Ok(c) => Some(c),
                Err(diags) => {
                    diags.iter().for_each(&print);
                    eprintln!("{} error(s) in {}", diags.len(), f.display());
                    return Ok(Prepared::Refused);
                }
            },
            None => None,
        };
        let overrides = Overrides {
            rules: self.rules.clone(),
            machine: self.machine.clone(),
        };
        match config::resolve(config, &overrides) {
            Ok(s) => Ok(Prepared::Ready(Box::new(s))),
            Err(SetupError::Invalid(diags)) => {
                diags.iter().for_each(&print);
                let errors = diags
                    .iter()
                    .filter(|d| d.severity() == creatorflow::diag::Severity::Error)
                    .count();
                eprintln!("{errors} error(s), {} warning(s)", diags.len() - errors);
                Ok(Prepared::Refused)
            }
            Err(SetupError::Failed(e)) => Err(e),
        }
    }

    /// [`setup_with`](Self::setup_with), diagnostics on stderr.
    pub fn setup(&self) -> Result<Prepared, String> {
        self.setup_with(|d| eprintln!("{d}"))
    }
}

/// The store URL: the flag, else the configuration's, else [`DEFAULT_STORE`].
pub fn store_url(flag: Option<String>, setup: &Setup) -> String {
    flag.or_else(|| setup.config.as_ref().map(|c| c.store.clone()))
        .unwrap_or_else(|| DEFAULT_STORE.to_owned())
}

/// The store `ingest`, `worker` and `status` use without `--store`.
pub const DEFAULT_STORE: &str = "sqlite://creatorflow.db";

/// Output formats of the store commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable.
    Text,
    /// One JSON object.
    Json,
}

/// The runtime the store commands run in.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// An engine over the store at `url` (shipped machine and rules, system
/// clock, the simulated handlers), acting for `tenant`, with the builder
/// adjusted by `tweak` before it is built.
pub async fn open_engine_with(
    url: &str,
    tenant: &str,
    worker: Option<String>,
    tweak: impl FnOnce(
        creatorflow::EngineBuilder<creatorflow::AnyStore>,
    ) -> creatorflow::EngineBuilder<creatorflow::AnyStore>,
) -> Result<creatorflow::Engine<creatorflow::AnyStore>, String> {
    let store = creatorflow::store::open(url)
        .await
        .map_err(|e| e.to_string())?;
    engine_over(store, tenant, worker, tweak)
}

/// [`open_engine_with`] over a store already open.
pub fn engine_over(
    store: creatorflow::AnyStore,
    tenant: &str,
    worker: Option<String>,
    tweak: impl FnOnce(
        creatorflow::EngineBuilder<creatorflow::AnyStore>,
    ) -> creatorflow::EngineBuilder<creatorflow::AnyStore>,
) -> Result<creatorflow::Engine<creatorflow::AnyStore>, String> {
    let mut b = creatorflow::EngineBuilder::new(store)
        .tenant(tenant)
        .simulated_handlers();
    if let Some(w) = worker {
        b = b.worker_name(w);
    }
    tweak(b).build().map_err(|e| e.to_string())
}
