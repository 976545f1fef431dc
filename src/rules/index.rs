//! The rule index: which rules an order can match, found through a few
//! lookups instead of testing every rule of a large pack (the counting
//! algorithm of publish/subscribe matching, with exclusions).
//!
//! Indexable tests: a string or enum fact `equals` / `in` strings, and for
//! AND rules also `not_equals` / `not_in` (a missing fact fails both); and
//! `equals`, `>`, `>=`, `<`, `<=` on integer (window facts included),
//! decimal and float facts. Each rule is found one of two ways:
//!
//! - **all** (AND rules): a candidate when every indexed test holds. Its
//!   positive string tests are *counted*: per order, one hash lookup per
//!   string fact gives the rules with a test `equals` / `in` its value, and
//!   each such rule's counter goes up by one; the rule enters the set when
//!   its counter reaches its number of such tests (or from the start when
//!   it has none). Then every failing indexed test *excludes* its rule: a
//!   negated string test through a lookup of the value (or, when the fact
//!   is missing, a list of its own), a numeric comparison as the part of its
//!   sorted thresholds outside the one or two binary searches' range. When
//!   the rule has no other test, being in the set *is* the match (`exact`:
//!   its conditions are not evaluated again).
//! - **any** (OR rules whose tests are all positively indexable, and CUSTOM
//!   rules with native logic): a candidate as soon as one of its tests
//!   holds; OR is then `exact`. A CUSTOM rule's tests are those of a guard
//!   derived from the expression (`&&` keeps the more selective side's
//!   guard, a guess made without data; `||` needs both sides' and joins
//!   them; `false` never matches), then the logic is evaluated.
//!
//! Anything else (Rhai logic, which may err; an AND without an indexable
//! test; an OR with one that is not) is visited for every order; a disabled
//! rule never (evaluation skips it anyway).
//!
//! Candidates are a bitset over the pack's rules, visited in evaluation
//! order, so a decision is exactly the one of visiting every rule: a rule
//! left out could not match, err, or count towards a rate limit, and the
//! order of matches and first-wins escalations is unchanged.
//!
//! `plain` marks the exact rules whose match needs nothing else checked
//! (enabled, no validity window, no hourly limit): the evaluator records
//! them as matched without visiting them.

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
    /// What the candidates start from: `always`, and the "all" rules
    /// without a counted test (until a failing test excludes them).
    start: RuleBits,
    /// Per rule: how many of its counted tests must hold (0: not counted).
    need: Vec<u16>,
    /// Rules whose candidacy means their conditions hold.
    exact: RuleBits,
    /// Exact rules that match whenever they are candidates (module docs).
    plain: RuleBits,
    strs: Vec<StrPostings>,
    ints: Vec<Sorted<i64, IntGet>>,
    decs: Vec<Sorted<Decimal, DecGet>>,
    /// `decs`' thresholds as integers, list by list.
    dec_keys: Vec<Option<ScaledKeys>>,
    floats: Vec<Sorted<f64, FloatGet>>,
}

/// Per-order buffers of [`RuleIndex::candidates`], reused across orders.
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates {
    counts: Vec<u16>,
    /// The rules to visit.
    pub(crate) bits: RuleBits,
}

/// The string tests on one field, by the value the fact has.
#[derive(Debug, Clone)]
struct StrPostings {
    field: Field,
    by_value: foldhash::HashMap<Box<str>, ValuePostings>,
    /// "All" rules excluded when the fact is missing (negated tests).
    fail_missing: Vec<u32>,
    /// Whether any negated test is indexed on the field.
    negated: bool,
}

/// What one value of a string fact does.
#[derive(Debug, Clone, Default)]
struct ValuePostings {
    /// "All" rules with a test `equals` / `in` the value: one count each.
    count: Vec<u32>,
    /// "Any" rules with such a test: candidates.
    any: Vec<u32>,
    /// "All" rules with a test `not_equals` / `not_in` the value: excluded.
    fail: Vec<u32>,
}

/// The rules with an indexed `fact cmp threshold`, sorted by threshold.
#[derive(Debug, Clone)]
struct Sorted<T, G> {
    get: G,
    cmp: Cmp,
    /// "All" rules (excluded when their test fails) or "any" rules
    /// (candidates when it holds).
    all: bool,
    keys: Vec<T>,
    rules: Vec<u32>,
}

