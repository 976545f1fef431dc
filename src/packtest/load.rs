//! Loading case files: strict, located, every problem of every file at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::SHIPPED_TESTS;
use super::case::{Case, Expect};
use crate::diag::{self, Code, Diagnostic, Diagnostics, Pos, did_you_mean};
use crate::model::{Impact, Order, Priority};
use crate::rules::RulePack;
use crate::yaml::{self, MapReader, Node, NodeKind, reader};

/// Why case files could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    /// A directory of case files could not be listed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The files have errors; every one found is listed, warnings included.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl CaseError {
    /// The diagnostics, when the files were invalid.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            CaseError::Invalid(d) => d,
            CaseError::Io { .. } => &[],
        }
    }
}

/// The cases of one or more case files, checked against one pack, in file
/// order then case order.
#[derive(Debug, Clone, Default)]
pub struct CaseSet {
    /// The cases.
    pub cases: Vec<Case>,
    /// Warnings found while loading (a case that checks nothing).
    pub warnings: Vec<Diagnostic>,
}

const FILE_KEYS: &[&str] = &["cases"];
const CASE_KEYS: &[&str] = &["name", "now", "enrich", "history", "order", "expect"];
const EXPECT_KEYS: &[&str] = &[
    "matched",
    "fired",
    "not_fired",
    "priority",
    "impact",
    "actions",
    "errors",
];

impl CaseSet {
    /// Loads case files given as (name, text), in the order given, against `pack`.
    pub fn load_sources(pack: &RulePack, sources: &[(String, String)]) -> Result<Self, CaseError> {
        let mut loader = Loader::new(pack);
        for (name, text) in sources {
            loader.file(name, Ok(text));
        }
        loader.finish()
    }

    /// Loads the case files at `paths`, in the order given; a file that
    /// cannot be read is a located error (`E0701`) like any other.
    pub fn load_files<P: AsRef<Path>>(pack: &RulePack, paths: &[P]) -> Result<Self, CaseError> {
        let mut loader = Loader::new(pack);
        for p in paths {
            let p = p.as_ref();
            let name = p.display().to_string();
            match std::fs::read_to_string(p) {
                Ok(text) => loader.file(&name, Ok(&text)),
                Err(e) => loader.file(&name, Err(e)),
            }
        }
        loader.finish()
    }

    /// Loads every `*.yaml` / `*.yml` file of `dir` (not recursive), in
    /// file-name order; see [`CaseSet::files_in`].
    pub fn load_dir(pack: &RulePack, dir: impl AsRef<Path>) -> Result<Self, CaseError> {
        let files = Self::files_in(dir.as_ref())?;
        Self::load_files(pack, &files)
    }

    /// The case files of `dir`: its `*.yaml` / `*.yml` files, in file-name order.
    pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, CaseError> {
        let io = |source| CaseError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// The shipped pack's cases (`rules/tests/`, built into the crate),
    /// loaded against `pack` (normally [`RulePack::shipped`]).
    pub fn shipped(pack: &RulePack) -> Result<Self, CaseError> {
        let sources: Vec<(String, String)> = SHIPPED_TESTS
            .iter()
            .map(|(n, t)| (format!("rules/tests/{n}"), (*t).to_owned()))
            .collect();
        Self::load_sources(pack, &sources)
    }
}

/// Loads files one after another, collecting cases and diagnostics.
struct Loader<'p> {
    pack: &'p RulePack,
    /// The action types the pack's rules take.
    actions: Vec<&'p str>,
    cases: Vec<Case>,
    names: HashMap<String, (Arc<str>, Pos)>,
    diags: Vec<Diagnostic>,
}

impl<'p> Loader<'p> {
    fn new(pack: &'p RulePack) -> Self {
        let mut actions: Vec<&str> = pack
            .rules()
            .iter()
            .flat_map(|r| r.actions.iter().map(|a| a.kind.as_str()))
            .collect();
        actions.sort_unstable();
        actions.dedup();
        Loader {
            pack,
            actions,
            cases: Vec::new(),
            names: HashMap::new(),
            diags: Vec::new(),
        }
    }

    /// One file: its text, or why it could not be read.
    fn file(&mut self, name: &str, text: Result<&str, std::io::Error>) {
        let mut diags = Diagnostics::new(name);
        match text {
            Ok(text) => self.parse_file(text, &mut diags),
            Err(e) => diags.emit(
                Code::CaseUnreadable,
                Pos::new(1, 1),
                format!("cannot read the case file: {e}"),
            ),
        }
        self.diags.extend(diags.into_vec());
    }

    fn finish(mut self) -> Result<CaseSet, CaseError> {
        diag::sort(&mut self.diags);
        if self
            .diags
            .iter()
            .any(|d| d.severity() == diag::Severity::Error)
        {
            return Err(CaseError::Invalid(self.diags));
        }
        Ok(CaseSet {
            cases: self.cases,
            warnings: self.diags,
        })
    }

