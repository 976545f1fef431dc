//! Property test: the compiled rule evaluator (`RuleEngine`) agrees with a
//! plain, deliberately naive reference interpreter of the spec's `rules.md`.
//!
//! The reference works on `serde_json::Value`: it serializes the order, adds
//! the derived facts, walks dotted paths, counts window facts by scanning
//! every order seen so far, keeps every firing for rate limits, and evaluates
//! CUSTOM logic with a tiny interpreter of the Rhai subset the tests use
//! (`&&`, `||`, `!`, comparisons, integer arithmetic, `order.<field>`).
//!
//! Random packs are rendered to YAML and loaded with `PackLoader` (every
//! generated pack must load), random order streams are evaluated by both,
//! and every report must agree: matched rules, priority, impact, actions,
//! rate-limited rules and erroring rules.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::rules::{
    ConditionLogic, Decision, DecisionReport, PackLoader, RuleEngine, RulePack,
};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// The reference model of a rule.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Logic {
    And,
    Or,
    Custom(String),
}

#[derive(Debug, Clone)]
struct RCond {
    name: Option<String>,
    field: String,
    op: String,
    /// `None` only for `exists` without a value.
    value: Option<Value>,
    /// `time_window` as written (`30m`, `1h`, `30d`).
    window: Option<String>,
}

#[derive(Debug, Clone)]
struct RAction {
    kind: String,
    new_priority: Option<String>,
    new_impact: Option<String>,
}

#[derive(Debug, Clone)]
struct RRule {
    id: String,
    priority: i64,
    enabled: bool,
    max_per_hour: Option<u32>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    logic: Logic,
    conds: Vec<RCond>,
    actions: Vec<RAction>,
}

/// What one evaluation decided, in plain strings.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    matched: Vec<String>,
    priority: String,
    impact: String,
    actions: Vec<String>,
    rate_limited: Vec<String>,
    /// Ids of the rules that errored (messages are the engine's business).
    errors: Vec<String>,
}

fn outcome_of(report: &DecisionReport<'_>) -> Outcome {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Outcome {
        matched: strings(&report.matched),
        priority: report.priority.as_str().to_owned(),
        impact: report.impact.as_str().to_owned(),
        actions: strings(&report.actions),
        rate_limited: strings(&report.rate_limited),
        errors: report.errors.iter().map(|e| e.rule.to_owned()).collect(),
    }
}

// ---------------------------------------------------------------------------
// The reference interpreter.
// ---------------------------------------------------------------------------

const HOUR_MS: i64 = 3_600_000;

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad time {s}: {e}"))
        .with_timezone(&Utc)
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// `30m`, `1h`, `24h`, `7d` in milliseconds.
fn window_ms(text: &str) -> i64 {
    let (n, unit) = text.split_at(text.len() - 1);
    let n: i64 = n.parse().unwrap();
    n * match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => panic!("bad window {text}"),
    }
}

/// JSON equality; numbers compare by value (1 == 1.0).
fn jeq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| jeq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| jeq(v, w)))
        }
        _ => a == b,
    }
}

fn contains(field: &Value, value: &Value) -> bool {
    match field {
        Value::String(s) => value.as_str().is_some_and(|v| s.contains(v)),
        Value::Array(items) => items.iter().any(|i| jeq(i, value)),
        _ => false,
    }
}

/// One operator of the rules.md table. `field` is `None` when missing.
fn apply(op: &str, field: Option<&Value>, value: &Value) -> bool {
    let Some(f) = field.filter(|v| !v.is_null()) else {
        return false;
    };
    let numeric = |pred: fn(f64, f64) -> bool| match (f, value) {
        (Value::Number(x), Value::Number(y)) => pred(x.as_f64().unwrap(), y.as_f64().unwrap()),
        _ => false,
    };
    match op {
        "exists" => true,
        "equals" => jeq(f, value),
        "not_equals" => !jeq(f, value),
        "greater_than" => numeric(|a, b| a > b),
        "greater_than_or_equal" => numeric(|a, b| a >= b),
        "less_than" => numeric(|a, b| a < b),
        "less_than_or_equal" => numeric(|a, b| a <= b),
        "in" => value
            .as_array()
            .is_some_and(|l| l.iter().any(|v| jeq(f, v))),
        "not_in" => value
            .as_array()
            .is_some_and(|l| !l.iter().any(|v| jeq(f, v))),
        "contains" => contains(f, value),
        "not_contains" => (f.is_string() || f.is_array()) && !contains(f, value),
        other => panic!("unknown operator {other}"),
    }
}

/// Walks a dotted path (`user.creator_tier`).
fn resolve<'a>(facts: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = facts.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// The order's serialized form plus the derived facts, at evaluation time `t`.
fn facts_of(order: &Order, t: DateTime<Utc>) -> Map<String, Value> {
    let Value::Object(mut m) = serde_json::to_value(order).unwrap() else {
        panic!("an order serializes to an object")
    };
    let created = parse_time(m["created_at"].as_str().unwrap());
    let price = m["price"].clone();
    m.insert("order_value".into(), price);
    let types: Vec<Value> = m
        .get("viral_indicators")
        .and_then(Value::as_array)
        .map(|l| l.iter().map(|v| v["type"].clone()).collect())
        .unwrap_or_default();
    m.insert("viral_indicator_types".into(), Value::Array(types));
    let spike = m
        .get("viral_indicators")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v["type"] == "content_spike")
        .filter_map(|v| v["confidence"].as_f64())
        .reduce(f64::max);
    if let Some(c) = spike {
        m.insert("content_spike_confidence".into(), Value::from(c));
    }
    let minutes = (t - created).num_milliseconds() as f64 / 60_000.0;
    m.insert("minutes_since_created".into(), Value::from(minutes));
    if let Some(d) = m.get("deadline").and_then(Value::as_str) {
        let hours = (parse_time(d) - t).num_milliseconds() as f64 / 3_600_000.0;
        m.insert("hours_until_deadline".into(), Value::from(hours));
    }
    m
}

#[derive(Debug, Clone)]
struct Seen {
    product: String,
    customer: String,
    at_ms: i64,
    quantity: i64,
}

/// The reference interpreter: everything it needs is in plain vectors.
struct Reference {
    rules: Vec<RRule>,
    seen: Vec<Seen>,
    fires: Vec<Vec<i64>>,
}

impl Reference {
    fn new(mut rules: Vec<RRule>) -> Self {
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
        let n = rules.len();
        Reference {
            rules,
            seen: Vec::new(),
            fires: vec![Vec::new(); n],
        }
    }

    fn window_fact(&self, field: &str, window: &str, facts: &Map<String, Value>) -> Value {
        let created = parse_time(facts["created_at"].as_str().unwrap()).timestamp_millis();
        let lo = created - window_ms(window);
        let product = facts["product_id"].as_str().unwrap();
        let customer = facts["customer_handle"].as_str().unwrap();
        let in_window = self
            .seen
            .iter()
            .filter(|s| s.at_ms > lo && s.at_ms <= created);
        match field {
            "product_orders" => Value::from(in_window.filter(|s| s.product == product).count()),
            "customer_orders" => Value::from(in_window.filter(|s| s.customer == customer).count()),
            "product_units" => Value::from(
                in_window
                    .filter(|s| s.product == product)
                    .map(|s| s.quantity)
                    .sum::<i64>(),
            ),
            other => panic!("not a window fact: {other}"),
        }
    }