/// The range of sorted `keys` whose test `x cmp key` holds; `x` is never NaN.
#[inline]
fn holding<K: PartialOrd>(cmp: Cmp, keys: &[K], x: &K) -> (usize, usize) {
    let below = || keys.partition_point(|k| k < x);
    let up_to = || keys.partition_point(|k| k <= x);
    match cmp {
        Cmp::Gt => (0, below()),
        Cmp::Ge => (0, up_to()),
        Cmp::Lt => (up_to(), keys.len()),
        Cmp::Le => (below(), keys.len()),
        Cmp::Eq => (below(), up_to()),
        // Never built: `!=` is not indexable.
        Cmp::Ne => (0, 0),
    }
}

impl<T: PartialOrd, G> Sorted<T, G> {
    /// Applies the comparison with `x` (`None`: missing or NaN, so every test fails).
    #[inline]
    fn apply(&self, x: Option<&T>, bits: &mut [u64]) {
        self.apply_range(x.map(|x| holding(self.cmp, &self.keys, x)), bits);
    }

    /// Applies the comparison whose holding range of `rules` is `range`
    /// (`None`: every test fails).
    #[inline]
    fn apply_range(&self, range: Option<(usize, usize)>, bits: &mut [u64]) {
        let (lo, hi) = range.unwrap_or((0, 0));
        if self.all {
            for r in self.rules.get(..lo).unwrap_or_default() {
                clear(bits, *r);
            }
            for r in self.rules.get(hi.max(lo)..).unwrap_or_default() {
                clear(bits, *r);
            }
        } else {
            for r in self.rules.get(lo..hi).unwrap_or_default() {
                set(bits, *r);
            }
        }
    }
}

/// A decimal list's thresholds as integers at one scale (the largest of
/// theirs, at least [`MIN_SCALE`]), so that a fact of that scale or less
/// compares as an integer; `None` when one does not fit.
#[derive(Debug, Clone)]
struct ScaledKeys {
    scale: u32,
    keys: Vec<i128>,
}

impl ScaledKeys {
    fn of(keys: &[Decimal]) -> Option<ScaledKeys> {
        let scale = keys
            .iter()
            .map(Decimal::scale)
            .max()
            .unwrap_or(0)
            .max(MIN_SCALE);
        let keys = keys
            .iter()
            .map(|k| rescale(*k, scale))
            .collect::<Option<Vec<i128>>>()?;
        Some(ScaledKeys { scale, keys })
    }
}

/// The scale decimal thresholds are held at, at least: any decimal of that
/// scale or less fits an `i128` there (a mantissa is below 2^96 < 10^29).
const MIN_SCALE: u32 = 9;

