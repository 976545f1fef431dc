//! The schema of a state machine file (`rules/order-workflow.yaml`; the
//! format is documented in that file and in `src/machine/`).

use creatorflow::machine::WaitFor;
use creatorflow::model::AutomationStatus;
use serde_json::{Value, json};

use super::defs::{self, doc, names, object, r, text};

/// `machine`, `initial`, `states`, `transitions`.
pub fn schema() -> Value {
    let mut s = object(
        json!({
            "machine": doc(text(), "the machine's name (not empty)"),
            "description": text(),
            "initial": doc(text(), "the state every order starts in"),
            "states": { "type": "array", "minItems": 1, "items": r("state") },
            "transitions": { "type": "array", "items": r("transition") },
        }),
        &["machine", "initial", "states", "transitions"],
    );
    s["definitions"] = defs::definitions(vec![
        ("state", state()),
        ("timeout", timeout()),
        ("escalate", escalate()),
        ("transition", transition()),
        ("guard_condition", defs::condition(true)),
        ("action", defs::action(true)),
        ("undo_action", defs::action(false)),
        ("action_type", defs::action_type()),
        ("retry", defs::retry()),
        ("duration", defs::duration()),
    ]);
    s
}

fn state() -> Value {
    object(
        json!({
            "name": doc(json!({ "type": ["string", "integer"], "pattern": "^[A-Za-z0-9_-]+$" }),
                "letters, digits, `_` and `-`"),
            "description": text(),
            "progress": doc(json!({ "type": "integer", "minimum": 0, "maximum": 100 }),
                "the order's flow_progress in this state"),
            "automation_status": { "enum": names(AutomationStatus::names()) },
            "terminal": doc(json!({ "type": "boolean" }), "default false"),
            "timeout": r("timeout"),
            "waits_for": doc(json!({ "enum": names(WaitFor::names()) }),
                "the state is left when the world confirms this (where shipping is real)"),
        }),
        &["name", "progress", "automation_status"],
    )
}

fn timeout() -> Value {
    let mut t = object(
        json!({
            "after": r("duration"),
            "transition": doc(text(), "the transition (out of this state) to take"),
            "escalate": r("escalate"),
        }),
        &["after"],
    );
    t["oneOf"] = json!([{ "required": ["transition"] }, { "required": ["escalate"] }]);
    t
}

fn escalate() -> Value {
    let mut e = object(
        json!({ "new_priority": defs::priority(), "new_impact": defs::impact() }),
        &[],
    );
    e["minProperties"] = 1.into();
    e
}

fn transition() -> Value {
    let mut t = object(
        json!({
            "name": doc(text(), "default: the target state's name"),
            "description": text(),
            "from": doc(json!({ "anyOf": [
                text(),
                { "type": "array", "minItems": 1, "items": text() },
            ] }), "a state, or a list of states"),
            "to": text(),
            "guard": doc(json!({ "anyOf": [
                r("guard_condition"),
                { "type": "array", "minItems": 1, "items": r("guard_condition") },
            ] }), "a condition, or a list of conditions that must all hold (no window facts)"),
            "guard_script": doc(json!({ "type": "string" }), "a Rhai expression over `order` returning a bool"),
            "actions": { "type": "array", "items": r("action") },
            "rollback": doc(json!({ "type": "array", "items": r("action") }),
                "undoes work of earlier steps; runs first"),
        }),
        &["from", "to"],
    );
    t["not"] = json!({ "required": ["guard", "guard_script"] });
    t
}
