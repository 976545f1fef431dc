//! Rule-engine benchmarks.
//!
//! - `shipped_pack/10k_varied_orders`: the shipped pack over 10,000 varied,
//!   deterministic orders (fresh engine per iteration, one reused `Decision`);
//!   throughput in orders/s.
//! - `synthetic_1000_rules/per_order`: a generated 1,000-rule pack (varied
//!   fields and operators, AND/OR, a few window facts), one order per iteration.
//! - `all_custom/per_order`, `all_custom_rhai/per_order` and `all_and/per_order`:
//!   20 CUSTOM rules as written (most compile to the native boolean evaluator),
//!   the same logic forced through the Rhai sandbox, and the same 20 rules'
//!   conditions as AND rules; (custom - and) / 20 is the cost of one CUSTOM rule.
//! - `realistic_{20,100,1000}_rules/per_order`: packs shaped like real ones
//!   (`packs/mod.rs`: a third OR, two to four conditions over tiers, products,
//!   zones, prices and quantities, about a third of the rules matching an
//!   order), one order per iteration; the mean number of matches per order is
//!   printed first.
//! - `load/1000_rules`: loading and compiling the 1,000-rule pack from YAML text.
//!
//! The per-order benches feed an endless stream: a fixed set of orders replayed
//! with `created_at` (and `deadline`) shifted forward on each pass, so windows
//! and rate-limit logs stay in their steady state instead of piling up entries
//! at the same instants.
//!
//! Run with `cargo bench --bench rules` (about a minute), or add `-- --quick`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use creatorflow::Order;
use creatorflow::rules::{Decision, PackLoader, RuleEngine, RulePack};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod packs;

use packs::orders::VIRAL;
use packs::{Stream, TIERS, ZONES, varied_orders};

/// A 1,000-rule pack: varied fields and operators, AND and OR, a few window facts.
fn synthetic_pack_yaml(rules: usize, seed: u64) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = String::from("rules:\n");
    for i in 0..rules {
        let n_conds = rng.random_range(1..=4);
        let mut conds = String::new();
        for _ in 0..n_conds {
            let c = match rng.random_range(0..14) {
                0 => format!(
                    "{{field: quantity, operator: greater_than, value: {}}}",
                    rng.random_range(0..30)
                ),
                1 => format!(
                    "{{field: order_value, operator: greater_than_or_equal, value: {}.{}}}",
                    rng.random_range(0..400),
                    rng.random_range(0..100)
                ),
                2 => format!(
                    "{{field: price, operator: less_than, value: {}}}",
                    rng.random_range(5..100)
                ),
                3 => format!(
                    "{{field: customer_tier, operator: equals, value: {}}}",
                    TIERS[rng.random_range(0..TIERS.len())]
                ),
                4 => format!(
                    "{{field: shipping_zone, operator: in, value: [{}, {}]}}",
                    ZONES[rng.random_range(0..ZONES.len())],
                    ZONES[rng.random_range(0..ZONES.len())]
                ),
                5 => format!(
                    "{{field: shipping_zone, operator: not_in, value: [{}]}}",
                    ZONES[rng.random_range(0..ZONES.len())]
                ),
                6 => format!(
                    "{{field: viral_indicator_types, operator: contains, value: {}}}",
                    VIRAL[rng.random_range(0..VIRAL.len())]
                ),
                7 => format!(
                    "{{field: hours_until_deadline, operator: less_than, value: {}}}",
                    rng.random_range(-2..48)
                ),
                8 => format!(
                    "{{field: product_id, operator: not_equals, value: prod-{}}}",
                    rng.random_range(0..200)
                ),
                9 => format!(
                    "{{field: customer_handle, operator: contains, value: '{}'}}",
                    rng.random_range(0..100)
                ),
                10 => "{field: user.creator_tier, operator: exists}".to_owned(),
                11 => format!(
                    "{{field: velocity_multiplier, operator: greater_than_or_equal, value: {}.5}}",
                    rng.random_range(1..4)
                ),
                12 => format!(
                    "{{field: orders_per_hour_current, operator: greater_than, value: {}}}",
                    rng.random_range(10..60)
                ),
                // Window facts: a handful of distinct windows, as a real pack has.
                _ => {
                    let (field, win) = match rng.random_range(0..3) {
                        0 => ("product_orders", "1h"),
                        1 => ("customer_orders", "24h"),
                        _ => ("product_units", "90m"),
                    };
                    format!(
                        "{{field: {field}, operator: greater_than, value: {}, time_window: {win}}}",
                        rng.random_range(1..30)
                    )
                }
            };
            let _ = write!(conds, "{}{c}", if conds.is_empty() { "" } else { ", " });
        }
        let logic = if rng.random_bool(0.3) { "OR" } else { "AND" };
        let (action, limit) = packs::action_and_limit(&mut rng, "synthetic");
        let _ = write!(
            s,
            "  - id: syn-{i:04}\n    name: Synthetic rule {i}\n    category: priority_classification\n    priority: {}\n{limit}    condition_logic: {logic}\n    conditions: [{conds}]\n    actions: [{action}]\n",
            rng.random_range(0..=100),
        );
    }
    s
}

/// How `custom_pack_yaml` writes the rules.
#[derive(Clone, Copy, PartialEq)]
enum Logic {
    /// CUSTOM logic as written (three templates in four are in the native subset).
    Custom,
    /// The same logic wrapped in `if (...) { true } else { false }`, which always runs in Rhai.
    CustomRhai,
    /// The conditions plus the `order.<field>` test as a third condition, as AND rules.
    And,
}

