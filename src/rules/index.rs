//! The rule index: which rules an order can match, found by counting the
//! conditions that hold through a few lookups instead of testing every rule
//! of a large pack (the counting algorithm of publish/subscribe matching).
//!
//! Indexable tests: a string or enum fact `equals` / `in` strings (not
//! negated: a missing fact fails them), and `equals`, `>`, `>=`, `<`, `<=`
//! on integer (window facts included), decimal and float facts. Per order,
//! for each string fact one hash lookup gives the rules with an indexed test
//! `equals` its value, and for each numeric (fact, comparison) two binary
//! searches over the sorted thresholds give the rules whose test holds; each
//! such rule's counter goes up by one.
//!
//! At load, each rule gets what its counter must reach to be a candidate:
//!
//! - AND: every distinct indexable test of the rule; when the rule has no
//!   other test, reaching the count *is* the match (`exact`: its conditions
//!   are not evaluated again);
//! - OR, every test indexable: one (and `exact`);
//! - CUSTOM with native logic: one test of a guard derived from the
//!   expression (`&&` keeps the more selective side's guard, a guess made
//!   without data; `||` needs both sides' and joins them; `false` never
//!   matches), then the logic is evaluated;
//! - anything else (Rhai logic, which may err; an AND without an indexable
//!   test; an OR with one that is not) is visited for every order;
//! - a disabled rule never (evaluation skips it anyway).
//!
//! Candidates are a bitset over the pack's rules, visited in evaluation
//! order, so a decision is exactly the one of visiting every rule: a rule
//! left out could not match, err, or count towards a rate limit, and the
//! order of matches and first-wins escalations is unchanged.

use std::cmp::Ordering;

use rust_decimal::Decimal;

use super::compiled::{Cmp, Ctx, DecGet, FloatGet, HotRule, IntGet, Test, str_fact};
use super::custom::BoolExpr;
use super::def::ConditionLogic;
use super::facts::{FactType, Field};

/// A set of rules, one bit per rule in evaluation order.
pub(crate) type RuleBits = Vec<u64>;

/// Candidate rules per order; see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    /// Rules visited for every order.
    always: RuleBits,
    /// Per rule: how many of its indexed tests must hold (0: never by count).
    need: Vec<u16>,
    /// Rules whose count reached means their conditions hold.
    exact: RuleBits,
    strs: Vec<StrPostings>,
    ints: Vec<Sorted<i64, IntGet>>,
    decs: Vec<Sorted<Decimal, DecGet>>,
    floats: Vec<Sorted<f64, FloatGet>>,
}

/// Per-order buffers of [`RuleIndex::candidates`], reused across orders.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    counts: Vec<u16>,
    /// The rules to visit.
    pub(crate) bits: RuleBits,
}

/// The rules with an indexed `field equals value`, by value.
#[derive(Debug, Clone)]
struct StrPostings {
    field: Field,
    rules: foldhash::HashMap<Box<str>, Vec<u32>>,
}

/// The rules with an indexed `fact cmp threshold`, sorted by threshold.
#[derive(Debug, Clone)]
struct Sorted<T, G> {
    get: G,
    cmp: Cmp,
    keys: Vec<T>,
    rules: Vec<u32>,
}

impl<T: PartialOrd, G> Sorted<T, G> {
    /// The rules whose test `x cmp threshold` holds; `x` is never NaN.
    #[inline]
    fn holding(&self, x: &T) -> &[u32] {
        let below = || self.keys.partition_point(|k| k < x);
        let up_to = || self.keys.partition_point(|k| k <= x);
        let (lo, hi) = match self.cmp {
            Cmp::Gt => (0, below()),
            Cmp::Ge => (0, up_to()),
            Cmp::Lt => (up_to(), self.keys.len()),
            Cmp::Le => (below(), self.keys.len()),
            Cmp::Eq => (below(), up_to()),
            // Never built: `!=` is not indexable.
            Cmp::Ne => (0, 0),
        };
        self.rules.get(lo..hi).unwrap_or_default()
    }
}

/// Adds `rule` to `bits`.
#[inline(always)]
fn set(bits: &mut [u64], rule: u32) {
    if let Some(w) = bits.get_mut((rule >> 6) as usize) {
        *w |= 1u64 << (rule & 63);
    }
}

/// A CUSTOM rule's guard while building.
#[derive(Debug, Clone, PartialEq)]
struct Guard {
    /// The rule may match only when one of these tests holds (none: never).
    any_of: Vec<u32>,
    /// Estimated share of orders for which one holds.
    share: f64,
}

