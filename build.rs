//! Embeds the shipped rule pack (`rules/*.yaml` except state-machine files)
//! and its tests (`rules/tests/*.yaml`) into the crate.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=rules");
    embed(Path::new("rules"), "shipped_rules.rs");
    embed(Path::new("rules/tests"), "shipped_rule_tests.rs");
}

/// Writes `OUT_DIR/file`: an array of `(file name, include_str!(path))` of
/// every `*.yaml` / `*.yml` file of `dir`, in file-name order.
fn embed(dir: &Path, file: &str) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("[");
    for n in names {
        let path = std::fs::canonicalize(dir.join(&n)).expect("rules file path");
        let _ = write!(
            out,
            "({n:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push(']');
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join(file);
    // Written beside and renamed over: a new file, never the old one
    // rewritten in place (a target directory copied with hard links shares
    // the old file's contents with its copies).
    let tmp = dest.with_extension("rs.tmp");
    std::fs::write(&tmp, out).expect("write the embedded file list");
    std::fs::rename(&tmp, &dest).expect("rename the embedded file list");
}
