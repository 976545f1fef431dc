//! Evaluating a pack against orders: the stateful [`RuleEngine`].

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use rhai::Scope;
use serde::Serialize;

use super::compiled::Ctx;
use super::def::{Applicability, ConditionLogic, Rule, WindowKind};
use super::explain::{ConditionExplanation, Explanation, Verdict};
use super::facts::Fact;
use super::index::Candidates;
use super::ops::operand_json;
use super::pack::RulePack;
use super::stats::{RuleStats, Stamp, StatsAcc};
use super::window::{KeyedWindows, TimeLog};
use crate::model::{Impact, Order, Priority};
use crate::script::order_map;

const HOUR_MS: i64 = 3_600_000;
/// How late (behind the newest `created_at` seen) an order may arrive and still see exact window counts.
pub const DEFAULT_LATENESS_MS: i64 = HOUR_MS;

/// The outcome of evaluating a pack against one order. Rules are referred to
/// by their index in the pack's evaluation order; [`Decision::report`] resolves them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Fired rules, in evaluation order.
    pub matched: Vec<u32>,
    /// Rules that matched but were over their hourly limit.
    pub rate_limited: Vec<u32>,
    /// Rules that errored, with the message.
    pub errors: Vec<(u32, String)>,
    /// The order's priority after escalations.
    pub priority: Priority,
    /// The order's impact after escalations.
    pub impact: Impact,
    priority_set: bool,
    impact_set: bool,
}

impl Decision {
    fn clear(&mut self, order: &Order) {
        self.matched.clear();
        self.rate_limited.clear();
        self.errors.clear();
        self.priority = order.priority;
        self.impact = order.impact;
        self.priority_set = false;
        self.impact_set = false;
    }

    /// The actions of the fired rules, in order, not de-duplicated.
    pub fn actions<'p>(
        &self,
        pack: &'p RulePack,
    ) -> impl Iterator<Item = &'p crate::model::action::ActionSpec> + use<'_, 'p> {
        self.matched
            .iter()
            .flat_map(move |i| pack.rules()[*i as usize].actions.iter())
    }

    /// The decision in the `eval` output format of rules.md.
    pub fn report<'p>(&self, pack: &'p RulePack, order_id: &'p str) -> DecisionReport<'p> {
        let id = |i: &u32| pack.rules()[*i as usize].id.as_str();
        DecisionReport {
            order_id,
            matched: self.matched.iter().map(id).collect(),
            priority: self.priority,
            impact: self.impact,
            actions: self.actions(pack).map(|a| a.kind.as_str()).collect(),
            rate_limited: self.rate_limited.iter().map(id).collect(),
            errors: self
                .errors
                .iter()
                .map(|(i, m)| RuleErrorReport {
                    rule: id(i),
                    message: m.clone(),
                })
                .collect(),
        }
    }
}

/// One line of `creatorflow eval` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionReport<'a> {
    /// The order's `tiktok_order_id`.
    pub order_id: &'a str,
    /// Ids of the fired rules, in evaluation order.
    pub matched: Vec<&'a str>,
    /// Resulting priority.
    pub priority: Priority,
    /// Resulting impact.
    pub impact: Impact,
    /// Action types of the fired rules, in order.
    pub actions: Vec<&'a str>,
    /// Ids of rate-limited rules.
    pub rate_limited: Vec<&'a str>,
    /// Rules that errored.
    pub errors: Vec<RuleErrorReport<'a>>,
}

/// A rule error in a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleErrorReport<'a> {
    /// The rule id.
    pub rule: &'a str,
    /// What went wrong.
    pub message: String,
}

