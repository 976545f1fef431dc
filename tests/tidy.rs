//! Tidy checks over the library's sources (rust-analyzer's `xtask/src/tidy.rs`
//! is the model): the layers of `src/` cannot be crossed by accident.
//!
//! Every `src/**/*.rs` file belongs to the top-level module it sits in
//! (`src/rules/eval.rs` to `rules`, `src/clock.rs` to `clock`). A file fails
//! the check, named with its line, when its code names a module or crate its
//! layer may not use: `crate::store::…`, `crate::{store, …}`, a
//! `super::super::store` escape to the crate root, a root re-export of a
//! forbidden module (`crate::Engine`), or an external crate such as `tokio`.
//! Naming the crate by its public name (`creatorflow::…`) is refused in
//! code everywhere (doc comments, where examples use it, are not code).
//!
//! One check of the SQLite store's statements: no bare `LIMIT ?`, which
//! SQLite prepares again every time its parameter is bound (see
//! `src/store/sqlite/rows.rs`, `LIMIT`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Modules of the pure core: no storage, no runtime, no I/O clients.
const CORE: &[&str] = &[
    "model", "rules", "machine", "script", "viral", "packtest", "diag", "yaml", "clock",
];
/// What the core must not name.
const CORE_FORBIDDEN: &[&str] = &["actions", "store", "engine", "service", "tiktok", "cli"];

/// The layer table: a top-level module, the crate modules its files must not
/// name, and the external crates they must not name. Modules not listed
/// (`engine`, `service`, `tiktok`, `lib.rs`) are the top and may use anything.
const LAYERS: &[(&str, &[&str], &[&str])] = &[
    ("model", CORE_FORBIDDEN, &["tokio"]),
    ("rules", CORE_FORBIDDEN, &["tokio"]),
    ("machine", CORE_FORBIDDEN, &["tokio"]),
    ("script", CORE_FORBIDDEN, &["tokio"]),
    ("viral", CORE_FORBIDDEN, &["tokio"]),
    ("packtest", CORE_FORBIDDEN, &["tokio"]),
    ("diag", CORE_FORBIDDEN, &["tokio"]),
    ("yaml", CORE_FORBIDDEN, &["tokio"]),
    ("clock", CORE_FORBIDDEN, &["tokio"]),
    // Actions run on the runtime (sleeps, handlers) but know nothing of
    // where orders are stored nor of the loops that drive them.
    (
        "actions",
        &["store", "engine", "service", "tiktok", "cli"],
        &[],
    ),
    // The store keeps orders; it may use `model` and `actions` types, never
    // the rules, the machine, nor what runs above it.
    (
        "store",
        &["machine", "rules", "engine", "service", "tiktok", "cli"],
        &[],
    ),
];

#[test]
fn core_list_matches_layer_table() {
    for m in CORE {
        assert!(
            LAYERS
                .iter()
                .any(|(l, f, _)| l == m && *f == CORE_FORBIDDEN),
            "core module `{m}` has no core row in LAYERS"
        );
    }
}

#[test]
fn layers_are_not_crossed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&src.join("lib.rs"));
    let mut problems = String::new();
    for file in rust_files(&src) {
        let rel = file.strip_prefix(&src).unwrap_or(&file).to_path_buf();
        let module_path = module_path(&rel);
        let Some(top) = module_path.first() else {
            continue; // lib.rs
        };
        let text = fs::read_to_string(&file).unwrap_or_default();
        let (forbidden, externs) = LAYERS
            .iter()
            .find(|(m, ..)| m == top)
            .map_or((&[][..], &[][..]), |(_, f, e)| (*f, *e));
        for (n, line) in code_lines(&text) {
            let mut named: Vec<String> = Vec::new();
            named.extend(crate_paths(line, &reexports));
            named.extend(super_escapes(line, &module_path));
            let mut report = |what: String| {
                let _ = writeln!(
                    problems,
                    "src/{}:{}: {what}\n    {}",
                    rel.display(),
                    n,
                    line.trim()
                );
            };
            for m in named.iter().filter(|m| forbidden.contains(&m.as_str())) {
                report(format!(
                    "`{top}` may not name `{m}` (see LAYERS in tests/tidy.rs)"
                ));
            }
            for e in externs.iter().filter(|e| names_word(line, e)) {
                report(format!("`{top}` may not use the `{e}` crate"));
            }
            if line.contains("creatorflow::") {
                report("code inside the crate names it `creatorflow::`; use `crate::`".into());
            }
        }
    }
    assert!(problems.is_empty(), "layer crossings:\n{problems}");
}

