//! Golden tests of the rule semantics: operators and their edges, evaluation
//! order, escalation, rate limits, validity, stats, Rhai. Loading diagnostics
//! are tested as data: `tests/data/rules/` (run by `tests/loader_data.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::model::{Impact, Order, Priority};

fn order(extra: &str) -> Order {
    let base = r#""tiktok_order_id":"1","customer_handle":"@ana","product_name":"Lamp","product_id":"p1","quantity":3,"price":"49.99","created_at":"2025-03-01T12:00:00Z""#;
    let json = if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    };
    Order::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn load(yaml: &str) -> Result<RulePack, PackError> {
    PackLoader::new().load_str("t.yaml", yaml)
}

fn rule_yaml(id: &str, priority: u8, conditions: &str, extra: &str) -> String {
    format!(
        "  - id: {id}\n    name: {id}\n    category: priority_classification\n    priority: {priority}\n{extra}    conditions: {conditions}\n    actions: [{{type: log_analytics_event}}]\n"
    )
}

/// Whether a single condition matches `o`.
fn cond(field: &str, op: &str, value: &str, o: &Order) -> bool {
    let c = format!("[{{field: {field}, operator: {op}, value: {value}}}]");
    let pack = load(&format!("rules:\n{}", rule_yaml("r", 1, &c, "")))
        .unwrap_or_else(|e| panic!("{c}: {e}"));
    let mut engine = RuleEngine::new(Arc::new(pack));
    !engine.evaluate(o, None).matched.is_empty()
}

#[test]
fn operators_on_present_fields() {
    let o = order(
        r#""customer_tier":"vip","shipping_zone":"US-West","viral_indicators":[{"type":"content_spike","source":"v","confidence":0.9,"impact_multiplier":2.5,"detected_at":"2025-03-01T11:00:00Z"}]"#,
    );
    let table: &[(&str, &str, &str, bool)] = &[
        ("quantity", "equals", "3", true),
        ("quantity", "equals", "3.0", true), // int vs float: 1 equals 1.0
        ("quantity", "equals", "'3'", false), // string vs number: no coercion
        ("quantity", "equals", "true", false), // bool vs number
        ("quantity", "not_equals", "4", true),
        ("quantity", "not_equals", "3", false),
        ("quantity", "greater_than", "2", true),
        ("quantity", "greater_than", "3", false),
        ("quantity", "greater_than_or_equal", "3", true),
        ("quantity", "less_than", "3.5", true),
        ("quantity", "less_than_or_equal", "2.99", false),
        ("price", "equals", "49.99", true),
        ("price", "greater_than", "49.98", true),
        ("price", "greater_than", "49.99", false),
        ("price", "less_than_or_equal", "49.99", true),
        ("order_value", "equals", "49.990", true),
        ("customer_handle", "equals", "'@ana'", true),
        ("customer_handle", "greater_than", "1", false), // non-number field
        ("customer_tier", "in", "[vip, new]", true),
        ("customer_tier", "not_in", "[vip, new]", false),
        ("customer_tier", "in", "[]", false), // empty list
        ("customer_tier", "not_in", "[]", true),
        ("quantity", "in", "[1, 2.0, 3.0]", true),
        ("shipping_zone", "contains", "West", true),
        ("shipping_zone", "contains", "west", false), // case-sensitive
        ("shipping_zone", "not_contains", "East", true),
        ("quantity", "not_contains", "3", false), // not a string or list
        ("viral_indicator_types", "contains", "content_spike", true),
        ("viral_indicator_types", "not_contains", "flash_sale", true),
        ("viral_indicator_types", "equals", "[content_spike]", true),
        ("viral_indicator_types", "exists", "~", true),
        ("created_at", "equals", "'2025-03-01T12:00:00Z'", true),
        ("created_at", "contains", "'2025-03'", true),
        ("minutes_since_created", "equals", "0", true),
        ("shipping_zone", "exists", "~", true),
        ("velocity_multiplier", "equals", "1", true),
    ];
    for (field, op, value, expected) in table {
        assert_eq!(
            cond(field, op, value, &o),
            *expected,
            "{field} {op} {value}"
        );
    }
}