    fn condition(&self, c: &RCond, facts: &Map<String, Value>) -> bool {
        let value = c.value.clone().unwrap_or(Value::Null);
        match &c.window {
            Some(w) => apply(&c.op, Some(&self.window_fact(&c.field, w, facts)), &value),
            None => apply(&c.op, resolve(facts, &c.field), &value),
        }
    }

    fn evaluate(&mut self, order: &Order, now: Option<DateTime<Utc>>) -> Outcome {
        let created = order.created_at;
        let t = now.unwrap_or(created);
        let t_ms = t.timestamp_millis();
        let facts = facts_of(order, t);
        self.seen.push(Seen {
            product: facts["product_id"].as_str().unwrap().to_owned(),
            customer: facts["customer_handle"].as_str().unwrap().to_owned(),
            at_ms: created.timestamp_millis(),
            quantity: facts["quantity"].as_i64().unwrap(),
        });
        let mut out = Outcome {
            matched: vec![],
            priority: facts["priority"].as_str().unwrap().to_owned(),
            impact: facts["impact"].as_str().unwrap().to_owned(),
            actions: vec![],
            rate_limited: vec![],
            errors: vec![],
        };
        let (mut priority_set, mut impact_set) = (false, false);
        for ri in 0..self.rules.len() {
            let rule = &self.rules[ri];
            if !rule.enabled {
                continue;
            }
            if rule
                .valid_from
                .as_deref()
                .is_some_and(|f| t < parse_time(f))
            {
                continue;
            }
            if rule
                .valid_until
                .as_deref()
                .is_some_and(|u| t >= parse_time(u))
            {
                continue;
            }
            let results: Vec<bool> = rule
                .conds
                .iter()
                .map(|c| self.condition(c, &facts))
                .collect();
            let matched = match &rule.logic {
                Logic::And => results.iter().all(|r| *r),
                Logic::Or => results.iter().any(|r| *r),
                Logic::Custom(src) => {
                    let mut vars = HashMap::new();
                    for (i, (c, r)) in rule.conds.iter().zip(&results).enumerate() {
                        vars.insert(format!("c{i}"), *r);
                        if let Some(n) = &c.name {
                            vars.insert(n.clone(), *r);
                        }
                    }
                    match rhai_lite::eval(src, &vars, &facts) {
                        Ok(b) => b,
                        Err(_) => {
                            out.errors.push(rule.id.clone());
                            continue;
                        }
                    }
                }
            };
            if !matched {
                continue;
            }
            if let Some(max) = rule.max_per_hour {
                let recent = self.fires[ri]
                    .iter()
                    .filter(|&&f| f > t_ms - HOUR_MS && f <= t_ms)
                    .count();
                if recent >= max as usize {
                    out.rate_limited.push(rule.id.clone());
                    continue;
                }
            }
            self.fires[ri].push(t_ms);
            out.matched.push(rule.id.clone());
            for a in &rule.actions {
                out.actions.push(a.kind.clone());
                if a.kind != "escalate_priority" {
                    continue;
                }
                if let (Some(p), false) = (&a.new_priority, priority_set) {
                    out.priority = p.clone();
                    priority_set = true;
                }
                if let (Some(i), false) = (&a.new_impact, impact_set) {
                    out.impact = i.clone();
                    impact_set = true;
                }
            }
        }
        out
    }
}

/// An interpreter of the small Rhai subset that CUSTOM logic uses in these
/// tests and in the shipped pack: `&&`, `||`, `!`, parentheses, comparisons,
/// integer `+ - * /`, `true`/`false`, numbers, strings, variables and
/// `order.<field>` (decimals as floats, a missing field as `()`).
mod rhai_lite {
    use std::collections::HashMap;

    use serde_json::{Map, Value};

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Ident(String),
        Int(i64),
        Float(f64),
        Str(String),
        Op(&'static str),
    }

