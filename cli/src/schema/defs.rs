//! Definitions shared by several schemas: text, times, durations,
//! conditions, actions and their retry policy, and the order.
//!
//! Each helper returns one schema value; a file's schema puts the ones it
//! uses under `definitions` and refers to them as `#/definitions/NAME`.

use creatorflow::actions::ActionType;
use creatorflow::model::{
    AutomationStatus, CustomerTier, FactType, Field, FieldKind, Impact, Priority,
    ViralIndicatorType,
};
use creatorflow::rules::Operator;
use serde_json::{Map, Value, json};

/// The largest count a rule or retry field holds (`u32`).
pub const U32_MAX: u64 = u32::MAX as u64;

/// `#/definitions/NAME`.
pub fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/definitions/{name}") })
}

/// A closed set of names.
pub fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Array(names.into_iter().map(Value::from).collect())
}

/// A mapping with exactly these `properties` (unknown keys refused) and
/// these `required` keys.
pub fn object(properties: Value, required: &[&str]) -> Value {
    let mut o = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        o["required"] = names(required.iter().copied());
    }
    o
}

/// Adds `described` to a schema value.
pub fn doc(mut schema: Value, described: &str) -> Value {
    schema["description"] = described.into();
    schema
}

/// Text as the loaders read it: a string, or a plain number taken as its text.
pub fn text() -> Value {
    json!({ "type": ["string", "number"] })
}

/// An RFC 3339 time (`2025-01-01T00:00:00Z`).
pub fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

/// A positive duration: a whole number and `s`, `m`, `h` or `d` (`90m`, `7d`).
pub fn duration() -> Value {
    json!({
        "type": "string",
        "pattern": "^0*[1-9][0-9]*[smhd]$",
        "description": "a positive whole number followed by s, m, h or d (90m, 1h, 24h, 7d)",
    })
}

/// The priority lanes, most urgent first.
pub fn priority() -> Value {
    json!({ "enum": names(Priority::names()) })
}

/// The impacts, most significant first.
pub fn impact() -> Value {
    json!({ "enum": names(Impact::names()) })
}

/// The built-in action types (a host may register more through the library;
/// the command line knows these).
pub fn action_type() -> Value {
    json!({ "enum": names(ActionType::BUILTIN.iter().map(ActionType::as_str)) })
}

/// A positive integer up to `max`.
pub fn positive(max: Option<u64>) -> Value {
    let mut v = json!({ "type": "integer", "minimum": 1 });
    if let Some(m) = max {
        v["maximum"] = m.into();
    }
    v
}

/// `if` the mapping's `key` is one of `values`, `then`.
fn when(key: &str, values: &[&str], then: Value) -> Value {
    json!({
        "if": { "properties": { key: { "enum": names(values.iter().copied()) } }, "required": [key] },
        "then": then,
    })
}

/// `if` `field` is `f` and `operator` one of `ops`, `then`.
fn when_field_op(f: &str, ops: &[&str], then: Value) -> Value {
    json!({
        "if": {
            "properties": {
                "field": { "const": f },
                "operator": { "enum": names(ops.iter().copied()) },
            },
            "required": ["field", "operator"],
        },
        "then": then,
    })
}

/// A string value must be one of `allowed` (other types are the loader's
/// warnings, not errors).
fn string_in(allowed: Value) -> Value {
    json!({ "if": { "type": "string" }, "then": { "enum": allowed } })
}

/// One condition (`guard: true` for a transition guard: no window facts).
pub fn condition(guard: bool) -> Value {
    let fields = Field::ALL
        .iter()
        .filter(|f| !(guard && f.kind() == FieldKind::Window));
    let window: Vec<&str> = Field::ALL
        .iter()
        .filter(|f| f.kind() == FieldKind::Window)
        .map(|f| f.name())
        .collect();
    let numeric: Vec<&str> = Operator::ALL
        .iter()
        .filter(|o| o.is_numeric())
        .map(|o| o.as_str())
        .collect();
    let mut properties = json!({
        "name": doc(json!({
            "type": "string",
            "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
            "not": { "pattern": "^(order|c[0-9]+)$" },
        }), "a name usable in custom_logic: an identifier other than `order` and c0, c1, ..."),
        "field": doc(json!({ "enum": names(fields.map(|f| f.name())) }),
            "the fact the condition reads (rules.md, \"Facts a condition can read\")"),
        "operator": { "enum": names(Operator::names()) },
        "value": doc(json!({}), "what the fact is compared with (a list for in / not_in, a number for the numeric operators; not needed by exists)"),
    });
    let mut all = vec![
        json!({
            "if": { "properties": { "operator": { "const": "exists" } }, "required": ["operator"] },
            "else": { "required": ["value"], "properties": { "value": { "not": { "type": "null" } } } },
        }),
        when(
            "operator",
            &["in", "not_in"],
            json!({ "properties": { "value": { "type": "array" } } }),
        ),
        when(
            "operator",
            &numeric,
            json!({ "properties": { "value": { "type": "number" } } }),
        ),
    ];
    if !guard {
        properties["time_window"] = doc(
            r("duration"),
            "only on window facts (product_orders, customer_orders, product_units), and required there",
        );
        all.push(json!({
            "if": { "properties": { "field": { "enum": names(window.iter().copied()) } }, "required": ["field"] },
            "then": { "required": ["time_window"] },
            "else": { "not": { "required": ["time_window"] } },
        }));
    }
    for f in Field::ALL {
        if let FactType::Enum(values) = f.ty() {
            let allowed = names(values.iter().copied());
            all.push(when_field_op(
                f.name(),
                &["equals", "not_equals"],
                json!({ "properties": { "value": string_in(allowed.clone()) } }),
            ));
            all.push(when_field_op(
                f.name(),
                &["in", "not_in"],
                json!({ "properties": { "value": { "items": string_in(allowed) } } }),
            ));
        }
    }
    all.push(when_field_op(
        Field::ViralIndicatorTypes.name(),
        &["contains", "not_contains"],
        json!({ "properties": { "value": string_in(names(ViralIndicatorType::names())) } }),
    ));
    let mut c = object(properties, &["field", "operator"]);
    c["allOf"] = Value::Array(all);
    c
}