/// A guess, without data, of the share of orders for which `t` holds (an
/// enum value one in as many as the enum has, any other string one in ten,
/// a numeric equality one in ten, a range one in two); `None` when `t` is
/// not indexable.
fn share(t: &Test) -> Option<f64> {
    let values = |f: Field| match f.ty() {
        FactType::Enum(variants) => variants.len().max(1) as f64,
        _ => 10.0,
    };
    let range = |cmp: Cmp| match cmp {
        Cmp::Ne => None,
        Cmp::Eq => Some(0.1),
        _ => Some(0.5),
    };
    match t {
        Test::StrEq(f, false, _) => Some(1.0 / values(*f)),
        Test::StrIn(f, false, set) => Some((set.len() as f64 / values(*f)).min(1.0)),
        Test::Int(_, cmp, _) | Test::Dec(_, cmp, _) => range(*cmp),
        Test::Float(_, cmp, v) if !v.is_nan() => range(*cmp),
        _ => None,
    }
}

/// The guard of a native CUSTOM expression; `None` when it may hold with
/// none of its indexable tests holding. `tests` are the rule's tests by
/// condition index.
fn expr_guard(e: &BoolExpr, tests: &[u32], all: &[Test]) -> Option<Guard> {
    match e {
        BoolExpr::Const(false) => Some(Guard {
            any_of: Vec::new(),
            share: 0.0,
        }),
        BoolExpr::Cond(i) => {
            let t = *tests.get(*i)?;
            share(all.get(t as usize)?).map(|share| Guard {
                any_of: vec![t],
                share,
            })
        }
        BoolExpr::And(a, b) => match (expr_guard(a, tests, all), expr_guard(b, tests, all)) {
            (Some(x), Some(y)) => Some(if y.share < x.share { y } else { x }),
            (x, y) => x.or(y),
        },
        BoolExpr::Or(a, b) => {
            let (mut x, y) = (expr_guard(a, tests, all)?, expr_guard(b, tests, all)?);
            x.any_of.extend(y.any_of);
            x.share = (x.share + y.share).min(1.0);
            Some(x)
        }
        BoolExpr::Const(true) | BoolExpr::Not(_) | BoolExpr::Compare(..) => None,
    }
}

/// How a rule is found.
enum Plan {
    /// Visited for every order.
    Always,
    /// A candidate when `need` of `tests` hold; `exact`: then it matches.
    Count {
        tests: Vec<u32>,
        need: usize,
        exact: bool,
    },
}

fn plan(hot: &HotRule, own: &[u32], all: &[Test], native: Option<&BoolExpr>) -> Plan {
    let indexable = |t: &u32| share(&all[*t as usize]).is_some();
    let mut distinct: Vec<u32> = own.iter().copied().filter(indexable).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let every = own.iter().all(indexable);
    match hot.logic {
        ConditionLogic::And if !distinct.is_empty() => Plan::Count {
            need: distinct.len(),
            tests: distinct,
            exact: every,
        },
        ConditionLogic::Or if every => Plan::Count {
            tests: distinct,
            need: 1,
            exact: true,
        },
        ConditionLogic::Custom => match native.and_then(|e| expr_guard(e, own, all)) {
            Some(mut g) => {
                g.any_of.sort_unstable();
                g.any_of.dedup();
                Plan::Count {
                    tests: g.any_of,
                    need: 1,
                    exact: false,
                }
            }
            None => Plan::Always,
        },
        _ => Plan::Always,
    }
}

impl RuleIndex {
    /// Builds the index of a pack: `hot` and `native` are its rules in
    /// evaluation order, `refs` their tests, `tests` the distinct tests.
    pub(crate) fn build(
        hot: &[HotRule],
        refs: &[u32],
        tests: &[Test],
        native: &[Option<BoolExpr>],
    ) -> RuleIndex {
        let words = hot.len().div_ceil(64);
        let mut ix = RuleIndex {
            always: vec![0; words],
            exact: vec![0; words],
            need: vec![0; hot.len()],
            ..RuleIndex::default()
        };
        // (test, rule) for every counted test.
        let mut counted: Vec<(u32, u32)> = Vec::new();
        for (i, h) in hot.iter().enumerate() {
            if !h.enabled {
                continue;
            }
            let r = i as u32;
            let own = &refs[h.start as usize..h.end as usize];
            match plan(h, own, tests, native.get(i).and_then(Option::as_ref)) {
                Plan::Always => set(&mut ix.always, r),
                Plan::Count { tests, need, exact } => {
                    ix.need[i] = u16::try_from(need).unwrap_or(u16::MAX);
                    if ix.need[i] == u16::MAX {
                        // Too many to count: visit it always.
                        set(&mut ix.always, r);
                        ix.need[i] = 0;
                        continue;
                    }
                    if exact {
                        set(&mut ix.exact, r);
                    }
                    counted.extend(tests.iter().map(|t| (*t, r)));
                }
            }
        }
        // By test, rules in evaluation order.
        counted.sort_unstable();
        for (t, rule) in counted {
            ix.add(&tests[t as usize], rule);
        }
        for s in &mut ix.ints {
            s.sort();
        }
        for s in &mut ix.decs {
            s.sort();
        }
        for s in &mut ix.floats {
            s.sort();
        }
        ix
    }