/// Evaluates a [`RulePack`] against a stream of orders, keeping what the
/// semantics need across orders: window-fact counts, rate-limit logs and
/// per-rule statistics. Evaluation does no I/O and, with
/// [`RuleEngine::evaluate_into`], no allocation per order for AND/OR rules.
///
/// ```
/// use std::sync::Arc;
/// use creatorflow::{Order, rules::{RuleEngine, RulePack}};
/// let mut engine = RuleEngine::new(Arc::new(RulePack::shipped()));
/// let order = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@vip",
///     "customer_tier":"vip","product_name":"Lamp","product_id":"p1","quantity":1,
///     "price":"20.00","created_at":"2025-03-01T12:00:00Z"}"#).unwrap();
/// let decision = engine.evaluate(&order, None);
/// let report = decision.report(engine.pack(), &order.tiktok_order_id);
/// assert!(!report.matched.is_empty());
/// ```
pub struct RuleEngine {
    pack: Arc<RulePack>,
    st: State,
}

/// Everything an evaluation changes, apart from the (immutable) pack.
struct State {
    products: KeyedWindows,
    customers: KeyedWindows,
    newest_ms: i64,
    lateness_ms: i64,
    window_values: Vec<i64>,
    fires: Vec<TimeLog>,
    stats: Vec<StatsAcc>,
    results: Vec<bool>,
    /// Per order: 0 = not evaluated yet, 1 = false, 2 = true, for each of the pack's distinct tests.
    memo: Vec<u8>,
    /// Per order: the rules to visit (`index.rs`).
    candidates: Candidates,
    scope: Scope<'static>,
    evaluations: u64,
}

impl std::fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEngine")
            .field("rules", &self.pack.rules().len())
            .finish_non_exhaustive()
    }
}

/// Receives what an evaluation finds; the no-op one compiles away.
trait Observer {
    const DETAILED: bool;
    fn condition(&mut self, _rule: usize, _cond: usize, _fact: &Fact<'_>, _result: bool) {}
    fn verdict(&mut self, _rule: usize, _verdict: Verdict) {}
}

struct Quiet;
impl Observer for Quiet {
    const DETAILED: bool = false;
}

struct Recorder<'p> {
    pack: &'p RulePack,
    out: Vec<Explanation>,
}

impl Observer for Recorder<'_> {
    const DETAILED: bool = true;
    fn condition(&mut self, rule: usize, cond: usize, fact: &Fact<'_>, result: bool) {
        let c = &self.pack.rules()[rule].conditions[cond];
        let e = &mut self.out[rule];
        e.conditions.push(ConditionExplanation {
            index: cond,
            name: c.name.clone(),
            field: c.field.name(),
            time_window: c.time_window_text.clone(),
            actual: if matches!(fact, Fact::Missing) {
                None
            } else {
                Some(fact.to_json())
            },
            operator: c.operator.as_str(),
            expected: operand_json(&c.operand),
            result,
        });
    }
    fn verdict(&mut self, rule: usize, verdict: Verdict) {
        self.out[rule].verdict = verdict;
    }
}

impl RuleEngine {
    /// An engine with empty windows and statistics.
    pub fn new(pack: Arc<RulePack>) -> Self {
        let n = pack.rules().len();
        let st = State {
            products: KeyedWindows::default(),
            // Customer windows count orders, never units.
            customers: KeyedWindows::counts_only(),
            newest_ms: i64::MIN,
            lateness_ms: DEFAULT_LATENESS_MS,
            window_values: vec![0; pack.windows().len()],
            fires: vec![TimeLog::default(); n],
            stats: vec![StatsAcc::default(); n],
            results: Vec::with_capacity(16),
            memo: Vec::new(),
            candidates: Candidates::default(),
            scope: Scope::new(),
            evaluations: 0,
        };
        RuleEngine { pack, st }
    }

    /// Sets how far behind the newest order an out-of-order order may arrive
    /// and still see exact window counts and rate limits (default one hour).
    pub fn with_lateness(mut self, lateness: chrono::TimeDelta) -> Self {
        self.st.lateness_ms = lateness.num_milliseconds().max(0);
        self
    }

    /// The pack.
    pub fn pack(&self) -> &Arc<RulePack> {
        &self.pack
    }