    fn lex(src: &str) -> Vec<Tok> {
        const OPS: [&str; 15] = [
            "&&", "||", "==", "!=", ">=", "<=", ">", "<", "!", "(", ")", "+", "-", "*", "/",
        ];
        let b = src.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        'outer: while i < b.len() {
            let c = b[i];
            if c.is_ascii_whitespace() {
                i += 1;
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                out.push(Tok::Ident(src[s..i].to_owned()));
            } else if c.is_ascii_digit() {
                let s = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                    i += 1;
                }
                let t = &src[s..i];
                out.push(if t.contains('.') {
                    Tok::Float(t.parse().unwrap())
                } else {
                    Tok::Int(t.parse().unwrap())
                });
            } else if c == b'"' {
                let s = i + 1;
                i = s;
                while b[i] != b'"' {
                    i += 1;
                }
                out.push(Tok::Str(src[s..i].to_owned()));
                i += 1;
            } else {
                for op in OPS {
                    if src[i..].starts_with(op) {
                        out.push(Tok::Op(op));
                        i += op.len();
                        continue 'outer;
                    }
                }
                panic!("rhai_lite cannot lex {src:?} at {i}");
            }
        }
        out
    }

    #[derive(Debug, Clone, PartialEq)]
    enum V {
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        Unit,
    }

    struct P<'a> {
        toks: Vec<Tok>,
        at: usize,
        vars: &'a HashMap<String, bool>,
        facts: &'a Map<String, Value>,
    }

    type R = Result<V, String>;

    /// Integer facts of the order; every other number is a float in `order`.
    const INT_FIELDS: &[&str] = &[
        "quantity",
        "processing_time_ms",
        "automation_score",
        "flow_progress",
    ];

    impl P<'_> {
        fn peek(&self) -> Option<&Tok> {
            self.toks.get(self.at)
        }
        fn eat(&mut self, op: &str) -> bool {
            if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
                self.at += 1;
                true
            } else {
                false
            }
        }
        fn want_bool(v: V) -> Result<bool, String> {
            match v {
                V::Bool(b) => Ok(b),
                other => Err(format!("not a bool: {other:?}")),
            }
        }
        // Parsing and evaluation are fused; a short-circuited operand is
        // parsed with `live = false`, which checks syntax only.
        fn or(&mut self, live: bool) -> R {
            let mut v = self.and(live)?;
            while self.eat("||") {
                let l = if live { Self::want_bool(v)? } else { false };
                let r = self.and(live && !l)?;
                v = V::Bool(l || (live && Self::want_bool(r)?));
            }
            Ok(v)
        }
        fn and(&mut self, live: bool) -> R {
            let mut v = self.cmp(live)?;
            while self.eat("&&") {
                let l = if live { Self::want_bool(v)? } else { false };
                let r = self.cmp(live && l)?;
                v = V::Bool(live && l && Self::want_bool(r)?);
            }
            Ok(v)
        }
        fn cmp(&mut self, live: bool) -> R {
            let l = self.add(live)?;
            for op in ["==", "!=", ">=", "<=", ">", "<"] {
                if self.eat(op) {
                    let r = self.add(live)?;
                    if !live {
                        return Ok(V::Unit);
                    }
                    return compare(op, &l, &r);
                }
            }
            Ok(l)
        }
        fn add(&mut self, live: bool) -> R {
            let mut v = self.mul(live)?;
            loop {
                let op = if self.eat("+") {
                    "+"
                } else if self.eat("-") {
                    "-"
                } else {
                    return Ok(v);
                };
                let r = self.mul(live)?;
                if live {
                    v = arith(op, &v, &r)?;
                }
            }
        }
        fn mul(&mut self, live: bool) -> R {
            let mut v = self.unary(live)?;
            loop {
                let op = if self.eat("*") {
                    "*"
                } else if self.eat("/") {
                    "/"
                } else {
                    return Ok(v);
                };
                let r = self.unary(live)?;
                if live {
                    v = arith(op, &v, &r)?;
                }
            }
        }
        fn unary(&mut self, live: bool) -> R {
            if self.eat("!") {
                let v = self.unary(live)?;
                return if live {
                    Ok(V::Bool(!Self::want_bool(v)?))
                } else {
                    Ok(V::Unit)
                };
            }
            if self.eat("(") {
                let v = self.or(live)?;
                assert!(self.eat(")"), "rhai_lite: missing )");
                return Ok(v);
            }
            let tok = self
                .toks
                .get(self.at)
                .cloned()
                .expect("rhai_lite: unexpected end");
            self.at += 1;
            Ok(match tok {
                Tok::Int(i) => V::Int(i),
                Tok::Float(f) => V::Float(f),
                Tok::Str(s) => V::Str(s),
                Tok::Ident(id) if id == "true" => V::Bool(true),
                Tok::Ident(id) if id == "false" => V::Bool(false),
                Tok::Ident(id) => match id.strip_prefix("order.") {
                    Some(field) => match self.facts.get(field) {
                        None | Some(Value::Null) => V::Unit,
                        Some(Value::Bool(b)) => V::Bool(*b),
                        Some(Value::String(s)) => V::Str(s.clone()),
                        Some(Value::Number(n)) if INT_FIELDS.contains(&field) => {
                            V::Int(n.as_i64().unwrap())
                        }
                        Some(Value::Number(n)) => V::Float(n.as_f64().unwrap()),
                        Some(other) => panic!("rhai_lite: unsupported order.{field} = {other}"),
                    },
                    None => V::Bool(
                        *self
                            .vars
                            .get(&id)
                            .unwrap_or_else(|| panic!("rhai_lite: unknown variable {id}")),
                    ),
                },
                Tok::Op(o) => panic!("rhai_lite: unexpected {o}"),
            })
        }
    }

    fn compare(op: &str, l: &V, r: &V) -> R {
        use std::cmp::Ordering;
        let ord: Option<Ordering> = match (l, r) {
            (V::Int(a), V::Int(b)) => Some(a.cmp(b)),
            (V::Float(a), V::Float(b)) => a.partial_cmp(b),
            (V::Int(a), V::Float(b)) => (*a as f64).partial_cmp(b),
            (V::Float(a), V::Int(b)) => a.partial_cmp(&(*b as f64)),
            (V::Str(a), V::Str(b)) => Some(a.cmp(b)),
            (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
            (V::Unit, V::Unit) => return Ok(V::Bool(op == "==")),
            // Values of different, not both numeric, types: only `!=` holds
            // (Rhai's built-in comparison of mismatched types).
            _ => return Ok(V::Bool(op == "!=")),
        };
        Ok(V::Bool(match (op, ord) {
            (_, None) => op == "!=",
            ("==", Some(o)) => o == Ordering::Equal,
            ("!=", Some(o)) => o != Ordering::Equal,
            (">", Some(o)) => o == Ordering::Greater,
            (">=", Some(o)) => o != Ordering::Less,
            ("<", Some(o)) => o == Ordering::Less,
            (_, Some(o)) => o != Ordering::Greater,
        }))
    }

    fn arith(op: &str, l: &V, r: &V) -> R {
        let (V::Int(a), V::Int(b)) = (l, r) else {
            return Err(format!("arithmetic on {l:?} {op} {r:?}"));
        };
        match op {
            "+" => a.checked_add(*b),
            "-" => a.checked_sub(*b),
            "*" => a.checked_mul(*b),
            _ => a.checked_div(*b),
        }
        .map(V::Int)
        .ok_or_else(|| format!("arithmetic error: {a} {op} {b}"))
    }

    /// Evaluates `src`; `Err` where Rhai errors at run time (or returns a non-bool).
    pub fn eval(
        src: &str,
        vars: &HashMap<String, bool>,
        facts: &Map<String, Value>,
    ) -> Result<bool, String> {
        let mut p = P {
            toks: lex(src),
            at: 0,
            vars,
            facts,
        };
        let v = p.or(true)?;
        assert_eq!(p.at, p.toks.len(), "rhai_lite: trailing tokens in {src:?}");
        P::want_bool(v)
    }
}

// ---------------------------------------------------------------------------
// Rendering a generated pack to YAML.
// ---------------------------------------------------------------------------

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn render_pack(rules: &[RRule]) -> String {
    let mut s = String::from("rules:\n");
    for r in rules {
        let _ = writeln!(s, "  - id: {}", q(&r.id));
        let _ = writeln!(s, "    name: {}", q(&format!("Rule {}", r.id)));
        s.push_str("    category: priority_classification\n");
        let _ = writeln!(s, "    priority: {}", r.priority);
        if !r.enabled {
            s.push_str("    enabled: false\n");
        }
        if let Some(m) = r.max_per_hour {
            let _ = writeln!(s, "    max_executions_per_hour: {m}");
        }
        if let Some(f) = &r.valid_from {
            let _ = writeln!(s, "    valid_from: {f}");
        }
        if let Some(u) = &r.valid_until {
            let _ = writeln!(s, "    valid_until: {u}");
        }
        match &r.logic {
            Logic::And => {
                if r.priority % 2 == 0 {
                    s.push_str("    condition_logic: AND\n");
                }
            }
            Logic::Or => s.push_str("    condition_logic: OR\n"),
            Logic::Custom(src) => {
                s.push_str("    condition_logic: CUSTOM\n");
                let _ = writeln!(s, "    custom_logic: {}", q(src));
            }
        }
        s.push_str("    conditions:\n");
        for c in &r.conds {
            let _ = writeln!(s, "      - field: {}", c.field);
            let _ = writeln!(s, "        operator: {}", c.op);
            if let Some(v) = &c.value {
                let _ = writeln!(s, "        value: {v}");
            }
            if let Some(w) = &c.window {
                let _ = writeln!(s, "        time_window: {w}");
            }
            if let Some(n) = &c.name {
                let _ = writeln!(s, "        name: {n}");
            }
        }
        s.push_str("    actions:\n");
        for a in &r.actions {
            let _ = writeln!(s, "      - type: {}", a.kind);
            let mut params = Map::new();
            if let Some(p) = &a.new_priority {
                params.insert("new_priority".into(), json!(p));
            }
            if let Some(i) = &a.new_impact {
                params.insert("new_impact".into(), json!(i));
            }
            if !params.is_empty() {
                let _ = writeln!(s, "        parameters: {}", Value::Object(params));
            }
        }
    }
    s
}

