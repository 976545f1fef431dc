//! The shipped viral rules through `creatorflow eval` with enrichment on (its
//! default), on a generated day (`support/viral_day.rs`): steady best sellers
//! at 60, 150 and 500 orders an hour and a long tail are never VIRAL, and a
//! product jumping from about 5 an hour to 2,000 an hour is VIRAL within 10
//! minutes, from a fresh start (orders from midnight, the spike at noon) and
//! after a day of history.

#[path = "support/viral_day.rs"]
mod viral_day;

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::TimeDelta;
use serde_json::Value;
use viral_day::{Plan, SPIKE_PRODUCT};

/// Runs `eval` (enrichment on) over the plan's orders; one decision per order.
fn eval(plan: &Plan) -> (Vec<viral_day::Gen>, Vec<Value>) {
    let orders = viral_day::orders(plan);
    let input = viral_day::jsonl(&orders);
    let mut child = Command::new(env!("CARGO_BIN_EXE_creatorflow"))
        .args(["eval", "--orders", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn creatorflow");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(decisions.len(), orders.len());
    (orders, decisions)
}

fn viral_rules(d: &Value) -> Vec<&str> {
    d["matched"]
        .as_array()
        .expect("matched")
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| id.starts_with("viral-"))
        .collect()
}

/// Checks the decisions; returns minutes from the spike's start to its first
/// VIRAL order.
fn check(plan: &Plan) -> f64 {
    let (orders, decisions) = eval(plan);
    let mut first_viral = None;
    let (mut held, mut held_viral) = (0usize, 0usize);
    let mut steady = 0usize;
    for (o, d) in orders.iter().zip(&decisions) {
        assert_eq!(d["order_id"], o.id.as_str());
        let viral = d["impact"] == "VIRAL";
        if o.product != SPIKE_PRODUCT {
            steady += 1;
            assert!(
                !viral && viral_rules(d).is_empty(),
                "a steady product flagged: {} at {}: {d}",
                o.product,
                o.at
            );
            continue;
        }
        if o.at < plan.spike_start {
            assert!(!viral, "before the spike, at {}: {d}", o.at);
            continue;
        }
        if viral && first_viral.is_none() {
            first_viral = Some(o.at);
        }
        if o.at >= plan.spike_start + TimeDelta::minutes(10) && o.at < plan.spike_end() {
            held += 1;
            held_viral += usize::from(viral);
        }
    }
    assert!(steady > 17_000, "{steady} orders of other products");
    let first = first_viral.expect("the spike is flagged");
    let minutes = (first - plan.spike_start).num_milliseconds() as f64 / 60_000.0;
    assert!(
        minutes < 10.0,
        "first VIRAL order {minutes:.1} min after the start"
    );
    assert!(held > 2_500, "{held} spike orders");
    assert_eq!(
        held_viral, held,
        "every order of the spike from its 10th minute on is VIRAL"
    );
    println!(
        "{} orders from {}: spike VIRAL after {minutes:.2} min, {held_viral}/{held} held-spike orders VIRAL, {steady} other orders, none VIRAL",
        orders.len(),
        plan.start
    );
    minutes
}

#[test]
fn fresh_start_steady_sellers_never_viral_and_the_noon_spike_is_flagged() {
    check(&Plan::fresh());
}

#[test]
fn warm_detector_steady_sellers_never_viral_and_the_spike_is_flagged() {
    check(&Plan::warm());
}
