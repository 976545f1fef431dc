//! One module per subcommand, and what they share.

pub mod check;
pub mod eval;
pub mod graph;
pub mod ingest;
pub mod serve;
pub mod simulate;
pub mod status;
pub mod worker;

use std::path::Path;

use creatorflow::diag::Diagnostic;
use creatorflow::machine::Machine;
use creatorflow::rules::{PackError, RulePack};

/// Loads `--rules DIR`, or the shipped pack built into the binary.
pub fn load_pack(dir: Option<&Path>) -> Result<RulePack, PackError> {
    match dir {
        Some(d) => RulePack::load_dir(d),
        None => Ok(RulePack::shipped()),
    }
}

/// Loads `--machine FILE`, or the shipped order workflow built into the binary.
pub fn load_machine(file: Option<&Path>) -> Result<Machine, Vec<Diagnostic>> {
    match file {
        Some(f) => Machine::from_file(f),
        None => Ok(Machine::default_order_workflow()),
    }
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
/// clock, the simulated handlers), acting for `tenant`.
pub async fn open_engine(
    url: &str,
    tenant: &str,
    worker: Option<String>,
) -> Result<creatorflow::Engine<creatorflow::AnyStore>, String> {
    open_engine_with(url, tenant, worker, |b| b).await
}

/// [`open_engine`], with the builder adjusted by `tweak` before it is built.
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
    let mut b = creatorflow::EngineBuilder::new(store)
        .tenant(tenant)
        .simulated_handlers();
    if let Some(w) = worker {
        b = b.worker_name(w);
    }
    tweak(b).build().map_err(|e| e.to_string())
}
