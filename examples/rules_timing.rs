//! A plain timing loop over the realistic rule packs of `benches/packs/`
//! (the packs and orders of `cargo bench --bench rules -- realistic`), for
//! wall times on a quiet machine and instruction counts under callgrind.
//!
//! ```text
//! cargo run --release --example rules_timing -- [RULES] [ORDERS]
//! ```
//!
//! `RULES` is 20, 100 or 1000 (default 1000; the bench's seeds), `shipped`
//! for the shipped pack; `ORDERS` the timed `evaluate_into` calls (default
//! 100,000), after 4,096 of warm-up. Per order:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --example rules_timing
//! valgrind --tool=callgrind --toggle-collect='*evaluate_into*' \
//!     target/release/examples/rules_timing 1000 20000
//! ```
//!
//! then the instructions collected divided by (4,096 + `ORDERS`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use creatorflow::rules::{Decision, PackLoader, RuleEngine, RulePack};

#[path = "../benches/packs/mod.rs"]
mod packs;

const WARM_UP: usize = 4_096;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "1000".to_owned());
    let n: usize = match args.next() {
        Some(a) => a
            .parse()
            .map_err(|_| format!("ORDERS is a number, not {a}"))?,
        None => 100_000,
    };
    let pack = if which == "shipped" {
        RulePack::shipped()
    } else {
        let (rules, seed) = match which.as_str() {
            "20" => (20, 21),
            "100" => (100, 23),
            "1000" => (1_000, 29),
            other => return Err(format!("RULES is 20, 100, 1000 or shipped, not {other}")),
        };
        PackLoader::new()
            .load_str("realistic.yaml", &packs::realistic_pack_yaml(rules, seed))
            .map_err(|e| format!("the realistic pack does not load:\n{e}"))?
    };
    let pack = Arc::new(pack);
    let mut engine = RuleEngine::new(Arc::clone(&pack));
    let mut stream = packs::Stream::new(packs::varied_orders(4_096, 13));
    let mut decision = Decision::default();
    for _ in 0..WARM_UP {
        engine.evaluate_into(stream.next(), None, &mut decision);
    }
    let mut matches = 0usize;
    let started = Instant::now();
    for _ in 0..n {
        engine.evaluate_into(stream.next(), None, &mut decision);
        matches += black_box(decision.matched.len());
    }
    let elapsed = started.elapsed();
    println!(
        "{which}: {} rules, {n} orders, {:.3} µs per order, {:.1} matches per order",
        pack.rules().len(),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        matches as f64 / n as f64
    );
    Ok(())
}
