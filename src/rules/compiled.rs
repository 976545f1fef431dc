//! The evaluation form of a condition: specialised by the fact's type and the
//! operator at load time, so evaluating it is a field read and one native
//! comparison. Anything without a specialisation (JSON-valued facts, time
//! facts, mismatched types) uses the generic path, with the same semantics.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use super::def::{Applicability, Condition, ConditionLogic};
use super::facts::{Fact, Field, read};
use super::ops::{Operand, Operator, apply};
use crate::model::{Impact, Order, Priority};

/// Per-order values every condition may need, computed once per evaluation.
pub(crate) struct Ctx<'a> {
    pub order: &'a Order,
    pub now_ms: i64,
    pub created_ms: i64,
    pub windows: &'a [i64],
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(order: &'a Order, now_ms: i64, windows: &'a [i64]) -> Self {
        Ctx {
            order,
            now_ms,
            created_ms: order.created_at.timestamp_millis(),
            windows,
        }
    }
}

/// What the evaluation loop reads of a rule, packed together (32 bytes) so
/// that scanning a large pack touches little memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HotRule {
    pub valid_from_ms: i64,
    pub valid_until_ms: i64,
    /// The rule's tests: `refs[start..end]` of the pack.
    pub start: u32,
    pub end: u32,
    /// `max_executions_per_hour`, 0 when unlimited.
    pub limit: u32,
    pub enabled: bool,
    pub logic: ConditionLogic,
    pub escalation: (Option<Priority>, Option<Impact>),
}

impl HotRule {
    #[inline(always)]
    pub(crate) fn applicability(&self, t_ms: i64) -> Applicability {
        Applicability::at(self.enabled, self.valid_from_ms, self.valid_until_ms, t_ms)
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn from_op(op: Operator) -> Option<Cmp> {
        Some(match op {
            Operator::Equals => Cmp::Eq,
            Operator::NotEquals => Cmp::Ne,
            Operator::GreaterThan => Cmp::Gt,
            Operator::GreaterThanOrEqual => Cmp::Ge,
            Operator::LessThan => Cmp::Lt,
            Operator::LessThanOrEqual => Cmp::Le,
            _ => return None,
        })
    }

    #[inline(always)]
    pub(crate) fn holds(self, o: Ordering) -> bool {
        match self {
            Cmp::Eq => o == Ordering::Equal,
            Cmp::Ne => o != Ordering::Equal,
            Cmp::Gt => o == Ordering::Greater,
            Cmp::Ge => o != Ordering::Less,
            Cmp::Lt => o == Ordering::Less,
            Cmp::Le => o != Ordering::Greater,
        }
    }
}

/// Integer facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntGet {
    Quantity,
    ProcessingTimeMs,
    AutomationScore,
    FlowProgress,
    Window(usize),
}

/// Decimal facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecGet {
    Price,
    OrdersPerHour,
    Velocity,
}

/// Float (derived) facts; `HoursUntilDeadline` and `ContentSpikeConfidence` may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FloatGet {
    MinutesSinceCreated,
    HoursUntilDeadline,
    ContentSpikeConfidence,
}

impl IntGet {
    /// The fact's value for the order of `cx`.
    #[inline(always)]
    pub(crate) fn value(self, cx: &Ctx<'_>) -> i64 {
        let o = cx.order;
        match self {
            IntGet::Quantity => i64::from(o.quantity),
            IntGet::ProcessingTimeMs => o.processing_time_ms as i64,
            IntGet::AutomationScore => i64::from(o.automation_score),
            IntGet::FlowProgress => i64::from(o.flow_progress),
            IntGet::Window(s) => cx.windows[s],
        }
    }
}

impl DecGet {
    /// The fact's value for `o`.
    #[inline(always)]
    pub(crate) fn value(self, o: &Order) -> Decimal {
        match self {
            DecGet::Price => o.price,
            DecGet::OrdersPerHour => o.orders_per_hour_current,
            DecGet::Velocity => o.velocity_multiplier,
        }
    }
}

