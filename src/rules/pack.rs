//! A compiled rule pack: immutable, shareable across threads.

use std::sync::Arc;

use std::collections::HashMap;

use super::compiled::{HotRule, Test};
use super::custom::BoolExpr;
use super::def::{ConditionLogic, Rule, WindowSlot};
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
}

impl RulePack {
    pub(crate) fn new(
        mut rules: Vec<Rule>,
        warnings: Vec<Diagnostic>,
        sandbox: Arc<Sandbox>,
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
        RulePack {
            rules,
            tests,
            refs,
            hot,
            native,
            windows,
            max_window_ms,
            warnings,
            sandbox,
        }
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
}