    fn add(&mut self, t: &Test, rule: u32) {
        fn push<T, G: PartialEq + Copy>(v: &mut Vec<Sorted<T, G>>, get: G, cmp: Cmp, k: T, r: u32) {
            let i = match v.iter().position(|s| s.get == get && s.cmp == cmp) {
                Some(i) => i,
                None => {
                    v.push(Sorted {
                        get,
                        cmp,
                        keys: Vec::new(),
                        rules: Vec::new(),
                    });
                    v.len() - 1
                }
            };
            v[i].keys.push(k);
            v[i].rules.push(r);
        }
        let mut strs = |field: Field, value: &str| {
            let i = match self.strs.iter().position(|s| s.field == field) {
                Some(i) => i,
                None => {
                    self.strs.push(StrPostings {
                        field,
                        rules: foldhash::HashMap::default(),
                    });
                    self.strs.len() - 1
                }
            };
            self.strs[i]
                .rules
                .entry(value.into())
                .or_default()
                .push(rule);
        };
        match t {
            Test::StrEq(field, false, v) => strs(*field, v),
            Test::StrIn(field, false, set) => {
                // One count per test, even when its list repeats a value.
                let mut values: Vec<&str> = set.iter().map(|v| &**v).collect();
                values.sort_unstable();
                values.dedup();
                for v in values {
                    strs(*field, v);
                }
            }
            Test::Int(get, cmp, k) => push(&mut self.ints, *get, *cmp, *k, rule),
            Test::Dec(get, cmp, k) => push(&mut self.decs, *get, *cmp, k.decimal(), rule),
            Test::Float(get, cmp, k) => push(&mut self.floats, *get, *cmp, *k, rule),
            // Not indexable: `plan` counts no such test.
            _ => {}
        }
    }

    /// Finds the rules `cx`'s order may match.
    #[inline]
    pub(crate) fn candidates(&self, cx: &Ctx<'_>, out: &mut Candidates) {
        out.bits.clear();
        out.bits.extend_from_slice(&self.always);
        out.counts.clear();
        out.counts.resize(self.need.len(), 0);
        let (counts, bits) = (&mut out.counts[..], &mut out.bits[..]);
        let mut hold = |rules: &[u32]| {
            for &r in rules {
                if let (Some(c), Some(n)) = (counts.get_mut(r as usize), self.need.get(r as usize))
                {
                    *c = c.saturating_add(1);
                    if *c == *n {
                        set(bits, r);
                    }
                }
            }
        };
        for p in &self.strs {
            if let Some(rules) = str_fact(cx.order, p.field).and_then(|s| p.rules.get(s)) {
                hold(rules);
            }
        }
        for p in &self.ints {
            hold(p.holding(&p.get.value(cx)));
        }
        for p in &self.decs {
            hold(p.holding(&p.get.value(cx.order)));
        }
        for p in &self.floats {
            // A missing or NaN fact fails every comparison.
            if let Some(v) = p.get.value(cx).filter(|v| !v.is_nan()) {
                hold(p.holding(&v));
            }
        }
    }

    /// Whether a candidate found by count matches without evaluating its conditions.
    #[inline(always)]
    pub(crate) fn exact(&self, rule: usize) -> bool {
        self.exact
            .get(rule >> 6)
            .is_some_and(|w| w & (1u64 << (rule & 63)) != 0)
    }