/// 20 CUSTOM rules with small expressions, in one of the `Logic` forms.
fn custom_pack_yaml(mode: Logic) -> String {
    // (conditions, custom_logic, the `order` test as a condition)
    let templates: &[(&str, &str, &str)] = &[
        (
            "[{field: customer_tier, operator: equals, value: vip}, {field: price, operator: greater_than, value: 50}]",
            "c0 && (c1 || order.quantity > 2)",
            "{field: quantity, operator: greater_than, value: 2}",
        ),
        (
            "[{field: quantity, operator: greater_than_or_equal, value: 2}, {field: shipping_zone, operator: in, value: [CA, UK, AU]}]",
            "(c0 || c1) && order.price >= 20.0",
            "{field: price, operator: greater_than_or_equal, value: 20}",
        ),
        (
            "[{name: new_buyer, field: customer_tier, operator: equals, value: new}, {name: big, field: order_value, operator: greater_than, value: 100}]",
            "new_buyer && (big || order.quantity >= 10)",
            "{field: quantity, operator: greater_than_or_equal, value: 10}",
        ),
        (
            "[{field: viral_indicator_types, operator: contains, value: content_spike}, {field: hours_until_deadline, operator: less_than, value: 12}]",
            "!c0 || (c1 && order.customer_tier == \"vip\")",
            "{field: customer_tier, operator: equals, value: vip}",
        ),
    ];
    let mut s = String::from("rules:\n");
    for i in 0..20 {
        let (conds, logic, extra) = templates[i % templates.len()];
        let logic = if mode == Logic::CustomRhai {
            format!("if ({logic}) {{ true }} else {{ false }}")
        } else {
            logic.to_owned()
        };
        let (logic_lines, conds) = if mode != Logic::And {
            (
                format!(
                    "    condition_logic: CUSTOM\n    custom_logic: '{}'\n",
                    logic.replace('\'', "''")
                ),
                conds.to_owned(),
            )
        } else {
            (
                "    condition_logic: AND\n".to_owned(),
                format!("{}, {extra}]", conds.trim_end_matches(']')),
            )
        };
        let _ = write!(
            s,
            "  - id: rule-{i:02}\n    name: Rule {i}\n    category: fraud_prevention\n    priority: {}\n{logic_lines}    conditions: {conds}\n    actions: [{{type: escalate_to_manual, parameters: {{queue: review}}}}]\n",
            100 - i
        );
    }
    s
}

fn load(name: &str, yaml: &str) -> RulePack {
    PackLoader::new()
        .load_str(name, yaml)
        .unwrap_or_else(|e| panic!("{name} does not load:\n{e}"))
}

/// One order per iteration, on an engine that keeps its state across iterations.
fn per_order(c: &mut Criterion, group: &str, pack: RulePack, orders: Vec<Order>) {
    let pack = Arc::new(pack);
    let mut probe = RuleEngine::new(Arc::clone(&pack));
    let matches: usize = orders
        .iter()
        .map(|o| probe.evaluate(o, None).matched.len())
        .sum();
    eprintln!(
        "{group}: {} rules, {:.1} matches per order",
        pack.rules().len(),
        matches as f64 / orders.len() as f64
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let mut engine = RuleEngine::new(pack);
    let mut stream = Stream::new(orders);
    let mut decision = Decision::default();
    g.bench_function("per_order", |b| {
        b.iter(|| {
            engine.evaluate_into(stream.next(), None, &mut decision);
            black_box(decision.matched.len())
        })
    });
    g.finish();
}

fn bench_shipped(c: &mut Criterion) {
    let pack = Arc::new(RulePack::shipped());
    let orders = varied_orders(10_000, 7);
    let mut g = c.benchmark_group("shipped_pack");
    g.throughput(Throughput::Elements(orders.len() as u64));
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    let mut decision = Decision::default();
    g.bench_function("10k_varied_orders", |b| {
        b.iter(|| {
            let mut engine = RuleEngine::new(Arc::clone(&pack));
            let mut fired = 0usize;
            for o in &orders {
                engine.evaluate_into(o, None, &mut decision);
                fired += decision.matched.len();
            }
            black_box(fired)
        })
    });
    g.finish();
}

fn bench_synthetic(c: &mut Criterion) {
    let pack = load("synthetic.yaml", &synthetic_pack_yaml(1_000, 11));
    per_order(c, "synthetic_1000_rules", pack, varied_orders(4_096, 13));
}

fn bench_realistic(c: &mut Criterion) {
    for (rules, seed) in [(20, 21), (100, 23), (1_000, 29)] {
        let pack = load("realistic.yaml", &packs::realistic_pack_yaml(rules, seed));
        per_order(
            c,
            &format!("realistic_{rules}_rules"),
            pack,
            varied_orders(4_096, 13),
        );
    }
}

fn bench_custom(c: &mut Criterion) {
    let custom = load("custom.yaml", &custom_pack_yaml(Logic::Custom));
    let rhai = load("custom_rhai.yaml", &custom_pack_yaml(Logic::CustomRhai));
    let and = load("and.yaml", &custom_pack_yaml(Logic::And));
    per_order(c, "all_custom", custom, varied_orders(4_096, 17));
    per_order(c, "all_custom_rhai", rhai, varied_orders(4_096, 17));
    per_order(c, "all_and", and, varied_orders(4_096, 17));
}

fn bench_load(c: &mut Criterion) {
    let yaml = synthetic_pack_yaml(1_000, 11);
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Elements(1_000));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("1000_rules", |b| {
        b.iter(|| black_box(load("synthetic.yaml", black_box(&yaml)).rules().len()))
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_shipped, bench_synthetic, bench_realistic, bench_custom, bench_load
}
criterion_main!(benches);
