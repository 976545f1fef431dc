//! The `order` variable scripts see: a read-only map of the order's facts,
//! built per evaluation with only the facts the script names.

use chrono::{DateTime, Utc};
use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::CompileError;
use crate::diag::did_you_mean;
use crate::model::Order;
use crate::model::facts::{Fact, Field, FieldKind, format_time, read};

/// Which facts a script reads through `order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderAccess {
    /// Only these, each written as `order.<name>`.
    Fields(Vec<Field>),
    /// The script uses `order` some other way (indexing, passing it on): every fact.
    All,
}

/// The facts `order` exposes: stored and derived facts (not window facts,
/// which need a window: read those through a named condition).
fn exposed() -> impl Iterator<Item = Field> {
    Field::ALL
        .iter()
        .copied()
        .filter(|f| f.kind() != FieldKind::Window && !f.name().contains('.'))
}

/// Finds how a script uses `order`, refusing `order.<x>` for unknown `x`.
pub(super) fn scan(source: &str) -> Result<OrderAccess, CompileError> {
    let b = source.as_bytes();
    let mut fields = Vec::new();
    let mut all = false;
    let (mut i, mut line, mut line_start) = (0usize, 1u32, 0usize);
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            b'"' | b'`' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let preceded_by_dot = source[..start].trim_end().ends_with('.');
                if &source[start..i] != "order" || preceded_by_dot {
                    continue;
                }
                let rest = source[i..].trim_start();
                let after = rest.strip_prefix("?.").or_else(|| rest.strip_prefix('.'));
                let name: Option<&str> = after.map(|a| {
                    let a = a.trim_start();
                    &a[..a.bytes().position(|c| !ident(c)).unwrap_or(a.len())]
                });
                match name {
                    Some(name) if !name.is_empty() => {
                        match Field::lookup(name).filter(|f| exposed().any(|e| e == *f)) {
                            Some(f) => fields.push(f),
                            None => {
                                let hint = if Field::lookup(name)
                                    .is_some_and(|f| f.kind() == FieldKind::Window)
                                {
                                    "; window facts need a time_window: read them through a named condition".to_owned()
                                } else {
                                    did_you_mean(name, exposed().map(Field::name))
                                };
                                return Err(CompileError {
                                    message: format!("unknown order field `{name}`{hint}"),
                                    line: Some(line),
                                    col: Some((start - line_start) as u32 + 1),
                                });
                            }
                        }
                    }
                    _ => all = true,
                }
            }
            _ => i += 1,
        }
    }
    if all {
        return Ok(OrderAccess::All);
    }
    fields.sort_by_key(|f| f.name());
    fields.dedup();
    Ok(OrderAccess::Fields(fields))
}

/// Builds the `order` map for one evaluation at time `now`.
pub fn order_map(order: &Order, now: DateTime<Utc>, access: &OrderAccess) -> Map {
    let now_ms = now.timestamp_millis();
    let mut map = Map::new();
    let mut put = |f: Field| {
        map.insert(f.name().into(), to_dynamic(&read(order, f, now_ms)));
    };
    match access {
        OrderAccess::Fields(fields) => fields.iter().copied().for_each(&mut put),
        OrderAccess::All => exposed().for_each(put),
    }
    map
}

fn to_dynamic(fact: &Fact<'_>) -> Dynamic {
    match *fact {
        Fact::Missing => Dynamic::UNIT,
        Fact::Str(s) => Dynamic::from(s.to_owned()),
        Fact::Int(i) => Dynamic::from(i),
        Fact::Decimal(d) => {
            Dynamic::from(rust_decimal::prelude::ToPrimitive::to_f64(&d).unwrap_or(f64::NAN))
        }
        Fact::Float(f) => Dynamic::from(f),
        Fact::Time(t) => Dynamic::from(format_time(t)),
        Fact::IndicatorTypes(list) => Dynamic::from(
            list.iter()
                .map(|v| Dynamic::from(v.kind.as_str().to_owned()))
                .collect::<Array>(),
        ),
        Fact::Json(..) => json_to_dynamic(&fact.to_json()),
    }
}

fn json_to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(items) => Dynamic::from(items.iter().map(json_to_dynamic).collect::<Array>()),
        Value::Object(o) => Dynamic::from(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect::<Map>(),
        ),
    }
}