    /// How many rules are visited for every order.
    #[cfg(test)]
    pub(crate) fn always_visited(&self) -> usize {
        self.always.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl<T: PartialOrd + Copy, G> Sorted<T, G> {
    /// Sorts by threshold (thresholds are never NaN: such tests are not indexed).
    fn sort(&mut self) {
        let mut pairs: Vec<(T, u32)> = self
            .keys
            .iter()
            .copied()
            .zip(self.rules.iter().copied())
            .collect();
        pairs.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap_or(Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        self.keys = pairs.iter().map(|p| p.0).collect();
        self.rules = pairs.iter().map(|p| p.1).collect();
    }
}

/// Calls `f` with each rule of `bits`, in evaluation order.
#[inline]
pub(crate) fn for_each(bits: &[u64], mut f: impl FnMut(usize)) {
    for (w, word) in bits.iter().enumerate() {
        let mut b = *word;
        while b != 0 {
            f(w * 64 + b.trailing_zeros() as usize);
            b &= b - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Order;
    use crate::rules::{PackLoader, RulePack};

    const PACK: &str = r#"rules:
  - {id: and-all, name: a, category: fraud_prevention, priority: 90, condition_logic: AND,
     conditions: [{field: customer_tier, operator: equals, value: vip}, {field: price, operator: greater_than, value: 40}],
     actions: [{type: log_analytics_event}]}
  - {id: and-some, name: a, category: fraud_prevention, priority: 80, condition_logic: AND,
     conditions: [{field: product_id, operator: in, value: [p1, p2, p1]}, {field: customer_handle, operator: contains, value: an}],
     actions: [{type: log_analytics_event}]}
  - {id: and-none, name: a, category: fraud_prevention, priority: 70, condition_logic: AND,
     conditions: [{field: customer_handle, operator: contains, value: an}],
     actions: [{type: log_analytics_event}]}
  - {id: or-all, name: a, category: fraud_prevention, priority: 60, condition_logic: OR,
     conditions: [{field: quantity, operator: greater_than_or_equal, value: 10}, {field: shipping_zone, operator: equals, value: UK}],
     actions: [{type: log_analytics_event}]}
  - {id: or-some, name: a, category: fraud_prevention, priority: 50, condition_logic: OR,
     conditions: [{field: quantity, operator: greater_than_or_equal, value: 10}, {field: shipping_zone, operator: not_equals, value: UK}],
     actions: [{type: log_analytics_event}]}
  - {id: custom-native, name: a, category: fraud_prevention, priority: 40, condition_logic: CUSTOM,
     custom_logic: "c0 && !c1",
     conditions: [{field: quantity, operator: less_than, value: 3}, {field: price, operator: less_than, value: 10}],
     actions: [{type: log_analytics_event}]}
  - {id: custom-rhai, name: a, category: fraud_prevention, priority: 30, condition_logic: CUSTOM,
     custom_logic: "if c0 { true } else { false }",
     conditions: [{field: quantity, operator: less_than, value: 3}],
     actions: [{type: log_analytics_event}]}
  - {id: disabled, name: a, category: fraud_prevention, priority: 20, enabled: false,
     conditions: [{field: quantity, operator: greater_than, value: 0}],
     actions: [{type: log_analytics_event}]}
"#;

    /// An order of `product`, `quantity` at `price`, with `extra` fields.
    fn order(product: &str, quantity: u32, price: &str, extra: &str) -> Order {
        let json = format!(
            r#"{{"tiktok_order_id":"1","customer_handle":"@ana","product_name":"Lamp","product_id":"{product}","quantity":{quantity},"price":"{price}","created_at":"2025-03-01T12:00:00Z"{extra}}}"#
        );
        Order::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    /// The candidates of `o`, by id, with `*` on those found exact.
    fn candidates(pack: &RulePack, o: &Order) -> Vec<String> {
        let cx = Ctx::new(o, o.created_at.timestamp_millis(), &[]);
        let mut found = Candidates::default();
        pack.index.candidates(&cx, &mut found);
        let mut out = Vec::new();
        for_each(&found.bits, |i| {
            let star = if pack.index.exact(i) { "*" } else { "" };
            out.push(format!("{}{star}", pack.rules()[i].id));
        });
        out
    }

    #[test]
    fn rules_are_visited_only_when_their_indexed_conditions_hold() {
        let pack = PackLoader::new().load_str("t.yaml", PACK).unwrap();
        // Visited always: and-none (nothing indexable), or-some (`not_equals`), custom-rhai.
        assert_eq!(pack.index.always_visited(), 3);
        assert_eq!(
            candidates(&pack, &order("p1", 3, "49.99", "")),
            ["and-some", "and-none", "or-some", "custom-rhai"]
        );
        assert_eq!(
            candidates(
                &pack,
                &order(
                    "p1",
                    3,
                    "49.99",
                    r#","customer_tier":"vip","shipping_zone":"UK""#
                )
            ),
            [
                "and-all*",
                "and-some",
                "and-none",
                "or-all*",
                "or-some",
                "custom-rhai"
            ]
        );
        assert_eq!(
            candidates(&pack, &order("p3", 2, "20.00", "")),
            ["and-none", "or-some", "custom-native", "custom-rhai"]
        );
        // A vip order at exactly 40 fails `price > 40`: one of two counted.
        assert_eq!(
            candidates(
                &pack,
                &order("p1", 12, "40.000", r#","customer_tier":"vip""#)
            ),
            ["and-some", "and-none", "or-all*", "or-some", "custom-rhai"]
        );
    }

    #[test]
    fn the_shipped_pack_is_indexed() {
        let pack = RulePack::shipped();
        assert!(
            pack.index.always_visited() < pack.rules().len() / 2,
            "{} of {} visited always",
            pack.index.always_visited(),
            pack.rules().len()
        );
    }
}
