//! `creatorflow graph`.

use std::path::PathBuf;

use super::load_machine;
use crate::Outcome;

/// Diagram formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Mermaid `stateDiagram-v2`.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// Arguments of `graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// State machine file (default: the shipped order workflow).
    #[arg(long, value_name = "FILE")]
    machine: Option<PathBuf>,
    /// Diagram format.
    #[arg(long, value_enum, default_value = "mermaid")]
    format: Format,
}

/// Prints the machine as a diagram; a machine with errors prints its diagnostics (exit 1).
pub fn run(args: Args) -> Result<Outcome, String> {
    match load_machine(args.machine.as_deref()) {
        Ok(m) => {
            match args.format {
                Format::Mermaid => print!("{}", m.to_mermaid()),
                Format::Dot => print!("{}", m.to_dot()),
            }
            Ok(Outcome::Ok)
        }
        Err(diags) => {
            for d in diags {
                eprintln!("{d}");
            }
            Ok(Outcome::Invalid)
        }
    }
}