impl FloatGet {
    /// The fact's value for the order of `cx` at its time; `None` when missing.
    #[inline(always)]
    pub(crate) fn value(self, cx: &Ctx<'_>) -> Option<f64> {
        let o = cx.order;
        match self {
            FloatGet::MinutesSinceCreated => Some((cx.now_ms - cx.created_ms) as f64 / 60_000.0),
            FloatGet::HoursUntilDeadline => o
                .deadline
                .map(|d| (d.timestamp_millis() - cx.now_ms) as f64 / 3_600_000.0),
            FloatGet::ContentSpikeConfidence => super::facts::content_spike_confidence(o),
        }
    }
}

/// A decimal operand, pre-scaled so that comparing with a decimal of scale
/// `s <= 8` whose scale is at least the operand's is one integer comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecRhs {
    d: Decimal,
    by_scale: [Option<i128>; 9],
}

impl DecRhs {
    fn new(d: Decimal) -> Self {
        let mut by_scale = [None; 9];
        for (s, slot) in by_scale.iter_mut().enumerate() {
            let s = s as u32;
            if s >= d.scale() {
                *slot = 10i128
                    .checked_pow(s - d.scale())
                    .and_then(|p| d.mantissa().checked_mul(p));
            }
        }
        DecRhs { d, by_scale }
    }

    /// The operand.
    pub(crate) fn decimal(&self) -> Decimal {
        self.d
    }

    #[inline(always)]
    fn cmp_with(&self, v: Decimal) -> Ordering {
        match self.by_scale.get(v.scale() as usize) {
            Some(Some(m)) => v.mantissa().cmp(m),
            _ => v.cmp(&self.d),
        }
    }
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// An integer fact against an integer.
    Int(IntGet, Cmp, i64),
    /// A decimal fact against a decimal.
    Dec(DecGet, Cmp, Box<DecRhs>),
    /// A float fact against a number.
    Float(FloatGet, Cmp, f64),
    /// A string fact equal (or, negated, not equal) to a string; missing is false.
    StrEq(Field, bool, Box<str>),
    /// A string fact in (or, negated, not in) a set of strings; missing is false.
    StrIn(Field, bool, Box<[Box<str>]>),
    /// A string fact containing (or, negated, not containing) a substring; missing is false.
    StrContains(Field, bool, Box<str>),
    /// Everything else: read the fact, apply the operator.
    Generic(Field, Option<usize>, Operator, Operand),
}

fn int_get(field: Field, slot: Option<usize>) -> Option<IntGet> {
    Some(match (field, slot) {
        (_, Some(s)) => IntGet::Window(s),
        (Field::Quantity, _) => IntGet::Quantity,
        (Field::ProcessingTimeMs, _) => IntGet::ProcessingTimeMs,
        (Field::AutomationScore, _) => IntGet::AutomationScore,
        (Field::FlowProgress, _) => IntGet::FlowProgress,
        _ => return None,
    })
}

fn dec_get(field: Field) -> Option<DecGet> {
    Some(match field {
        Field::Price | Field::OrderValue => DecGet::Price,
        Field::OrdersPerHourCurrent => DecGet::OrdersPerHour,
        Field::VelocityMultiplier => DecGet::Velocity,
        _ => return None,
    })
}

fn is_plain_str(field: Field) -> bool {
    use super::facts::FactType;
    matches!(field.ty(), FactType::Str | FactType::Enum(_)) && field != Field::Id
}