    /// Ingests `order` into the window facts and evaluates the pack at `now`
    /// (the order's `created_at` when `None`), taking rate limits and
    /// statistics into account.
    pub fn evaluate(&mut self, order: &Order, now: Option<DateTime<Utc>>) -> Decision {
        let mut d = Decision::default();
        self.evaluate_into(order, now, &mut d);
        d
    }

    /// [`RuleEngine::evaluate`], reusing `out`'s buffers.
    pub fn evaluate_into(&mut self, order: &Order, now: Option<DateTime<Utc>>, out: &mut Decision) {
        self.st.ingest(&self.pack, order);
        let t = now.unwrap_or(order.created_at);
        self.st.run(&self.pack, order, t, out, &mut Quiet);
    }

    /// Like [`RuleEngine::evaluate`], and also explains every rule: each
    /// condition's field, actual value, operator, expected value and result,
    /// and why the rule did or did not fire.
    pub fn evaluate_explained(
        &mut self,
        order: &Order,
        now: Option<DateTime<Utc>>,
    ) -> (Decision, Vec<Explanation>) {
        self.st.ingest(&self.pack, order);
        let t = now.unwrap_or(order.created_at);
        let mut d = Decision::default();
        let mut rec = Recorder::new(&self.pack);
        self.st.run(&self.pack, order, t, &mut d, &mut rec);
        (d, rec.out)
    }

    /// Explains one rule for `order` without changing anything: the order is
    /// counted in the window facts as if it were being ingested now, and no
    /// statistics or rate-limit entries are recorded. `None` if no rule has that id.
    pub fn explain(
        &mut self,
        order: &Order,
        now: Option<DateTime<Utc>>,
        rule_id: &str,
    ) -> Option<Explanation> {
        let idx = self.pack.index_of(rule_id)?;
        let t = now.unwrap_or(order.created_at);
        self.st.fill_windows(&self.pack, order, 1);
        let mut rec = Recorder::new(&self.pack);
        let mut d = Decision::default();
        d.clear(order);
        let windows = std::mem::take(&mut self.st.window_values);
        let cx = Ctx::new(order, t.timestamp_millis(), &windows);
        self.st
            .eval_rule(&self.pack, idx, &cx, t, &mut d, &mut rec, false, false);
        self.st.window_values = windows;
        Some(rec.out.swap_remove(idx))
    }

    /// Per-rule statistics, in evaluation order.
    pub fn stats(&self) -> Vec<RuleStats> {
        self.pack
            .rules()
            .iter()
            .zip(&self.st.stats)
            .map(|(r, s)| s.snapshot(&r.id))
            .collect()
    }

    /// Counts a past order in the window facts without evaluating the pack
    /// (no statistics, no rate-limit entry): how the windows are rebuilt
    /// from the store after a restart. Feed orders oldest first.
    pub fn record(&mut self, order: &Order) {
        self.st.record(&self.pack, order);
    }

    /// How far back the window facts reach (the longest `time_window` of
    /// the pack); zero when the pack has none.
    pub fn window_reach(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::milliseconds(self.pack.max_window_ms())
    }

    /// Window entries held in memory (for sizing).
    pub fn window_entries(&self) -> usize {
        self.st.products.len() + self.st.customers.len()
    }

    /// Whether the window facts this engine holds are everything `pack`'s
    /// windows count: the orders of each kind of key `pack` counts by
    /// (product, customer) were recorded, as far back as `pack` reaches.
    /// When they are, [`RuleEngine::swap_pack`] loses nothing; otherwise the
    /// windows must be rebuilt from the orders (as after a restart).
    pub fn holds_windows_for(&self, pack: &RulePack) -> bool {
        // Each kind of key is held as far back as the held pack's longest
        // window of that kind.
        let covered = |wanted: Option<i64>, held: Option<i64>| match (wanted, held) {
            (None, _) => true,
            (Some(w), Some(h)) => w <= h,
            (Some(_), None) => false,
        };
        covered(pack.product_reach_ms(), self.pack.product_reach_ms())
            && covered(pack.customer_reach_ms(), self.pack.customer_reach_ms())
    }

