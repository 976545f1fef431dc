//! A native evaluator for the common shape of CUSTOM logic.
//!
//! Most `custom_logic` expressions only combine the conditions with `&&`,
//! `||`, `!` and parentheses, sometimes with a comparison of a numeric order
//! fact with a number (`order.quantity >= 30`). Such an expression is
//! compiled to a [`BoolExpr`] and evaluated natively, with exactly Rhai's
//! semantics for that subset (short-circuit logic; integer facts compared as
//! integers with integer literals, everything else as `f64`, as the `order`
//! map gives them to Rhai). Anything else runs in the Rhai sandbox.

use rust_decimal::prelude::ToPrimitive;

use super::compiled::{Cmp as CmpOp, Ctx};
use super::facts::Field;

/// A compiled boolean expression over condition results and numeric facts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BoolExpr {
    Const(bool),
    /// The result of condition `i`.
    Cond(usize),
    Not(Box<BoolExpr>),
    And(Box<BoolExpr>, Box<BoolExpr>),
    Or(Box<BoolExpr>, Box<BoolExpr>),
    /// `order.<field> <op> <literal>`.
    Compare(Field, CmpOp, Literal),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Literal {
    Int(i64),
    Float(f64),
}

impl BoolExpr {
    /// Compiles `src` if it is in the native subset; `names` are the
    /// conditions' names, by index.
    pub(crate) fn compile(src: &str, names: &[Option<String>]) -> Option<BoolExpr> {
        let tokens = tokenize(src)?;
        let mut p = Parser {
            tokens: &tokens,
            at: 0,
            names,
        };
        let e = p.or()?;
        (p.at == tokens.len()).then_some(e)
    }

    /// Evaluates with the conditions' results.
    pub(crate) fn eval(&self, results: &[bool], cx: &Ctx<'_>) -> bool {
        match self {
            BoolExpr::Const(b) => *b,
            BoolExpr::Cond(i) => results[*i],
            BoolExpr::Not(e) => !e.eval(results, cx),
            BoolExpr::And(a, b) => a.eval(results, cx) && b.eval(results, cx),
            BoolExpr::Or(a, b) => a.eval(results, cx) || b.eval(results, cx),
            BoolExpr::Compare(field, op, lit) => compare(*field, *op, *lit, cx),
        }
    }
}

/// Numeric facts that are never missing, with the type Rhai sees them as.
fn numeric(field: Field) -> Option<bool /* is integer */> {
    match field {
        Field::Quantity
        | Field::ProcessingTimeMs
        | Field::AutomationScore
        | Field::FlowProgress => Some(true),
        Field::Price
        | Field::OrderValue
        | Field::OrdersPerHourCurrent
        | Field::VelocityMultiplier
        | Field::MinutesSinceCreated => Some(false),
        _ => None,
    }
}

fn compare(field: Field, op: CmpOp, lit: Literal, cx: &Ctx<'_>) -> bool {
    let o = cx.order;
    let int = match field {
        Field::Quantity => Some(i64::from(o.quantity)),
        Field::ProcessingTimeMs => Some(o.processing_time_ms as i64),
        Field::AutomationScore => Some(i64::from(o.automation_score)),
        Field::FlowProgress => Some(i64::from(o.flow_progress)),
        _ => None,
    };
    let ord = match (int, lit) {
        (Some(v), Literal::Int(l)) => Some(v.cmp(&l)),
        (Some(v), Literal::Float(l)) => (v as f64).partial_cmp(&l),
        (None, l) => {
            let v = match field {
                Field::Price | Field::OrderValue => o.price.to_f64(),
                Field::OrdersPerHourCurrent => o.orders_per_hour_current.to_f64(),
                Field::VelocityMultiplier => o.velocity_multiplier.to_f64(),
                _ => Some((cx.now_ms - cx.created_ms) as f64 / 60_000.0),
            }
            .unwrap_or(f64::NAN);
            let l = match l {
                Literal::Int(i) => i as f64,
                Literal::Float(f) => f,
            };
            v.partial_cmp(&l)
        }
    };
    match ord {
        // A NaN compares unequal to everything, as in Rhai.
        None => op == CmpOp::Ne,
        Some(o) => op.holds(o),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Int(i64),
    Float(f64),
    AndAnd,
    OrOr,
    Bang,
    Open,
    Close,
    Dot,
    Cmp(CmpOp),
}

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = b.get(i + 1).copied();
        let (tok, len) = match (c, two) {
            (b' ' | b'\t' | b'\n' | b'\r', _) => {
                i += 1;
                continue;
            }
            (b'&', Some(b'&')) => (Tok::AndAnd, 2),
            (b'|', Some(b'|')) => (Tok::OrOr, 2),
            (b'=', Some(b'=')) => (Tok::Cmp(CmpOp::Eq), 2),
            (b'!', Some(b'=')) => (Tok::Cmp(CmpOp::Ne), 2),
            (b'>', Some(b'=')) => (Tok::Cmp(CmpOp::Ge), 2),
            (b'<', Some(b'=')) => (Tok::Cmp(CmpOp::Le), 2),
            (b'>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            (b'<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'(', _) => (Tok::Open, 1),
            (b')', _) => (Tok::Close, 1),
            (b'.', _) => (Tok::Dot, 1),
            (c, _) if c.is_ascii_digit() => {
                let start = i;
                let mut j = i;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                let float = j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit();
                if float {
                    j += 1;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                if j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] == b'.') {
                    return None; // exponents, suffixes, underscores, method calls: leave to Rhai
                }
                let text = &src[start..j];
                let tok = if float {
                    Tok::Float(text.parse().ok()?)
                } else {
                    Tok::Int(text.parse().ok()?)
                };
                (tok, j - start)
            }
            (c, _) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                (Tok::Ident(src[start..j].to_owned()), j - start)
            }
            _ => return None,
        };
        out.push(tok);
        i += len;
    }
    Some(out)
}

