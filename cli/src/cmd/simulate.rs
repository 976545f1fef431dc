//! `creatorflow simulate`: runs a traffic scenario through the real engine,
//! prints a summary and writes the JSON and HTML reports.

use std::path::{Path, PathBuf};

use super::{load_machine, load_pack};
use crate::Outcome;
use creatorflow_simulator::report::{html, json, terminal};
use creatorflow_simulator::scenario::DEFAULT_SCENARIO;
use creatorflow_simulator::{Mode, Options, Scenario, ScenarioError};

/// The store `simulate` uses without `--store`: an SQLite file in the
/// working directory, recreated on every run.
pub const DEFAULT_SIM_DB: &str = "creatorflow-sim.db";

/// Time in which the scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockArg {
    /// Simulated time: a day in seconds; deterministic on `memory:`.
    Virtual,
    /// Real time, no service latency: throughput of the engine and the store.
    Wall,
}

/// Output on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    /// The summary for people.
    Text,
    /// The JSON report.
    Json,
}

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A built-in scenario (viral-spike, flash-sale, carrier-outage,
    /// steady-week) or a scenario YAML file.
    #[arg(long, value_name = "NAME|FILE", default_value = DEFAULT_SCENARIO)]
    scenario: String,
    /// The seed (default: the scenario's).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The store: `memory:`, `sqlite://PATH` or `postgres://…` (it must hold
    /// no earlier simulation). Default: `creatorflow-sim.db` in the working
    /// directory, deleted and recreated on every run.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// A rule-pack directory (default: the shipped pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// A machine file (default: the shipped order workflow).
    #[arg(long, value_name = "FILE")]
    machine: Option<PathBuf>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE", default_value = "creatorflow-sim.json")]
    json: PathBuf,
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE", default_value = "creatorflow-sim.html")]
    html: PathBuf,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = SimFormat::Text)]
    format: SimFormat,
    /// Virtual (simulated) or wall-clock time.
    #[arg(long, value_enum, default_value_t = ClockArg::Virtual)]
    clock: ClockArg,
    /// No progress bar (it is only drawn when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
}

fn store_kind(url: &str) -> String {
    url.split(':').next().unwrap_or("store").to_owned()
}

fn remove_db(path: &Path) -> Result<(), String> {
    // The database, its webhook inbox file (`PATH-inbox`), and their WALs.
    for suffix in ["", "-wal", "-shm", "-inbox", "-inbox-wal", "-inbox-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove the previous simulation store {}: {e}",
                    Path::new(&p).display()
                ));
            }
        }
    }
    Ok(())
}

/// Runs the scenario; exit 1 for a bad scenario file (diagnostics on
/// stderr) or when orders were lost.
pub fn run(args: Args) -> Result<Outcome, String> {
    let scenario = match Scenario::resolve(&args.scenario) {
        Ok(s) => s,
        Err(ScenarioError::Invalid(diags)) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.to_string()),
    };
    let pack = load_pack(args.rules.as_deref()).map_err(|e| e.to_string())?;
    let machine = match load_machine(args.machine.as_deref()) {
        Ok(m) => m,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return Ok(Outcome::Invalid);
        }
    };
    let url = match &args.store {
        Some(u) => u.clone(),
        None => {
            remove_db(Path::new(DEFAULT_SIM_DB))?;
            // Full durability, as any SQLite store (`synchronous=full`):
            // the simulator commits each simulated minute as one group.
            format!("sqlite://{DEFAULT_SIM_DB}")
        }
    };
    let opts = Options {
        seed: args.seed.unwrap_or(scenario.seed),
        store_kind: store_kind(&url),
        mode: match args.clock {
            ClockArg::Virtual => Mode::Virtual,
            ClockArg::Wall => Mode::Wall,
        },
        rules: pack,
        machine,
        progress: !args.no_progress,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let report = rt.block_on(async {
        let store = creatorflow::store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        creatorflow_simulator::run(&scenario, store, opts)
            .await
            .map_err(|e| e.to_string())
    })?;
    let text = json::to_json(&report).map_err(|e| e.to_string())?;
    std::fs::write(&args.json, format!("{text}\n"))
        .map_err(|e| format!("cannot write {}: {e}", args.json.display()))?;
    std::fs::write(&args.html, html::render(&report))
        .map_err(|e| format!("cannot write {}: {e}", args.html.display()))?;
    match args.format {
        SimFormat::Json => println!("{text}"),
        SimFormat::Text => {
            print!("{}", terminal::summary(&report));
            println!(
                "reports  {} and {}",
                args.json.display(),
                args.html.display()
            );
        }
    }
    if report.orders.lost > 0 {
        eprintln!(
            "creatorflow: {} order(s) lost (neither finished nor in flight)",
            report.orders.lost
        );
        return Ok(Outcome::Invalid);
    }
    Ok(Outcome::Ok)
}
