//! `creatorflow`: the command line of the CreatorFlow engine.
//!
//! Exit codes: 0 success, 1 the input was checked and found wrong
//! (diagnostics printed), 2 usage error or a failure to run.

mod cmd;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CreatorFlow: order-workflow automation for TikTok Shop creators.
#[derive(Debug, Parser)]
#[command(name = "creatorflow", version, about)]
struct Cli {
    /// How log lines are written on stderr (level by `RUST_LOG`, default `info`).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = logging::LogFormat::Human)]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a traffic scenario through the real engine in virtual time; print a summary, write reports.
    Simulate(cmd::simulate::Args),
    /// Evaluate a rule pack on a JSON-lines batch of orders; one decision per line.
    Eval(cmd::eval::Args),
    /// Run the test cases next to a rule pack (DIR/tests/*.yaml); exit 1 if one fails.
    Test(cmd::test::Args),
    /// Load and validate a rule pack and a state machine; print every diagnostic.
    Check(cmd::check::Args),
    /// Print the state machine as a diagram.
    Graph(cmd::graph::Args),
    /// Durably ingest a JSON-lines batch of orders (idempotent on tiktok_order_id).
    Ingest(cmd::ingest::Args),
    /// Run the workflow workers (until SIGINT/SIGTERM, or until idle).
    Worker(cmd::worker::Args),
    /// Counts by state and lane, and an integrity check of the store.
    Status(cmd::status::Args),
    /// Replay a tenant's stored orders with the pack that decided them and a new pack; report the difference.
    Backtest(cmd::backtest::Args),
    /// The TikTok Shop webhook receiver, the workers and the dashboard in one process.
    Serve(cmd::serve::Args),
    /// Print the JSON Schema (draft-07) of a file format, for editors.
    Schema(cmd::schema::Args),
}

/// What a command ended with.
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the input was checked and found wrong.
    Invalid,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Simulate(a) => cmd::simulate::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Test(a) => cmd::test::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Graph(a) => cmd::graph::run(a),
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Worker(a) => cmd::worker::run(a),
        Command::Status(a) => cmd::status::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Schema(a) => cmd::schema::run(a),
        Command::Backtest(a) => cmd::backtest::run(a),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Invalid) => ExitCode::from(1),
        Err(e) => {
            eprintln!("creatorflow: {e}");
            ExitCode::from(2)
        }
    }
}
