//! The schema of a rule file (spec rules.md, "Files").

use creatorflow::rules::Category;
use serde_json::{Value, json};

use super::defs::{self, U32_MAX, doc, names, object, positive, r, text};

/// `rules:`, a list of rules.
pub fn schema() -> Value {
    let mut s = object(
        json!({ "rules": { "type": "array", "items": r("rule") } }),
        &["rules"],
    );
    s["definitions"] = defs::definitions(vec![
        ("rule", rule()),
        ("condition", defs::condition(false)),
        ("action", defs::action(false)),
        ("action_type", defs::action_type()),
        ("retry", defs::retry()),
        ("duration", defs::duration()),
    ]);
    s
}

/// One rule.
pub fn rule() -> Value {
    let mut rule = object(
        json!({
            "id": doc(json!({ "type": ["string", "integer"], "pattern": "^[a-z0-9_-]+$" }),
                "unique across the pack, [a-z0-9_-]+"),
            "name": text(),
            "description": text(),
            "category": { "enum": names(Category::names()) },
            "priority": doc(json!({ "type": "integer", "minimum": 0, "maximum": 100 }), "higher runs first"),
            "enabled": doc(json!({ "type": "boolean" }), "default true"),
            "version": doc(positive(Some(U32_MAX)), "default 1"),
            "tags": { "type": "array", "items": text() },
            "max_executions_per_hour": positive(Some(U32_MAX)),
            "valid_from": defs::timestamp(),
            "valid_until": doc(defs::timestamp(), "later than valid_from"),
            "condition_logic": doc(json!({ "enum": ["AND", "OR", "CUSTOM"] }), "default AND"),
            "custom_logic": doc(json!({ "type": "string" }),
                "a Rhai expression over c0..c{n-1}, the conditions' names and `order`; required with CUSTOM, refused otherwise"),
            "conditions": { "type": "array", "minItems": 1, "items": r("condition") },
            "actions": { "type": "array", "minItems": 1, "items": r("action") },
        }),
        &[
            "id",
            "name",
            "category",
            "priority",
            "conditions",
            "actions",
        ],
    );
    rule["if"] = json!({
        "properties": { "condition_logic": { "const": "CUSTOM" } },
        "required": ["condition_logic"],
    });
    rule["then"] = json!({ "required": ["custom_logic"] });
    rule["else"] = json!({ "not": { "required": ["custom_logic"] } });
    rule
}
