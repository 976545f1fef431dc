//! Loader tests as data: each case under `tests/data/` is loaded and its
//! diagnostics compared with the expected file beside it.
//!
//! - `tests/data/rules/<case>/` — the `*.yaml` files of one rule pack (loaded
//!   in name order, named by their file name) and `expected.txt`;
//! - `tests/data/machine/<case>.yaml` — one state machine file and
//!   `<case>.expected`;
//! - `tests/data/packtest/<case>.yaml` — one case file of `creatorflow test`,
//!   loaded against the shipped pack, and `<case>.expected`.
//!
//! An expected file lists every diagnostic, one per line, as `check` prints it
//! (`file:line:col: error[E0108]: message`); an empty file means the document
//! loads cleanly. A document is refused exactly when a line is an `error`.
//! Every code of the YAML, rules, machine, action and case-file loaders has a case
//! (scenario codes, `E05xx`, have their cases in the simulator crate:
//! `simulator/tests/scenario_data.rs`; service configuration codes, `E06xx`,
//! in the CLI crate: `cli/tests/config.rs`).
//! Run with `UPDATE_EXPECT=1` to (re)write the expected files from what the
//! loaders say now, then review the diff.

use std::path::{Path, PathBuf};

use creatorflow::Machine;
use creatorflow::diag::{Code, Diagnostic, Severity};
use creatorflow::packtest::{CaseError, CaseSet};
use creatorflow::rules::{PackError, PackLoader, RulePack};

/// The data directory of one loader.
fn data(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(kind)
}

/// The entries of `dir` whose path passes `keep`, in name order.
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| keep(p))
        .collect();
    v.sort();
    v
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Loads the rule pack of a case directory: (accepted, diagnostics).
fn load_rules(case: &Path) -> (bool, Vec<Diagnostic>) {
    let sources: Vec<(String, String)> =
        entries(case, |p| p.extension().is_some_and(|e| e == "yaml"))
            .iter()
            .map(|p| (file_name(p), read(p)))
            .collect();
    match PackLoader::new().load_sources(&sources) {
        Ok(pack) => (true, pack.warnings().to_vec()),
        Err(PackError::Invalid(d)) => (false, d),
        Err(e) => panic!("{}: {e}", case.display()),
    }
}

/// Loads a machine case file: (accepted, diagnostics).
fn load_machine(case: &Path) -> (bool, Vec<Diagnostic>) {
    match Machine::from_str(&read(case), &file_name(case)) {
        Ok(m) => (true, m.warnings().to_vec()),
        Err(d) => (false, d),
    }
}

/// Loads a case file against the shipped pack: (accepted, diagnostics).
fn load_cases(case: &Path) -> (bool, Vec<Diagnostic>) {
    let sources = [(file_name(case), read(case))];
    match CaseSet::load_sources(&RulePack::shipped(), &sources) {
        Ok(set) => (true, set.warnings),
        Err(CaseError::Invalid(d)) => (false, d),
        Err(e) => panic!("{}: {e}", case.display()),
    }
}

/// One loader's data: where its cases are, which entries are cases, where a
/// case's expected file is, and how to load a case.
struct Loader {
    dir: &'static str,
    is_case: fn(&Path) -> bool,
    expected: fn(&Path) -> PathBuf,
    load: fn(&Path) -> (bool, Vec<Diagnostic>),
}

const RULES: Loader = Loader {
    dir: "rules",
    is_case: Path::is_dir,
    expected: |case| case.join("expected.txt"),
    load: load_rules,
};

const MACHINE: Loader = Loader {
    dir: "machine",
    is_case: |p| p.extension().is_some_and(|e| e == "yaml"),
    expected: |case| case.with_extension("expected"),
    load: load_machine,
};

const PACKTEST: Loader = Loader {
    dir: "packtest",
    is_case: |p| p.extension().is_some_and(|e| e == "yaml"),
    expected: |case| case.with_extension("expected"),
    load: load_cases,
};

impl Loader {
    /// Every (case, expected file) of this loader, in name order.
    fn cases(&self) -> Vec<(PathBuf, PathBuf)> {
        let dir = data(self.dir);
        let cases: Vec<_> = entries(&dir, self.is_case)
            .into_iter()
            .map(|case| {
                let expected = (self.expected)(&case);
                (case, expected)
            })
            .collect();
        assert!(!cases.is_empty(), "no cases in {}", dir.display());
        cases
    }
}

/// Runs every case of one loader. Collects every mismatch, then fails once
/// with all of them; with `UPDATE_EXPECT` set it rewrites the expected files.
fn check(loader: &Loader) {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for (case, expected_path) in loader.cases() {
        let (accepted, diags) = (loader.load)(&case);
        let errors = diags.iter().any(|d| d.severity() == Severity::Error);
        assert_eq!(
            accepted,
            !errors,
            "{}: accepted iff no error diagnostics",
            case.display()
        );
        let actual: String = diags.iter().map(|d| format!("{d}\n")).collect();
        if update {
            std::fs::write(&expected_path, &actual)
                .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{}\n--- expected ({})\n{expected}--- actual\n{actual}",
                case.display(),
                expected_path.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (UPDATE_EXPECT=1 rewrites the expected files):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn rule_pack_cases() {
    check(&RULES);
}

#[test]
fn machine_cases() {
    check(&MACHINE);
}

#[test]
fn case_file_cases() {
    check(&PACKTEST);
}

/// Codes no data case can show: the YAML parser reports an unknown anchor as
/// a syntax error before the tree builder sees it, and an unreadable machine
/// file is an I/O case (a unit test of `Machine::from_file`), and so is an
/// unreadable case file (`cli/tests/packtest.rs`, through the binary).
const NOT_SHOWN_BY_DATA: &[Code] = &[
    Code::YamlUnknownAnchor,
    Code::MachineUnreadable,
    Code::CaseUnreadable,
];

#[test]
fn every_loader_code_has_a_case() {
    let text: String = [RULES, MACHINE, PACKTEST]
        .iter()
        .flat_map(Loader::cases)
        .map(|(_, expected)| std::fs::read_to_string(expected).unwrap_or_default())
        .collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !c.as_str().starts_with("E05") && !c.as_str().starts_with("E06"))
        .filter(|c| !NOT_SHOWN_BY_DATA.contains(c))
        .filter(|c| !text.contains(&format!("[{}]", c.as_str())))
        .map(|c| c.as_str())
        .collect();
    assert!(missing.is_empty(), "codes without a data case: {missing:?}");
}
