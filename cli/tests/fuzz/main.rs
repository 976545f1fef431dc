//! The parsers under fuzzing, on stable Rust: every target of
//! `creatorflow_cli::fuzz` gets structure-aware mutations of valid seeds
//! (the shipped rule pack and machine, the built-in scenarios, the
//! configuration examples, the example orders, webhook samples) and raw byte
//! mutations, each input run on its own thread under a time bound (a hang
//! fails as surely as a panic); and every file of `fuzz/corpus/TARGET/`
//! (seeds, inputs AFL++ kept, past findings) is run through its target.
//!
//! Short in CI; `CREATORFLOW_FUZZ_CASES=N` sets the cases per test for a
//! long run (`scripts/fuzz.sh --proptest`); `CREATORFLOW_FUZZ_TIMEOUT_SECS`
//! the bound per input (default 30 s, generous for a debug build on a busy
//! machine). A failing input is written under the system's temp directory,
//! named in the failure: copy it into `fuzz/corpus/TARGET/` with the fix.

mod mutate;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use creatorflow_cli::fuzz::Target;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use mutate::{Mutation, apply_raw, mutation, raw, render};
use tree::Tree;

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn files(dir: &str, ext: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .filter(|p| ext.is_empty() || p.extension().is_some_and(|e| ext.iter().any(|x| e == *x)))
        .collect();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The `yaml` fenced blocks of a Markdown file.
fn yaml_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in md.lines() {
        match &mut block {
            None if line.trim_start() == "```yaml" => block = Some(String::new()),
            Some(b) if line.trim_start() == "```" => {
                out.push(std::mem::take(b));
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

/// The valid seeds of a target, as texts; JSON targets' seeds are JSON.
fn seed_texts(target: Target) -> Vec<String> {
    let mut texts: Vec<String> = match target {
        Target::Rules => files("rules", &["yaml"])
            .into_iter()
            .filter(|p| !p.ends_with("order-workflow.yaml"))
            .map(|p| read(&p))
            .collect(),
        Target::Machine => vec![read(&root().join("rules/order-workflow.yaml"))],
        Target::Scenario => files("simulator/scenarios", &["yaml"])
            .iter()
            .map(|p| read(p))
            .collect(),
        Target::Config => {
            let mut v: Vec<String> = files("cli/tests/data/config", &["yaml"])
                .iter()
                .map(|p| read(p))
                .collect();
            v.extend(yaml_blocks(&read(&root().join("docs/config.md"))));
            v
        }
        Target::Order => files("examples", &["jsonl"])
            .iter()
            .flat_map(|p| read(p).lines().map(str::to_owned).collect::<Vec<_>>())
            .collect(),
        Target::Webhook => Vec::new(),
    };
    // The corpus's files are seeds too (for the webhook, the only ones).
    texts.extend(
        corpus(target)
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok()),
    );
    texts
}

/// The seeds as trees: the texts that parse as YAML (or JSON).
fn seeds(target: Target) -> Vec<Tree> {
    let json = is_json(target);
    let trees: Vec<Tree> = seed_texts(target)
        .iter()
        .filter(|t| parses(t, json))
        .map(|t| {
            if json {
                Tree::from_json(t)
            } else {
                Tree::from_yaml(t)
            }
        })
        .collect();
    assert!(!trees.is_empty(), "{}: no seed", target.name());
    trees
}

fn parses(text: &str, json: bool) -> bool {
    if json {
        serde_json::from_str::<serde_json::Value>(text).is_ok()
    } else {
        let mut d = creatorflow::diag::Diagnostics::new("seed.yaml");
        creatorflow::yaml::parse(text, &mut d).is_some() && !d.has_errors()
    }
}

fn is_json(target: Target) -> bool {
    matches!(target, Target::Order | Target::Webhook)
}

fn corpus(target: Target) -> Vec<PathBuf> {
    files(&format!("fuzz/corpus/{}", target.name()), &[])
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where a failing input is written for the corpus.
fn save_failure(target: Target, input: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join("creatorflow-fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let path = dir.join(format!("{}-{hash:016x}", target.name()));
    let _ = std::fs::write(&path, input);
    path
}

/// Runs `input` through `target` on its own thread (2 MiB of stack, as a
/// tokio worker has) under the time bound; any panic, hang or contract
/// violation is an error naming the saved input.
fn run_bounded(target: Target, input: &[u8]) -> Result<(), String> {
    let limit = Duration::from_secs(env_number("CREATORFLOW_FUZZ_TIMEOUT_SECS", 30));
    let (tx, rx) = mpsc::channel();
    let owned = input.to_vec();
    let handle = std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name()))
        .stack_size(2 << 20)
        .spawn(move || {
            let _ = tx.send(target.run(&owned));
        })
        .map_err(|e| format!("spawn: {e}"))?;
    let problem = match rx.recv_timeout(limit) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(violation)) => violation.to_string(),
        Err(mpsc::RecvTimeoutError::Timeout) => format!("no answer within {limit:?} (a hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("panic: {msg}")
            }
            Ok(()) => "the target ended without an answer".into(),
        },
    };
    let saved = save_failure(target, input);
    Err(format!(
        "{}: {problem}\n  input saved as {}\n  input: {:?}",
        target.name(),
        saved.display(),
        String::from_utf8_lossy(&input[..input.len().min(600)])
    ))
}

