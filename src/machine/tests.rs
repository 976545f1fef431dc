//! The state machine's behaviour. What the loader reports for bad files is
//! tested as data: `tests/data/machine/` (run by `tests/loader_data.rs`).

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};

use super::*;

/// A small valid machine; tests splice changes into copies of it.
const BASE: &str = "\
machine: t
initial: received
states:
  - name: received
    progress: 10
    automation_status: Processing
  - name: shipped
    progress: 100
    automation_status: Shipped
    terminal: true
transitions:
  - name: ship
    from: received
    to: shipped
";

fn load(src: &str) -> Result<Machine, Vec<Diagnostic>> {
    Machine::from_str(src, "m.yaml")
}

fn order(state: &str) -> Order {
    let mut o = Order::from_json(
        r#"{"tiktok_order_id":"1","customer_handle":"@ana","product_name":"Lamp",
            "product_id":"p-1","quantity":2,"price":"19.90",
            "created_at":"2025-03-01T12:00:00Z"}"#,
    )
    .expect("valid order");
    o.current_state = StateName::new(state);
    o
}

fn t0() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().expect("valid time")
}

#[test]
fn base_machine_loads() {
    let m = load(BASE).expect("base loads");
    assert_eq!(m.name(), "t");
    assert_eq!(m.initial().as_str(), "received");
    assert_eq!(m.states().len(), 2);
    assert!(m.warnings().is_empty());
    assert_eq!(m.file(), "m.yaml");
    let s = m.state("received").expect("state");
    assert_eq!(s.progress, 10);
    assert_eq!(s.automation_status, AutomationStatus::Processing);
    assert!(!s.terminal);
    assert!(m.state("shipped").expect("state").terminal);
    assert!(m.state("nope").is_none());
}

#[test]
fn same_name_out_of_different_states_is_fine() {
    let src = "\
machine: t
initial: a
states:
  - { name: a, progress: 0, automation_status: Processing }
  - { name: b, progress: 0, automation_status: Processing }
  - { name: c, progress: 0, automation_status: Processing, terminal: true }
transitions:
  - { name: next, from: a, to: b }
  - { name: next, from: b, to: c }
";
    let m = load(src).expect("loads");
    assert_eq!(m.allowed_transitions("a").count(), 1);
}

/// [`BASE`] with a 72-hour timeout on `received` taking `ship`.
fn with_timeout() -> String {
    BASE.replacen(
        "automation_status: Processing\n",
        "automation_status: Processing
    timeout:
      after: 72h
      transition: ship
",
        1,
    )
}

#[test]
fn timeout_loads() {
    let m = load(&with_timeout()).expect("loads");
    let t = m.timeout_of("received").expect("timeout");
    assert_eq!(t.after, TimeDelta::hours(72));
    assert_eq!(t.action, TimeoutAction::Transition("ship".into()));
    assert_eq!(t.pos, Pos::new(8, 7));
    assert!(t.escalation_action().is_none());
    assert!(m.timeout_of("shipped").is_none());
}

#[test]
fn timeout_escalation() {
    let src = with_timeout().replace(
        "transition: ship",
        "escalate: { new_priority: urgent, new_impact: HIGH }",
    );
    let m = load(&src).expect("loads");
    let t = m.timeout_of("received").expect("timeout");
    assert_eq!(
        t.action,
        TimeoutAction::Escalate {
            new_priority: Some(Priority::Urgent),
            new_impact: Some(Impact::High)
        }
    );
    let a = t.escalation_action().expect("an action");
    assert_eq!(a.kind, ActionType::EscalatePriority);
    assert_eq!(a.new_priority(), Some(Priority::Urgent));
    assert_eq!(a.new_impact(), Some(Impact::High));
}