    fn parse_file(&mut self, text: &str, diags: &mut Diagnostics) {
        let Some(root) = yaml::parse(text, diags) else {
            return;
        };
        let Some(mut top) = MapReader::new(&root, "a case file", FILE_KEYS, diags) else {
            return;
        };
        let list = top
            .req("cases", diags)
            .and_then(|n| reader::seq(n, "cases", diags).map(|items| (n, items)));
        top.finish(diags);
        let Some((list_node, items)) = list else {
            return;
        };
        if items.is_empty() {
            diags.emit(
                Code::CaseNoCases,
                list_node.pos,
                "`cases` is empty: a case file holds at least one case",
            );
        }
        for node in items {
            if let Some(case) = self.parse_case(node, diags) {
                self.cases.push(case);
            }
        }
    }

    fn parse_case(&mut self, node: &Node, diags: &mut Diagnostics) -> Option<Case> {
        let mut m = MapReader::new(node, "a case", CASE_KEYS, diags)?;
        let errors_before = diags.error_count();
        let name_node = m.req("name", diags);
        let name = name_node.and_then(|n| reader::string(n, "name", diags));
        if let (Some(n), Some(name)) = (name_node, name) {
            match self.names.get(name) {
                Some((file, pos)) => diags.emit(
                    Code::CaseDuplicateName,
                    n.pos,
                    format!("duplicate case name `{name}` (first used at {file}:{pos})"),
                ),
                None => {
                    self.names
                        .insert(name.to_owned(), (diags.file().clone(), n.pos));
                }
            }
        }
        let now = m
            .opt("now")
            .and_then(|n| reader::timestamp(n, "now", diags));
        let enrich = m.opt("enrich").map(|n| reader::boolean(n, "enrich", diags));
        let mut history = Vec::new();
        if let Some(items) = m
            .opt("history")
            .and_then(|n| reader::seq(n, "history", diags))
        {
            for (i, item) in items.iter().enumerate() {
                if let Some(o) = order(item, &format!("history[{i}]"), diags) {
                    history.push(o);
                }
            }
        }
        let order = m.req("order", diags).and_then(|n| order(n, "order", diags));
        let expect = match m.opt("expect") {
            Some(n) => self.expect(n, diags),
            None => {
                diags.emit(
                    Code::CaseExpectsNothing,
                    node.pos,
                    format!(
                        "case `{}` has no `expect`: it checks nothing",
                        name.unwrap_or("?")
                    ),
                );
                Some(Expect::default())
            }
        };
        m.finish(diags);
        if diags.error_count() > errors_before {
            return None;
        }
        Some(Case {
            name: name?.to_owned(),
            file: diags.file().clone(),
            pos: node.pos,
            now,
            enrich: enrich.flatten().unwrap_or(false),
            history,
            order: order?,
            expect: expect?,
        })
    }

    fn expect(&self, node: &Node, diags: &mut Diagnostics) -> Option<Expect> {
        let mut m = MapReader::new(node, "`expect`", EXPECT_KEYS, diags)?;
        let errors_before = diags.error_count();
        let mut e = Expect::default();
        let matched = m
            .opt("matched")
            .and_then(|n| self.rules(n, "matched", diags));
        let fired = m.opt("fired").and_then(|n| self.rules(n, "fired", diags));
        let not_fired = m
            .opt("not_fired")
            .and_then(|n| self.rules(n, "not_fired", diags));
        // A rule asked to fire (in `matched` or `fired`) and not to.
        if let Some(nf) = &not_fired {
            for (id, pos) in nf {
                let also = [("matched", &matched), ("fired", &fired)]
                    .into_iter()
                    .find(|(_, l)| l.as_ref().is_some_and(|l| l.iter().any(|(x, _)| x == id)));
                if let Some((key, _)) = also {
                    diags.emit(
                        Code::CaseContradiction,
                        *pos,
                        format!("`not_fired` names `{id}`, which `{key}` expects to fire"),
                    );
                }
            }
        }
        if let (Some(f), Some(mt)) = (&fired, &matched) {
            for (id, pos) in f {
                if !mt.iter().any(|(x, _)| x == id) {
                    diags.emit(
                        Code::CaseContradiction,
                        *pos,
                        format!(
                            "`fired` names `{id}`, which `matched` (every rule that fires) does not list"
                        ),
                    );
                }
            }
        }
        let ids =
            |l: Option<Vec<(String, Pos)>>| l.map(|l| l.into_iter().map(|(id, _)| id).collect());
        e.matched = ids(matched);
        e.fired = ids(fired);
        e.not_fired = ids(not_fired);
        e.priority = m
            .opt("priority")
            .and_then(|n| reader::one_of(n, "priority", Priority::parse, Priority::names, diags));
        e.impact = m
            .opt("impact")
            .and_then(|n| reader::one_of(n, "impact", Impact::parse, Impact::names, diags));
        if let Some(items) = m
            .opt("actions")
            .and_then(|n| reader::seq(n, "actions", diags))
        {
            let mut actions = Vec::with_capacity(items.len());
            for item in items {
                let Some(kind) = reader::string(item, "actions", diags) else {
                    continue;
                };
                if !self.actions.contains(&kind) {
                    diags.emit(
                        Code::CaseUnknownAction,
                        item.pos,
                        format!(
                            "no rule of the pack takes action `{kind}`{}",
                            did_you_mean(kind, self.actions.iter().copied())
                        ),
                    );
                }
                actions.push(kind.to_owned());
            }
            e.actions = Some(actions);
        }
        if let Some(n) = m.opt("errors")
            && let Some(count) = reader::int(n, "errors", diags)
        {
            match u64::try_from(count) {
                Ok(c) => e.errors = Some(c),
                Err(_) => diags.emit(
                    Code::CaseNegative,
                    n.pos,
                    format!("`errors` counts the rules that errored; {count} is negative"),
                ),
            }
        }
        m.finish(diags);
        if e.is_empty() && diags.error_count() == errors_before {
            diags.emit(
                Code::CaseExpectsNothing,
                node.pos,
                "`expect` is empty: the case checks nothing",
            );
        }
        Some(e)
    }

