//! Operators and their semantics (rules.md, "Operators"), on typed facts.
//!
//! A condition's `value` is compiled once into an [`Operand`] that carries
//! every form a comparison may need (an integer, an exact decimal, a float,
//! a parsed time), so evaluation compares native values and never parses.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use super::facts::{Fact, format_time};

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// JSON equality (`1` equals `1.0`; no string/number or bool/number coercion).
    Equals,
    /// Present and not `equals`.
    NotEquals,
    /// Both numbers and `>`.
    GreaterThan,
    /// Both numbers and `>=`.
    GreaterThanOrEqual,
    /// Both numbers and `<`.
    LessThan,
    /// Both numbers and `<=`.
    LessThanOrEqual,
    /// `equals` some element of the list.
    In,
    /// `equals` no element of the list.
    NotIn,
    /// Substring of a string field, or element of a list field.
    Contains,
    /// A string or list field that does not `contain` the value.
    NotContains,
    /// Present and not null.
    Exists,
}

impl Operator {
    /// Every operator.
    pub const ALL: &'static [Operator] = &[
        Operator::Equals,
        Operator::NotEquals,
        Operator::GreaterThan,
        Operator::GreaterThanOrEqual,
        Operator::LessThan,
        Operator::LessThanOrEqual,
        Operator::In,
        Operator::NotIn,
        Operator::Contains,
        Operator::NotContains,
        Operator::Exists,
    ];

    /// The operator's name in rule files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "equals",
            Operator::NotEquals => "not_equals",
            Operator::GreaterThan => "greater_than",
            Operator::GreaterThanOrEqual => "greater_than_or_equal",
            Operator::LessThan => "less_than",
            Operator::LessThanOrEqual => "less_than_or_equal",
            Operator::In => "in",
            Operator::NotIn => "not_in",
            Operator::Contains => "contains",
            Operator::NotContains => "not_contains",
            Operator::Exists => "exists",
        }
    }

    /// Parses an operator name.
    pub fn parse(name: &str) -> Option<Operator> {
        Operator::ALL.iter().copied().find(|o| o.as_str() == name)
    }

    /// The spellings, for messages and suggestions.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Operator::ALL.iter().map(|o| o.as_str())
    }

    /// Whether the operator compares numbers.
    pub const fn is_numeric(self) -> bool {
        matches!(
            self,
            Operator::GreaterThan
                | Operator::GreaterThanOrEqual
                | Operator::LessThan
                | Operator::LessThanOrEqual
        )
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number from a rule file, in every form a comparison needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Num {
    /// As a float (always present).
    pub f: f64,
    /// Exactly, when it fits a decimal.
    pub d: Option<Decimal>,
    /// As an integer, when it is one.
    pub i: Option<i64>,
}

impl Num {
    /// From the number's text as written.
    pub(crate) fn from_text(text: &str) -> Option<Num> {
        let f = text.parse::<f64>().ok()?;
        let i = text.parse::<i64>().ok();
        let d = Decimal::from_str(text)
            .ok()
            .or_else(|| Decimal::from_scientific(text).ok());
        Some(Num { f, d, i })
    }

    fn cmp_int(&self, v: i64) -> Option<Ordering> {
        match (self.i, self.d) {
            (Some(i), _) => Some(v.cmp(&i)),
            (None, Some(d)) => Some(Decimal::from(v).cmp(&d)),
            _ => (v as f64).partial_cmp(&self.f),
        }
    }

    fn cmp_dec(&self, v: Decimal) -> Option<Ordering> {
        match self.d {
            Some(d) => Some(v.cmp(&d)),
            None => v.to_f64()?.partial_cmp(&self.f),
        }
    }

    /// Compares a numeric fact with this number; `None` when the fact is not a number.
    #[inline]
    pub(crate) fn cmp_fact(&self, fact: &Fact<'_>) -> Option<Ordering> {
        match *fact {
            Fact::Int(v) => self.cmp_int(v),
            Fact::Decimal(v) => self.cmp_dec(v),
            Fact::Float(v) => v.partial_cmp(&self.f),
            _ => None,
        }
    }
}

/// A compiled condition value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    /// No value (`exists`).
    None,
    /// JSON null: equals nothing (a null field makes every condition false).
    Null,
    /// A boolean: equals nothing an order holds (the order has no boolean facts).
    Bool(bool),
    /// A number.
    Num(Num),
    /// A string, with its time if it is a time in the canonical form the order serializes to.
    Str(Box<str>, Option<DateTime<Utc>>),
    /// A list (`in`, `not_in`, or equality with a list fact).
    List(Vec<Operand>),
    /// An object: compared by JSON equality.
    Object(Value),
}