#[test]
fn from_file_names_the_file_in_io_errors_and_loads_files() {
    let missing = std::env::temp_dir().join("creatorflow-no-such-machine.yaml");
    let ds = Machine::from_file(&missing).expect_err("missing file");
    assert_eq!(ds.len(), 1);
    assert_eq!(
        (&*ds[0].file, ds[0].pos, ds[0].code),
        (
            missing.display().to_string().as_str(),
            Pos::new(1, 1),
            crate::diag::Code::MachineUnreadable
        )
    );

    let path =
        std::env::temp_dir().join(format!("creatorflow-machine-{}.yaml", std::process::id()));
    std::fs::write(&path, BASE.replace("progress: 10", "progress: 999")).expect("write temp file");
    let ds = Machine::from_file(&path).expect_err("invalid");
    assert_eq!(&*ds[0].file, path.display().to_string().as_str());
    std::fs::write(&path, BASE).expect("write temp file");
    let m = Machine::from_file(&path).expect("loads");
    assert_eq!(m.file(), path.display().to_string());
    let _ = std::fs::remove_file(&path);
}

#[test]
fn custom_action_types_need_registering() {
    // Unregistered, the type is refused: tests/data/machine/unregistered_action_type.yaml.
    let src = format!("{BASE}    actions: [ {{ type: print_packing_slip }} ]\n");
    let opts = LoadOptions::default().with_custom_action_type("print_packing_slip");
    let m = Machine::load(&src, "m.yaml", &opts).expect("loads with the custom type");
    assert_eq!(
        m.transitions()[0].actions[0].kind.as_str(),
        "print_packing_slip"
    );
}

// ---- The shipped default workflow --------------------------------------------

fn edges(m: &Machine) -> BTreeSet<(String, String)> {
    m.transitions()
        .iter()
        .map(|t| (t.from.to_string(), t.to.to_string()))
        .collect()
}

