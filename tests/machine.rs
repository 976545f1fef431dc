//! Property tests of the state machine: the shipped workflow against the
//! model's table, and the validator's graph verdicts against a brute-force
//! search.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::diag::{Code, Diagnostic};
use creatorflow::machine::{Machine, TransitionError};
use creatorflow::model::{AutomationStatus, StateName};
use proptest::prelude::*;

// ---- The oracle, written from model.md independently of the YAML file ----------

const STATES: &[&str] = &[
    "received",
    "validated",
    "processing",
    "inventory_reserved",
    "label_generated",
    "shipped",
    "delivered",
    "cancelled",
    "failed",
];

const TERMINAL: &[&str] = &["delivered", "cancelled"];

/// (from, transition name, to): model.md's table plus the customer cancellations.
const TABLE: &[(&str, &str, &str)] = &[
    ("received", "validate", "validated"),
    ("received", "fail", "failed"),
    ("received", "cancel", "cancelled"),
    ("validated", "process", "processing"),
    ("validated", "cancel", "cancelled"),
    ("processing", "reserve", "inventory_reserved"),
    ("processing", "fail", "failed"),
    ("processing", "cancel", "cancelled"),
    ("inventory_reserved", "label", "label_generated"),
    ("inventory_reserved", "fail", "failed"),
    ("inventory_reserved", "cancel", "cancelled"),
    ("label_generated", "ship", "shipped"),
    ("label_generated", "fail", "failed"),
    ("label_generated", "cancel", "cancelled"),
    ("shipped", "deliver", "delivered"),
    ("shipped", "cancel", "cancelled"),
    ("failed", "retry", "processing"),
    ("failed", "reject", "cancelled"),
];

const NAMES: &[&str] = &[
    "validate", "process", "reserve", "label", "ship", "deliver", "fail", "retry", "reject",
    "cancel",
];

fn progress_of(state: &str) -> u8 {
    match state {
        "received" => 10,
        "validated" => 25,
        "processing" => 40,
        "inventory_reserved" => 60,
        "label_generated" => 80,
        "shipped" => 90,
        "delivered" => 100,
        "cancelled" | "failed" => 0,
        other => panic!("no such state {other}"),
    }
}

fn status_of(state: &str) -> AutomationStatus {
    match state {
        "failed" => AutomationStatus::ManualReview,
        "shipped" => AutomationStatus::Shipped,
        "delivered" => AutomationStatus::Delivered,
        _ => AutomationStatus::Processing,
    }
}

fn in_table(from: &str, to: &str) -> bool {
    TABLE.iter().any(|(f, _, t)| *f == from && *t == to)
}

fn named_target(from: &str, name: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(f, n, _)| *f == from && *n == name)
        .map(|(_, _, t)| *t)
}

fn new_order() -> Order {
    Order::from_json(
        r#"{"tiktok_order_id":"576461413038785752","customer_handle":"@ana",
            "product_name":"Lamp","product_id":"p-1","quantity":1,"price":"19.90",
            "created_at":"2025-03-01T12:00:00Z","flow_progress":10}"#,
    )
    .expect("valid order")
}

fn t0() -> DateTime<Utc> {
    "2025-03-01T12:00:00Z".parse().expect("valid time")
}