    /// Evaluates `pack` from now on, keeping what does not depend on the
    /// pack: the window facts (orders counted per product and customer; see
    /// [`RuleEngine::holds_windows_for`]) and, for every rule of `pack`
    /// whose id the old pack has, its rate-limit log and statistics (other
    /// rules start afresh).
    pub fn swap_pack(&mut self, pack: Arc<RulePack>) {
        let n = pack.rules().len();
        let mut fires = vec![TimeLog::default(); n];
        let mut stats = vec![StatsAcc::default(); n];
        for (i, r) in pack.rules().iter().enumerate() {
            if let Some(j) = self.pack.index_of(&r.id) {
                fires[i] = std::mem::take(&mut self.st.fires[j]);
                stats[i] = std::mem::take(&mut self.st.stats[j]);
            }
        }
        self.st.fires = fires;
        self.st.stats = stats;
        self.st.window_values = vec![0; pack.windows().len()];
        self.pack = pack;
    }
}

impl Recorder<'_> {
    fn new(pack: &RulePack) -> Recorder<'_> {
        Recorder {
            pack,
            out: pack.rules().iter().map(Explanation::new).collect(),
        }
    }
}

impl State {
    fn ingest(&mut self, pack: &RulePack, order: &Order) {
        if pack.windows().is_empty() {
            return;
        }
        self.record(pack, order);
        self.fill_windows(pack, order, 0);
    }

    /// Counts `order` in the windows (pruning what fell out of reach: each
    /// kind of key keeps only as far back as its own longest window, plus
    /// the lateness allowance).
    fn record(&mut self, pack: &RulePack, order: &Order) {
        if pack.windows().is_empty() {
            return;
        }
        let ts = order.created_at.timestamp_millis();
        self.newest_ms = self.newest_ms.max(ts);
        let cutoff = |reach: i64| self.newest_ms.saturating_sub(reach + self.lateness_ms);
        let units = u64::from(order.quantity);
        if let Some(reach) = pack.product_reach_ms() {
            let cutoff = cutoff(reach);
            self.products
                .insert_and_prune(&order.product_id, ts, units, cutoff);
        }
        if let Some(reach) = pack.customer_reach_ms() {
            let cutoff = cutoff(reach);
            self.customers
                .insert_and_prune(&order.customer_handle, ts, units, cutoff);
        }
    }

    /// Computes the window values for `order`; `extra` counts the order itself
    /// when it has not been ingested.
    fn fill_windows(&mut self, pack: &RulePack, order: &Order, extra: u64) {
        let hi = order.created_at.timestamp_millis();
        let product = self.products.get(&order.product_id);
        let customer = self.customers.get(&order.customer_handle);
        for (v, w) in self.window_values.iter_mut().zip(pack.windows()) {
            let lo = hi - w.window_ms;
            let series = match w.kind {
                WindowKind::CustomerOrders => customer,
                _ => product,
            };
            let (count, units) = series.map_or((0, 0), |s| s.range(lo, hi));
            *v = match w.kind {
                WindowKind::ProductUnits => (units + extra * u64::from(order.quantity)) as i64,
                _ => (count + extra) as i64,
            };
        }
    }