fn set(pairs: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The table of model.md, "The default order workflow".
const MODEL_TABLE: &[(&str, &str)] = &[
    ("received", "validated"),
    ("received", "failed"),
    ("validated", "processing"),
    ("validated", "cancelled"),
    ("processing", "inventory_reserved"),
    ("processing", "failed"),
    ("inventory_reserved", "label_generated"),
    ("inventory_reserved", "failed"),
    ("label_generated", "shipped"),
    ("label_generated", "failed"),
    ("shipped", "delivered"),
    ("shipped", "cancelled"),
    ("failed", "processing"),
];

const EXTRA_CANCELLATIONS: &[(&str, &str)] = &[
    ("received", "cancelled"),
    ("processing", "cancelled"),
    ("inventory_reserved", "cancelled"),
    ("label_generated", "cancelled"),
    // A person rejects an order in manual review.
    ("failed", "cancelled"),
];

#[test]
fn default_workflow_loads_without_warnings() {
    let m = Machine::default_order_workflow();
    assert_eq!(m.name(), "order-workflow");
    assert_eq!(m.initial().as_str(), "received");
    assert!(m.warnings().is_empty(), "{:?}", m.warnings());
    // The shipped file also loads through the public path, as the CLI does.
    Machine::from_str(Machine::default_order_workflow_source(), "x.yaml").expect("loads");
}

#[test]
fn default_workflow_has_exactly_the_model_edges_plus_cancellations() {
    let m = Machine::default_order_workflow();
    let mut expected = set(MODEL_TABLE);
    expected.extend(set(EXTRA_CANCELLATIONS));
    assert_eq!(edges(&m), expected);
    // No edge appears twice (each is one transition).
    assert_eq!(m.transitions().len(), expected.len());
    for (a, b) in MODEL_TABLE.iter().chain(EXTRA_CANCELLATIONS) {
        assert!(m.can_transition(a, b), "{a} -> {b}");
    }
    assert!(!m.can_transition("received", "shipped"));
    assert!(!m.can_transition("delivered", "cancelled"));
}

#[test]
fn default_workflow_states_progress_and_status() {
    let m = Machine::default_order_workflow();
    let expected = [
        ("received", 10, AutomationStatus::Processing, false),
        ("validated", 25, AutomationStatus::Processing, false),
        ("processing", 40, AutomationStatus::Processing, false),
        (
            "inventory_reserved",
            60,
            AutomationStatus::Processing,
            false,
        ),
        ("label_generated", 80, AutomationStatus::Processing, false),
        ("shipped", 90, AutomationStatus::Shipped, false),
        ("delivered", 100, AutomationStatus::Delivered, true),
        ("cancelled", 0, AutomationStatus::Processing, true),
        ("failed", 0, AutomationStatus::ManualReview, false),
    ];
    assert_eq!(m.states().len(), expected.len());
    for (name, progress, status, terminal) in expected {
        let s = m.state(name).unwrap_or_else(|| panic!("state {name}"));
        assert_eq!(
            (s.progress, s.automation_status, s.terminal),
            (progress, status, terminal),
            "{name}"
        );
    }
}

#[test]
fn default_workflow_transition_names_and_actions() {
    let m = Machine::default_order_workflow();
    let named = |from: &str, to: &str| -> &TransitionDef {
        m.allowed_transitions(from)
            .find(|t| t.to == to)
            .unwrap_or_else(|| panic!("{from} -> {to}"))
    };
    let kinds = |t: &TransitionDef| -> Vec<String> {
        t.actions.iter().map(|a| a.kind.to_string()).collect()
    };
    assert_eq!(named("received", "validated").name, "validate");
    assert_eq!(kinds(named("received", "validated")), ["validate_address"]);
    assert_eq!(named("validated", "processing").name, "process");
    let reserve = named("processing", "inventory_reserved");
    assert_eq!(reserve.name, "reserve");
    assert_eq!(kinds(reserve), ["check_inventory", "reserve_inventory"]);
    let undo = reserve.actions[1]
        .rollback
        .as_deref()
        .expect("per-action rollback");
    assert_eq!(undo.kind, ActionType::ReserveInventory);
    assert_eq!(undo.parameters["operation"], "release");
    let label = named("inventory_reserved", "label_generated");
    assert_eq!(label.name, "label");
    assert!(kinds(label).contains(&"generate_shipping_label".to_owned()));
    assert_eq!(named("label_generated", "shipped").name, "ship");
    assert!(
        kinds(named("label_generated", "shipped")).contains(&"update_tiktok_status".to_owned())
    );
    assert_eq!(named("shipped", "delivered").name, "deliver");
    assert!(
        kinds(named("shipped", "delivered")).contains(&"send_customer_notification".to_owned())
    );
    assert_eq!(named("failed", "processing").name, "retry");
    for from in [
        "received",
        "processing",
        "inventory_reserved",
        "label_generated",
    ] {
        let fail = named(from, "failed");
        assert_eq!(fail.name, "fail", "{from}");
        assert_eq!(kinds(fail), ["escalate_to_manual"], "{from}");
    }
    for from in [
        "received",
        "validated",
        "processing",
        "inventory_reserved",
        "label_generated",
        "shipped",
    ] {
        let cancel = named(from, "cancelled");
        assert_eq!(cancel.name, "cancel", "{from}");
        assert!(
            kinds(cancel).contains(&"send_customer_notification".to_owned()),
            "{from}"
        );
    }
    // Nothing to undo before stock is reserved.
    for from in ["received", "validated", "processing", "shipped"] {
        assert!(named(from, "cancelled").rollback.is_empty(), "{from}");
    }
}

#[test]
fn default_workflow_timeouts() {
    let m = Machine::default_order_workflow();
    let received = m.timeout_of("received").expect("timeout on received");
    assert_eq!(received.after, TimeDelta::hours(72));
    assert_eq!(received.action, TimeoutAction::Transition("fail".into()));
    let shipped = m.timeout_of("shipped").expect("timeout on shipped");
    assert_eq!(shipped.after, TimeDelta::days(7));
    assert_eq!(
        shipped.action,
        TimeoutAction::Escalate {
            new_priority: Some(Priority::Urgent),
            new_impact: None
        }
    );
    for s in [
        "validated",
        "processing",
        "delivered",
        "cancelled",
        "failed",
    ] {
        assert!(m.timeout_of(s).is_none(), "{s}");
    }

    // Due only once the order has stayed 72h in `received`.
    let o = order("received");
    assert!(m.due_timeout(&o, t0() + TimeDelta::hours(71)).is_none());
    let due = m.due_timeout(&o, t0() + TimeDelta::hours(72)).expect("due");
    let TimeoutAction::Transition(name) = &due.action else {
        panic!("not a transition")
    };
    let plan = m.transition_named(&o, name, t0()).expect("fail is allowed");
    assert_eq!(plan.to, "failed");
    assert_eq!(plan.automation_status, AutomationStatus::ManualReview);
}

fn params(a: &ActionSpec) -> (String, Option<String>) {
    (
        a.kind.to_string(),
        a.parameters
            .get("operation")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
    )
}

#[test]
fn cancel_from_label_generated_voids_the_label_and_releases_stock() {
    let m = Machine::default_order_workflow();
    let plan = m
        .transition(&order("label_generated"), "cancelled", t0())
        .expect("allowed");
    assert_eq!(plan.transition, "cancel");
    assert_eq!(plan.from, "label_generated");
    assert_eq!(plan.to, "cancelled");
    assert!(plan.terminal);
    assert_eq!(plan.progress, 0);
    let rollbacks: Vec<_> = plan.rollbacks.iter().map(params).collect();
    assert_eq!(
        rollbacks,
        [
            (
                "generate_shipping_label".to_owned(),
                Some("void".to_owned())
            ),
            ("reserve_inventory".to_owned(), Some("release".to_owned())),
        ]
    );
    assert_eq!(plan.actions[0].kind, ActionType::SendCustomerNotification);
}

#[test]
fn cancel_from_inventory_reserved_releases_stock_only() {
    let m = Machine::default_order_workflow();
    let plan = m
        .transition(&order("inventory_reserved"), "cancelled", t0())
        .expect("allowed");
    let rollbacks: Vec<_> = plan.rollbacks.iter().map(params).collect();
    assert_eq!(
        rollbacks,
        [("reserve_inventory".to_owned(), Some("release".to_owned()))]
    );
}

// ---- Planning transitions ----------------------------------------------------

#[test]
fn transition_plan_and_apply() {
    let m = Machine::default_order_workflow();
    let mut o = order("processing");
    let plan = m
        .transition(&o, "inventory_reserved", t0())
        .expect("allowed");
    assert_eq!(plan.transition, "reserve");
    assert_eq!(plan.progress, 60);
    assert_eq!(plan.automation_status, AutomationStatus::Processing);
    assert!(!plan.terminal);
    assert!(plan.rollbacks.is_empty());
    let later = t0() + TimeDelta::minutes(5);
    plan.apply_to(&mut o, later);
    assert_eq!(o.current_state, "inventory_reserved");
    assert_eq!(
        o.previous_state.as_ref().map(StateName::as_str),
        Some("processing")
    );
    assert_eq!(o.flow_progress, 60);
    assert_eq!(o.state_changed_at, Some(later));
    assert_eq!(o.updated_at, Some(later));
}

#[test]
fn not_allowed_lists_the_allowed_targets() {
    let m = Machine::default_order_workflow();
    let err = m
        .transition(&order("received"), "shipped", t0())
        .expect_err("not an edge");
    assert_eq!(
        err,
        TransitionError::NotAllowed {
            from: "received".into(),
            to: "shipped".into(),
            allowed: vec!["validated".into(), "failed".into(), "cancelled".into()],
        }
    );
    assert_eq!(
        err.to_string(),
        "no transition from `received` to `shipped`; allowed: `validated`, `failed`, `cancelled`"
    );
    assert_eq!(
        m.targets("failed")
            .into_iter()
            .map(StateName::as_str)
            .collect::<Vec<_>>(),
        ["processing", "cancelled"]
    );
}

#[test]
fn terminal_and_unknown_states_are_refused() {
    let m = Machine::default_order_workflow();
    assert_eq!(
        m.transition(&order("delivered"), "cancelled", t0()),
        Err(TransitionError::Terminal {
            state: "delivered".into()
        })
    );
    assert!(matches!(
        m.transition(&order("limbo"), "validated", t0()),
        Err(TransitionError::UnknownState { state, .. }) if state == "limbo"
    ));
    assert!(matches!(
        m.transition(&order("received"), "teleported", t0()),
        Err(TransitionError::UnknownState { state, .. }) if state == "teleported"
    ));
}

#[test]
fn transition_named_uses_names_out_of_the_current_state() {
    let m = Machine::default_order_workflow();
    let plan = m
        .transition_named(&order("label_generated"), "fail", t0())
        .expect("allowed");
    assert_eq!(plan.to, "failed");
    assert_eq!(plan.rollbacks.len(), 2);
    let err = m
        .transition_named(&order("failed"), "cancel", t0())
        .expect_err("no cancel out of failed (a person rejects it)");
    assert_eq!(
        err,
        TransitionError::UnknownTransition {
            from: "failed".into(),
            name: "cancel".into(),
            allowed: vec!["retry".into(), "reject".into()],
        }
    );
}

#[test]
fn allowed_transitions_follow_file_order() {
    let m = Machine::default_order_workflow();
    let names: Vec<_> = m
        .allowed_transitions("label_generated")
        .map(|t| (t.name.as_str(), t.to.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("ship", "shipped"),
            ("fail", "failed"),
            ("cancel", "cancelled")
        ]
    );
    assert_eq!(m.allowed_transitions("delivered").count(), 0);
    assert_eq!(m.allowed_transitions("nowhere").count(), 0);
}

// ---- Diagrams -----------------------------------------------------------------

#[test]
fn mermaid_has_start_edges_and_final_states() {
    let text = Machine::default_order_workflow().to_mermaid();
    assert!(
        text.starts_with("stateDiagram-v2\n    [*] --> received\n"),
        "{text}"
    );
    for line in [
        "    received --> validated : validate\n",
        "    inventory_reserved --> cancelled : cancel\n",
        "    failed --> processing : retry\n",
        "    delivered --> [*]\n",
        "    cancelled --> [*]\n",
        "    note right of shipped : waits for delivered, timeout 7d → escalate urgent\n",
        "    note right of label_generated : waits for in_transit, timeout 3d → fail\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("failed --> [*]"), "{text}");
    assert_eq!(text.matches(" --> ").count(), 1 + 18 + 2, "{text}");
}

#[test]
fn mermaid_aliases_names_that_are_not_identifiers() {
    let src = BASE.replace("shipped", "shipped-ok");
    let text = load(&src).expect("loads").to_mermaid();
    assert!(
        text.contains("    state \"shipped-ok\" as state_1\n"),
        "{text}"
    );
    assert!(text.contains("    received --> state_1 : ship\n"), "{text}");
    assert!(text.contains("    state_1 --> [*]\n"), "{text}");
}

#[test]
fn dot_has_start_edges_and_doublecircles() {
    let dot = Machine::default_order_workflow().to_dot();
    assert!(dot.starts_with("digraph \"order-workflow\" {\n"), "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    for line in [
        "    \"__start\" -> \"received\";\n",
        "    \"received\" -> \"validated\" [label=\"validate\"];\n",
        "    \"shipped\" -> \"cancelled\" [label=\"cancel\"];\n",
        "    \"delivered\" [shape=doublecircle, label=\"delivered\\n100%\"];\n",
        "    \"cancelled\" [shape=doublecircle, label=\"cancelled\\n0%\"];\n",
        "    \"failed\" [shape=ellipse, label=\"failed\\n0%\"];\n",
    ] {
        assert!(dot.contains(line), "missing {line:?} in\n{dot}");
    }
    assert_eq!(dot.matches(" -> ").count(), 1 + 18, "{dot}");
}

// ---- Guards (need crate::rules::compile_guard / compile_guard_script) ----------

const GUARDED: &str = "\
machine: g
initial: new
states:
  - name: new
    progress: 0
    automation_status: Processing
    timeout: { after: 1h, transition: big }
  - { name: done, progress: 100, automation_status: Delivered, terminal: true }
transitions:
  - name: big
    from: new
    to: done
    guard: { field: quantity, operator: greater_than, value: 5 }
    actions: [ { type: enable_fast_track } ]
  - name: scripted
    from: new
    to: done
    guard_script: \"order.quantity == 2\"
    actions: [ { type: send_customer_notification } ]
";

#[test]
fn guards_pick_the_first_passing_transition() {
    let m = load(GUARDED).expect("loads");
    let o = order("new"); // quantity 2
    let plan = m
        .transition(&o, "done", t0())
        .expect("scripted guard passes");
    assert_eq!(plan.transition, "scripted");
    let mut big = order("new");
    big.quantity = 9;
    let plan = m.transition(&big, "done", t0()).expect("big guard passes");
    assert_eq!(plan.transition, "big");
    let mut neither = order("new");
    neither.quantity = 3;
    match m.transition(&neither, "done", t0()) {
        Err(TransitionError::GuardRejected { from, to, guard }) => {
            assert_eq!((from.as_str(), to.as_str()), ("new", "done"));
            assert!(guard.contains('|'), "both guards described: {guard}");
        }
        other => panic!("expected GuardRejected, got {other:?}"),
    }
    // Structure ignores guards.
    assert!(m.can_transition("new", "done"));
}

#[test]
fn dot_labels_carry_guards() {
    let m = load(GUARDED).expect("loads");
    let dot = m.to_dot();
    assert!(dot.contains("\"new\" -> \"done\" [label=\"big ["), "{dot}");
}

// ---- Waiting for the world ----------------------------------------------------

#[test]
fn the_shipped_workflow_waits_for_pickup_and_delivery() {
    let m = Machine::default_order_workflow();
    let waits: Vec<(&str, WaitFor)> = m
        .states()
        .iter()
        .filter_map(|s| s.waits_for.map(|w| (s.name.as_str(), w)))
        .collect();
    assert_eq!(
        waits,
        [
            ("label_generated", WaitFor::InTransit),
            ("shipped", WaitFor::Delivered)
        ]
    );
    assert_eq!(m.waits_for("label_generated"), Some(WaitFor::InTransit));
    assert_eq!(m.waits_for("received"), None);
    assert_eq!(m.waits_for("nowhere"), None);
    // The pickup timeout sends the order to a person.
    let t = m.timeout_of("label_generated").expect("timeout");
    assert_eq!(t.after, TimeDelta::hours(72));
    assert_eq!(t.action, TimeoutAction::Transition("fail".into()));
    // The automatic path, as workers (and confirmations) take it.
    let mut path = vec![m.initial().to_string()];
    while let Some(next) = m.automatic_next(path.last().expect("a state")) {
        path.push(next.to_string());
    }
    assert_eq!(
        path.join(" → "),
        "received → validated → processing → inventory_reserved → label_generated → shipped → delivered"
    );
    assert_eq!(m.automatic_next("failed"), None);
    let dot = m.to_dot();
    assert!(
        dot.contains(
            "label=\"shipped\\n90%\\nwaits for delivered\\ntimeout 7d → escalate urgent\""
        ),
        "{dot}"
    );
}

#[test]
fn automatic_next_skips_manual_review_cancellation_and_self_loops() {
    let m = Machine::from_str(
        r#"
machine: t
initial: a
states:
  - { name: a, progress: 0, automation_status: Processing }
  - { name: review, progress: 0, automation_status: Manual Review }
  - { name: b, progress: 50, automation_status: Processing, waits_for: in_transit }
  - { name: cancelled, progress: 0, automation_status: Processing, terminal: true }
  - { name: done, progress: 100, automation_status: Delivered, terminal: true }
transitions:
  - { name: hold, from: a, to: review }
  - { name: cancel, from: [a, b], to: cancelled }
  - { name: again, from: a, to: a }
  - { name: go, from: a, to: b }
  - { name: finish, from: b, to: done }
  - { name: back, from: review, to: a }
"#,
        "t.yaml",
    )
    .expect("valid");
    assert_eq!(m.automatic_next("a").map(|s| s.as_str()), Some("b"));
    assert_eq!(m.automatic_next("b").map(|s| s.as_str()), Some("done"));
    assert_eq!(m.automatic_next("review"), None);
    assert_eq!(m.automatic_next("done"), None);
    assert_eq!(
        m.state("b").and_then(|s| s.waits_for),
        Some(WaitFor::InTransit)
    );
}
