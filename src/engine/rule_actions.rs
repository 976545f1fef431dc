//! The actions of the rules that fired on an order at ingest.
//!
//! Ingest evaluates the rule pack and applies `escalate_priority` at once
//! (priority and impact decide the order's lane). The other actions of the
//! fired rules run with the order's first step, so ingest leaves **what to
//! do** in the first work item's payload (only when some fired rule has such
//! an action), where it survives a restart with the queue:
//!
//! ```json
//! {"rules": ["vip-fast-track"],
//!  "actions": [{"type": "enable_fast_track", "parameters": {}}],
//!  "manual": "new-customer-large-order-review"}
//! ```
//!
//! `actions` are the actions as the rules declared them (their JSON form,
//! parameters, timeouts and retry policies included), `manual` the first
//! fired rule asking for manual review (absent when none), `rules` the fired
//! rules' ids, for the record. The worker runs exactly that, whatever pack
//! it holds itself: under `creatorflow serve` one worker engine runs every
//! tenant's steps while each tenant's engine evaluates its own pack, and
//! packs are reloaded at run time, so an id could be unknown to the worker
//! or name another rule there. A payload in the earlier format (`{"rules":
//! [ids]}` alone, queued before an upgrade) is still honoured: its ids are
//! resolved in the worker's pack, and ids it does not have are reported.
//!
//! At the first step:
//!
//! - `escalate_to_manual` sends the order to manual review (the machine's
//!   failure state) instead of the next state, naming the rule;
//! - every other action runs through the executor (its timeout, retries,
//!   circuit breaker) before the machine's step, and is recorded in the same
//!   history row, whose reason names the fired rules. These are side effects
//!   (notifications, analytics, fast track, carrier choice): a failure is
//!   recorded and does not stop the order. If the step is given back before
//!   it is recorded, they run again with the same idempotency key (order,
//!   `rules`, version, slot).

use serde_json::Value;

use crate::actions::{ActionSpec, ActionType};
use crate::rules::{Decision, RulePack};

/// The payload key holding the fired rules' ids.
const RULES_KEY: &str = "rules";
/// The payload key holding the actions to run.
const ACTIONS_KEY: &str = "actions";
/// The payload key holding the rule asking for manual review.
const MANUAL_KEY: &str = "manual";

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

/// What the fired rules ask of the first step.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RuleActions {
    /// Actions to run through the executor, in evaluation order.
    pub actions: Vec<ActionSpec>,
    /// The first rule asking for manual review, if any.
    pub manual: Option<String>,
    /// The fired rules' ids, for the record.
    pub rules: Vec<String>,
    /// Rule ids of an earlier-format payload that the worker's pack does not
    /// have (a pack changed between ingest and the step); reported in the
    /// history.
    pub unknown: Vec<String>,
}

impl RuleActions {
    /// Adds what rule `id` asks for, given its declared `actions`.
    fn add(&mut self, id: &str, actions: &[ActionSpec]) {
        for a in actions {
            if a.kind == ActionType::EscalateToManual {
                self.manual.get_or_insert_with(|| id.to_owned());
            } else if !applied_by_engine(&a.kind) {
                self.actions.push(a.clone());
            }
        }
    }

    /// Whether the first step has anything to do for the rules.
    fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.manual.is_none()
    }
}

/// The first work item's payload for a decision made with `pack`: what the
/// fired rules ask of the first step (module docs), or `null` when nothing.
pub(super) fn payload(pack: &RulePack, decision: &Decision) -> Value {
    let mut asked = RuleActions::default();
    for rule in decision
        .matched
        .iter()
        .filter_map(|&i| pack.rules().get(i as usize))
    {
        asked.rules.push(rule.id.clone());
        asked.add(&rule.id, &rule.actions);
    }
    if asked.is_empty() {
        return Value::Null;
    }
    let mut map = serde_json::Map::with_capacity(3);
    let ids = asked.rules.into_iter().map(Value::String).collect();
    map.insert(RULES_KEY.to_owned(), Value::Array(ids));
    // Declared actions always serialise; were one not to, the ids alone
    // (the earlier format) still get the step done by the worker's pack.
    if let Ok(actions) = serde_json::to_value(&asked.actions) {
        map.insert(ACTIONS_KEY.to_owned(), actions);
        if let Some(rule) = asked.manual {
            map.insert(MANUAL_KEY.to_owned(), Value::String(rule));
        }
    }
    Value::Object(map)
}