/// One event sent to an order: a target state, or a transition name.
#[derive(Debug, Clone)]
enum Event {
    To(String),
    Named(String),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        // Every state, plus a name that is no state at all.
        (0..=STATES.len())
            .prop_map(|i| Event::To(STATES.get(i).copied().unwrap_or("teleported").to_owned())),
        (0..=NAMES.len())
            .prop_map(|i| Event::Named(NAMES.get(i).copied().unwrap_or("explode").to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Each accepted step is an edge of the table (and each edge of the table
    /// out of the current state is accepted); rejected steps leave the order as
    /// it was; terminal states absorb; progress always follows the state.
    #[test]
    fn random_events_never_leave_the_default_machine_table(
        events in prop::collection::vec(event(), 0..60)
    ) {
        let m = Machine::default_order_workflow();
        let mut order = new_order();
        let mut now = t0();
        for ev in events {
            now += TimeDelta::minutes(1);
            let before = order.clone();
            let from = before.current_state.as_str().to_owned();
            let result = match &ev {
                Event::To(to) => m.transition(&order, to, now),
                Event::Named(name) => m.transition_named(&order, name, now),
            };
            let expected_to = match &ev {
                Event::To(to) => in_table(&from, to).then_some(to.as_str()),
                Event::Named(name) => named_target(&from, name),
            };
            match result {
                Ok(plan) => {
                    prop_assert_eq!(Some(plan.to.as_str()), expected_to, "accepted {:?} from {}", ev, from);
                    prop_assert!(!TERMINAL.contains(&from.as_str()), "left terminal {}", from);
                    prop_assert_eq!(plan.from.as_str(), from.as_str());
                    prop_assert_eq!(plan.progress, progress_of(plan.to.as_str()));
                    plan.apply_to(&mut order, now);
                    prop_assert_eq!(order.previous_state.as_ref(), Some(&StateName::new(&from)));
                }
                Err(err) => {
                    prop_assert_eq!(expected_to, None, "refused {:?} from {}: {}", ev, from, err);
                    if TERMINAL.contains(&from.as_str()) {
                        prop_assert!(matches!(err, TransitionError::Terminal { .. }), "{}", err);
                    }
                    prop_assert_eq!(&order, &before);
                }
            }
            prop_assert!(STATES.contains(&order.current_state.as_str()));
            prop_assert_eq!(order.flow_progress, progress_of(order.current_state.as_str()));
            prop_assert_eq!(order.automation_status, status_of(order.current_state.as_str()));
        }
    }

    /// Nothing leaves a terminal state, whatever is asked.
    #[test]
    fn terminal_states_of_the_default_machine_absorb(
        terminal in prop::sample::select(TERMINAL),
        ev in event(),
    ) {
        let m = Machine::default_order_workflow();
        let mut order = new_order();
        order.current_state = StateName::new(terminal);
        let result = match &ev {
            Event::To(to) => m.transition(&order, to, t0()),
            Event::Named(name) => m.transition_named(&order, name, t0()),
        };
        prop_assert_eq!(
            result,
            Err(TransitionError::Terminal { state: terminal.to_owned() })
        );
        prop_assert!(m.allowed_transitions(terminal).next().is_none());
    }
}

#[test]
fn default_machine_structure_matches_the_oracle_exactly() {
    let m = Machine::default_order_workflow();
    for from in STATES {
        for to in STATES {
            assert_eq!(
                m.can_transition(from, to),
                in_table(from, to),
                "{from} -> {to}"
            );
        }
        assert_eq!(
            m.state(from).map(|s| s.terminal),
            Some(TERMINAL.contains(from)),
            "{from}"
        );
    }
    let names: BTreeSet<(String, String, String)> = m
        .transitions()
        .iter()
        .map(|t| (t.from.to_string(), t.name.clone(), t.to.to_string()))
        .collect();
    let expected: BTreeSet<(String, String, String)> = TABLE
        .iter()
        .map(|(a, n, b)| ((*a).to_owned(), (*n).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn default_machine_happy_path_reaches_delivered() {
    let m = Machine::default_order_workflow();
    let mut order = new_order();
    let mut last = order.flow_progress;
    for to in [
        "validated",
        "processing",
        "inventory_reserved",
        "label_generated",
        "shipped",
        "delivered",
    ] {
        let plan = m.transition(&order, to, t0()).expect("happy path step");
        assert!(plan.progress > last, "{to}");
        last = plan.progress;
        plan.apply_to(&mut order, t0());
    }
    assert_eq!(order.current_state, "delivered");
    assert_eq!(order.flow_progress, 100);
}

// ---- Random small machines vs a brute-force graph search ------------------------

#[derive(Debug, Clone)]
struct Graph {
    terminal: Vec<bool>,
    edges: Vec<(usize, usize)>,
}

fn graph() -> impl Strategy<Value = Graph> {
    (1usize..=6)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(any::<bool>(), n),
                prop::collection::vec((0..n, 0..n), 0..=12),
            )
        })
        .prop_map(|(terminal, edges)| Graph { terminal, edges })
}

impl Graph {
    fn yaml(&self) -> String {
        let mut out = String::from("machine: random\ninitial: s0\nstates:\n");
        for (i, t) in self.terminal.iter().enumerate() {
            out += &format!(
                "  - {{ name: s{i}, progress: 0, automation_status: Processing, terminal: {t} }}\n"
            );
        }
        out += if self.edges.is_empty() {
            "transitions: []\n"
        } else {
            "transitions:\n"
        };
        for (k, (a, b)) in self.edges.iter().enumerate() {
            out += &format!("  - {{ name: e{k}, from: s{a}, to: s{b} }}\n");
        }
        out
    }

    fn closure(&self, start: &[usize], forward: bool) -> Vec<bool> {
        let n = self.terminal.len();
        let mut seen = vec![false; n];
        let mut queue: VecDeque<usize> = start.iter().copied().collect();
        for &s in start {
            seen[s] = true;
        }
        while let Some(x) = queue.pop_front() {
            for &(a, b) in &self.edges {
                let (src, dst) = if forward { (a, b) } else { (b, a) };
                if src == x && !seen[dst] {
                    seen[dst] = true;
                    queue.push_back(dst);
                }
            }
        }
        seen
    }

    /// The verdicts a correct validator must give, as (kind, state index).
    fn expected(&self) -> BTreeSet<(&'static str, usize)> {
        let n = self.terminal.len();
        let mut out = BTreeSet::new();
        let reach = self.closure(&[0], true);
        let terminals: Vec<usize> = (0..n).filter(|&i| self.terminal[i]).collect();
        let coreach = self.closure(&terminals, false);
        let has_exits = |i: usize| self.edges.iter().any(|&(a, _)| a == i);
        for (i, (&reached, &terminal)) in reach.iter().zip(&self.terminal).enumerate() {
            if !reached {
                out.insert(("unreachable", i));
            }
            if !terminal && !has_exits(i) {
                out.insert(("no exits", i));
            }
            if terminal && has_exits(i) {
                out.insert(("terminal with exits", i));
            }
        }
        if !coreach[0] {
            out.insert(("no terminal reachable", 0));
        } else {
            for i in 0..n {
                if reach[i] && !coreach[i] && has_exits(i) {
                    out.insert(("stuck", i));
                }
            }
        }
        out
    }
}

/// The state index named in the first backquoted `sN` of a message.
fn state_in(message: &str) -> usize {
    let start = message.find("`s").expect("a state name") + 2;
    let digits: String = message[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a state index")
}

/// The kind of a graph diagnostic, by its code, and the state it names.
fn verdict(d: &Diagnostic) -> (&'static str, usize) {
    let kind = match d.code {
        Code::MachineUnreachable => "unreachable",
        Code::MachineDeadEnd => "no exits",
        Code::MachineTerminalExit => "terminal with exits",
        Code::MachineNoTerminal => "no terminal reachable",
        Code::MachineStuck => "stuck",
        _ => panic!("unexpected diagnostic: {d}"),
    };
    (kind, state_in(&d.message))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(768))]

    /// The validator's graph verdicts are exactly those of a brute-force search.
    #[test]
    fn random_machine_graph_verdicts_agree_with_brute_force(g in graph()) {
        let src = g.yaml();
        let expected = g.expected();
        match Machine::from_str(&src, "random.yaml") {
            Ok(m) => {
                prop_assert!(expected.is_empty(), "loaded but expected {:?}\n{}", expected, src);
                prop_assert!(m.warnings().is_empty());
                // A loaded machine: every state reachable, every non-terminal one has an exit.
                for s in m.states() {
                    prop_assert!(s.terminal || m.allowed_transitions(s.name.as_str()).next().is_some());
                }
            }
            Err(diags) => {
                // "terminal with exits" is reported once per offending transition.
                let got: BTreeSet<_> = diags.iter().map(verdict).collect();
                prop_assert_eq!(&got, &expected, "\n{}", src);
                let per_edge = g.edges.iter().filter(|&&(a, _)| g.terminal[a]).count();
                let reported = diags
                    .iter()
                    .filter(|d| d.code == Code::MachineTerminalExit)
                    .count();
                prop_assert_eq!(reported, per_edge);
                // Every diagnostic points into the file.
                let lines = src.lines().count() as u32;
                for d in &diags {
                    prop_assert!(d.pos.line >= 1 && d.pos.line <= lines, "{}", d);
                }
            }
        }
    }
}