struct Parser<'a> {
    tokens: &'a [Tok],
    at: usize,
    names: &'a [Option<String>],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<&Tok> {
        self.at += 1;
        self.tokens.get(self.at - 1)
    }

    fn or(&mut self) -> Option<BoolExpr> {
        self.chain(&Tok::OrOr, Self::and, BoolExpr::Or)
    }

    fn and(&mut self) -> Option<BoolExpr> {
        self.chain(&Tok::AndAnd, Self::unary, BoolExpr::And)
    }

    /// One or more `operand`s separated by `op`, joined left to right with
    /// `join`.
    fn chain(
        &mut self,
        op: &Tok,
        operand: fn(&mut Self) -> Option<BoolExpr>,
        join: fn(Box<BoolExpr>, Box<BoolExpr>) -> BoolExpr,
    ) -> Option<BoolExpr> {
        let mut e = operand(self)?;
        while self.peek() == Some(op) {
            self.at += 1;
            e = join(Box::new(e), Box::new(operand(self)?));
        }
        Some(e)
    }

    fn unary(&mut self) -> Option<BoolExpr> {
        if self.peek() == Some(&Tok::Bang) {
            self.at += 1;
            // `!` binds tighter than comparisons in Rhai: only negate a variable,
            // a constant or a parenthesised expression natively.
            if matches!(self.peek(), Some(Tok::Ident(n)) if n == "order") {
                return None;
            }
            return Some(BoolExpr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Option<BoolExpr> {
        match self.next()?.clone() {
            Tok::Open => {
                let e = self.or()?;
                (self.next()? == &Tok::Close).then_some(e)
            }
            Tok::Ident(n) if n == "true" => Some(BoolExpr::Const(true)),
            Tok::Ident(n) if n == "false" => Some(BoolExpr::Const(false)),
            Tok::Ident(n) if n == "order" => {
                if self.next()? != &Tok::Dot {
                    return None;
                }
                let Tok::Ident(field) = self.next()?.clone() else {
                    return None;
                };
                let field = Field::lookup(&field).filter(|f| numeric(*f).is_some())?;
                let Tok::Cmp(op) = *self.next()? else {
                    return None;
                };
                let lit = match *self.next()? {
                    Tok::Int(i) => Literal::Int(i),
                    Tok::Float(f) => Literal::Float(f),
                    _ => return None,
                };
                Some(BoolExpr::Compare(field, op, lit))
            }
            Tok::Ident(n) => {
                if self
                    .peek()
                    .is_some_and(|t| matches!(t, Tok::Cmp(_) | Tok::Dot | Tok::Open))
                {
                    return None;
                }
                let idx = n
                    .strip_prefix('c')
                    .and_then(|d| {
                        d.parse::<usize>()
                            .ok()
                            .filter(|_| d.bytes().all(|b| b.is_ascii_digit()))
                    })
                    .filter(|i| *i < self.names.len())
                    .or_else(|| {
                        self.names
                            .iter()
                            .position(|name| name.as_deref() == Some(&n))
                    })?;
                Some(BoolExpr::Cond(idx))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<Option<String>> {
        vec![Some("vip".into()), None, Some("big".into())]
    }

    #[test]
    fn compiles_the_boolean_subset() {
        let e = BoolExpr::compile("vip && (c1 || !big)", &names()).unwrap();
        assert_eq!(
            e,
            BoolExpr::And(
                Box::new(BoolExpr::Cond(0)),
                Box::new(BoolExpr::Or(
                    Box::new(BoolExpr::Cond(1)),
                    Box::new(BoolExpr::Not(Box::new(BoolExpr::Cond(2))))
                ))
            )
        );
        assert!(BoolExpr::compile("c0 && order.quantity >= 30", &names()).is_some());
        assert!(BoolExpr::compile("c0 || c1 && c2", &names()).is_some());
    }

    #[test]
    fn leaves_everything_else_to_rhai() {
        for src in [
            "c3",
            "c0 == true",
            "order.shipping_zone == \"EU\"",
            "!order.quantity > 3",
            "order.quantity >= 1e3",
            "order.hours_until_deadline < 3",
            "if c0 { true } else { false }",
            "c0 && ",
            "f(c0)",
            "order.quantity >= 3.abs()",
        ] {
            assert!(BoolExpr::compile(src, &names()).is_none(), "{src}");
        }
    }
}