/// The rule actions a work item's payload asks for: as carried (the current
/// format), or resolved in `pack` (a payload of ids only, queued by an
/// earlier version; also a payload whose actions cannot be read).
pub(super) fn from_payload(pack: &RulePack, payload: &Value) -> RuleActions {
    let ids: Vec<&str> = payload
        .get(RULES_KEY)
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let carried = payload
        .get(ACTIONS_KEY)
        .and_then(|a| serde_json::from_value::<Vec<ActionSpec>>(a.clone()).ok());
    let mut out = RuleActions {
        rules: ids.iter().map(|&id| id.to_owned()).collect(),
        ..RuleActions::default()
    };
    if let Some(actions) = carried {
        out.actions = actions;
        out.manual = payload
            .get(MANUAL_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned);
        return out;
    }
    for id in ids {
        match pack.rule(id) {
            Some(rule) => out.add(id, &rule.actions),
            None => out.unknown.push(id.to_owned()),
        }
    }
    out
}

/// The first step's history reason: the transition, the fired rules, and
/// the rules an earlier-format payload named that the pack no longer has.
pub(super) fn reason(transition: &str, asked: &RuleActions) -> String {
    let mut reason = transition.to_owned();
    if !asked.rules.is_empty() {
        reason.push_str("; rules: ");
        reason.push_str(&asked.rules.join(", "));
    }
    if !asked.unknown.is_empty() {
        reason.push_str("; rules no longer in the pack: ");
        reason.push_str(&asked.unknown.join(", "));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::PackLoader;

    fn pack(yaml: &str) -> RulePack {
        PackLoader::new()
            .load_sources(&[("p.yaml".to_owned(), yaml.to_owned())])
            .expect("pack")
    }

    const HOOK: &str = r#"
rules:
  - id: hook
    name: hook
    category: exception_handling
    priority: 50
    conditions: [ { field: quantity, operator: greater_than, value: 0 } ]
    actions:
      - type: escalate_priority
        parameters: { new_priority: urgent }
      - type: trigger_webhook
        parameters: { url: "https://example.test/a", event: big }
        timeout_ms: 1500
      - type: escalate_to_manual
"#;

    fn decision_all(pack: &RulePack) -> Decision {
        let mut d = Decision::default();
        d.matched = (0..pack.rules().len() as u32).collect();
        d
    }

    #[test]
    fn the_payload_carries_the_actions_and_reads_back_without_the_pack() {
        let a = pack(HOOK);
        let p = payload(&a, &decision_all(&a));
        assert_eq!(p["rules"], serde_json::json!(["hook"]));
        assert_eq!(p["manual"], "hook");
        assert_eq!(p["actions"][0]["type"], "trigger_webhook");
        // Another pack, without `hook`, runs exactly what was carried.
        let other = pack("rules: []\n");
        let asked = from_payload(&other, &p);
        assert_eq!(asked.actions.len(), 1);
        assert_eq!(asked.actions[0].kind, ActionType::TriggerWebhook);
        assert_eq!(asked.actions[0].parameters["event"], "big");
        assert_eq!(asked.actions[0].timeout_ms, Some(1500));
        assert_eq!(asked.manual.as_deref(), Some("hook"));
        assert_eq!(asked.rules, ["hook"]);
        assert!(asked.unknown.is_empty());
        assert_eq!(reason("validate", &asked), "validate; rules: hook");
    }

    #[test]
    fn an_earlier_payload_of_ids_is_resolved_in_the_workers_pack() {
        let a = pack(HOOK);
        let old = serde_json::json!({ "rules": ["hook", "gone"] });
        let asked = from_payload(&a, &old);
        assert_eq!(asked.actions.len(), 1);
        assert_eq!(asked.manual.as_deref(), Some("hook"));
        assert_eq!(asked.unknown, ["gone"]);
        assert_eq!(
            reason("validate", &asked),
            "validate; rules: hook, gone; rules no longer in the pack: gone"
        );
    }

    #[test]
    fn nothing_left_for_the_first_step_means_no_payload() {
        let lane_only = pack(
            r#"
rules:
  - id: lane
    name: lane
    category: priority_classification
    priority: 50
    conditions: [ { field: quantity, operator: greater_than, value: 0 } ]
    actions: [ { type: escalate_priority, parameters: { new_priority: high } } ]
"#,
        );
        assert_eq!(payload(&lane_only, &decision_all(&lane_only)), Value::Null);
        assert_eq!(
            from_payload(&lane_only, &Value::Null),
            RuleActions::default()
        );
    }
}
