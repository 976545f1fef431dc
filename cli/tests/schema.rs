//! `creatorflow schema`: the JSON Schemas kept in `schemas/` are what the
//! command prints, and they agree with the loaders.
//!
//! - `schemas/*.schema.json` equal the command's output, through the binary
//!   (`UPDATE_EXPECT=1` rewrites them; review the diff);
//! - every shipped file validates: the rule pack `rules/*.yaml`, the machine
//!   `rules/order-workflow.yaml`, the pack's tests `rules/tests/*.yaml` (when
//!   there are some), the configuration examples of `docs/config.md` and
//!   `README.md`;
//! - every loader data case (`tests/data/rules/`, `tests/data/machine/`,
//!   `cli/tests/data/config/`) that its loader accepts validates, and every
//!   file of a case that its loader refuses with a code of [`SCHEMA_CODES`]
//!   (a key, type or enum reason, and the ranges and shapes a schema also
//!   says) is refused by the schema.
//!
//! YAML is read with the loaders' own parser (`creatorflow::yaml`) and
//! turned into JSON as the loaders type it (YAML 1.2 core schema).

use std::path::{Path, PathBuf};
use std::process::Command;

use creatorflow::diag::Diagnostics;
use serde_json::Value;

/// The codes a document is refused with for a key, type or enum reason
/// (`src/diag/code.rs`), and the ranges and shapes the schemas say too: a
/// file refused with one of these must be refused by its schema.
const SCHEMA_CODES: &[&str] = &[
    // YAML shape: keys and types.
    "E0106", // a value must be a mapping
    "E0107", // a required key is missing
    "E0108", // a key is not known here
    "E0109", // a value must be a string
    "E0110", // a value must be an integer
    "E0111", // a value must be true or false
    "E0112", // a value must be an RFC 3339 time
    "E0113", // a value must be a list
    "E0114", // a value must be one of a closed set of names
    // Rules and conditions.
    "E0202", // a rule id does not match [a-z0-9_-]+
    "E0203", // a rule priority is not between 0 and 100
    "E0205", // an empty `actions` list
    "E0206", // CUSTOM without `custom_logic`
    "E0207", // `custom_logic` without CUSTOM
    "E0208", // an empty `conditions` list
    "E0211", // a rule count must be a positive integer
    "E0212", // a condition name is not a usable identifier
    "E0213", // an unknown fact
    "E0214", // a guard uses a window fact
    "E0215", // a window fact without `time_window`
    "E0217", // `time_window` on a fact that is no window fact
    "E0218", // no `value` for an operator that needs one
    "E0219", // `in` / `not_in` with a value that is not a list
    "E0220", // a numeric comparison with a value that is not a number
    "E0221", // an unknown viral indicator type
    "E0222", // a value the enumerated fact never takes
    // Machines.
    "E0303", // `states` is empty
    "E0315", // a state name with other characters
    "E0316", // `progress` not between 0 and 100
    "E0317", // an unknown `automation_status`
    "E0319", // a timeout with both `transition` and `escalate`
    "E0320", // a timeout with neither
    "E0321", // `escalate` sets nothing
    "E0323", // an empty `from` list
    "E0324", // both `guard` and `guard_script`
    "E0325", // an empty `guard` list
    "E0327", // an unknown `waits_for`
    // Actions.
    "E0401", // an unknown action type
    "E0402", // `parameters` is not a mapping
    "E0403", // `escalate_priority` sets nothing
    "E0404", // `new_priority` / `new_impact` not a known value
    "E0405", // an action count or time must be positive
    "E0406", // a retry delay is negative
    "E0407", // an unknown `backoff_strategy`
    // The service configuration.
    "E0612", // `actions` names an unknown action type
    "E0613", // an engine action type is bound
    "E0614", // a binding is not exactly one of http, tiktok, log, simulated
    "E0615", // an unknown TikTok operation
];

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The entries of `dir` whose path passes `keep`, in name order (none if
/// `dir` does not exist).
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("directory entry").path())
        .filter(|p| keep(p))
        .collect();
    v.sort();
    v
}