fn config(cases: u32) -> Config {
    Config {
        cases: env_number("CREATORFLOW_FUZZ_CASES", u64::from(cases)) as u32,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_time: 120_000,
        ..Config::default()
    }
}

/// Structured mutations of the target's seeds.
fn structured(target: Target, cases: u32) {
    let seeds = seeds(target);
    let json = is_json(target);
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&mutation(), |m: Mutation| {
        let input = render(&seeds[m.seed % seeds.len()], &m, json);
        run_bounded(target, &input).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Raw byte mutations of the target's seeds.
fn bytes(target: Target, cases: u32) {
    let seeds: Vec<Vec<u8>> = seed_texts(target)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&raw(), |(seed, edits)| {
        let input = apply_raw(seeds[seed % seeds.len()].clone(), &edits);
        run_bounded(target, &input).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn every_corpus_file_keeps_the_contract() {
    let mut failures = Vec::new();
    let mut count = 0;
    for target in Target::ALL {
        let files = corpus(target);
        assert!(!files.is_empty(), "fuzz/corpus/{}/ is empty", target.name());
        for p in files {
            count += 1;
            let input = std::fs::read(&p).expect("a corpus file");
            if let Err(e) = run_bounded(target, &input) {
                failures.push(format!("{}: {e}", p.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} corpus files fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_valid_seeds_load() {
    // The seeds are worth mutating only if they load: a mutation then starts
    // from a file every check passes and breaks one thing.
    let rules = creatorflow::rules::PackLoader::new().load_dir(root().join("rules"));
    assert!(rules.is_ok(), "{:?}", rules.err());
    for target in Target::ALL {
        assert!(
            seeds(target).len() >= 2 || target == Target::Machine,
            "{}",
            target.name()
        );
    }
}

macro_rules! fuzz_tests {
    ($($target:ident: $structured:ident, $bytes:ident, $cases:expr;)*) => {$(
        #[test]
        fn $structured() {
            structured(Target::$target, $cases);
        }

        #[test]
        fn $bytes() {
            bytes(Target::$target, $cases);
        }
    )*};
}

fuzz_tests! {
    Rules: rules_survive_structured_mutation, rules_survive_byte_mutation, 48;
    Machine: machine_survives_structured_mutation, machine_survives_byte_mutation, 48;
    Scenario: scenario_survives_structured_mutation, scenario_survives_byte_mutation, 64;
    Config: config_survives_structured_mutation, config_survives_byte_mutation, 64;
    Order: order_survives_structured_mutation, order_survives_byte_mutation, 256;
    Webhook: webhook_survives_structured_mutation, webhook_survives_byte_mutation, 256;
}