/// The reference's view of a loaded pack (for the shipped pack, whose CUSTOM
/// logic `rhai_lite` interprets).
fn rules_from_pack(pack: &RulePack) -> Vec<RRule> {
    pack.rules()
        .iter()
        .map(|r| RRule {
            id: r.id.clone(),
            priority: i64::from(r.priority),
            enabled: r.enabled,
            max_per_hour: r.max_executions_per_hour,
            valid_from: r.valid_from.map(fmt_time),
            valid_until: r.valid_until.map(fmt_time),
            logic: match r.condition_logic {
                ConditionLogic::And => Logic::And,
                ConditionLogic::Or => Logic::Or,
                ConditionLogic::Custom => Logic::Custom(r.custom_logic.clone().unwrap()),
            },
            conds: r
                .conditions
                .iter()
                .map(|c| RCond {
                    name: c.name.clone(),
                    field: c.field.name().to_owned(),
                    op: c.operator.as_str().to_owned(),
                    value: Some(c.value.clone()),
                    window: c.time_window_text.clone(),
                })
                .collect(),
            actions: r
                .actions
                .iter()
                .map(|a| {
                    let esc = a.kind.as_str() == "escalate_priority";
                    let param = |k: &str| {
                        esc.then(|| {
                            a.parameters
                                .get(k)
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                        })
                        .flatten()
                    };
                    RAction {
                        kind: a.kind.as_str().to_owned(),
                        new_priority: param("new_priority"),
                        new_impact: param("new_impact"),
                    }
                })
                .collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Generators.
// ---------------------------------------------------------------------------

const BASE: &str = "2025-06-12T08:00:00Z";
const PRODUCTS: &[&str] = &["p1", "p2", "p3"];
const CUSTOMERS: &[&str] = &["@a", "@b", "@c", "@d"];
const TIERS: &[&str] = &["vip", "regular", "new"];
const PRIORITIES: &[&str] = &["high", "urgent", "standard", "automated"];
const IMPACTS: &[&str] = &["VIRAL", "HIGH", "MED", "AUTO"];
const ZONES: &[&str] = &["US-EAST", "US-WEST", "CA", "UK"];
const CREATOR_TIERS: &[&str] = &["gold", "silver", "Gold", ""];
const VIRAL_TYPES: &[&str] = &[
    "content_spike",
    "hashtag_trending",
    "influencer_mention",
    "flash_sale",
];
const WINDOW_FIELDS: &[&str] = &["product_orders", "customer_orders", "product_units"];
const FIELDS: &[&str] = &[
    "quantity",
    "price",
    "order_value",
    "customer_tier",
    "shipping_zone",
    "product_id",
    "customer_handle",
    "orders_per_hour_current",
    "velocity_multiplier",
    "viral_indicator_types",
    "hours_until_deadline",
    "minutes_since_created",
    "user.creator_tier",
    "user",
    "created_at",
    "deadline",
    "priority",
    "impact",
    "current_state",
    "automation_status",
    "flow_progress",
    "customer_id",
    "viral_indicators",
    "updated_at",
    "product_orders",
    "customer_orders",
    "product_units",
    "product_orders",
    "customer_orders",
    "product_units",
];
const OPS: &[&str] = &[
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equal",
    "less_than",
    "less_than_or_equal",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "exists",
];
const OTHER_ACTIONS: &[&str] = &[
    "validate_address",
    "log_analytics_event",
    "enable_fast_track",
    "send_customer_notification",
    "escalate_to_manual",
];

fn base_time() -> DateTime<Utc> {
    parse_time(BASE)
}

fn strs(list: &[&str]) -> Vec<Value> {
    list.iter().map(|s| json!(s)).collect()
}

fn num_text(text: &str) -> Value {
    Value::Number(serde_json::from_str(text).unwrap())
}

/// Strings a condition on `field` may compare with (valid enum spellings only).
fn strings_for(field: &str) -> Vec<Value> {
    let times = || {
        let mut v: Vec<Value> = [0, 5, 10, 30, 60, 61, 90, 120]
            .iter()
            .map(|m| json!(fmt_time(base_time() + TimeDelta::minutes(*m))))
            .collect();
        v.push(json!("2025-06-12T08:00:00+00:00")); // not the canonical form
        v
    };
    match field {
        "customer_tier" => strs(TIERS),
        "priority" => strs(PRIORITIES),
        "impact" => strs(IMPACTS),
        "shipping_zone" => strs(&["US-EAST", "US-WEST", "CA", "UK", "us-east", ""]),
        "product_id" => strs(&["p1", "p2", "p3", "P1"]),
        "customer_handle" => strs(&["@a", "@b", "@c", "@d"]),
        "user.creator_tier" => strs(CREATOR_TIERS),
        "viral_indicator_types" => strs(VIRAL_TYPES),
        "created_at" | "deadline" | "updated_at" => times(),
        "automation_status" => strs(&["Processing", "Shipped", "Manual Review"]),
        "current_state" => strs(&["received", "validated", "Received"]),
        "user" => strs(&["u1", "gold"]),
        _ => strs(&["1", "19.99", "abc", ""]),
    }
}

/// Substrings for `contains` (any string is valid, except on `viral_indicator_types`).
fn fragments_for(field: &str) -> Vec<Value> {
    match field {
        "customer_tier" => strs(&["ip", "reg", "new", "VIP", ""]),
        "priority" | "impact" => strs(&["high", "HIGH", "ur", "V", "A"]),
        "shipping_zone" => strs(&["US", "EAST", "-", "us", "CA", ""]),
        "product_id" => strs(&["p", "1", "p2", "P"]),
        "customer_handle" => strs(&["@", "a", "@b", "d"]),
        "user.creator_tier" => strs(&["old", "G", "gold", ""]),
        "viral_indicator_types" => strs(VIRAL_TYPES),
        "created_at" | "deadline" | "updated_at" => strs(&[
            "2025-06-12",
            "T08:",
            "T09",
            "Z",
            ":00:00",
            "+00:00",
            ".5",
            "0Z",
        ]),
        "automation_status" | "current_state" => strs(&["Process", "rec", "ing", " "]),
        _ => strs(&["1", "a", ""]),
    }
}

/// Numbers worth comparing `field` with: ints and floats, near its values.
fn number_for(field: &'static str) -> BoxedStrategy<Value> {
    let special: Vec<Value> = match field {
        "quantity" => vec![
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(6),
            json!(20),
            num_text("2.0"),
            num_text("2.5"),
        ],
        "price" | "order_value" => vec![
            json!(0),
            num_text("19.99"),
            json!(20),
            num_text("20.0"),
            num_text("20.00"),
            json!(100),
            num_text("250.5"),
        ],
        "orders_per_hour_current" => vec![
            json!(0),
            json!(10),
            json!(40),
            num_text("40.5"),
            num_text("0.0"),
        ],
        "velocity_multiplier" => vec![
            json!(0),
            json!(1),
            num_text("1.0"),
            json!(2),
            num_text("2.5"),
        ],
        "hours_until_deadline" => vec![
            json!(-1),
            json!(0),
            num_text("0.5"),
            json!(12),
            json!(24),
            num_text("-0.25"),
        ],
        "minutes_since_created" => vec![
            json!(0),
            json!(60),
            json!(1440),
            num_text("0.0"),
            json!(5),
            num_text("10.5"),
            json!(20),
        ],
        "product_orders" | "customer_orders" | "product_units" => {
            vec![
                json!(0),
                json!(1),
                json!(2),
                json!(3),
                json!(4),
                json!(6),
                num_text("2.0"),
                num_text("2.5"),
            ]
        }
        _ => vec![json!(0), json!(1), num_text("19.99")],
    };
    prop_oneof![
        4 => select(special),
        1 => (-50i64..300).prop_map(Value::from),
        1 => (-5000i64..30000).prop_map(|c| num_text(&cents_text(c))),
    ]
    .boxed()
}

/// `-0.05` for -5 cents, `19.99` for 1999.
fn cents_text(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

fn scalar_for(field: &'static str) -> BoxedStrategy<Value> {
    prop_oneof![
        3 => select(strings_for(field)),
        3 => number_for(field),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
    .boxed()
}

fn type_list() -> BoxedStrategy<Value> {
    prop::collection::vec(select(strs(VIRAL_TYPES)), 0..3)
        .prop_map(Value::Array)
        .boxed()
}

fn user_object() -> BoxedStrategy<Value> {
    (select(CREATOR_TIERS), any::<bool>())
        .prop_map(|(tier, full)| {
            if full {
                json!({"id": "u1", "email": "c@x.io", "creator_tier": tier})
            } else {
                json!({"id": "u1", "creator_tier": tier})
            }
        })
        .boxed()
}

/// An element of an `in` / `not_in` list.
fn list_elem(field: &'static str) -> BoxedStrategy<Value> {
    match field {
        "viral_indicator_types" | "viral_indicators" => {
            prop_oneof![3 => type_list(), 1 => scalar_for(field), 1 => Just(Value::Null)].boxed()
        }
        "user" => prop_oneof![2 => user_object(), 1 => scalar_for(field)].boxed(),
        _ => prop_oneof![8 => scalar_for(field), 1 => Just(Value::Null)].boxed(),
    }
}

fn value_for(field: &'static str, op: &'static str) -> BoxedStrategy<Option<Value>> {
    match op {
        "exists" => prop_oneof![Just(None), scalar_for(field).prop_map(Some)].boxed(),
        "greater_than" | "greater_than_or_equal" | "less_than" | "less_than_or_equal" => {
            number_for(field).prop_map(Some).boxed()
        }
        "in" | "not_in" => prop::collection::vec(list_elem(field), 0..4)
            .prop_map(|v| Some(Value::Array(v)))
            .boxed(),
        "contains" | "not_contains" => match field {
            "viral_indicator_types" => prop_oneof![
                4 => select(strs(VIRAL_TYPES)),
                1 => number_for(field),
                1 => type_list(),
            ]
            .prop_map(Some)
            .boxed(),
            _ => prop_oneof![4 => select(fragments_for(field)), 1 => scalar_for(field)]
                .prop_map(Some)
                .boxed(),
        },
        _ => match field {
            "viral_indicator_types" | "viral_indicators" => {
                prop_oneof![3 => type_list(), 1 => scalar_for(field)]
                    .prop_map(Some)
                    .boxed()
            }
            "user" => prop_oneof![3 => user_object(), 1 => scalar_for(field)]
                .prop_map(Some)
                .boxed(),
            _ => prop_oneof![
                6 => scalar_for(field),
                1 => prop::collection::vec(list_elem(field), 0..2).prop_map(Value::Array),
            ]
            .prop_map(Some)
            .boxed(),
        },
    }
}

fn cond_strategy() -> impl Strategy<Value = RCond> {
    (
        select(FIELDS),
        select(OPS),
        select(&["30m", "1h", "90m", "24h"][..]),
    )
        .prop_flat_map(|(field, op, win)| {
            value_for(field, op).prop_map(move |value| RCond {
                name: None,
                field: field.to_owned(),
                op: op.to_owned(),
                value,
                window: WINDOW_FIELDS.contains(&field).then(|| win.to_owned()),
            })
        })
}

/// A CUSTOM expression over conditions `k % n` (by `c{k}` or by name).
#[derive(Debug, Clone)]
enum Ex {
    Cond(usize, bool),
    QtyGt(i64),
    QtyGe(i64),
    TierIs(usize),
    PriceGe(u32),
    DivByQtyMinusOne,
    /// `order.hours_until_deadline < h` (`()` when there is no deadline).
    DeadlineBelow(i64),
    /// `order.shipping_zone == / != "Z"` (`()` when there is no zone).
    ZoneIs(usize, bool),
    Lit(bool),
    Not(Box<Ex>),
    And(Box<Ex>, Box<Ex>),
    Or(Box<Ex>, Box<Ex>),
    /// A non-bool result: the rule errors.
    NonBool,
}

fn ex_strategy() -> impl Strategy<Value = Ex> {
    let leaf = prop_oneof![
        8 => (0usize..4, any::<bool>()).prop_map(|(k, by_name)| Ex::Cond(k, by_name)),
        1 => (0i64..5).prop_map(Ex::QtyGt),
        1 => (1i64..4).prop_map(Ex::QtyGe),
        1 => (0usize..3).prop_map(Ex::TierIs),
        1 => select(vec![0u32, 50, 100, 250]).prop_map(Ex::PriceGe),
        1 => Just(Ex::DivByQtyMinusOne),
        1 => select(vec![0i64, 1, 12]).prop_map(Ex::DeadlineBelow),
        1 => (0usize..ZONES.len(), any::<bool>()).prop_map(|(z, eq)| Ex::ZoneIs(z, eq)),
        1 => any::<bool>().prop_map(Ex::Lit),
    ];
    let tree = leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            1 => inner.clone().prop_map(|e| Ex::Not(Box::new(e))),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| Ex::And(Box::new(a), Box::new(b))),
            2 => (inner.clone(), inner).prop_map(|(a, b)| Ex::Or(Box::new(a), Box::new(b))),
        ]
    });
    prop_oneof![30 => tree, 1 => Just(Ex::NonBool)]
}

fn render_ex(e: &Ex, conds: &[RCond]) -> String {
    match e {
        Ex::Cond(k, by_name) => {
            let i = k % conds.len();
            match (&conds[i].name, by_name) {
                (Some(n), true) => n.clone(),
                _ => format!("c{i}"),
            }
        }
        Ex::QtyGt(k) => format!("order.quantity > {k}"),
        Ex::QtyGe(k) => format!("order.quantity >= {k}"),
        Ex::TierIs(t) => format!("order.customer_tier == \"{}\"", TIERS[*t]),
        Ex::PriceGe(p) => format!("order.price >= {p}.0"),
        Ex::DivByQtyMinusOne => "order.quantity / (order.quantity - 1) > 0".to_owned(),
        Ex::DeadlineBelow(h) => format!("order.hours_until_deadline < {h}.0"),
        Ex::ZoneIs(z, eq) => format!(
            "order.shipping_zone {} \"{}\"",
            if *eq { "==" } else { "!=" },
            ZONES[*z]
        ),
        Ex::Lit(b) => b.to_string(),
        Ex::Not(x) => format!("!({})", render_ex(x, conds)),
        Ex::And(a, b) => format!("({}) && ({})", render_ex(a, conds), render_ex(b, conds)),
        Ex::Or(a, b) => format!("({}) || ({})", render_ex(a, conds), render_ex(b, conds)),
        Ex::NonBool => "order.quantity".to_owned(),
    }
}

fn action_strategy() -> impl Strategy<Value = RAction> {
    let esc = prop_oneof![
        (0usize..4).prop_map(|p| (Some(p), None)),
        (0usize..4).prop_map(|i| (None, Some(i))),
        (0usize..4, 0usize..4).prop_map(|(p, i)| (Some(p), Some(i))),
    ]
    .prop_map(|(p, i): (Option<usize>, Option<usize>)| RAction {
        kind: "escalate_priority".into(),
        new_priority: p.map(|p| PRIORITIES[p].to_owned()),
        new_impact: i.map(|i| IMPACTS[i].to_owned()),
    });
    let other = select(OTHER_ACTIONS).prop_map(|k| RAction {
        kind: k.to_owned(),
        new_priority: None,
        new_impact: None,
    });
    prop_oneof![3 => esc, 2 => other]
}

/// (valid_from, valid_until) as minutes after BASE.
fn validity_strategy() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    prop_oneof![
        6 => Just((None, None)),
        1 => (-60i64..240).prop_map(|f| (Some(f), None)),
        1 => (-60i64..300).prop_map(|u| (None, Some(u))),
        1 => (-60i64..240, 1i64..240).prop_map(|(f, len)| (Some(f), Some(f + len))),
    ]
}