    fn run<O: Observer>(
        &mut self,
        pack: &RulePack,
        order: &Order,
        t: DateTime<Utc>,
        out: &mut Decision,
        obs: &mut O,
    ) {
        out.clear(order);
        self.evaluations += 1;
        let windows = std::mem::take(&mut self.window_values);
        let cx = Ctx::new(order, t.timestamp_millis(), &windows);
        self.memo.clear();
        self.memo.resize(pack.tests.len(), 0);
        // One rule per order, round robin, is timed for `average_execution_time_ms`
        // (and visited, candidate or not, so that the time is its evaluation's).
        let timed_rule = (self.evaluations % pack.rules().len().max(1) as u64) as usize;
        if O::DETAILED {
            // Explanations cover every rule.
            for idx in 0..pack.rules().len() {
                let started = (idx == timed_rule).then(Instant::now);
                self.eval_rule(pack, idx, &cx, t, out, obs, true, false);
                if let Some(s) = started {
                    self.stats[idx].sample(s.elapsed());
                }
            }
        } else {
            // Only the rules the order may match, in evaluation order (`index.rs`).
            let mut found = std::mem::take(&mut self.candidates);
            pack.index.candidates(&cx, &mut found);
            let stamp = Stamp::of(t);
            let mut timed = false;
            for (w, (word, plain)) in found.bits.iter().zip(pack.index.plain()).enumerate() {
                let mut b = *word;
                while b != 0 {
                    let idx = w * 64 + b.trailing_zeros() as usize;
                    let bit = b & b.wrapping_neg();
                    b &= b - 1;
                    if idx == timed_rule {
                        timed = true;
                        let started = Instant::now();
                        self.eval_rule(pack, idx, &cx, t, out, obs, true, false);
                        self.stats[idx].sample(started.elapsed());
                    } else if plain & bit != 0 {
                        // Matches, with nothing else to check: recorded, not visited.
                        self.fire(pack, idx, stamp, out);
                    } else {
                        let known = pack.index.exact(idx);
                        self.eval_rule(pack, idx, &cx, t, out, obs, true, known);
                    }
                }
            }
            if !timed && timed_rule < pack.rules().len() {
                // Not a candidate, so it cannot match: timed all the same.
                let started = Instant::now();
                let mut nothing = Decision::default();
                self.eval_rule(pack, timed_rule, &cx, t, &mut nothing, obs, false, false);
                self.stats[timed_rule].sample(started.elapsed());
            }
            self.candidates = found;
        }
        self.window_values = windows;
    }