/// One action; `rollback: true` allows an action's own `rollback` (machine files).
pub fn action(rollback: bool) -> Value {
    let mut properties = json!({
        "type": r("action_type"),
        "parameters": doc(json!({ "type": "object" }), "free-form; escalate_priority takes new_priority and / or new_impact"),
        "timeout_ms": doc(json!({ "type": "integer", "minimum": 1 }), "default: the action type's"),
        "retry": r("retry"),
    });
    if rollback {
        properties["rollback"] = doc(
            r("undo_action"),
            "the action that undoes this one if a later action of the same step fails",
        );
    }
    let mut a = object(properties, &["type"]);
    a["allOf"] = json!([when(
        "type",
        &[ActionType::EscalatePriority.as_str()],
        json!({
            "required": ["parameters"],
            "properties": { "parameters": {
                "properties": { "new_priority": priority(), "new_impact": impact() },
                "anyOf": [{ "required": ["new_priority"] }, { "required": ["new_impact"] }],
            } },
        }),
    )]);
    a
}

/// An action's retry policy.
pub fn retry() -> Value {
    object(
        json!({
            "max_attempts": doc(positive(None), "attempts in all, the first included (default 3)"),
            "backoff_strategy": { "enum": ["exponential", "linear", "fixed"] },
            "initial_delay_ms": { "type": "integer", "minimum": 0 },
            "max_delay_ms": { "type": "integer", "minimum": 0 },
            "retry_conditions": { "type": "array", "items": text() },
            "circuit_breaker_threshold": positive(None),
        }),
        &[],
    )
}

/// An exact decimal: a JSON number or its text.
fn decimal() -> Value {
    json!({ "type": ["number", "string"] })
}

/// An order, in the JSON form of `eval` (spec model.md).
pub fn order() -> Value {
    let string = json!({ "type": "string" });
    let time = timestamp();
    let percent = json!({ "type": "integer", "minimum": 0, "maximum": 100 });
    object(
        json!({
            "id": { "type": "string", "format": "uuid" },
            "user_id": string,
            "tiktok_order_id": string,
            "shop_id": string,
            "current_state": string,
            "previous_state": string,
            "priority": priority(),
            "impact": impact(),
            "automation_status": { "enum": names(AutomationStatus::names()) },
            "customer_handle": string,
            "customer_tier": { "enum": names(CustomerTier::names()) },
            "customer_id": string,
            "product_name": string,
            "product_id": string,
            "quantity": positive(Some(U32_MAX)),
            "price": decimal(),
            "processing_time_ms": { "type": "integer", "minimum": 0 },
            "automation_score": percent,
            "flow_progress": percent,
            "viral_indicators": { "type": "array", "items": r("viral_indicator") },
            "orders_per_hour_current": decimal(),
            "velocity_multiplier": decimal(),
            "shipping_location": string,
            "carrier_preference": string,
            "shipping_zone": string,
            "deadline": time,
            "created_at": time,
            "updated_at": time,
            "state_changed_at": time,
            "user": object(
                json!({ "id": string, "email": string, "creator_tier": string }),
                &["id"],
            ),
        }),
        &[
            "tiktok_order_id",
            "customer_handle",
            "product_name",
            "product_id",
            "quantity",
            "price",
            "created_at",
        ],
    )
}

/// A viral indicator of an order.
pub fn viral_indicator() -> Value {
    object(
        json!({
            "type": { "enum": names(ViralIndicatorType::names()) },
            "source": { "type": "string" },
            "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
            "impact_multiplier": { "type": "number" },
            "detected_at": timestamp(),
            "metadata": { "type": "object" },
        }),
        &[
            "type",
            "source",
            "confidence",
            "impact_multiplier",
            "detected_at",
        ],
    )
}

/// A `definitions` map from (name, schema) pairs.
pub fn definitions(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<String, Value>>(),
    )
}
