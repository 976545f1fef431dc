//! Scenario loader tests as data, like the library's `tests/loader_data.rs`:
//! each `tests/data/scenario/<case>.yaml` is loaded and its diagnostics
//! compared with `<case>.expected` beside it, one per line as `simulate`
//! prints them (`file:line:col: error[E0503]: message`); an empty file means
//! the scenario loads. Run with `UPDATE_EXPECT=1` to (re)write the expected
//! files from what the loader says now, then review the diff.

use std::path::{Path, PathBuf};

use creatorflow::diag::Code;
use creatorflow_simulator::scenario::{Scenario, ScenarioError};

/// Codes no document can produce on its own: `E0501` is the loader's
/// fallback when parsing failed without saying why (every YAML error has a
/// code of its own), kept so that such a failure is never silent.
const UNREACHABLE: &[&str] = &["E0501"];

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/scenario");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// What the loader says about one case, as `simulate` prints it.
fn diagnostics(case: &Path) -> String {
    let name = case
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a UTF-8 file name");
    let text = std::fs::read_to_string(case).expect("case file");
    match Scenario::parse(&text, name) {
        Ok(_) => String::new(),
        Err(ScenarioError::Invalid(v)) => v.iter().map(|d| format!("{d}\n")).collect(),
        Err(e) => panic!("{name}: not a diagnostics error: {e}"),
    }
}

#[test]
fn scenario_cases_match_their_expected_diagnostics() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = String::new();
    for case in cases() {
        let actual = diagnostics(&case);
        let expected_path = case.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &actual).expect("write expected");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} has no expected file (UPDATE_EXPECT=1 writes it)",
                case.display()
            )
        });
        if actual != expected {
            failures.push_str(&format!(
                "--- {}\nexpected:\n{expected}actual:\n{actual}\n",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn every_scenario_code_has_a_case() {
    let all: String = cases().iter().map(|c| diagnostics(c)).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| c.starts_with("E05") || c.starts_with("W05"))
        .filter(|c| !UNREACHABLE.contains(c))
        .filter(|c| !all.contains(&format!("[{c}]")))
        .collect();
    assert!(
        missing.is_empty(),
        "scenario codes without a data case: {missing:?}"
    );
}
