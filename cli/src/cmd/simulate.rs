//! `creatorflow simulate`: runs a traffic scenario through the real engine,
//! prints a summary and writes the JSON and HTML reports.

use std::path::{Path, PathBuf};

use super::{load_machine, load_pack};
use crate::Outcome;
use creatorflow::rules::RulePack;
use creatorflow_simulator::report::compare::{self, CompareReport};
use creatorflow_simulator::report::{Report, html, json, terminal};
use creatorflow_simulator::scenario::DEFAULT_SCENARIO;
use creatorflow_simulator::{Mode, Options, Policy, Scenario, ScenarioError};

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
    /// steady-week, black-friday) or a scenario YAML file.
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
    /// Run the scenario twice, same seed and capacity, under two packing
    /// policies and compare them: each `fifo` (one lane, arrival order),
    /// `lanes` (the pack's lanes; `--rules` or the shipped pack) or a
    /// rule-pack directory (its lanes). Needs `--store memory:` or the
    /// default store (recreated for each run).
    #[arg(long, value_name = "A,B", value_delimiter = ',', num_args = 1)]
    compare: Vec<String>,
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

/// One packing policy of `--compare`: its name, the policy and its pack.
struct PolicyRun {
    name: String,
    policy: Policy,
    pack: RulePack,
}

/// Parses `--compare`'s policies; a usage error names the bad one.
fn policies(names: &[String], rules: Option<&Path>) -> Result<Vec<PolicyRun>, String> {
    if names.len() != 2 {
        return Err(format!(
            "--compare takes two policies, as `A,B` (each `fifo`, `lanes` or a rule-pack directory), found {}",
            names.len()
        ));
    }
    if names[0] == names[1] {
        return Err(format!("--compare: both policies are `{}`", names[0]));
    }
    names
        .iter()
        .map(|name| {
            let (policy, dir) = match name.as_str() {
                "fifo" => (Policy::Fifo, rules.map(Path::to_path_buf)),
                "lanes" => (Policy::Lanes, rules.map(Path::to_path_buf)),
                dir if Path::new(dir).is_dir() => (Policy::Lanes, Some(PathBuf::from(dir))),
                other => {
                    return Err(format!(
                        "--compare: `{other}` is neither `fifo`, `lanes` nor a rule-pack directory"
                    ));
                }
            };
            let pack = load_pack(dir.as_deref()).map_err(|e| e.to_string())?;
            Ok(PolicyRun {
                name: name.clone(),
                policy,
                pack,
            })
        })
        .collect()
}

/// Runs `scenario` once on the store `--store` names (the default one
/// recreated first).
fn run_once(
    rt: &tokio::runtime::Runtime,
    scenario: &Scenario,
    store: Option<&str>,
    opts: Options,
) -> Result<Report, String> {
    let url = match store {
        Some(u) => u.to_owned(),
        None => {
            remove_db(Path::new(DEFAULT_SIM_DB))?;
            // Full durability, as any SQLite store (`synchronous=full`):
            // the simulator commits each simulated minute as one group.
            format!("sqlite://{DEFAULT_SIM_DB}")
        }
    };
    let opts = Options {
        store_kind: store_kind(&url),
        ..opts
    };
    rt.block_on(async {
        let store = creatorflow::store::open(&url)
            .await
            .map_err(|e| e.to_string())?;
        let report = creatorflow_simulator::run(scenario, store.clone(), opts).await;
        store.close().await;
        report.map_err(|e| e.to_string())
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
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
    let machine = match load_machine(args.machine.as_deref()) {
        Ok(m) => m,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            return Ok(Outcome::Invalid);
        }
    };
    let compare = if args.compare.is_empty() {
        None
    } else {
        if args
            .store
            .as_deref()
            .is_some_and(|u| !u.starts_with("memory:"))
        {
            return Err(
                "--compare runs the scenario twice: use --store memory: or the default store (recreated for each run)".into(),
            );
        }
        Some(policies(&args.compare, args.rules.as_deref())?)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let opts = |rules: RulePack, policy: Policy| Options {
        seed: args.seed.unwrap_or(scenario.seed),
        store_kind: String::new(),
        mode: match args.clock {
            ClockArg::Virtual => Mode::Virtual,
            ClockArg::Wall => Mode::Wall,
        },
        rules,
        machine: machine.clone(),
        progress: !args.no_progress,
        policy,
    };
    if let Some(runs) = compare {
        let mut reports = Vec::new();
        for r in runs {
            let report = run_once(
                &rt,
                &scenario,
                args.store.as_deref(),
                opts(r.pack, r.policy),
            )?;
            reports.push((r.name, report));
        }
        let c = CompareReport::new(reports);
        let text = serde_json::to_string_pretty(&c).map_err(|e| e.to_string())?;
        write(&args.json, &format!("{text}\n"))?;
        write(&args.html, &html::render_compare(&c))?;
        let lost: u64 = c.reports.values().map(|r| r.orders.lost).sum();
        match args.format {
            SimFormat::Json => println!("{text}"),
            SimFormat::Text => {
                for (name, r) in c.runs() {
                    println!("[{name}]");
                    print!("{}", terminal::summary(r));
                }
                print!("{}", compare::summary(&c));
                println!(
                    "reports  {} and {}",
                    args.json.display(),
                    args.html.display()
                );
            }
        }
        return Ok(lost_outcome(lost));
    }
    let pack = load_pack(args.rules.as_deref()).map_err(|e| e.to_string())?;
    let report = run_once(
        &rt,
        &scenario,
        args.store.as_deref(),
        opts(pack, Policy::Lanes),
    )?;
    let text = json::to_json(&report).map_err(|e| e.to_string())?;
    write(&args.json, &format!("{text}\n"))?;
    write(&args.html, &html::render(&report))?;
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
    Ok(lost_outcome(report.orders.lost))
}

fn lost_outcome(lost: u64) -> Outcome {
    if lost > 0 {
        eprintln!("creatorflow: {lost} order(s) lost (neither finished nor in flight)");
        return Outcome::Invalid;
    }
    Outcome::Ok
}
