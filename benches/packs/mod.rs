//! A generator of rule packs shaped like real ones, for the per-order benches.
//!
//! Deterministic for a seed. About a third of the rules are OR, the rest
//! AND, with two to four conditions each over the stored order fields real
//! packs test: customer tiers, products, shipping zones, prices and
//! quantities (equality, `in`, ranges, and a product exclusion list, which is
//! not indexable). AND rules use loose conditions (most orders pass each),
//! OR rules tight ones (few orders pass each), so that about a third of the
//! rules match a typical order of `varied_orders` (the bench prints the mean).
//! Actions escalate, select a carrier or log; one rule in twenty has an
//! hourly limit.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub mod orders;

pub use orders::{Stream, TIERS, ZONES, varied_orders};

/// Products of `varied_orders`: `prod-0` .. `prod-199`.
const PRODUCTS: usize = 200;
const TIER_NAMES: &[&str] = &["vip", "regular", "new"];

fn product(rng: &mut StdRng) -> String {
    format!("prod-{}", rng.random_range(0..PRODUCTS))
}

/// `k` distinct items of `all`, as a YAML flow list.
fn some_of(rng: &mut StdRng, all: &[&str], k: usize) -> String {
    let mut picked: Vec<&str> = Vec::with_capacity(k);
    while picked.len() < k.min(all.len()) {
        let z = all[rng.random_range(0..all.len())];
        if !picked.contains(&z) {
            picked.push(z);
        }
    }
    picked.join(", ")
}

/// A condition most orders pass (for AND rules).
fn loose(rng: &mut StdRng) -> String {
    match rng.random_range(0..7) {
        0 => format!(
            "{{field: customer_tier, operator: in, value: [{}]}}",
            some_of(rng, TIER_NAMES, 2)
        ),
        1 => {
            let k = rng.random_range(4..=8);
            format!(
                "{{field: shipping_zone, operator: in, value: [{}]}}",
                some_of(rng, ZONES, k)
            )
        }
        2 => format!(
            "{{field: price, operator: less_than, value: {}.{:02}}}",
            rng.random_range(150..400),
            rng.random_range(0..100)
        ),
        3 => format!(
            "{{field: order_value, operator: greater_than_or_equal, value: {}}}",
            rng.random_range(5..150)
        ),
        4 => format!(
            "{{field: quantity, operator: less_than_or_equal, value: {}}}",
            rng.random_range(2..=5)
        ),
        5 => {
            let list: Vec<String> = (0..3).map(|_| product(rng)).collect();
            format!(
                "{{field: product_id, operator: not_in, value: [{}]}}",
                list.join(", ")
            )
        }
        _ => "{field: quantity, operator: greater_than_or_equal, value: 2}".to_owned(),
    }
}

/// A generated rule's action and its optional hourly limit (YAML), drawn
/// from `rng` in that order (the realistic and the synthetic packs alike);
/// `event` names the analytics event.
pub fn action_and_limit(rng: &mut StdRng, event: &str) -> (String, &'static str) {
    let action = match rng.random_range(0..4) {
        0 => format!(
            "{{type: escalate_priority, parameters: {{new_priority: {}, new_impact: {}}}}}",
            ["high", "urgent", "standard", "automated"][rng.random_range(0..4)],
            ["VIRAL", "HIGH", "MED", "AUTO"][rng.random_range(0..4)]
        ),
        1 => "{type: select_carrier, parameters: {carrier: UPS}}".to_owned(),
        2 => format!("{{type: log_analytics_event, parameters: {{event: {event}}}}}"),
        _ => "{type: send_customer_notification, parameters: {template: t}}".to_owned(),
    };
    let limit = if rng.random_bool(0.05) {
        "    max_executions_per_hour: 50\n"
    } else {
        ""
    };
    (action, limit)
}

/// A condition few orders pass (for OR rules).
fn tight(rng: &mut StdRng) -> String {
    match rng.random_range(0..5) {
        0 => {
            let k = rng.random_range(3..=15);
            let list: Vec<String> = (0..k).map(|_| product(rng)).collect();
            format!(
                "{{field: product_id, operator: in, value: [{}]}}",
                list.join(", ")
            )
        }
        1 => format!(
            "{{field: customer_tier, operator: equals, value: {}}}",
            ["vip", "new"][rng.random_range(0..2)]
        ),
        2 => format!(
            "{{field: shipping_zone, operator: equals, value: {}}}",
            ZONES[rng.random_range(0..ZONES.len())]
        ),
        3 => format!(
            "{{field: price, operator: greater_than, value: {}}}",
            rng.random_range(300..390)
        ),
        _ => format!(
            "{{field: quantity, operator: greater_than_or_equal, value: {}}}",
            rng.random_range(10..20)
        ),
    }
}

/// A pack of `rules` rules shaped like real ones (see the module docs).
pub fn realistic_pack_yaml(rules: usize, seed: u64) -> String {
    debug_assert!(TIERS.iter().all(|t| TIER_NAMES.contains(t)));
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = String::from("rules:\n");
    for i in 0..rules {
        let or = rng.random_range(0..3) == 0;
        let n = rng.random_range(2..=4);
        let conds: Vec<String> = (0..n)
            .map(|_| if or { tight(&mut rng) } else { loose(&mut rng) })
            .collect();
        let (action, limit) = action_and_limit(&mut rng, "realistic");
        let _ = write!(
            s,
            "  - id: real-{i:04}\n    name: Realistic rule {i}\n    category: priority_classification\n    priority: {}\n{limit}    condition_logic: {}\n    conditions: [{}]\n    actions: [{action}]\n",
            rng.random_range(0..=100),
            if or { "OR" } else { "AND" },
            conds.join(", "),
        );
    }
    s
}