    /// Records a match of a rule the index found `plain` (applicable, no
    /// hourly limit, its conditions known to hold): what the end of
    /// [`State::eval_rule`] does for a match, without the checks.
    #[inline(always)]
    fn fire(&mut self, pack: &RulePack, idx: usize, stamp: Stamp, out: &mut Decision) {
        out.matched.push(idx as u32);
        if !(out.priority_set && out.impact_set) {
            let (p, i) = pack.hot[idx].escalation;
            if let (Some(p), false) = (p, out.priority_set) {
                out.priority = p;
                out.priority_set = true;
            }
            if let (Some(i), false) = (i, out.impact_set) {
                out.impact = i;
                out.impact_set = true;
            }
        }
        if let Some(s) = self.stats.get_mut(idx) {
            s.success(stamp);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_rule<O: Observer>(
        &mut self,
        pack: &RulePack,
        idx: usize,
        cx: &Ctx<'_>,
        t: DateTime<Utc>,
        out: &mut Decision,
        obs: &mut O,
        record: bool,
        known: bool,
    ) {
        let hot = &pack.hot[idx];
        let rule = &pack.rules()[idx];
        let tests = &pack.refs[hot.start as usize..hot.end as usize];
        let t_ms = cx.now_ms;
        let order = cx.order;
        let applicability = hot.applicability(t_ms);
        if applicability != Applicability::Applicable {
            if O::DETAILED {
                self.conditions_detailed(idx, rule, cx, obs);
                obs.verdict(
                    idx,
                    match applicability {
                        Applicability::Disabled => Verdict::Disabled,
                        Applicability::NotYetValid => Verdict::NotYetValid,
                        _ => Verdict::Expired,
                    },
                );
            }
            return;
        }
        let matched = match hot.logic {
            // The index counted its conditions holding (`index.rs`).
            ConditionLogic::And | ConditionLogic::Or if known && !O::DETAILED => true,
            ConditionLogic::And if !O::DETAILED => tests
                .iter()
                .all(|i| memo_eval(&mut self.memo, pack, *i, cx)),
            ConditionLogic::Or if !O::DETAILED => tests
                .iter()
                .any(|i| memo_eval(&mut self.memo, pack, *i, cx)),
            ConditionLogic::And => self
                .conditions_detailed(idx, rule, cx, obs)
                .iter()
                .all(|r| *r),
            ConditionLogic::Or => self
                .conditions_detailed(idx, rule, cx, obs)
                .iter()
                .any(|r| *r),
            ConditionLogic::Custom => {
                if O::DETAILED {
                    self.conditions_detailed(idx, rule, cx, obs);
                } else {
                    self.results.clear();
                    let memo = &mut self.memo;
                    self.results
                        .extend(tests.iter().map(|i| memo_eval(memo, pack, *i, cx)));
                }
                let outcome = match &pack.native[idx] {
                    Some(native) => Ok(native.eval(&self.results, cx)),
                    None => self.run_custom(pack, rule, order, t),
                };
                match outcome {
                    Ok(m) => m,
                    Err(message) => {
                        if record {
                            self.stats[idx].error(Stamp::of(t));
                        }
                        obs.verdict(idx, Verdict::Error(message.clone()));
                        out.errors.push((idx as u32, message));
                        return;
                    }
                }
            }
        };
        if !matched {
            obs.verdict(idx, Verdict::NotMatched);
            return;
        }
        if hot.limit > 0 && self.fires[idx].count(t_ms - HOUR_MS, t_ms) >= hot.limit as usize {
            out.rate_limited.push(idx as u32);
            obs.verdict(idx, Verdict::RateLimited);
            return;
        }
        out.matched.push(idx as u32);
        if let (Some(p), false) = (hot.escalation.0, out.priority_set) {
            out.priority = p;
            out.priority_set = true;
        }
        if let (Some(i), false) = (hot.escalation.1, out.impact_set) {
            out.impact = i;
            out.impact_set = true;
        }
        obs.verdict(idx, Verdict::Matched);
        if record {
            if hot.limit > 0 {
                let log = &mut self.fires[idx];
                log.insert(t_ms);
                log.prune(t_ms - HOUR_MS - self.lateness_ms);
            }
            self.stats[idx].success(Stamp::of(t));
        }
    }

    /// Evaluates every condition of a rule, reporting each to the observer;
    /// leaves the results in `self.results`.
    fn conditions_detailed<O: Observer>(
        &mut self,
        idx: usize,
        rule: &Rule,
        cx: &Ctx<'_>,
        obs: &mut O,
    ) -> &[bool] {
        self.results.clear();
        for (ci, c) in rule.conditions.iter().enumerate() {
            let fact = c.fact(cx.order, cx.now_ms, cx.windows);
            let r = super::ops::apply(c.operator, &fact, &c.operand);
            obs.condition(idx, ci, &fact, r);
            self.results.push(r);
        }
        &self.results
    }

    fn run_custom(
        &mut self,
        pack: &RulePack,
        rule: &Rule,
        order: &Order,
        t: DateTime<Utc>,
    ) -> Result<bool, String> {
        let Some(script) = &rule.script else {
            return Err("rule has no compiled custom_logic".into());
        };
        self.scope.clear();
        self.scope
            .push("order", order_map(order, t, script.access()));
        for (i, r) in self.results.iter().enumerate() {
            match C_NAMES.get(i) {
                Some(name) => self.scope.push(*name, *r),
                None => self.scope.push(format!("c{i}"), *r),
            };
        }
        for (c, r) in rule.conditions.iter().zip(&self.results) {
            if let Some(name) = &c.name {
                self.scope.push(name.as_str(), *r);
            }
        }
        pack.sandbox.eval_bool(script, &mut self.scope)
    }
}

/// Evaluates the pack's test `i` once per order.
#[inline(always)]
fn memo_eval(memo: &mut [u8], pack: &RulePack, i: u32, cx: &Ctx<'_>) -> bool {
    let i = i as usize;
    match memo[i] {
        0 => {
            let r = pack.tests[i].eval(cx);
            memo[i] = 1 + u8::from(r);
            r
        }
        m => m == 2,
    }
}

/// `c0`, `c1`, ...: static names push into a Rhai scope without allocating.
const C_NAMES: [&str; 32] = [
    "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27",
    "c28", "c29", "c30", "c31",
];
