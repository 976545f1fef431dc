//! A compiled rule pack: immutable, shareable across threads.

use std::sync::Arc;

use std::collections::HashMap;

use super::compiled::{HotRule, Test};
use super::custom::BoolExpr;
use super::def::{ConditionLogic, Rule, WindowKind, WindowSlot};
use super::index::RuleIndex;
use super::load::{PackError, PackLoader, assign_window_slots};
use crate::diag::Diagnostic;
use crate::script::Sandbox;

/// The files of the shipped pack, built into the crate so that the default
/// works from any directory.
pub(crate) const SHIPPED_PACK: &[(&str, &str)] =
    &include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));

/// A loaded and compiled rule pack, its rules in evaluation order
/// (priority descending, ties by id ascending).
#[derive(Debug, Clone)]
pub struct RulePack {
    rules: Vec<Rule>,
    windows: Vec<WindowSlot>,
    max_window_ms: i64,
    /// The longest window counted per product (`None`: no product window).
    product_reach_ms: Option<i64>,
    /// The longest window counted per customer (`None`: no customer window).
    customer_reach_ms: Option<i64>,
    warnings: Vec<Diagnostic>,
    pub(crate) sandbox: Arc<Sandbox>,
    /// Every distinct compiled condition of the pack; rules refer to them by
    /// index, so a condition shared by many rules is evaluated once per order.
    pub(crate) tests: Vec<Test>,
    /// Each rule's tests, as indices into `tests`, rule after rule.
    pub(crate) refs: Vec<u32>,
    /// The evaluation loop's view of each rule, in evaluation order.
    pub(crate) hot: Vec<HotRule>,
    /// Each rule's custom logic compiled natively, when it is in the native
    /// subset (else the rule's script runs), in evaluation order.
    pub(crate) native: Vec<Option<BoolExpr>>,
    /// Which rules an order may match (`index.rs`).
    pub(crate) index: RuleIndex,
    /// The content hash (see [`RulePack::version`]).
    version: String,
}

impl RulePack {
    pub(crate) fn new(
        mut rules: Vec<Rule>,
        warnings: Vec<Diagnostic>,
        sandbox: Arc<Sandbox>,
        version: String,
    ) -> Self {
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        let windows = assign_window_slots(&mut rules);
        let mut tests: Vec<Test> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut refs: Vec<u32> = Vec::new();
        let mut hot = Vec::with_capacity(rules.len());
        let mut native = Vec::with_capacity(rules.len());
        for r in &rules {
            let start = refs.len() as u32;
            for c in &r.conditions {
                let t = Test::compile(c, c.slot);
                let i = *index.entry(format!("{t:?}")).or_insert_with(|| {
                    tests.push(t);
                    (tests.len() - 1) as u32
                });
                refs.push(i);
            }
            if r.condition_logic != ConditionLogic::Custom {
                // AND / OR over pure conditions: try the cheapest first.
                refs[start as usize..].sort_by_key(|i| tests[*i as usize].cost());
            }
            hot.push(HotRule {
                valid_from_ms: r.valid_from_ms(),
                valid_until_ms: r.valid_until_ms(),
                start,
                end: refs.len() as u32,
                limit: r.max_executions_per_hour.unwrap_or(0),
                enabled: r.enabled,
                logic: r.condition_logic,
                escalation: r.escalation(),
            });
            native.push(r.script.as_ref().and_then(|s| {
                let names: Vec<Option<String>> =
                    r.conditions.iter().map(|c| c.name.clone()).collect();
                BoolExpr::compile(s.source(), &names)
            }));
        }
        let max_window_ms = windows.iter().map(|w| w.window_ms).max().unwrap_or(0);
        let reach = |customers: bool| {
            windows
                .iter()
                .filter(|w| (w.kind == WindowKind::CustomerOrders) == customers)
                .map(|w| w.window_ms)
                .max()
        };
        let (product_reach_ms, customer_reach_ms) = (reach(false), reach(true));
        let index = RuleIndex::build(&hot, &refs, &tests, &native);
        RulePack {
            index,
            rules,
            tests,
            refs,
            hot,
            native,
            windows,
            max_window_ms,
            product_reach_ms,
            customer_reach_ms,
            warnings,
            sandbox,
            version,
        }
    }