fn rule_strategy() -> impl Strategy<Value = RRule> {
    rule_with(cond_strategy().boxed())
}

/// A rule whose conditions come from `cond`.
fn rule_with(cond: BoxedStrategy<RCond>) -> impl Strategy<Value = RRule> {
    (
        "[ab0_-]{1,3}",
        prop_oneof![Just(0i64), Just(50), Just(50), Just(100), 0i64..=100],
        prop::bool::weighted(0.85),
        prop::option::weighted(0.3, 1u32..=3),
        validity_strategy(),
        prop::collection::vec((cond, any::<bool>()), 1..=4),
        prop::collection::vec(action_strategy(), 1..=3),
        prop_oneof![4 => Just(0u8), 3 => Just(1u8), 3 => Just(2u8)],
        ex_strategy(),
    )
        .prop_map(
            |(id, priority, enabled, max_per_hour, (from, until), conds, actions, logic, ex)| {
                let at = |m: i64| fmt_time(base_time() + TimeDelta::minutes(m));
                let conds: Vec<RCond> = conds
                    .into_iter()
                    .enumerate()
                    .map(|(i, (mut c, named))| {
                        c.name = named.then(|| format!("nm{i}"));
                        c
                    })
                    .collect();
                let logic = match logic {
                    0 => Logic::And,
                    1 => Logic::Or,
                    _ => Logic::Custom(render_ex(&ex, &conds)),
                };
                RRule {
                    id,
                    priority,
                    enabled,
                    max_per_hour,
                    valid_from: from.map(at),
                    valid_until: until.map(at),
                    logic,
                    conds,
                    actions,
                }
            },
        )
}