    /// A list of rule ids of the pack, each with where it is written.
    fn rules(&self, node: &Node, key: &str, diags: &mut Diagnostics) -> Option<Vec<(String, Pos)>> {
        let items = reader::seq(node, key, diags)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let Some(id) = reader::string(item, key, diags) else {
                continue;
            };
            if self.pack.rule(id).is_none() {
                diags.emit(
                    Code::CaseUnknownRule,
                    item.pos,
                    format!(
                        "`{key}` names `{id}`, which is no rule of the pack{}",
                        did_you_mean(id, self.pack.rules().iter().map(|r| r.id.as_str()))
                    ),
                );
            }
            out.push((id.to_owned(), item.pos));
        }
        Some(out)
    }
}

/// An order in the `eval` format, written as a YAML mapping; `what` names it
/// in messages (`order`, `history[2]`). An invalid order is reported at the
/// field the order parser names.
fn order(node: &Node, what: &str, diags: &mut Diagnostics) -> Option<Order> {
    if !matches!(node.kind, NodeKind::Map(_)) {
        diags.emit(
            Code::YamlNotMapping,
            node.pos,
            format!(
                "`{what}` must be a mapping (an order, as `eval` reads it), found {}",
                node.type_name()
            ),
        );
        return None;
    }
    match Order::from_json(&node.to_json().to_string()) {
        Ok(o) => Some(o),
        Err(e) => {
            let at = locate(node, e.field()).unwrap_or(node.pos);
            diags.emit(
                Code::CaseBadOrder,
                at,
                format!(
                    "`{what}` is not a valid order: {}",
                    readable(&e.to_string())
                ),
            );
            None
        }
    }
}

/// The order parser's message without what only fits a JSON line (its
/// position in the JSON text) and, for an unknown key, with the closest
/// known key instead of the list of every key.
fn readable(message: &str) -> String {
    let mut m = message;
    if let Some(i) = m.rfind(" at line ")
        && m[i + 9..]
            .split(" column ")
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        m = &m[..i];
    }
    if let Some((head, known)) = m.split_once(", expected one of ")
        && let Some(start) = head.find("unknown field `")
    {
        let key = head[start + 15..].trim_end_matches('`');
        let known: Vec<&str> = known.split(", ").map(|k| k.trim_matches('`')).collect();
        return format!(
            "{}unknown key `{key}`{}",
            &head[..start],
            did_you_mean(key, known.iter().copied())
        );
    }
    m.to_owned()
}

/// Where the field at `path` (`quantity`, `viral_indicators[0].confidence`,
/// `user.id`) is written under `node`: the key of its last step that exists.
fn locate(node: &Node, path: &str) -> Option<Pos> {
    let mut at = node;
    let mut found = None;
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let (key, index) = match step.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (step, None),
        };
        let NodeKind::Map(entries) = &at.kind else {
            break;
        };
        let Some((k, v)) = entries
            .iter()
            .find(|(k, _)| k.scalar().is_some_and(|s| s.text == key))
        else {
            break;
        };
        found = Some(k.pos);
        at = v;
        if let Some(i) = index {
            match &at.kind {
                NodeKind::Seq(items) if i < items.len() => {
                    at = &items[i];
                    found = Some(at.pos);
                }
                _ => break,
            }
        }
    }
    found
}