fn is_yaml(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// The schema kept in `schemas/`, compiled (formats checked, as editors do).
struct Schema {
    name: &'static str,
    validator: jsonschema::Validator,
}

impl Schema {
    fn load(name: &'static str) -> Schema {
        let path = root().join("schemas").join(format!("{name}.schema.json"));
        let value: Value = serde_json::from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let validator = jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(&value)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Schema { name, validator }
    }

    /// The schema's complaints about a YAML text (none: it validates);
    /// `None` when the text is not YAML (no schema has a say).
    fn errors(&self, file: &str, text: &str) -> Option<Vec<String>> {
        let mut d = Diagnostics::new(file);
        let json = creatorflow::yaml::parse(text, &mut d)?.to_json();
        Some(
            self.validator
                .iter_errors(&json)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect(),
        )
    }

    fn assert_valid(&self, file: &str, text: &str) {
        let errors = self
            .errors(file, text)
            .unwrap_or_else(|| panic!("{file} is not YAML"));
        assert!(
            errors.is_empty(),
            "{file} does not validate against the {} schema:\n{}",
            self.name,
            errors.join("\n")
        );
    }
}

fn creatorflow(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(args)
        .output()
        .expect("run creatorflow")
}

#[test]
fn the_kept_schemas_are_what_the_command_prints() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut stale = Vec::new();
    for name in ["rules", "machine", "tests", "config"] {
        let out = creatorflow(&["schema", name]);
        assert!(out.status.success(), "schema {name}: {out:?}");
        let printed = String::from_utf8(out.stdout).expect("UTF-8");
        let path = root().join("schemas").join(format!("{name}.schema.json"));
        if update {
            std::fs::write(&path, &printed).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        if std::fs::read_to_string(&path).ok().as_deref() != Some(printed.as_str()) {
            stale.push(path.display().to_string());
        }
        let schema: Value = serde_json::from_str(&printed).expect("the schema is JSON");
        assert_eq!(
            schema["$schema"], "http://json-schema.org/draft-07/schema#",
            "{name}"
        );
        assert!(
            jsonschema::draft7::meta::is_valid(&schema),
            "schema {name} is not a valid draft-07 schema"
        );
    }
    assert!(
        stale.is_empty(),
        "out of date (UPDATE_EXPECT=1 rewrites them): {stale:?}"
    );
    let bad = creatorflow(&["schema", "scenario"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "an unknown format is a usage error"
    );
}

#[test]
fn shipped_files_validate() {
    let rules = Schema::load("rules");
    let machine = Schema::load("machine");
    let dir = root().join("rules");
    let files = entries(&dir, is_yaml);
    assert!(files.len() >= 2, "no shipped files in {}", dir.display());
    for f in &files {
        let text = read(f);
        let name = f.display().to_string();
        // As the pack loader does: a file whose top-level key is `machine:` is a machine.
        let is_machine = text.lines().any(|l| l.starts_with("machine:"));
        if is_machine {
            machine.assert_valid(&name, &text);
        } else {
            rules.assert_valid(&name, &text);
        }
        // The modeline names the schema, relative to the file.
        let kind = if is_machine { "machine" } else { "rules" };
        assert_eq!(
            text.lines().next(),
            Some(format!("# yaml-language-server: $schema=../schemas/{kind}.schema.json").as_str()),
            "{name}: first line"
        );
    }
    let tests = Schema::load("tests");
    for f in entries(&dir.join("tests"), is_yaml) {
        tests.assert_valid(&f.display().to_string(), &read(&f));
    }
}

/// The YAML examples of a Markdown file that are configuration files: the
/// fenced `yaml` blocks and `<<'YAML'` here-documents whose first key is `store:`.
fn config_examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in markdown.lines() {
        match &mut block {
            None if line.trim_start() == "```yaml" || line.ends_with("<<'YAML'") => {
                block = Some(String::new())
            }
            Some(b) if line.trim_start() == "```" || line == "YAML" => {
                if b.lines().any(|l| l.starts_with("store:")) {
                    out.push(std::mem::take(b));
                }
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn documented_configurations_validate() {
    let config = Schema::load("config");
    let mut n = 0;
    for doc in ["docs/config.md", "README.md"] {
        for (i, example) in config_examples(&read(&root().join(doc))).iter().enumerate() {
            config.assert_valid(&format!("{doc} example {}", i + 1), example);
            n += 1;
        }
    }
    assert!(n >= 2, "found {n} configuration examples");
}

/// The codes of the error lines of an expected file, with the file each names.
fn error_codes(expected: &str) -> Vec<(String, String)> {
    expected
        .lines()
        .filter_map(|l| {
            let (file, rest) = l.split_once(':')?;
            let code = rest.split_once(": error[")?.1.split_once(']')?.0;
            Some((file.to_owned(), code.to_owned()))
        })
        .collect()
}

/// Checks one data case: `files` are (name, text); `expected` what the loader said.
fn check_case(
    schema: &Schema,
    case: &Path,
    files: &[(String, String)],
    expected: &str,
    failures: &mut Vec<String>,
) -> bool {
    let codes = error_codes(expected);
    let mut refused_by_schema = false;
    for (name, text) in files {
        let Some(errors) = schema.errors(name, text) else {
            continue;
        };
        let must_refuse: Vec<&str> = codes
            .iter()
            .filter(|(f, c)| f == name && SCHEMA_CODES.contains(&c.as_str()))
            .map(|(_, c)| c.as_str())
            .collect();
        if codes.is_empty() && !errors.is_empty() {
            failures.push(format!(
                "{} ({name}): the loader accepts it, the schema refuses it:\n  {}",
                case.display(),
                errors.join("\n  ")
            ));
        }
        if !must_refuse.is_empty() && errors.is_empty() {
            failures.push(format!(
                "{} ({name}): the loader refuses it ({}), the schema accepts it",
                case.display(),
                must_refuse.join(", ")
            ));
        }
        refused_by_schema |= !must_refuse.is_empty();
    }
    refused_by_schema
}

fn report(kind: &str, failures: Vec<String>, refused: usize) {
    assert!(
        failures.is_empty(),
        "{kind}: {} disagreement(s) between the schema and the loader:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(refused > 0, "{kind}: no case exercised a refusal");
}

#[test]
fn rule_cases_agree_with_the_loader() {
    let schema = Schema::load("rules");
    let dir = root().join("tests/data/rules");
    let (mut failures, mut refused) = (Vec::new(), 0);
    for case in entries(&dir, Path::is_dir) {
        let files: Vec<(String, String)> = entries(&case, is_yaml)
            .iter()
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                (name, read(p))
            })
            .collect();
        let expected = read(&case.join("expected.txt"));
        refused += usize::from(check_case(&schema, &case, &files, &expected, &mut failures));
    }
    report("rules", failures, refused);
}

/// Checks each one-file case in `dir` (`NAME.yaml` beside `NAME.expected`)
/// against the `kind` schema. Only the file's own errors count: a config
/// case's E0611 / E0617 come from what it names.
fn one_file_cases_agree(kind: &'static str, dir: &Path) {
    let schema = Schema::load(kind);
    let (mut failures, mut refused) = (Vec::new(), 0);
    for case in entries(dir, is_yaml) {
        let name = case
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let expected = read(&case.with_extension("expected"));
        let files = [(name, read(&case))];
        refused += usize::from(check_case(&schema, &case, &files, &expected, &mut failures));
    }
    report(kind, failures, refused);
}

#[test]
fn machine_cases_agree_with_the_loader() {
    one_file_cases_agree("machine", &root().join("tests/data/machine"));
}

#[test]
fn config_cases_agree_with_the_loader() {
    one_file_cases_agree("config", &root().join("cli/tests/data/config"));
}

/// The test case format: the spec's example validates, and documents with a
/// wrong key, type or value are refused.
#[test]
fn test_case_files_follow_the_spec() {
    let tests = Schema::load("tests");
    let good = r#"
cases:
  - name: vip orders skip the queue
    now: 2025-06-12T10:00:00Z
    history:
      - {tiktok_order_id: "h1", customer_handle: "@bo", product_name: Lamp, product_id: p1, quantity: 1, price: "20", created_at: 2025-06-12T09:00:00Z}
    order: {tiktok_order_id: "1", customer_tier: vip, customer_handle: "@ana", product_name: Lamp, product_id: p1, quantity: 2, price: 40, created_at: 2025-06-12T09:59:00Z}
    enrich: true
    expect:
      matched: [vip-fast-track]
      fired: [vip-fast-track]
      not_fired: [manual-review-new-customer]
      priority: high
      impact: VIRAL
      actions: [escalate_priority]
      errors: 0
"#;
    tests.assert_valid("good.yaml", good);
    let order = r#"{tiktok_order_id: "1", customer_handle: "@ana", product_name: Lamp, product_id: p1, quantity: 1, price: "20", created_at: 2025-06-12T10:00:00Z}"#;
    let bad = [
        ("unknown case key", format!("cases:\n  - {{name: a, order: {order}, expect: {{}}, nowe: x}}\n")),
        ("unknown expect key", format!("cases:\n  - {{name: a, order: {order}, expect: {{match: [a]}}}}\n")),
        ("unknown priority", format!("cases:\n  - {{name: a, order: {order}, expect: {{priority: hihg}}}}\n")),
        ("unknown impact", format!("cases:\n  - {{name: a, order: {order}, expect: {{impact: viral}}}}\n")),
        ("unknown action type", format!("cases:\n  - {{name: a, order: {order}, expect: {{actions: [escalate]}}}}\n")),
        ("errors not a count", format!("cases:\n  - {{name: a, order: {order}, expect: {{errors: none}}}}\n")),
        ("now not a time", format!("cases:\n  - {{name: a, now: tomorrow, order: {order}, expect: {{}}}}\n")),
        ("missing order", "cases:\n  - {name: a, expect: {}}\n".to_owned()),
        ("unknown order field", "cases:\n  - {name: a, expect: {}, order: {tiktok_order_id: \"1\", customer_handle: a, product_name: b, product_id: c, quantity: 1, price: 1, created_at: 2025-06-12T10:00:00Z, quantiy: 2}}\n".to_owned()),
        ("quantity zero", "cases:\n  - {name: a, expect: {}, order: {tiktok_order_id: \"1\", customer_handle: a, product_name: b, product_id: c, quantity: 0, price: 1, created_at: 2025-06-12T10:00:00Z}}\n".to_owned()),
        ("enrich not a boolean", format!("cases:\n  - {{name: a, enrich: yes, order: {order}, expect: {{}}}}\n")),
    ];
    for (what, text) in bad {
        let errors = tests.errors(what, &text).expect("YAML");
        assert!(!errors.is_empty(), "{what}: the schema accepts\n{text}");
    }
}