impl Test {
    /// Specialises a loaded condition.
    pub(crate) fn compile(c: &Condition, slot: Option<usize>) -> Test {
        let generic = || Test::Generic(c.field, slot, c.operator, c.operand.clone());
        if let (Some(cmp), Operand::Num(n)) = (Cmp::from_op(c.operator), &c.operand) {
            if let (Some(get), Some(i)) = (int_get(c.field, slot), n.i) {
                return Test::Int(get, cmp, i);
            }
            if let (Some(get), Some(d)) = (dec_get(c.field), n.d) {
                return Test::Dec(get, cmp, Box::new(DecRhs::new(d)));
            }
            return match c.field {
                Field::MinutesSinceCreated => Test::Float(FloatGet::MinutesSinceCreated, cmp, n.f),
                Field::HoursUntilDeadline => Test::Float(FloatGet::HoursUntilDeadline, cmp, n.f),
                Field::ContentSpikeConfidence => {
                    Test::Float(FloatGet::ContentSpikeConfidence, cmp, n.f)
                }
                _ => generic(),
            };
        }
        if !is_plain_str(c.field) {
            return generic();
        }
        match (c.operator, &c.operand) {
            (Operator::Equals | Operator::NotEquals, Operand::Str(s, _)) => {
                Test::StrEq(c.field, c.operator == Operator::NotEquals, s.clone())
            }
            (Operator::In | Operator::NotIn, Operand::List(items))
                if items.iter().all(|i| matches!(i, Operand::Str(..))) =>
            {
                let set = items
                    .iter()
                    .filter_map(|i| match i {
                        Operand::Str(s, _) => Some(s.clone()),
                        _ => None,
                    })
                    .collect();
                Test::StrIn(c.field, c.operator == Operator::NotIn, set)
            }
            (Operator::Contains | Operator::NotContains, Operand::Str(s, _)) => {
                Test::StrContains(c.field, c.operator == Operator::NotContains, s.clone())
            }
            _ => generic(),
        }
    }

    /// A rough relative cost, to evaluate cheap conditions of an AND / OR first.
    pub(crate) fn cost(&self) -> u8 {
        match self {
            Test::Int(..) | Test::Float(..) => 0,
            Test::Dec(..) => 1,
            Test::StrEq(..) => 2,
            Test::StrIn(..) => 3,
            Test::StrContains(..) => 4,
            Test::Generic(..) => 5,
        }
    }

    /// Evaluates the condition.
    #[inline(always)]
    pub(crate) fn eval(&self, cx: &Ctx<'_>) -> bool {
        let o = cx.order;
        match self {
            Test::Int(get, cmp, rhs) => cmp.holds(get.value(cx).cmp(rhs)),
            Test::Dec(get, cmp, rhs) => cmp.holds(rhs.cmp_with(get.value(o))),
            Test::Float(get, cmp, rhs) => match get.value(cx) {
                Some(v) => v.partial_cmp(rhs).is_some_and(|ord| cmp.holds(ord)),
                None => false,
            },
            Test::StrEq(field, negate, rhs) => match str_fact(o, *field) {
                Some(s) => (s == &**rhs) != *negate,
                None => false,
            },
            Test::StrIn(field, negate, set) => match str_fact(o, *field) {
                Some(s) => set.iter().any(|v| s == &**v) != *negate,
                None => false,
            },
            Test::StrContains(field, negate, needle) => match str_fact(o, *field) {
                Some(s) => s.contains(&**needle) != *negate,
                None => false,
            },
            Test::Generic(field, slot, op, operand) => {
                let fact = match slot {
                    Some(s) => Fact::Int(cx.windows[*s]),
                    None => read(o, *field, cx.now_ms),
                };
                apply(*op, &fact, operand)
            }
        }
    }
}

/// A string fact, or `None` when missing.
#[inline(always)]
pub(crate) fn str_fact(o: &Order, field: Field) -> Option<&str> {
    match read(o, field, 0) {
        Fact::Str(s) => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prescaled_decimals_compare_exactly() {
        let rhs = DecRhs::new("49.99".parse().unwrap());
        for (v, o) in [
            ("49.99", Ordering::Equal),
            ("49.990", Ordering::Equal),
            ("50", Ordering::Greater),
            ("49.989", Ordering::Less),
            ("49.9", Ordering::Less),
        ] {
            assert_eq!(rhs.cmp_with(v.parse().unwrap()), o, "{v}");
        }
        let rhs = DecRhs::new("200".parse().unwrap());
        assert_eq!(rhs.cmp_with("199.99".parse().unwrap()), Ordering::Less);
        assert_eq!(rhs.cmp_with("200.00".parse().unwrap()), Ordering::Equal);
    }
}
