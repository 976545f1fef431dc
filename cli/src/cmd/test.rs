//! `creatorflow test`: the case files next to a rule pack.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use creatorflow::packtest::{Case, CaseError, CaseResult, CaseSet, Failure, run_case};
use creatorflow::rules::{Explanation, PackError};
use serde::Serialize;

use super::{Format, load_pack, print_pack_version};
use crate::Outcome;

/// Arguments of `test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Case files (default: `DIR/tests/*.yaml` of `--rules DIR`, or the
    /// shipped pack's tests).
    #[arg(value_name = "TESTS")]
    tests: Vec<PathBuf>,
    /// Rule pack directory (default: the shipped pack).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// `text`, or `json`: one object per case on stdout, the closing line on stderr.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// One case in `--format json`.
#[derive(Serialize)]
struct JsonCase<'a> {
    name: &'a str,
    file: &'a str,
    line: u32,
    passed: bool,
    failures: &'a [Failure],
    #[serde(skip_serializing_if = "<[Explanation]>::is_empty")]
    explanations: &'a [Explanation],
}

/// Runs every case; exit 1 if one fails or a file is refused.
pub fn run(args: Args) -> Result<Outcome, String> {
    let pack = match load_pack(args.rules.as_deref()) {
        Ok(p) => Arc::new(p),
        Err(PackError::Invalid(diags)) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.to_string()),
    };
    print_pack_version(&pack, args.rules.as_deref());
    let (loaded, from) = if !args.tests.is_empty() {
        (CaseSet::load_files(&pack, &args.tests), None)
    } else if let Some(dir) = &args.rules {
        let dir = dir.join("tests");
        if !dir.is_dir() {
            return Err(format!(
                "no test cases in {}: no such directory (case files go in DIR/tests/*.yaml, or name them: creatorflow test FILE...)",
                dir.display()
            ));
        }
        (
            CaseSet::load_dir(&pack, &dir),
            Some(dir.display().to_string()),
        )
    } else {
        (CaseSet::shipped(&pack), Some("the shipped pack".to_owned()))
    };
    let set = match loaded {
        Ok(s) => s,
        Err(CaseError::Invalid(diags)) => {
            diags.iter().for_each(|d| eprintln!("{d}"));
            let errors = diags
                .iter()
                .filter(|d| d.severity() == creatorflow::diag::Severity::Error)
                .count();
            eprintln!("{errors} error(s), {} warning(s)", diags.len() - errors);
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.to_string()),
    };
    set.warnings.iter().for_each(|d| eprintln!("{d}"));
    if set.cases.is_empty() {
        return Err(format!(
            "no test cases in {}",
            from.unwrap_or_else(|| "the files given".to_owned())
        ));
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    let write_err = |e: std::io::Error| format!("cannot write output: {e}");
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &set.cases {
        let result = run_case(&pack, case);
        if result.passed() {
            passed += 1;
        } else {
            failed += 1;
        }
        match args.format {
            Format::Json => {
                let line = JsonCase {
                    name: &case.name,
                    file: &case.file,
                    line: case.pos.line,
                    passed: result.passed(),
                    failures: &result.failures,
                    explanations: &result.explanations,
                };
                serde_json::to_writer(&mut out, &line).map_err(|e| e.to_string())?;
                writeln!(out).map_err(write_err)?;
            }
            Format::Text => write_text(&mut out, case, &result).map_err(write_err)?,
        }
    }
    let summary = format!("{passed} passed, {failed} failed");
    match args.format {
        Format::Text => writeln!(out, "{summary}").map_err(write_err)?,
        Format::Json => eprintln!("{summary}"),
    }
    out.flush().map_err(write_err)?;
    Ok(if failed > 0 {
        Outcome::Invalid
    } else {
        Outcome::Ok
    })
}

/// `ok   file:line name`, or `FAIL file:line name` with each failure and the
/// explanations, indented.
fn write_text(out: &mut impl Write, case: &Case, result: &CaseResult) -> std::io::Result<()> {
    let at = format!("{}:{}", case.file, case.pos.line);
    if result.passed() {
        return writeln!(out, "ok   {at} {}", case.name);
    }
    writeln!(out, "FAIL {at} {}", case.name)?;
    for f in &result.failures {
        writeln!(out, "  {f}")?;
    }
    for x in &result.explanations {
        for line in x.to_string().lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}