impl Operand {
    /// Compiles a JSON value.
    pub(crate) fn from_json(v: &Value) -> Operand {
        match v {
            Value::Null => Operand::Null,
            Value::Bool(b) => Operand::Bool(*b),
            Value::Number(n) => Num::from_text(&n.to_string()).map_or(Operand::Null, Operand::Num),
            Value::String(s) => {
                let time = DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
                    .filter(|t| format_time(*t) == *s);
                Operand::Str(s.as_str().into(), time)
            }
            Value::Array(items) => Operand::List(items.iter().map(Operand::from_json).collect()),
            Value::Object(_) => Operand::Object(v.clone()),
        }
    }
}

/// `equals` between a fact and a value.
#[inline]
pub(crate) fn equals(fact: &Fact<'_>, value: &Operand) -> bool {
    match (fact, value) {
        (Fact::Missing, _) => false,
        (Fact::Str(s), Operand::Str(v, _)) => *s == &**v,
        (Fact::Time(t), Operand::Str(_, Some(v))) => t == v,
        (Fact::Int(_) | Fact::Decimal(_) | Fact::Float(_), Operand::Num(n)) => {
            n.cmp_fact(fact) == Some(Ordering::Equal)
        }
        (Fact::IndicatorTypes(list), Operand::List(items)) => {
            list.len() == items.len()
                && list
                    .iter()
                    .zip(items)
                    .all(|(ind, v)| matches!(v, Operand::Str(s, _) if ind.kind.as_str() == &**s))
        }
        (Fact::Json(..), _) => json_equals(&fact.to_json(), &operand_json(value)),
        _ => false,
    }
}

/// `contains` between a fact and a value.
#[inline]
pub(crate) fn contains(fact: &Fact<'_>, value: &Operand) -> bool {
    match (fact, value) {
        (Fact::Str(s), Operand::Str(v, _)) => s.contains(&**v),
        (Fact::Time(t), Operand::Str(v, _)) => format_time(*t).contains(&**v),
        (Fact::IndicatorTypes(list), Operand::Str(v, _)) => {
            list.iter().any(|ind| ind.kind.as_str() == &**v)
        }
        (Fact::Json(..), _) => match (fact.to_json(), operand_json(value)) {
            (Value::Array(items), v) => items.iter().any(|i| json_equals(i, &v)),
            (Value::String(s), Value::String(v)) => s.contains(&v),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `not_contains` applies to the fact at all (a string or a list).
#[inline]
pub(crate) fn is_string_or_list(fact: &Fact<'_>) -> bool {
    match fact {
        Fact::Str(_) | Fact::Time(_) | Fact::IndicatorTypes(_) => true,
        Fact::Json(..) => matches!(fact.to_json(), Value::Array(_) | Value::String(_)),
        _ => false,
    }
}

/// Applies `op` to a fact: the semantics of rules.md, "Operators".
#[inline]
pub(crate) fn apply(op: Operator, fact: &Fact<'_>, value: &Operand) -> bool {
    if matches!(fact, Fact::Missing) {
        return false;
    }
    match op {
        Operator::Exists => true,
        Operator::Equals => equals(fact, value),
        Operator::NotEquals => !equals(fact, value),
        Operator::GreaterThan
        | Operator::GreaterThanOrEqual
        | Operator::LessThan
        | Operator::LessThanOrEqual => {
            let Operand::Num(n) = value else { return false };
            match n.cmp_fact(fact) {
                None => false,
                Some(ord) => match op {
                    Operator::GreaterThan => ord == Ordering::Greater,
                    Operator::GreaterThanOrEqual => ord != Ordering::Less,
                    Operator::LessThan => ord == Ordering::Less,
                    _ => ord != Ordering::Greater,
                },
            }
        }
        Operator::In => {
            matches!(value, Operand::List(items) if items.iter().any(|v| equals(fact, v)))
        }
        Operator::NotIn => {
            matches!(value, Operand::List(items) if !items.iter().any(|v| equals(fact, v)))
        }
        Operator::Contains => contains(fact, value),
        Operator::NotContains => is_string_or_list(fact) && !contains(fact, value),
    }
}

/// The operand back as JSON.
pub(crate) fn operand_json(v: &Operand) -> Value {
    match v {
        Operand::None | Operand::Null => Value::Null,
        Operand::Bool(b) => Value::Bool(*b),
        Operand::Num(n) => match (n.i, n.d) {
            (Some(i), _) => Value::from(i),
            (None, Some(d)) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
            _ => serde_json::Number::from_f64(n.f).map_or(Value::Null, Value::Number),
        },
        Operand::Str(s, _) => Value::String(s.to_string()),
        Operand::List(items) => Value::Array(items.iter().map(operand_json).collect()),
        Operand::Object(o) => o.clone(),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (
                Num::from_text(&x.to_string()),
                Num::from_text(&y.to_string()),
            ) {
                (Some(x), Some(y)) => match (x.d, y.d) {
                    (Some(p), Some(q)) => p == q,
                    _ => x.f == y.f,
                },
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equals(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equals(v, w)))
        }
        _ => a == b,
    }
}