/// Powers of ten an `i128` holds.
const POW10: [i128; 39] = {
    let mut p = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `d`'s mantissa at `scale` (at least its own), if it fits.
#[inline]
fn rescale(d: Decimal, scale: u32) -> Option<i128> {
    let by = scale.checked_sub(d.scale())?;
    POW10
        .get(by as usize)
        .and_then(|p| d.mantissa().checked_mul(*p))
}

/// Adds `rule` to `bits`.
#[inline(always)]
fn set(bits: &mut [u64], rule: u32) {
    if let Some(w) = bits.get_mut((rule >> 6) as usize) {
        *w |= 1u64 << (rule & 63);
    }
}

/// Removes `rule` from `bits`.
#[inline(always)]
fn clear(bits: &mut [u64], rule: u32) {
    if let Some(w) = bits.get_mut((rule >> 6) as usize) {
        *w &= !(1u64 << (rule & 63));
    }
}

/// Whether `rule` is in `bits`.
#[inline(always)]
fn has(bits: &[u64], rule: usize) -> bool {
    bits.get(rule >> 6)
        .is_some_and(|w| w & (1u64 << (rule & 63)) != 0)
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
/// not indexable as a test that makes its rule a candidate.
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

/// Whether an "all" rule's test `t` is indexable: those of [`share`], and
/// negated string tests.
fn all_indexable(t: &Test) -> bool {
    matches!(t, Test::StrEq(_, true, _) | Test::StrIn(_, true, _)) || share(t).is_some()
}

/// Whether `t` is counted (a positive string test).
fn counted(t: &Test) -> bool {
    matches!(t, Test::StrEq(_, false, _) | Test::StrIn(_, false, _))
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
    /// A candidate when all of `tests` hold; `exact`: then it matches.
    All { tests: Vec<u32>, exact: bool },
    /// A candidate when one of `tests` holds; `exact`: then it matches.
    Any { tests: Vec<u32>, exact: bool },
}

fn plan(hot: &HotRule, own: &[u32], all: &[Test], native: Option<&BoolExpr>) -> Plan {
    let distinct = |keep: &dyn Fn(&Test) -> bool| {
        let mut d: Vec<u32> = own
            .iter()
            .copied()
            .filter(|t| keep(&all[*t as usize]))
            .collect();
        d.sort_unstable();
        d.dedup();
        d
    };
    match hot.logic {
        ConditionLogic::And => {
            let tests = distinct(&all_indexable);
            if tests.is_empty() {
                return Plan::Always;
            }
            let exact = own.iter().all(|t| all_indexable(&all[*t as usize]));
            Plan::All { tests, exact }
        }
        ConditionLogic::Or if own.iter().all(|t| share(&all[*t as usize]).is_some()) => Plan::Any {
            tests: distinct(&|t| share(t).is_some()),
            exact: true,
        },
        ConditionLogic::Custom => match native.and_then(|e| expr_guard(e, own, all)) {
            Some(mut g) => {
                g.any_of.sort_unstable();
                g.any_of.dedup();
                Plan::Any {
                    tests: g.any_of,
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
            start: vec![0; words],
            exact: vec![0; words],
            plain: vec![0; words],
            need: vec![0; hot.len()],
            ..RuleIndex::default()
        };
        // (test, "all", rule) for every indexed test.
        let mut indexed: Vec<(u32, bool, u32)> = Vec::new();
        for (i, h) in hot.iter().enumerate() {
            if !h.enabled {
                continue;
            }
            let r = i as u32;
            let own = &refs[h.start as usize..h.end as usize];
            let (tests_of, all, exact) =
                match plan(h, own, tests, native.get(i).and_then(Option::as_ref)) {
                    Plan::Always => {
                        set(&mut ix.always, r);
                        continue;
                    }
                    Plan::All { tests, exact } => (tests, true, exact),
                    Plan::Any { tests, exact } => (tests, false, exact),
                };
            if all {
                let need = tests_of
                    .iter()
                    .filter(|t| counted(&tests[**t as usize]))
                    .count();
                let Ok(need) = u16::try_from(need) else {
                    // Too many to count: visit it always.
                    set(&mut ix.always, r);
                    continue;
                };
                ix.need[i] = need;
                if need == 0 {
                    set(&mut ix.start, r);
                }
            }
            if exact {
                set(&mut ix.exact, r);
                let windowed = h.valid_from_ms != i64::MIN || h.valid_until_ms != i64::MAX;
                if !windowed && h.limit == 0 {
                    set(&mut ix.plain, r);
                }
            }
            indexed.extend(tests_of.iter().map(|t| (*t, all, r)));
        }
        for (w, a) in ix.start.iter_mut().zip(&ix.always) {
            *w |= a;
        }
        // By test, rules in evaluation order.
        indexed.sort_unstable();
        for (t, all, rule) in indexed {
            ix.add(&tests[t as usize], all, rule);
        }
        for s in &mut ix.ints {
            s.sort();
        }
        for s in &mut ix.decs {
            s.sort();
        }
        ix.dec_keys = ix.decs.iter().map(|s| ScaledKeys::of(&s.keys)).collect();
        for s in &mut ix.floats {
            s.sort();
        }
        ix
    }

    fn add(&mut self, t: &Test, all: bool, rule: u32) {
        fn push<T, G: PartialEq + Copy>(
            v: &mut Vec<Sorted<T, G>>,
            (get, cmp, all): (G, Cmp, bool),
            k: T,
            r: u32,
        ) {
            let i = match v
                .iter()
                .position(|s| s.get == get && s.cmp == cmp && s.all == all)
            {
                Some(i) => i,
                None => {
                    v.push(Sorted {
                        get,
                        cmp,
                        all,
                        keys: Vec::new(),
                        rules: Vec::new(),
                    });
                    v.len() - 1
                }
            };
            v[i].keys.push(k);
            v[i].rules.push(r);
        }
        fn on(strs: &mut Vec<StrPostings>, field: Field) -> &mut StrPostings {
            let i = match strs.iter().position(|s| s.field == field) {
                Some(i) => i,
                None => {
                    strs.push(StrPostings {
                        field,
                        by_value: foldhash::HashMap::default(),
                        fail_missing: Vec::new(),
                        negated: false,
                    });
                    strs.len() - 1
                }
            };
            &mut strs[i]
        }
        let values: Vec<&str> = match t {
            Test::StrEq(_, _, v) => vec![&**v],
            // One count per test, even when its list repeats a value.
            Test::StrIn(_, _, set) => {
                let mut values: Vec<&str> = set.iter().map(|v| &**v).collect();
                values.sort_unstable();
                values.dedup();
                values
            }
            _ => Vec::new(),
        };
        match t {
            Test::StrEq(field, negated, _) | Test::StrIn(field, negated, _) => {
                let p = on(&mut self.strs, *field);
                if *negated {
                    p.negated = true;
                    p.fail_missing.push(rule);
                }
                for v in values {
                    let e = p.by_value.entry(v.into()).or_default();
                    match (*negated, all) {
                        (true, _) => e.fail.push(rule),
                        (false, true) => e.count.push(rule),
                        (false, false) => e.any.push(rule),
                    }
                }
            }
            Test::Int(get, cmp, k) => push(&mut self.ints, (*get, *cmp, all), *k, rule),
            Test::Dec(get, cmp, k) => push(&mut self.decs, (*get, *cmp, all), k.decimal(), rule),
            Test::Float(get, cmp, k) => push(&mut self.floats, (*get, *cmp, all), *k, rule),
            // Not indexable: `plan` indexes no such test.
            _ => {}
        }
    }

    /// Finds the rules `cx`'s order may match.
    #[inline]
    pub(crate) fn candidates(&self, cx: &Ctx<'_>, out: &mut Candidates) {
        out.bits.clear();
        out.bits.extend_from_slice(&self.start);
        out.counts.clear();
        out.counts.resize(self.need.len(), 0);
        let (counts, bits) = (&mut out.counts[..], &mut out.bits[..]);
        // Counts and "any" candidates first, then exclusions.
        for p in &self.strs {
            let Some(found) = str_fact(cx.order, p.field).and_then(|s| p.by_value.get(s)) else {
                continue;
            };
            for &r in &found.count {
                if let (Some(c), Some(n)) = (counts.get_mut(r as usize), self.need.get(r as usize))
                {
                    *c = c.saturating_add(1);
                    if *c == *n {
                        set(bits, r);
                    }
                }
            }
            for &r in &found.any {
                set(bits, r);
            }
        }
        for p in self.strs.iter().filter(|p| p.negated) {
            let fail = match str_fact(cx.order, p.field) {
                Some(s) => p.by_value.get(s).map_or(&[][..], |v| &v.fail[..]),
                None => &p.fail_missing[..],
            };
            for &r in fail {
                clear(bits, r);
            }
        }
        for p in &self.ints {
            p.apply(Some(&p.get.value(cx)), bits);
        }
        for (p, scaled) in self.decs.iter().zip(&self.dec_keys) {
            let x = p.get.value(cx.order);
            let fast = scaled.as_ref().and_then(|k| {
                let x = rescale(x, k.scale)?;
                Some(holding(p.cmp, &k.keys, &x))
            });
            p.apply_range(
                Some(fast.unwrap_or_else(|| holding(p.cmp, &p.keys, &x))),
                bits,
            );
        }
        for p in &self.floats {
            // A missing or NaN fact fails every comparison.
            p.apply(p.get.value(cx).filter(|v| !v.is_nan()).as_ref(), bits);
        }
    }

    /// Whether a candidate matches without evaluating its conditions.
    #[inline(always)]
    pub(crate) fn exact(&self, rule: usize) -> bool {
        has(&self.exact, rule)
    }

    /// The rules that match whenever they are candidates, one bit per rule.
    #[inline(always)]
    pub(crate) fn plain(&self) -> &[u64] {
        &self.plain
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
#[cfg(test)]
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

    const NEGATED: &str = r#"rules:
  - {id: not-uk, name: a, category: fraud_prevention, priority: 90, condition_logic: AND,
     conditions: [{field: shipping_zone, operator: not_in, value: [UK, CA, UK]}, {field: quantity, operator: less_than, value: 5}],
     actions: [{type: log_analytics_event}]}
  - {id: vip-not-p1, name: a, category: fraud_prevention, priority: 80, condition_logic: AND,
     conditions: [{field: customer_tier, operator: equals, value: vip}, {field: product_id, operator: not_equals, value: p1}],
     actions: [{type: log_analytics_event}]}
  - {id: not-p2-priced, name: a, category: fraud_prevention, priority: 70, condition_logic: AND,
     conditions: [{field: product_id, operator: not_in, value: [p2]}, {field: price, operator: greater_than, value: 40}, {field: hours_until_deadline, operator: less_than, value: 2}],
     actions: [{type: log_analytics_event}]}
  - {id: limited, name: a, category: fraud_prevention, priority: 60, condition_logic: AND, max_executions_per_hour: 3,
     conditions: [{field: quantity, operator: equals, value: 3}],
     actions: [{type: log_analytics_event}]}
  - {id: windowed, name: a, category: fraud_prevention, priority: 50, condition_logic: OR, valid_from: 2025-01-01T00:00:00Z,
     conditions: [{field: quantity, operator: equals, value: 3}],
     actions: [{type: log_analytics_event}]}
"#;

    #[test]
    fn failing_tests_exclude_and_rules() {
        let pack = PackLoader::new().load_str("t.yaml", NEGATED).unwrap();
        // Negated string tests are indexed in AND rules: nothing is visited always.
        assert_eq!(pack.index.always_visited(), 0);
        let with =
            |zone: &str, deadline: &str| format!(r#","customer_tier":"vip"{zone}{deadline}"#);
        let soon = r#","deadline":"2025-03-01T13:00:00Z""#;
        // A missing zone fails `not_in`; a missing deadline fails `<`.
        assert_eq!(
            candidates(&pack, &order("p3", 3, "49.99", &with("", ""))),
            ["vip-not-p1*", "limited*", "windowed*"]
        );
        assert_eq!(
            candidates(
                &pack,
                &order("p3", 3, "49.99", &with(r#","shipping_zone":"US""#, soon))
            ),
            [
                "not-uk*",
                "vip-not-p1*",
                "not-p2-priced*",
                "limited*",
                "windowed*"
            ]
        );
        assert_eq!(
            candidates(
                &pack,
                &order("p1", 5, "40", &with(r#","shipping_zone":"CA""#, soon))
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            candidates(
                &pack,
                &order("p2", 4, "41", &with(r#","shipping_zone":"UK""#, soon))
            ),
            ["vip-not-p1*"]
        );
        // Rules with an hourly limit or a validity window are exact, not plain.
        let plain: Vec<&str> = (0..pack.rules().len())
            .filter(|i| has(pack.index.plain(), *i))
            .map(|i| pack.rules()[i].id.as_str())
            .collect();
        assert_eq!(plain, ["not-uk", "vip-not-p1", "not-p2-priced"]);
    }

    #[test]
    fn decimal_thresholds_compare_as_integers_exactly() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        let keys: Vec<Decimal> = ["-3.5", "0", "5", "49.99", "49.990", "150.375", "1e3"]
            .iter()
            .map(|k| d(k))
            .collect();
        let scaled = ScaledKeys::of(&keys).unwrap();
        assert_eq!(scaled.scale, MIN_SCALE);
        for x in [
            "-4",
            "-3.50",
            "-0",
            "0.000",
            "4.9999",
            "5",
            "49.99",
            "49.9900",
            "49.991",
            "150.375",
            "150.3751",
            "1000",
            "1000.0001",
            "99999999999999",
        ] {
            let x = d(x);
            for cmp in [Cmp::Eq, Cmp::Gt, Cmp::Ge, Cmp::Lt, Cmp::Le] {
                let want = holding(cmp, &keys, &x);
                // A fact of a larger scale than the thresholds' is compared as a decimal.
                if let Some(xi) = rescale(x, scaled.scale) {
                    assert_eq!(holding(cmp, &scaled.keys, &xi), want, "{x} {cmp:?}");
                } else {
                    assert!(x.scale() > scaled.scale, "{x}");
                }
            }
        }
        // Thresholds that do not fit at one scale are not scaled.
        assert!(ScaledKeys::of(&[Decimal::MAX, Decimal::new(1, 28)]).is_none());
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
