//! The shipped pack's tests (`rules/tests/`): they pass, they cover every
//! rule both firing and not firing, and the copy built into the crate is
//! the directory's.

use std::collections::BTreeSet;
use std::sync::Arc;

use creatorflow::packtest::{CaseSet, run_case};
use creatorflow::rules::RulePack;

fn shipped() -> (Arc<RulePack>, CaseSet) {
    let pack = Arc::new(RulePack::shipped());
    let cases = CaseSet::shipped(&pack).unwrap_or_else(|e| panic!("the shipped cases load:\n{e}"));
    (pack, cases)
}

#[test]
fn the_shipped_cases_pass_without_warnings() {
    let (pack, set) = shipped();
    assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    assert!(!set.cases.is_empty());
    let failed: Vec<String> = set
        .cases
        .iter()
        .filter_map(|c| {
            let r = run_case(&pack, c);
            (!r.passed()).then(|| {
                let why: Vec<String> = r.failures.iter().map(ToString::to_string).collect();
                format!("{}:{} {}: {}", c.file, c.pos.line, c.name, why.join("; "))
            })
        })
        .collect();
    assert!(
        failed.is_empty(),
        "failing shipped cases:\n{}",
        failed.join("\n")
    );
}

#[test]
fn every_shipped_rule_is_shown_firing_and_not_firing() {
    let (pack, set) = shipped();
    let mut fires = BTreeSet::new();
    let mut does_not = BTreeSet::new();
    for c in &set.cases {
        let e = &c.expect;
        for id in e.fired.iter().chain(&e.matched).flatten() {
            fires.insert(id.as_str());
        }
        for id in e.not_fired.iter().flatten() {
            does_not.insert(id.as_str());
        }
        // An exact `matched` shows every other rule not firing.
        if let Some(m) = &e.matched {
            for r in pack.rules() {
                if !m.contains(&r.id) {
                    does_not.insert(r.id.as_str());
                }
            }
        }
    }
    // A disabled rule (an opt-in shipped off, `enabled: false`) cannot fire
    // in the shipped pack: it is shown in the cases of a pack that enables it.
    let never_fires: Vec<&str> = pack
        .rules()
        .iter()
        .filter(|r| r.enabled)
        .map(|r| r.id.as_str())
        .filter(|id| !fires.contains(id))
        .collect();
    let never_not: Vec<&str> = pack
        .rules()
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| !does_not.contains(id))
        .collect();
    assert!(
        never_fires.is_empty(),
        "rules no shipped case shows firing (`fired` / `matched`): {never_fires:?}"
    );
    assert!(
        never_not.is_empty(),
        "rules no shipped case shows not firing (`not_fired`, or absent from `matched`): {never_not:?}"
    );
}

#[test]
fn the_built_in_cases_are_those_of_the_directory() {
    let (pack, built_in) = shipped();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules/tests");
    let from_dir = CaseSet::load_dir(&pack, dir).expect("rules/tests loads");
    let names = |s: &CaseSet| s.cases.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&built_in), names(&from_dir));
    assert_eq!(
        built_in.cases.iter().map(|c| &c.expect).collect::<Vec<_>>(),
        from_dir.cases.iter().map(|c| &c.expect).collect::<Vec<_>>()
    );
}

#[test]
fn a_failing_case_says_what_differs_and_explains_the_rules_it_names() {
    let pack = Arc::new(RulePack::shipped());
    let set = CaseSet::load_sources(
        &pack,
        &[(
            "t.yaml".into(),
            r#"
cases:
  - name: wrong on purpose
    order: {tiktok_order_id: "1", customer_handle: "@ana", customer_tier: vip,
            product_name: Lamp, product_id: p1, quantity: 1, price: "20.00",
            created_at: 2025-05-12T10:00:00Z}
    expect: {fired: [high-value-order], priority: urgent, actions: [enable_fast_track]}
"#
            .into(),
        )],
    )
    .expect("loads");
    let r = run_case(&pack, &set.cases[0]);
    let keys: Vec<&str> = r.failures.iter().map(|f| f.key).collect();
    assert_eq!(keys, ["fired", "priority"]);
    assert_eq!(r.failures[1].expected, "urgent");
    assert_eq!(r.failures[1].actual, "high");
    assert_eq!(r.failures[0].actual, serde_json::json!(["vip-fast-track"]));
    let explained: Vec<&str> = r.explanations.iter().map(|x| x.rule.as_str()).collect();
    // The rule named, and (for the lane) the rule that fired; in evaluation order.
    assert_eq!(explained, ["vip-fast-track", "high-value-order"]);
}