#[test]
fn missing_and_null_fields_are_false_for_every_operator() {
    let o = order(r#""shipping_zone":null"#);
    for op in [
        "equals",
        "not_equals",
        "greater_than",
        "less_than",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "exists",
    ] {
        let value = if op.ends_with("in") {
            "[a]"
        } else if op.contains("than") {
            "1"
        } else {
            "a"
        };
        for field in [
            "shipping_zone",
            "deadline",
            "hours_until_deadline",
            "customer_id",
            "user.email",
        ] {
            let value =
                if field == "hours_until_deadline" && !op.contains("than") && !op.ends_with("in") {
                    "1"
                } else {
                    value
                };
            assert!(
                !cond(field, op, value, &o),
                "{field} {op} {value} on a missing field"
            );
        }
    }
}

#[test]
fn empty_list_fields() {
    let o = order("");
    assert!(cond("viral_indicator_types", "exists", "~", &o));
    assert!(!cond("viral_indicator_types", "contains", "flash_sale", &o));
    assert!(cond(
        "viral_indicator_types",
        "not_contains",
        "flash_sale",
        &o
    ));
    assert!(cond("viral_indicator_types", "equals", "[]", &o));
    assert!(cond("viral_indicators", "equals", "[]", &o));
}

#[test]
fn derived_time_facts_use_the_evaluation_time() {
    let o = order(r#""deadline":"2025-03-01T18:00:00Z""#);
    let pack = load(&format!(
        "rules:\n{}{}",
        rule_yaml(
            "soon",
            2,
            "[{field: hours_until_deadline, operator: less_than, value: 3}]",
            ""
        ),
        rule_yaml(
            "old",
            1,
            "[{field: minutes_since_created, operator: greater_than_or_equal, value: 240}]",
            ""
        )
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    assert!(
        e.evaluate(&o, None).matched.is_empty(),
        "at created_at: 6h left, 0 min old"
    );
    let later = "2025-03-01T16:00:00Z".parse().ok();
    let d = e.evaluate(&o, later);
    assert_eq!(d.report(e.pack(), "1").matched, ["soon", "old"]);
}

fn window_pack(window: &str, threshold: i64) -> RuleEngine {
    let c = format!(
        "[{{field: product_orders, operator: greater_than_or_equal, value: {threshold}, time_window: {window}}}]"
    );
    RuleEngine::new(Arc::new(
        load(&format!("rules:\n{}", rule_yaml("w", 1, &c, ""))).unwrap(),
    ))
}

fn at(t: &str, product: &str) -> Order {
    let mut o = order("");
    o.created_at = t.parse().unwrap();
    o.product_id = product.into();
    o
}

/// How many rules match an order of `product` created at `t`.
fn rules_matched(e: &mut RuleEngine, t: &str, product: &str) -> usize {
    e.evaluate(&at(t, product), None).matched.len()
}

#[test]
fn window_boundaries_are_half_open() {
    let mut e = window_pack("1h", 2);
    assert_eq!(rules_matched(&mut e, "2025-03-01T12:00:00Z", "p1"), 0);
    // Exactly one hour later: the first order is outside (created_at - 1h, created_at].
    assert_eq!(rules_matched(&mut e, "2025-03-01T13:00:00Z", "p1"), 0);
    // One millisecond less than an hour after the second: both count.
    assert_eq!(rules_matched(&mut e, "2025-03-01T13:59:59.999Z", "p1"), 1);
    // Other products are not counted.
    assert_eq!(rules_matched(&mut e, "2025-03-01T13:59:59.999Z", "p2"), 0);
}

#[test]
fn window_counts_out_of_order_created_at() {
    let mut e = window_pack("1h", 3);
    e.evaluate(&at("2025-03-01T12:30:00Z", "p1"), None);
    e.evaluate(&at("2025-03-01T12:50:00Z", "p1"), None);
    // Arrives late with an earlier time: only orders in (11:40, 12:40] count, itself included: 2.
    assert_eq!(rules_matched(&mut e, "2025-03-01T12:40:00Z", "p1"), 0);
    // 12:30, 12:40, 12:50 and itself at 13:00: 4 >= 3.
    assert_eq!(rules_matched(&mut e, "2025-03-01T13:00:00Z", "p1"), 1);
}

#[test]
fn unit_and_customer_windows() {
    let c = "[{field: product_units, operator: greater_than, value: 5, time_window: 24h}, {field: customer_orders, operator: equals, value: 2, time_window: 7d}]";
    let mut e = RuleEngine::new(Arc::new(
        load(&format!("rules:\n{}", rule_yaml("u", 1, c, ""))).unwrap(),
    ));
    let first = at("2025-03-01T12:00:00Z", "p1"); // 3 units, customer's 1st order
    assert!(e.evaluate(&first, None).matched.is_empty());
    let second = at("2025-03-02T11:00:00Z", "p1"); // 6 units in 24h, customer's 2nd order
    assert_eq!(e.evaluate(&second, None).matched.len(), 1);
}

/// A pack counting per product over 1h and per customer over 7d.
fn short_product_long_customer() -> RuleEngine {
    let c = "[{field: product_orders, operator: greater_than, value: 0, time_window: 1h}, {field: customer_orders, operator: greater_than, value: 0, time_window: 7d}]";
    RuleEngine::new(Arc::new(
        load(&format!("rules:\n{}", rule_yaml("pc", 1, c, ""))).unwrap(),
    ))
}

#[test]
fn each_kind_of_key_keeps_only_its_own_reach() {
    let mut e = short_product_long_customer();
    // One order an hour for two days, one product, one customer.
    let start: chrono::DateTime<chrono::Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
    for h in 0..48 {
        let mut o = order("");
        o.created_at = start + chrono::TimeDelta::hours(h);
        o.product_id = "p1".into();
        e.record(&o);
    }
    // The customer's 48 orders are all within 7 days; the product keeps
    // only what its 1h window (plus the lateness allowance) can still see.
    let entries = e.window_entries();
    assert!(
        (48..48 + 24).contains(&entries),
        "48 customer entries and a few product ones, got {entries}"
    );
    // The customer window still counts every order of the two days.
    let mut last = order("");
    last.created_at = start + chrono::TimeDelta::hours(48);
    last.product_id = "p1".into();
    let d = e.evaluate(&last, None);
    assert_eq!(d.matched.len(), 1);
}

#[test]
fn held_windows_are_judged_per_kind_of_key() {
    let held = short_product_long_customer();
    let pack = |c: &str| load(&format!("rules:\n{}", rule_yaml("x", 1, c, ""))).unwrap();
    let product = |w: &str| {
        pack(&format!(
            "[{{field: product_orders, operator: greater_than, value: 0, time_window: {w}}}]"
        ))
    };
    let customer = |w: &str| {
        pack(&format!(
            "[{{field: customer_orders, operator: greater_than, value: 0, time_window: {w}}}]"
        ))
    };
    assert!(held.holds_windows_for(&product("30m")));
    assert!(held.holds_windows_for(&product("1h")));
    // Shorter than the longest window held (7d), but products are only
    // held for 1h: the facts must be rebuilt.
    assert!(!held.holds_windows_for(&product("24h")));
    assert!(held.holds_windows_for(&customer("7d")));
    assert!(!held.holds_windows_for(&customer("8d")));
    let none = RuleEngine::new(Arc::new(customer("1d")));
    assert!(
        !none.holds_windows_for(&product("1m")),
        "no product facts held"
    );
}

#[test]
fn evaluation_order_is_priority_then_id() {
    let always = "[{field: quantity, operator: greater_than, value: 0}]";
    let pack = load(&format!(
        "rules:\n{}{}{}{}",
        rule_yaml("b", 50, always, ""),
        rule_yaml("a", 50, always, ""),
        rule_yaml("z", 90, always, ""),
        rule_yaml("c", 10, always, "")
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let d = e.evaluate(&order(""), None);
    assert_eq!(d.report(e.pack(), "1").matched, ["z", "a", "b", "c"]);
}

#[test]
fn first_escalation_wins_for_priority_and_impact_independently() {
    let always = "[{field: quantity, operator: greater_than, value: 0}]";
    let mk = |id: &str, prio: u8, params: &str| {
        format!(
            "  - id: {id}\n    name: {id}\n    category: viral_detection\n    priority: {prio}\n    conditions: {always}\n    actions: [{{type: escalate_priority, parameters: {params}}}]\n"
        )
    };
    let pack = load(&format!(
        "rules:\n{}{}{}",
        mk("low", 10, "{new_priority: automated, new_impact: AUTO}"),
        mk("top", 90, "{new_impact: VIRAL}"),
        mk("mid", 50, "{new_priority: urgent, new_impact: HIGH}")
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let d = e.evaluate(&order(""), None);
    assert_eq!(
        d.priority,
        Priority::Urgent,
        "mid is the first carrying new_priority"
    );
    assert_eq!(
        d.impact,
        Impact::Viral,
        "top is the first carrying new_impact"
    );
    assert_eq!(d.report(e.pack(), "1").actions, ["escalate_priority"; 3]);
    // Without escalations the order keeps its own.
    let pack = load(&format!("rules:\n{}", rule_yaml("x", 1, always, ""))).unwrap();
    let d = RuleEngine::new(Arc::new(pack))
        .evaluate(&order(r#""priority":"high","impact":"HIGH""#), None);
    assert_eq!((d.priority, d.impact), (Priority::High, Impact::High));
}

#[test]
fn rate_limit_over_a_stream() {
    let always = "[{field: quantity, operator: greater_than, value: 0}]";
    let pack = load(&format!(
        "rules:\n{}",
        rule_yaml("lim", 1, always, "    max_executions_per_hour: 2\n")
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let times = [
        "12:00:00", "12:10:00", "12:20:00", "13:00:00", "13:10:00", "13:20:00",
    ];
    let fired: Vec<bool> = times
        .iter()
        .map(|t| {
            let d = e.evaluate(&at(&format!("2025-03-01T{t}Z"), "p1"), None);
            assert_eq!(d.matched.is_empty(), d.rate_limited.len() == 1);
            !d.matched.is_empty()
        })
        .collect();
    // 12:00, 12:10 fire; 12:20 limited; 13:00: (12:00, 13:00] holds only 12:10 -> fires;
    // 13:10: (12:10, 13:10] holds 13:00 -> fires; 13:20: 13:00, 13:10 -> limited.
    assert_eq!(fired, [true, true, false, true, true, false]);
    let s = &e.stats()[0];
    assert_eq!(
        (s.execution_count, s.success_count),
        (4, 4),
        "rate-limited evaluations are not executions"
    );
}

#[test]
fn validity_windows_and_disabled_rules() {
    let always = "[{field: quantity, operator: greater_than, value: 0}]";
    let pack = load(&format!(
        "rules:\n{}{}",
        rule_yaml(
            "promo",
            2,
            always,
            "    valid_from: 2025-03-01T00:00:00Z\n    valid_until: 2025-03-02T00:00:00Z\n"
        ),
        rule_yaml("off", 1, always, "    enabled: false\n")
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let fires =
        |e: &mut RuleEngine, t: &str| !e.evaluate(&order(""), t.parse().ok()).matched.is_empty();
    assert!(!fires(&mut e, "2025-02-28T23:59:59Z"));
    assert!(
        fires(&mut e, "2025-03-01T00:00:00Z"),
        "valid_from is inclusive"
    );
    assert!(
        !fires(&mut e, "2025-03-02T00:00:00Z"),
        "valid_until is exclusive"
    );
    let o = order("");
    let x = e
        .explain(&o, "2025-02-01T00:00:00Z".parse().ok(), "promo")
        .unwrap();
    assert_eq!(x.verdict, Verdict::NotYetValid);
    let x = e
        .explain(&o, "2025-04-01T00:00:00Z".parse().ok(), "promo")
        .unwrap();
    assert_eq!(x.verdict, Verdict::Expired);
    assert_eq!(
        e.explain(&o, None, "off").unwrap().verdict,
        Verdict::Disabled
    );
}

#[test]
fn statistics_count_executions_successes_and_errors() {
    let pack = load(&format!(
        "rules:\n{}{}",
        rule_yaml(
            "big",
            2,
            "[{field: quantity, operator: greater_than, value: 5}]",
            ""
        ),
        rule_yaml(
            "bad",
            1,
            "[{field: quantity, operator: greater_than, value: 0}]",
            "    condition_logic: CUSTOM\n    custom_logic: \"if c0 { 1 } else { true }\"\n"
        ),
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    for q in [1, 6, 7] {
        let mut o = order("");
        o.quantity = q;
        o.created_at += chrono::TimeDelta::minutes(i64::from(q));
        e.evaluate(&o, None);
    }
    let stats = e.stats();
    assert_eq!(
        (
            stats[0].rule.as_str(),
            stats[0].execution_count,
            stats[0].success_count
        ),
        ("big", 2, 2)
    );
    assert_eq!(
        stats[0].last_executed_at,
        "2025-03-01T12:07:00Z".parse().ok()
    );
    assert_eq!(
        (
            stats[1].rule.as_str(),
            stats[1].execution_count,
            stats[1].success_count
        ),
        ("bad", 3, 0)
    );
    assert!(stats[0].average_execution_time_ms >= 0.0);
}

#[test]
fn misbehaving_scripts_fail_alone_and_fast() {
    let always = "[{field: quantity, operator: greater_than, value: 0}]";
    let custom =
        |logic: &str| format!("    condition_logic: CUSTOM\n    custom_logic: {logic:?}\n");
    let pack = load(&format!(
        "rules:\n{}{}{}{}{}",
        rule_yaml("loop", 5, always, &custom("loop { } c0")),
        rule_yaml("recurse", 4, always, &custom("fn f(x) { f(x + 1) } f(1)")),
        rule_yaml(
            "huge",
            3,
            always,
            &custom("let s = \"abcdefgh\"; loop { s += s; } c0")
        ),
        rule_yaml("number", 2, always, &custom("42")),
        rule_yaml("fine", 1, always, &custom("c0 && order.quantity == 3")),
    ))
    .unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let started = Instant::now();
    let d = e.evaluate(&order(""), None);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    let r = d.report(e.pack(), "1");
    assert_eq!(r.matched, ["fine"]);
    let errs: Vec<_> = r
        .errors
        .iter()
        .map(|e| (e.rule, e.message.as_str()))
        .collect();
    let expected = [
        ("loop", "operation limit"),
        ("recurse", "call depth"),
        ("huge", "size limit"),
        ("number", "expected a bool"),
    ];
    assert_eq!(errs.len(), expected.len());
    for ((rule, message), (want_rule, want_text)) in errs.iter().zip(expected) {
        assert!(
            *rule == want_rule && message.contains(want_text),
            "{errs:?}"
        );
    }
}

#[test]
fn custom_logic_sees_names_indices_and_order() {
    let conds = "[{name: vip, field: customer_tier, operator: equals, value: vip}, {field: quantity, operator: greater_than, value: 10}]";
    let extra = "    condition_logic: CUSTOM\n    custom_logic: \"(vip || c1) && order.price > 40.0 && order.shipping_zone == ()\"\n";
    let pack = load(&format!("rules:\n{}", rule_yaml("c", 1, conds, extra))).unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    assert_eq!(
        e.evaluate(&order(r#""customer_tier":"vip""#), None)
            .matched
            .len(),
        1
    );
    assert!(e.evaluate(&order(""), None).matched.is_empty());
    let x = e.explain(&order(""), None, "c").unwrap();
    assert_eq!(x.verdict, Verdict::NotMatched);
    assert_eq!(x.conditions.len(), 2);
    assert_eq!(x.conditions[0].actual, Some(serde_json::json!("regular")));
    assert!(!x.conditions[0].result && !x.conditions[1].result);
}

#[test]
fn explanations_show_each_condition() {
    let c = "[{field: quantity, operator: greater_than, value: 5}, {field: shipping_zone, operator: equals, value: EU}, {field: product_orders, operator: greater_than, value: 0, time_window: 1h}]";
    let pack = load(&format!("rules:\n{}", rule_yaml("why", 1, c, ""))).unwrap();
    let mut e = RuleEngine::new(Arc::new(pack));
    let x = e.explain(&order(""), None, "why").unwrap();
    assert_eq!(x.verdict, Verdict::NotMatched);
    let c0 = &x.conditions[0];
    assert_eq!(
        (c0.field, c0.operator, c0.result),
        ("quantity", "greater_than", false)
    );
    assert_eq!(
        (c0.actual.clone(), c0.expected.clone()),
        (Some(serde_json::json!(3)), serde_json::json!(5))
    );
    assert_eq!(x.conditions[1].actual, None, "missing zone");
    assert_eq!(
        x.conditions[2].actual,
        Some(serde_json::json!(1)),
        "the order itself is in its window"
    );
    let text = x.to_string();
    assert!(
        text.contains("did not fire")
            && text.contains("c1 shipping_zone: (missing) equals \"EU\" -> false"),
        "{text}"
    );
    assert!(e.explain(&order(""), None, "nope").is_none());
    // explain changed nothing
    assert_eq!(e.stats()[0].execution_count, 0);
}

const GOOD: &str = "rules:\n  - id: ok\n    name: ok\n    category: viral_detection\n    priority: 5\n    conditions:\n      - field: quantity\n        operator: greater_than\n        value: 1\n    actions:\n      - type: enable_fast_track\n";

#[test]
fn machine_files_are_skipped_and_host_actions_registered() {
    let pack = PackLoader::new()
        .register_action("print_gift_note")
        .load_sources(&[
            ("m.yaml".into(), "machine: x\ninitial: a\n".into()),
            (
                "r.yaml".into(),
                GOOD.replace("enable_fast_track", "print_gift_note"),
            ),
        ])
        .unwrap();
    assert_eq!(pack.rules().len(), 1);
    assert_eq!(pack.rules()[0].actions[0].kind.as_str(), "print_gift_note");
}