fn pack_strategy() -> impl Strategy<Value = Vec<RRule>> {
    prop::collection::vec(rule_strategy(), 1..=12).prop_map(|mut rules| {
        // `x` is not in the random prefix's alphabet, so ids stay unique.
        for (i, r) in rules.iter_mut().enumerate() {
            r.id = format!("{}x{i}", r.id);
        }
        rules
    })
}

/// Fields the rule index covers (string equality / `in`, numeric comparisons).
const INDEXED_FIELDS: &[&str] = &[
    "product_id",
    "shipping_zone",
    "customer_handle",
    "customer_tier",
    "user.creator_tier",
    "price",
    "order_value",
    "quantity",
    "orders_per_hour_current",
    "velocity_multiplier",
    "hours_until_deadline",
    "minutes_since_created",
    "product_orders",
    "customer_orders",
    "product_units",
];

/// Many values for a string field: those orders hold and many they never do
/// (enum fields keep their valid spellings: others do not load).
fn many_strings_for(field: &str) -> Vec<Value> {
    let mut v = strings_for(field);
    let prefix = match field {
        "product_id" => "p",
        "shipping_zone" => "Z-",
        "customer_handle" => "@u",
        "user.creator_tier" => "tier",
        _ => return v,
    };
    v.extend((4..40).map(|i| json!(format!("{prefix}{i}"))));
    v
}

/// A condition of the kinds the index covers, over many values (one in
/// eight a negated string test, which it covers in AND rules only).
fn indexed_cond_strategy() -> BoxedStrategy<RCond> {
    (
        select(INDEXED_FIELDS),
        select(&["30m", "1h", "90m", "24h"][..]),
        0u8..16,
    )
        .prop_flat_map(|(field, win, pick)| {
            let numeric = !matches!(
                field,
                "product_id"
                    | "shipping_zone"
                    | "customer_handle"
                    | "customer_tier"
                    | "user.creator_tier"
            );
            let (op, value): (&'static str, BoxedStrategy<Value>) = if numeric {
                let op = [
                    "equals",
                    "greater_than",
                    "greater_than_or_equal",
                    "less_than",
                    "less_than_or_equal",
                    "not_equals",
                ][usize::from(pick) % 6];
                (op, number_for(field))
            } else {
                let values = many_strings_for(field);
                match pick {
                    0 => ("not_equals", select(values).boxed()),
                    1 => (
                        "not_in",
                        prop::collection::vec(select(values), 0..4)
                            .prop_map(Value::Array)
                            .boxed(),
                    ),
                    2..=7 => ("equals", select(values).boxed()),
                    _ => (
                        "in",
                        prop::collection::vec(select(values), 0..8)
                            .prop_map(Value::Array)
                            .boxed(),
                    ),
                }
            };
            value.prop_map(move |value| RCond {
                name: None,
                field: field.to_owned(),
                op: op.to_owned(),
                value: Some(value),
                window: WINDOW_FIELDS.contains(&field).then(|| win.to_owned()),
            })
        })
        .boxed()
}

/// A large pack where the index matters: mostly indexable conditions over
/// many values, some of any kind.
fn large_pack_strategy() -> impl Strategy<Value = Vec<RRule>> {
    let cond = prop_oneof![6 => indexed_cond_strategy(), 1 => cond_strategy().boxed()].boxed();
    prop::collection::vec(rule_with(cond), 40..=160).prop_map(|mut rules| {
        for (i, r) in rules.iter_mut().enumerate() {
            r.id = format!("{}x{i}", r.id);
        }
        rules
    })
}

#[derive(Debug, Clone)]
struct OrderSpec {
    delta_ms: i64,
    product: usize,
    customer: usize,
    tier: Option<usize>,
    quantity: u32,
    price_cents: u32,
    price_as_string: bool,
    /// None: absent; Some(None): null; Some(Some(i)): ZONES[i].
    zone: Option<Option<usize>>,
    rate_tenths: Option<u32>,
    velocity_tenths: Option<u32>,
    viral: Vec<usize>,
    deadline_min: Option<i64>,
    user: Option<(usize, bool)>,
    own_priority: Option<usize>,
    own_impact: Option<usize>,
    now_offset_s: Option<i64>,
}

