//! `creatorflow check`.

use std::path::PathBuf;

use creatorflow::diag::{Diagnostic, Severity};
use creatorflow::rules::PackError;

use super::{load_machine, load_pack};
use crate::Outcome;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule pack directory (default: the shipped pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// State machine file (default: the shipped order workflow).
    #[arg(long, value_name = "FILE")]
    machine: Option<PathBuf>,
}

/// Prints every diagnostic as `file:line:col: error[E0108]: message` (`warning[W0201]`
/// for warnings; codes in `docs/diagnostics.md`); exit 1 if any is an error.
pub fn run(args: Args) -> Result<Outcome, String> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let mut summary = Vec::new();
    match load_pack(args.rules.as_deref()) {
        Ok(pack) => {
            diags.extend(pack.warnings().iter().cloned());
            summary.push(format!("{} rules", pack.rules().len()));
        }
        Err(PackError::Invalid(d)) => diags.extend(d),
        Err(e) => return Err(e.to_string()),
    }
    match load_machine(args.machine.as_deref()) {
        Ok(m) => {
            diags.extend(m.warnings().iter().cloned());
            summary.push(format!(
                "machine `{}` with {} states and {} transitions",
                m.name(),
                m.states().len(),
                m.transitions().len()
            ));
        }
        Err(d) => diags.extend(d),
    }
    for d in &diags {
        println!("{d}");
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity() == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if errors > 0 {
        eprintln!("{errors} error(s), {warnings} warning(s)");
        Ok(Outcome::Invalid)
    } else {
        eprintln!("ok: {} ({warnings} warning(s))", summary.join(", "));
        Ok(Outcome::Ok)
    }
}