    /// The pack's version id: the first 12 hex digits of a SHA-256 over its
    /// files, in the order loaded (file-name order for a directory), each
    /// as its file name (not the directory it is in), its length and its
    /// bytes.
    ///
    /// It changes when a file's content changes (a comment or whitespace
    /// included), when a file is added, removed or renamed; it does not
    /// depend on where the directory is, on the machine, or on the run: the
    /// shipped pack and `--rules rules/` (the same files) have the same
    /// version. Every history row and ingest decision records the version of
    /// the pack that made it.
    ///
    /// ```
    /// let pack = creatorflow::rules::RulePack::shipped();
    /// assert_eq!(pack.version().len(), 12);
    /// assert_eq!(pack.version(), creatorflow::rules::RulePack::shipped().version());
    /// ```
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The version of a pack made of `sources` ((name, text), in the order
    /// loaded): see [`RulePack::version`].
    pub(crate) fn version_of(sources: &[(String, String)]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, text) in sources {
            let base = std::path::Path::new(name)
                .file_name()
                .map_or_else(|| name.clone(), |b| b.to_string_lossy().into_owned());
            h.update((base.len() as u64).to_le_bytes());
            h.update(base.as_bytes());
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        let mut hex = hex::encode(h.finalize());
        hex.truncate(12);
        hex
    }

    /// Loads a pack directory with the default loader.
    pub fn load_dir(dir: impl AsRef<std::path::Path>) -> Result<RulePack, PackError> {
        PackLoader::new().load_dir(dir)
    }

    /// The shipped pack (`rules/` of this crate), built into the binary.
    ///
    /// ```
    /// let pack = creatorflow::rules::RulePack::shipped();
    /// assert!(pack.rules().len() >= 10);
    /// ```
    pub fn shipped() -> RulePack {
        let sources: Vec<(String, String)> = SHIPPED_PACK
            .iter()
            .map(|(n, t)| (format!("rules/{n}"), (*t).to_owned()))
            .collect();
        match PackLoader::new().load_sources(&sources) {
            Ok(pack) => pack,
            // The shipped pack is checked by the test suite; an invalid one is a build defect.
            Err(e) => panic!("the shipped rule pack is invalid:\n{e}"),
        }
    }

    /// The rules, in evaluation order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The index of a rule in evaluation order.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.id == id)
    }

    /// Warnings found while loading (conditions that can never be true, ...).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The distinct windows the pack's window facts count over.
    pub fn windows(&self) -> &[WindowSlot] {
        &self.windows
    }

    /// The longest window, in milliseconds (0 without window facts).
    pub fn max_window_ms(&self) -> i64 {
        self.max_window_ms
    }

    /// The longest window counted per product (orders or units), in
    /// milliseconds; `None` when no window counts per product. A product's
    /// window facts need reach no further back.
    pub(crate) fn product_reach_ms(&self) -> Option<i64> {
        self.product_reach_ms
    }

    /// The longest window counted per customer, in milliseconds; `None`
    /// when no window counts per customer.
    pub(crate) fn customer_reach_ms(&self) -> Option<i64> {
        self.customer_reach_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
        files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect()
    }

    const RULE: &str = "rules:\n  - id: big\n    priority: 10\n    conditions:\n      - field: price\n        operator: \">\"\n        value: 100\n    actions:\n      - type: escalate_priority\n        level: high\n";

    #[test]
    fn the_version_is_stable_and_independent_of_the_directory() {
        let a = RulePack::version_of(&sources(&[("/x/a.yaml", RULE), ("/x/b.yaml", "")]));
        let b = RulePack::version_of(&sources(&[("/y/z/a.yaml", RULE), ("/y/z/b.yaml", "")]));
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(RulePack::shipped().version(), RulePack::shipped().version());
    }

    #[test]
    fn the_version_changes_with_content_names_and_files() {
        let base = RulePack::version_of(&sources(&[("a.yaml", RULE)]));
        let edited = RulePack::version_of(&sources(&[("a.yaml", &RULE.replace("100", "101"))]));
        let renamed = RulePack::version_of(&sources(&[("b.yaml", RULE)]));
        let added = RulePack::version_of(&sources(&[("a.yaml", RULE), ("b.yaml", "")]));
        // Bytes moving between files change it too (lengths are hashed).
        let (head, tail) = RULE.split_at(10);
        let split = RulePack::version_of(&sources(&[("a.yaml", head), ("b.yaml", tail)]));
        let all = [&base, &edited, &renamed, &added, &split];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn the_shipped_pack_has_the_version_of_its_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
        let loaded = RulePack::load_dir(dir).expect("the shipped pack loads from its directory");
        assert_eq!(loaded.version(), RulePack::shipped().version());
    }
}
