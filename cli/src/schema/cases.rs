//! The schema of a rule pack's test case file (spec rules.md, "Tests next
//! to the rules").

use serde_json::{Value, json};

use super::defs::{self, doc, object, r, text};

/// `cases:`, a list of cases.
pub fn schema() -> Value {
    let mut s = object(
        json!({ "cases": { "type": "array", "items": r("case") } }),
        &["cases"],
    );
    s["definitions"] = defs::definitions(vec![
        ("case", case()),
        ("expect", expect()),
        ("order", defs::order()),
        ("viral_indicator", defs::viral_indicator()),
        ("rule_ids", rule_ids()),
    ]);
    s
}

fn case() -> Value {
    object(
        json!({
            "name": text(),
            "now": doc(defs::timestamp(), "the evaluation time; default: each order's created_at"),
            "history": doc(json!({ "type": "array", "items": r("order") }),
                "earlier orders that feed window facts"),
            "order": r("order"),
            "enrich": doc(json!({ "type": "boolean" }), "viral detection; default false"),
            "expect": r("expect"),
        }),
        &["name", "order", "expect"],
    )
}

fn expect() -> Value {
    object(
        json!({
            "matched": doc(r("rule_ids"), "exactly these, in evaluation order"),
            "fired": doc(r("rule_ids"), "these among the matched (order-free)"),
            "not_fired": r("rule_ids"),
            "priority": defs::priority(),
            "impact": defs::impact(),
            "actions": doc(json!({ "type": "array", "items": defs::action_type() }),
                "these among the actions (order-free)"),
            "errors": doc(json!({ "type": "integer", "minimum": 0 }), "how many rules erred"),
        }),
        &[],
    )
}

fn rule_ids() -> Value {
    json!({
        "type": "array",
        "items": { "type": ["string", "integer"], "pattern": "^[a-z0-9_-]+$" },
    })
}