/// SQLite's planner reads a bare `LIMIT ?`'s bound value, so each binding
/// expires the prepared statement: the store writes `LIMIT ? + 0`.
#[test]
fn sqlite_statements_bind_no_bare_limit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/sqlite");
    let mut problems = String::new();
    for file in rust_files(&dir) {
        let text = fs::read_to_string(&file).expect("source");
        for (n, line) in code_lines(&text) {
            if bare_limit(line) {
                let _ = writeln!(problems, "{}:{n}: {}", file.display(), line.trim());
            }
        }
    }
    assert!(problems.is_empty(), "bare `LIMIT ?`:\n{problems}");
}

/// Whether the line binds a `LIMIT` to a parameter the planner can read.
fn bare_limit(line: &str) -> bool {
    line.match_indices("LIMIT ?")
        .any(|(at, m)| !line[at + m.len()..].starts_with(" + 0"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a file relative to `src/`: `rules/eval.rs` is
/// `[rules, eval]`, `rules/mod.rs` is `[rules]`, `lib.rs` is `[]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The lines that are code, numbered from 1: comment lines (`//`, `///`,
/// `//!`) are skipped and a trailing `// …` comment is cut.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, l)| {
        let t = l.trim_start();
        if t.starts_with("//") {
            return None;
        }
        let code = match l.find(" // ") {
            Some(at) => &l[..at],
            None => l,
        };
        Some((i + 1, code))
    })
}

/// The names `pub use module::{A, B}` of `lib.rs` re-exports at the root,
/// mapped to their module, so `crate::Engine` counts as naming `engine`.
fn root_reexports(lib: &Path) -> HashMap<String, String> {
    let text = fs::read_to_string(lib).unwrap_or_default();
    let mut out = HashMap::new();
    for (_, line) in code_lines(&text) {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.rsplit("::").next().unwrap_or("").trim();
            let name = name.rsplit(" as ").next().unwrap_or(name).trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    out
}

/// The top-level modules a line names through `crate::`.
fn crate_paths(line: &str, reexports: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let preceded = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `mycrate::`
        }
        for name in first_segments(rest) {
            out.push(reexports.get(&name).cloned().unwrap_or(name));
        }
    }
    out
}

/// The modules a `super::…` chain reaches once it climbs to the crate root.
fn super_escapes(line: &str, module_path: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let preceded = rest[..at].chars().last();
        if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            rest = &rest[at + "super::".len()..];
            continue; // counted with the chain it belongs to
        }
        rest = &rest[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups >= module_path.len() {
            out.extend(first_segments(rest));
        }
    }
    out
}

/// The first path segment after `crate::`/`super::`: `store` in
/// `store::X`, each of `a`, `b` in `{a::X, b}` (one line's worth).
fn first_segments(rest: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let Some(group) = rest.strip_prefix('{') else {
        return vec![ident(rest)];
    };
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(ident(&group[start..i]));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(ident(&group[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    if !group.contains('}') {
        out.push(ident(&group[start..]));
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

/// Whether `line` names `word` as a crate: `tokio::…`, or `use tokio;`.
fn names_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let after = &line[at + word.len()..];
        let starts_word = !line[..at].chars().last().is_some_and(is_ident);
        let ends_word = !after.chars().next().is_some_and(is_ident);
        starts_word
            && (after.starts_with("::") || ends_word && line.trim_start().starts_with("use "))
    })
}

#[test]
fn the_checks_see_what_they_should() {
    assert!(bare_limit(r#""ORDER BY id LIMIT ?","#));
    assert!(bare_limit("ORDER BY id LIMIT ?2) \\"));
    assert!(!bare_limit("ORDER BY id LIMIT ? + 0) \\"));
    assert!(!bare_limit("ORDER BY run_at LIMIT 1"));
    let re: HashMap<String, String> = [("Engine".to_owned(), "engine".to_owned())].into();
    assert_eq!(crate_paths("use crate::store::JsonText;", &re), ["store"]);
    assert_eq!(
        crate_paths("use crate::{model::Order, store};", &re),
        ["model", "store"]
    );
    assert_eq!(crate_paths("x: crate::Engine", &re), ["engine"]);
    assert!(crate_paths("use mycrate::store;", &re).is_empty());
    let path = module_path(Path::new("rules/eval.rs"));
    assert_eq!(path, ["rules", "eval"]);
    assert!(super_escapes("use super::def::Rule;", &path).is_empty());
    assert_eq!(
        super_escapes("use super::super::store::X;", &path),
        ["store"]
    );
    assert!(names_word("tokio::time::sleep(d)", "tokio"));
    assert!(!names_word("let tokio_like = 1;", "tokio"));
    assert_eq!(
        code_lines("/// crate::store\nlet x = 1; // crate::store\n").count(),
        1
    );
}