fn order_spec_strategy() -> impl Strategy<Value = OrderSpec> {
    // Milliseconds after the newest order so far (negative: out of order).
    let delta = prop_oneof![
        2 => Just(0i64),
        8 => (1i64..=15).prop_map(|m| m * 60_000),
        2 => (1i64..600).prop_map(|s| s * 1000),
        1 => -1500i64..1500,
        2 => select(vec![1_800_000i64, 3_600_000, 5_400_000]),
        2 => (-20i64..=-1).prop_map(|m| m * 60_000),
        1 => (16i64..=90).prop_map(|m| m * 60_000),
    ];
    let quantity = prop_oneof![8 => 1u32..=6, 1 => 10u32..=40];
    let price = prop_oneof![
        4 => 0u32..30_000,
        1 => select(vec![0u32, 1999, 2000, 5000, 10000, 25050]),
    ];
    let zone = prop_oneof![
        2 => Just(None),
        1 => Just(Some(None)),
        4 => (0usize..ZONES.len()).prop_map(|z| Some(Some(z))),
    ];
    (
        (
            delta,
            0usize..PRODUCTS.len(),
            0usize..CUSTOMERS.len(),
            prop::option::of(0usize..3),
            quantity,
        ),
        (price, any::<bool>(), zone),
        (
            prop::option::weighted(0.5, prop_oneof![0u32..800, Just(400), Just(405)]),
            prop::option::weighted(0.5, prop_oneof![0u32..50, Just(10), Just(20), Just(25)]),
            prop::collection::vec(0usize..4, 0..3),
        ),
        (
            prop::option::weighted(0.5, prop_oneof![-300i64..3000, -30i64..=90]),
            prop::option::weighted(0.5, (0usize..CREATOR_TIERS.len(), any::<bool>())),
            prop::option::weighted(0.2, 0usize..4),
            prop::option::weighted(0.2, 0usize..4),
            prop::option::weighted(0.4, prop_oneof![Just(0i64), 0i64..=1200]),
        ),
    )
        .prop_map(
            |(
                (delta_ms, product, customer, tier, quantity),
                (price_cents, price_as_string, zone),
                (rate_tenths, velocity_tenths, viral),
                (deadline_min, user, own_priority, own_impact, now_offset_s),
            )| OrderSpec {
                delta_ms,
                product,
                customer,
                tier,
                quantity,
                price_cents,
                price_as_string,
                zone,
                rate_tenths,
                velocity_tenths,
                viral,
                deadline_min,
                user,
                own_priority,
                own_impact,
                now_offset_s,
            },
        )
}

fn tenths(t: u32) -> Value {
    num_text(&format!("{}.{}", t / 10, t % 10))
}

/// Builds the orders as JSON lines (parsed with `Order::from_json`) and their
/// evaluation times. `created_at` mostly increases; an order goes back at most
/// 20 minutes behind the newest one, and `now` is `created_at` plus the
/// stream's lag (if any) plus at most 20 minutes of jitter, so the clock
/// goes back at most 40 minutes: inside the engine's one-hour lateness allowance.
fn build_orders(
    specs: &[OrderSpec],
    lag_min: Option<i64>,
) -> Vec<(String, Order, Option<DateTime<Utc>>)> {
    let mut newest = base_time();
    let mut out = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let created = if i == 0 {
            newest
        } else {
            newest + TimeDelta::milliseconds(s.delta_ms)
        };
        newest = newest.max(created);
        let mut o = Map::new();
        o.insert("tiktok_order_id".into(), json!(format!("o{i}")));
        o.insert("customer_handle".into(), json!(CUSTOMERS[s.customer]));
        o.insert("product_name".into(), json!("Product"));
        o.insert("product_id".into(), json!(PRODUCTS[s.product]));
        o.insert("quantity".into(), json!(s.quantity));
        let price = format!("{}.{:02}", s.price_cents / 100, s.price_cents % 100);
        o.insert(
            "price".into(),
            if s.price_as_string {
                json!(price)
            } else {
                num_text(&price)
            },
        );
        o.insert("created_at".into(), json!(fmt_time(created)));
        if let Some(t) = s.tier {
            o.insert("customer_tier".into(), json!(TIERS[t]));
        }
        match s.zone {
            None => {}
            Some(None) => {
                o.insert("shipping_zone".into(), Value::Null);
            }
            Some(Some(z)) => {
                o.insert("shipping_zone".into(), json!(ZONES[z]));
            }
        }
        if let Some(r) = s.rate_tenths {
            o.insert("orders_per_hour_current".into(), tenths(r));
        }
        if let Some(v) = s.velocity_tenths {
            o.insert("velocity_multiplier".into(), tenths(v));
        }
        if !s.viral.is_empty() {
            let list: Vec<Value> = s
                .viral
                .iter()
                .map(|k| {
                    json!({"type": VIRAL_TYPES[*k], "source": "test", "confidence": 0.8,
                           "impact_multiplier": 2.5, "detected_at": fmt_time(created)})
                })
                .collect();
            o.insert("viral_indicators".into(), Value::Array(list));
        }
        if let Some(d) = s.deadline_min {
            o.insert(
                "deadline".into(),
                json!(fmt_time(created + TimeDelta::minutes(d))),
            );
        }
        if let Some((t, with_email)) = s.user {
            let mut u = json!({"id": "u1", "creator_tier": CREATOR_TIERS[t]});
            if with_email {
                u["email"] = json!("c@x.io");
            }
            o.insert("user".into(), u);
        }
        if let Some(p) = s.own_priority {
            o.insert("priority".into(), json!(PRIORITIES[p]));
        }
        if let Some(p) = s.own_impact {
            o.insert("impact".into(), json!(IMPACTS[p]));
        }
        let text = Value::Object(o).to_string();
        let order = Order::from_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let now = match (lag_min, s.now_offset_s) {
            (None, None) => None,
            (lag, jitter) => Some(
                created
                    + TimeDelta::minutes(lag.unwrap_or(0))
                    + TimeDelta::seconds(jitter.unwrap_or(0)),
            ),
        };
        out.push((text, order, now));
    }
    out
}

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_agrees_with_reference(
        rules in pack_strategy(),
        specs in prop::collection::vec(order_spec_strategy(), 1..=30),
        lag_min in prop::option::weighted(0.4, prop_oneof![0i64..=90, 60i64..=1500]),
    ) {
        agree(&rules, &specs, lag_min)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases().div_ceil(8),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Large packs over many values, where the rule index skips most rules.
    #[test]
    fn engine_agrees_with_reference_on_large_packs(
        rules in large_pack_strategy(),
        specs in prop::collection::vec(order_spec_strategy(), 1..=30),
        lag_min in prop::option::weighted(0.4, prop_oneof![0i64..=90, 60i64..=1500]),
    ) {
        agree(&rules, &specs, lag_min)?;
    }
}

