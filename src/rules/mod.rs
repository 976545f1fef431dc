//! Rule packs: strict loading with located diagnostics, conditions compiled
//! to typed comparisons, and the stateful evaluator (window facts, rate
//! limits, statistics, explanations).
//!
//! The format and semantics are those of the spec's `rules.md`. Choices made
//! where it is silent:
//!
//! - Fields are typed (the order's serialized form fixes each field's type).
//!   A condition that can never be true (a string compared with a number, a
//!   numeric operator on a string field) loads with a **warning**; an unknown
//!   enum value (`customer_tier: vipp`) is an **error** with a suggestion.
//! - Times compare as instants: `created_at equals "2025-03-01T12:00:00Z"`.
//!   A time value must be written in the canonical form the order serializes
//!   to (UTC, `Z`), else the condition is never true (and warned about).
//! - `value` is ignored for `exists` and may be omitted.
//! - In a pack directory, a file whose top-level key is `machine:` is a state
//!   machine, not rules, and is skipped.
//! - Window facts are exact for orders that arrive at most the lateness
//!   allowance (one hour by default) behind the newest order seen; older
//!   entries are dropped to bound memory.
//! - `order` in custom logic holds the stored and derived facts (decimals as
//!   floats, times as strings, a missing value as `()`); window facts are read
//!   through a named condition.
//!
//! Inside, a rule's *definition* (`def`: what the file says, checked) is
//! apart from its *evaluation form* (`compiled`: typed tests and the hot
//! per-rule view; `custom`: `custom_logic` compiled natively), which the pack
//! builds from it: `def` <- `compiled` <- `custom` <- `pack` <- `eval`, one way.

mod compiled;
mod custom;
mod def;
mod eval;
mod explain;
mod guard;
mod index;
mod load;
mod ops;
mod pack;
mod stats;
mod window;

/// The facts conditions read live in the model (scripts read them too).
use crate::model::facts;

pub use def::{Applicability, Category, Condition, ConditionLogic, Rule, WindowKind, WindowSlot};
pub use eval::{DEFAULT_LATENESS_MS, Decision, DecisionReport, RuleEngine, RuleErrorReport};
pub use explain::{ConditionExplanation, Explanation, Verdict};
pub use guard::Guard;
pub(crate) use guard::{compile_guard, compile_guard_script};
pub use load::{PackError, PackLoader};
pub use ops::Operator;
pub use pack::RulePack;
pub use stats::RuleStats;

#[cfg(test)]
mod tests;
