//! One module per subcommand, and what they share.

pub mod check;
pub mod eval;
pub mod graph;

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