/// Loads `rules` and checks the engine against the reference on the orders of `specs`.
fn agree(rules: &[RRule], specs: &[OrderSpec], lag_min: Option<i64>) -> Result<(), TestCaseError> {
    let yaml = render_pack(rules);
    let pack = match PackLoader::new().load_str("gen.yaml", &yaml) {
        Ok(p) => p,
        Err(e) => panic!("a generated pack must load:\n{e}\n---\n{yaml}"),
    };
    // The loader kept what was written.
    prop_assert_eq!(pack.rules().len(), rules.len());
    for r in rules {
        let loaded = pack.rule(&r.id).expect("every rule loads");
        prop_assert_eq!(loaded.conditions.len(), r.conds.len());
        for (lc, gc) in loaded.conditions.iter().zip(&r.conds) {
            prop_assert_eq!(lc.field.name(), gc.field.as_str());
            prop_assert_eq!(lc.operator.as_str(), gc.op.as_str());
            let want = gc.value.clone().unwrap_or(Value::Null);
            prop_assert!(
                jeq(&lc.value, &want),
                "value {} loaded as {}",
                want,
                lc.value
            );
        }
    }

    let mut engine = RuleEngine::new(Arc::new(pack));
    let mut reference = Reference::new(rules.to_vec());
    let mut decision = Decision::default();
    let orders = build_orders(specs, lag_min);
    // Per rule id, what the statistics must say: (executions, successes, latest time).
    let mut want_stats: HashMap<&str, (u64, u64, Option<DateTime<Utc>>)> = rules
        .iter()
        .map(|r| (r.id.as_str(), (0, 0, None)))
        .collect();
    for (i, (text, order, now)) in orders.iter().enumerate() {
        engine.evaluate_into(order, *now, &mut decision);
        let got = outcome_of(&decision.report(engine.pack(), &order.tiktok_order_id));
        let want = reference.evaluate(order, *now);
        stats::record(&want);
        let t = now.unwrap_or(order.created_at);
        for (id, success) in want
            .matched
            .iter()
            .map(|id| (id, true))
            .chain(want.errors.iter().map(|id| (id, false)))
        {
            if let Some(s) = want_stats.get_mut(id.as_str()) {
                s.0 += 1;
                s.1 += u64::from(success);
                s.2 = s.2.max(Some(t));
            }
        }
        prop_assert_eq!(
            &got,
            &want,
            "order #{} {} (now {:?}) disagrees\n--- pack ---\n{}--- orders ---\n{}",
            i,
            text,
            now,
            yaml,
            orders[..=i]
                .iter()
                .map(|(t, _, n)| format!("{t}  now={n:?}\n"))
                .collect::<String>()
        );
    }
    // Statistics: every fired or errored evaluation counted, the latest time kept.
    for st in engine.stats() {
        let (executions, successes, last) = want_stats[st.rule.as_str()];
        prop_assert_eq!(
            (st.execution_count, st.success_count, st.last_executed_at),
            (executions, successes, last),
            "statistics of {}\n--- pack ---\n{}",
            st.rule,
            yaml
        );
    }
    Ok(())
}

/// Coverage counters, printed when `RULES_PROPS_STATS` is set
/// (`RULES_PROPS_STATS=1 cargo test --test rules_props -- --nocapture`).
mod stats {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    static EVALS: AtomicUsize = AtomicUsize::new(0);
    static MATCHED: AtomicUsize = AtomicUsize::new(0);
    static WITH_MATCH: AtomicUsize = AtomicUsize::new(0);
    static RATE_LIMITED: AtomicUsize = AtomicUsize::new(0);
    static ERRORS: AtomicUsize = AtomicUsize::new(0);
    static ESCALATED: AtomicUsize = AtomicUsize::new(0);

    pub fn record(o: &super::Outcome) {
        EVALS.fetch_add(1, Relaxed);
        MATCHED.fetch_add(o.matched.len(), Relaxed);
        WITH_MATCH.fetch_add(usize::from(!o.matched.is_empty()), Relaxed);
        RATE_LIMITED.fetch_add(o.rate_limited.len(), Relaxed);
        ERRORS.fetch_add(o.errors.len(), Relaxed);
        ESCALATED.fetch_add(
            usize::from(o.priority != "standard" || o.impact != "MED"),
            Relaxed,
        );
        let n = EVALS.load(Relaxed);
        if std::env::var_os("RULES_PROPS_STATS").is_some() && n.is_multiple_of(1000) {
            eprintln!(
                "evals {n}: with a match {}, matches {}, rate-limited {}, errors {}, priority/impact not default {}",
                WITH_MATCH.load(Relaxed),
                MATCHED.load(Relaxed),
                RATE_LIMITED.load(Relaxed),
                ERRORS.load(Relaxed),
                ESCALATED.load(Relaxed)
            );
        }
    }
}

const SAMPLE_ORDERS: &str = include_str!("../examples/orders.jsonl");

fn sample_orders() -> Vec<Order> {
    SAMPLE_ORDERS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Order::from_json(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn shipped_pack_loads_without_warnings() {
    let pack = RulePack::shipped();
    assert!(
        pack.warnings().is_empty(),
        "warnings: {:?}",
        pack.warnings()
    );
    assert!(pack.rules().len() >= 10);
    // The shipped pack is sorted priority desc, id asc, and uses CUSTOM logic
    // only in forms the reference interprets.
    for r in pack.rules() {
        if let Some(src) = &r.custom_logic {
            let vars: HashMap<String, bool> = r
                .conditions
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    let mut v = vec![(format!("c{i}"), false)];
                    v.extend(c.name.clone().map(|n| (n, false)));
                    v
                })
                .collect();
            let facts = facts_of(&sample_orders()[0], sample_orders()[0].created_at);
            assert!(
                rhai_lite::eval(src, &vars, &facts).is_ok(),
                "{}: {src}",
                r.id
            );
        }
    }
}

/// Evaluates the sample batch with the shipped pack at `now(order)` and
/// compares every decision with the reference; returns the reference outcomes.
fn compare_shipped(now: impl Fn(&Order) -> Option<DateTime<Utc>>) -> Vec<Outcome> {
    let pack = Arc::new(RulePack::shipped());
    let mut engine = RuleEngine::new(Arc::clone(&pack));
    let mut reference = Reference::new(rules_from_pack(&pack));
    let mut outcomes = Vec::new();
    for (i, order) in sample_orders().iter().enumerate() {
        let t = now(order);
        let decision = engine.evaluate(order, t);
        let got = outcome_of(&decision.report(engine.pack(), &order.tiktok_order_id));
        let want = reference.evaluate(order, t);
        assert_eq!(got, want, "line {} ({})", i + 1, order.tiktok_order_id);
        outcomes.push(want);
    }
    outcomes
}

#[test]
fn shipped_pack_on_sample_orders_matches_reference() {
    let outcomes = compare_shipped(|_| None);
    // As rules/README.md says: every enabled shipped rule fires on at least
    // one sample order, and the creator alert is rate-limited during the burst.
    let pack = RulePack::shipped();
    for r in pack.rules().iter().filter(|r| r.enabled) {
        assert!(
            outcomes.iter().any(|o| o.matched.contains(&r.id)),
            "rule {} never fires on the sample orders",
            r.id
        );
    }
    assert!(outcomes.iter().any(|o| {
        o.rate_limited
            .iter()
            .any(|r| r == "viral-spike-creator-alert")
    }));
    assert!(outcomes.iter().all(|o| o.errors.is_empty()));
}

#[test]
fn shipped_pack_on_sample_orders_later_clock_matches_reference() {
    // Evaluated 3.5 hours after each order was placed: deadlines are closer,
    // `minutes_since_created` is not 0, rate limits count at the later clock.
    compare_shipped(|o| Some(o.created_at + TimeDelta::minutes(210)));
}

#[test]
fn rhai_lite_follows_rhai_on_the_shapes_used() {
    let facts = facts_of(&sample_orders()[0], sample_orders()[0].created_at);
    let vars: HashMap<String, bool> = [("c0".to_owned(), true), ("c1".to_owned(), false)].into();
    let ok = |s: &str| rhai_lite::eval(s, &vars, &facts);
    assert_eq!(ok("c0 && (c1 || order.quantity > 0)"), Ok(true));
    assert_eq!(ok("!(c0) || c1"), Ok(false));
    assert_eq!(ok("order.customer_tier == \"regular\""), Ok(true));
    assert_eq!(ok("order.price >= 6.0"), Ok(true));
    // quantity is 1: division by zero errors, unless short-circuited.
    assert!(ok("order.quantity / (order.quantity - 1) > 0").is_err());
    assert_eq!(
        ok("c1 && (order.quantity / (order.quantity - 1) > 0)"),
        Ok(false)
    );
    assert!(ok("order.quantity").is_err());
}
