//! `creatorflow test` through the binary: the shipped pack's cases pass, a
//! broken case fails with file:line, expected, actual and the explanations
//! (golden output), JSON output, located load errors; and `eval` / `test`
//! print the pack version on stderr.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary from the workspace root.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run creatorflow")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const DATA: &str = "cli/tests/data/packtest";

/// The version `RulePack::version` gives the shipped pack.
fn shipped_version() -> String {
    creatorflow::rules::RulePack::shipped().version().to_owned()
}

#[test]
fn the_shipped_pack_passes_its_tests() {
    let cases = creatorflow::packtest::CaseSet::shipped(&creatorflow::rules::RulePack::shipped())
        .expect("shipped cases load")
        .cases
        .len();
    for args in [&["test"][..], &["test", "--rules", "rules/"][..]] {
        let out = run(args);
        let text = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}\n{text}{}",
            stderr(&out)
        );
        assert_eq!(
            text.lines().last(),
            Some(format!("{cases} passed, 0 failed").as_str()),
            "{args:?}"
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("ok   rules/tests/"))
                .count(),
            cases
        );
    }
    let v = shipped_version();
    assert!(stderr(&run(&["test"])).contains(&format!("pack version {v} (shipped)\n")));
    // The same files, from the directory: the same version.
    assert!(
        stderr(&run(&["test", "--rules", "rules/"]))
            .contains(&format!("pack version {v} (rules/)\n"))
    );
}

/// `broken.expected` holds the exact output; `UPDATE_EXPECT=1` rewrites it.
#[test]
fn a_broken_case_fails_with_where_what_and_why() {
    let out = run(&["test", &format!("{DATA}/broken.yaml")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let actual = stdout(&out);
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/packtest/broken.expected");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&golden, &actual).expect("write the golden file");
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        actual,
        expected,
        "output differs from {} (UPDATE_EXPECT=1 rewrites it)",
        golden.display()
    );
    // What the golden file must say, whatever its exact wording.
    for needle in [
        "FAIL cli/tests/data/packtest/broken.yaml:3 ",
        "priority: expected \"urgent\", actual \"high\"",
        "rule high-value-order did not fire",
        "c0 order_value: 20.00 greater_than_or_equal 200 -> false",
        "rule vip-fast-track fired",
        "ok   cli/tests/data/packtest/broken.yaml:12 this one passes",
        "FAIL cli/tests/data/packtest/broken.yaml:18 ",
        "c1 customer_orders over 1h: 3 greater_than 2 -> true",
        "1 passed, 2 failed",
    ] {
        assert!(actual.contains(needle), "missing {needle:?} in\n{actual}");
    }
}

#[test]
fn json_prints_one_object_per_case() {
    let out = run(&["test", &format!("{DATA}/broken.yaml"), "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    assert_eq!(first["name"], "a VIP order is urgent (it is not)");
    assert_eq!(first["file"], "cli/tests/data/packtest/broken.yaml");
    assert_eq!(first["line"], 3);
    assert_eq!(first["passed"], false);
    assert_eq!(first["failures"][1]["key"], "priority");
    assert_eq!(first["failures"][1]["expected"], "urgent");
    assert_eq!(first["failures"][1]["actual"], "high");
    assert_eq!(first["failures"][0]["key"], "fired");
    assert_eq!(
        first["failures"][0]["actual"],
        serde_json::json!(["vip-fast-track"])
    );
    assert_eq!(first["explanations"][1]["rule"], "high-value-order");
    assert_eq!(first["explanations"][1]["verdict"], "not_matched");
    assert_eq!(lines[1]["passed"], true);
    assert_eq!(lines[1]["failures"], serde_json::json!([]));
    assert!(lines[1].get("explanations").is_none());
    // The closing line goes to stderr, so stdout is only JSON.
    assert!(stderr(&out).contains("1 passed, 2 failed"));
}

#[test]
fn case_files_are_loaded_strictly_with_located_errors() {
    let out = run(&[
        "test",
        &format!("{DATA}/bad_load.yaml"),
        &format!("{DATA}/missing.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for needle in [
        "cli/tests/data/packtest/bad_load.yaml:4:33: error[E0703]: `order` is not a valid order: quantity must be > 0",
        "cli/tests/data/packtest/bad_load.yaml:6:15: error[E0704]: `fired` names `vip-fast-trak`, which is no rule of the pack; did you mean `vip-fast-track`?",
        "cli/tests/data/packtest/bad_load.yaml:7:7: error[E0108]: unknown key `priorty` in `expect`; did you mean `priority`?",
        "cli/tests/data/packtest/missing.yaml:1:1: error[E0701]: cannot read the case file",
        "4 error(s), 0 warning(s)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    assert!(
        stdout(&out).is_empty(),
        "no case runs when a file is refused"
    );
}

#[test]
fn a_pack_directory_runs_its_own_tests_directory() {
    let out = run(&["test", "--rules", &format!("{DATA}/pack")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).ends_with("2 passed, 0 failed\n"));
    assert!(stdout(&out).contains(
        "ok   cli/tests/data/packtest/pack/tests/basket.yaml:2 ten units are a big basket"
    ));
    let pack = creatorflow::rules::RulePack::load_dir(format!(
        "{}/tests/data/packtest/pack",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("pack");
    assert!(stderr(&out).contains(&format!("pack version {} ({DATA}/pack)", pack.version())));
    // A pack without tests is a failure to run, not a silent pass.
    let none = run(&["test", "--rules", "tests/data/rules/valid_one_rule"]);
    assert_eq!(none.status.code(), Some(2), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("no test cases in"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn eval_prints_the_pack_version_on_stderr_only() {
    let out = run(&["eval", "--orders", "examples/orders.jsonl", "--no-enrich"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stderr(&out),
        format!("pack version {} (shipped)\n", shipped_version())
    );
    for line in stdout(&out).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("stdout is only JSON lines");
        assert!(v.get("order_id").is_some());
    }
    let out = run(&[
        "eval",
        "--orders",
        "examples/orders.jsonl",
        "--rules",
        "rules/",
    ]);
    assert!(stderr(&out).starts_with(&format!("pack version {} (rules/)\n", shipped_version())));
}
