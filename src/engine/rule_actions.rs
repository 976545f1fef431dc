//! The actions of the rules that fired on an order at ingest.
//!
//! Ingest evaluates the rule pack and applies `escalate_priority` at once
//! (priority and impact decide the order's lane). The other actions of the
//! fired rules run with the order's first step: ingest leaves the fired
//! rules' ids in the first work item's payload (`{"rules": [ids]}`, only when
//! some fired rule has such an action), so they survive a restart with the
//! queue. At the first step:
//!
//! - `escalate_to_manual` sends the order to manual review (the machine's
//!   failure state) instead of the next state, naming the rule;
//! - every other action runs through the executor (its timeout, retries,
//!   circuit breaker) before the machine's step, and is recorded in the same
//!   history row. These are side effects (notifications, analytics, fast
//!   track, carrier choice): a failure is recorded and does not stop the
//!   order. If the step is given back before it is recorded, they run again
//!   with the same idempotency key (order, `rules`, version, slot).

use serde_json::Value;

use crate::actions::{ActionSpec, ActionType};
use crate::rules::{Decision, RulePack};

/// The payload key holding the fired rules' ids.
const RULES_KEY: &str = "rules";

/// The transition name the rule actions run under (idempotency keys, records).
pub(super) const RULES_TRANSITION: &str = "rules";

/// Whether the engine itself carries out this action type (it is not run
/// through a handler).
pub(super) fn applied_by_engine(kind: &ActionType) -> bool {
    matches!(
        kind,
        ActionType::EscalatePriority | ActionType::EscalateToManual
    )
}

/// The first work item's payload for a decision: the ids of the fired rules
/// when one of them has an action left for the first step, else `null`.
pub(super) fn payload(pack: &RulePack, decision: &Decision) -> Value {
    let pending = decision.matched.iter().any(|&i| {
        pack.rules().get(i as usize).is_some_and(|r| {
            r.actions
                .iter()
                .any(|a| a.kind != ActionType::EscalatePriority)
        })
    });
    if !pending {
        return Value::Null;
    }
    let ids = decision
        .matched
        .iter()
        .filter_map(|&i| pack.rules().get(i as usize))
        .map(|r| Value::String(r.id.clone()))
        .collect();
    let mut map = serde_json::Map::with_capacity(1);
    map.insert(RULES_KEY.to_owned(), Value::Array(ids));
    Value::Object(map)
}

/// What the fired rules ask of the first step.
#[derive(Debug, Default)]
pub(super) struct RuleActions {
    /// Actions to run through the executor, in evaluation order.
    pub actions: Vec<ActionSpec>,
    /// The first rule asking for manual review, if any.
    pub manual: Option<String>,
    /// Rule ids in the payload that the pack does not have (a pack changed
    /// between ingest and the step); reported in the history.
    pub unknown: Vec<String>,
}

/// The rule actions a work item's payload asks for.
pub(super) fn from_payload(pack: &RulePack, payload: &Value) -> RuleActions {
    let mut out = RuleActions::default();
    let Some(ids) = payload.get(RULES_KEY).and_then(Value::as_array) else {
        return out;
    };
    for id in ids.iter().filter_map(Value::as_str) {
        let Some(rule) = pack.rule(id) else {
            out.unknown.push(id.to_owned());
            continue;
        };
        for a in &rule.actions {
            if a.kind == ActionType::EscalateToManual {
                out.manual.get_or_insert_with(|| id.to_owned());
            } else if !applied_by_engine(&a.kind) {
                out.actions.push(a.clone());
            }
        }
    }
    out
}
