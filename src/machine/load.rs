//! Loading a machine file: reading the YAML tree, then validating the graph.
//! Every problem is recorded; nothing stops at the first one.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::TimeDelta;

use super::{
    LoadOptions, Machine, StateDef, Timeout, TimeoutAction, TransitionDef, WaitFor,
    automatic_target,
};
use crate::diag::{self, Code, Diagnostic, Diagnostics, Pos, did_you_mean};
use crate::model::action::{ActionSpec, parse_actions};
use crate::model::{AutomationStatus, Impact, Priority, StateName};
use crate::rules::{Guard, compile_guard, compile_guard_script};
use crate::script::Sandbox;
use crate::yaml::{self, MapReader, Node, NodeKind, reader};

const MACHINE_KEYS: &[&str] = &["machine", "description", "initial", "states", "transitions"];
const STATE_KEYS: &[&str] = &[
    "name",
    "description",
    "progress",
    "automation_status",
    "terminal",
    "timeout",
    "waits_for",
];
const TIMEOUT_KEYS: &[&str] = &["after", "transition", "escalate"];
const ESCALATE_KEYS: &[&str] = &["new_priority", "new_impact"];
const TRANSITION_KEYS: &[&str] = &[
    "name",
    "description",
    "from",
    "to",
    "guard",
    "guard_script",
    "actions",
    "rollback",
];

/// A string with the position it was written at.
#[derive(Debug, Clone)]
struct Located {
    text: String,
    pos: Pos,
}

struct RawState {
    name: Located,
    pos: Pos,
    description: Option<String>,
    progress: u8,
    automation_status: AutomationStatus,
    terminal: bool,
    timeout: Option<RawTimeout>,
    /// `waits_for:` and where its value is written.
    waits_for: Option<(WaitFor, Pos)>,
}

struct RawTimeout {
    pos: Pos,
    after: TimeDelta,
    action: Option<RawTimeoutAction>,
}

enum RawTimeoutAction {
    Transition(Located),
    Escalate {
        new_priority: Option<Priority>,
        new_impact: Option<Impact>,
    },
}

struct RawTransition {
    pos: Pos,
    name: Option<Located>,
    description: Option<String>,
    from: Vec<Located>,
    to: Located,
    guard: Option<Guard>,
    actions: Vec<ActionSpec>,
    rollback: Vec<ActionSpec>,
}

/// Reads, validates and builds a machine.
pub(super) fn load(
    source: &str,
    file: &str,
    options: &LoadOptions,
) -> Result<Machine, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file);
    let machine = yaml::parse(source, &mut diags).and_then(|root| {
        let mut loader = Loader {
            diags: &mut diags,
            options,
            sandbox: Sandbox::default(),
            shape_ok: true,
        };
        loader.machine(&root)
    });
    let file: Arc<str> = diags.file().clone();
    let has_errors = diags.has_errors();
    let mut all = diags.into_vec();
    diag::sort(&mut all);
    match machine {
        Some(mut m) if !has_errors => {
            m.file = file;
            m.warnings = all;
            Ok(m)
        }
        _ => Err(all),
    }
}

struct Loader<'a> {
    diags: &'a mut Diagnostics,
    options: &'a LoadOptions,
    sandbox: Sandbox,
    /// False once a state name, `from` or `to` could not be read at all: the
    /// graph is then incomplete and the graph checks are skipped.
    shape_ok: bool,
}

impl Loader<'_> {
    /// The required sequence `key` of `m` (its node and items), or `None`
    /// (an error recorded, the shape marked incomplete) when it is missing or
    /// not a sequence.
    fn required_seq<'n>(
        &mut self,
        m: &mut MapReader<'n>,
        key: &str,
    ) -> Option<(&'n Node, &'n [Node])> {
        let items = m
            .req(key, self.diags)
            .and_then(|n| Some((n, reader::seq(n, key, self.diags)?)));
        if items.is_none() {
            self.shape_ok = false;
        }
        items
    }

    fn machine(&mut self, root: &Node) -> Option<Machine> {
        let mut m = MapReader::new(root, "machine file", MACHINE_KEYS, self.diags)?;
        let name = m.req("machine", self.diags).and_then(|n| {
            let s = reader::string(n, "machine", self.diags)?;
            if s.trim().is_empty() {
                self.diags
                    .emit(Code::MachineEmptyName, n.pos, "`machine` must not be empty");
            }
            Some(s.to_owned())
        });
        let description = self.opt_string(&mut m, "description");
        let initial = m
            .req("initial", self.diags)
            .and_then(|n| self.located(n, "initial"));
        let states: Vec<RawState> = match self.required_seq(&mut m, "states") {
            Some((n, items)) => {
                if items.is_empty() {
                    self.diags.emit(
                        Code::MachineNoStates,
                        n.pos,
                        "`states` must list at least one state",
                    );
                }
                items.iter().filter_map(|s| self.state(s)).collect()
            }
            None => Vec::new(),
        };
        let transitions: Vec<RawTransition> = match self.required_seq(&mut m, "transitions") {
            Some((_, items)) => items.iter().filter_map(|t| self.transition(t)).collect(),
            None => Vec::new(),
        };
        m.finish(self.diags);

        // States: unique names (the first definition wins).
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, s) in states.iter().enumerate() {
            match index.get(s.name.text.as_str()) {
                Some(&first) => self.diags.emit(
                    Code::MachineDuplicateState,
                    s.name.pos,
                    format!(
                        "duplicate state `{}` (first defined at line {})",
                        s.name.text, states[first].name.pos.line
                    ),
                ),
                None => {
                    index.insert(&s.name.text, i);
                }
            }
        }
        let state_names: Vec<&str> = states.iter().map(|s| s.name.text.as_str()).collect();
        let mut refs_ok = true;
        let mut unknown = |diags: &mut Diagnostics, what: &str, r: &Located| -> bool {
            if index.contains_key(r.text.as_str()) {
                return true;
            }
            refs_ok = false;
            diags.emit(
                Code::MachineUnknownState,
                r.pos,
                format!(
                    "unknown {what} `{}`{}",
                    r.text,
                    did_you_mean(&r.text, state_names.iter().copied())
                ),
            );
            false
        };
        if let Some(initial) = &initial {
            unknown(self.diags, "initial state", initial);
        }
        let mut froms_ok = true;
        for t in &transitions {
            for f in &t.from {
                froms_ok &= unknown(self.diags, "state", f);
            }
            unknown(self.diags, "state", &t.to);
        }

        let (defs, def_from_pos) = self.expand(&transitions);
        self.timeouts(&states, &defs);
        self.waits(&states, &index, &defs, froms_ok);
        self.exits(&states, &index, &defs, &def_from_pos, froms_ok);
        if let (true, true, Some(initial)) = (self.shape_ok, refs_ok, &initial) {
            self.reachability(&states, &index, &defs, initial);
        }
        // Returned only when no error was recorded (the caller checks).
        Some(build(name?, description, initial?, states, defs))
    }

    /// One [`TransitionDef`] per `from` state of each transition, with the
    /// position of that `from`; reports names repeated out of one state.
    fn expand(&mut self, transitions: &[RawTransition]) -> (Vec<TransitionDef>, Vec<Pos>) {
        let mut defs = Vec::new();
        let mut from_pos = Vec::new();
        let mut seen: HashMap<(&str, String), Pos> = HashMap::new();
        for t in transitions {
            for f in &t.from {
                let (name, at) = match &t.name {
                    Some(n) => (n.text.clone(), n.pos),
                    None => (format!("{}->{}", f.text, t.to.text), f.pos),
                };
                match seen.get(&(f.text.as_str(), name.clone())) {
                    Some(first) => {
                        let hint = if t.name.is_none() {
                            "; give the transitions distinct `name`s"
                        } else {
                            ""
                        };
                        self.diags.emit(
                            Code::MachineDuplicateTransition,
                            at,
                            format!(
                                "duplicate transition `{name}` out of state `{}` (first defined at line {}){hint}",
                                f.text, first.line
                            ),
                        );
                    }
                    None => {
                        seen.insert((f.text.as_str(), name.clone()), at);
                    }
                }
                from_pos.push(f.pos);
                defs.push(TransitionDef {
                    name,
                    from: StateName::new(&f.text),
                    to: StateName::new(&t.to.text),
                    description: t.description.clone(),
                    guard: t.guard.clone(),
                    actions: t.actions.clone(),
                    rollback: t.rollback.clone(),
                    pos: t.pos,
                });
            }
        }
        (defs, from_pos)
    }

    /// Terminal states with exits; non-terminal states without (only when
    /// every `from` resolved, else a misspelt `from` would leave its intended
    /// state looking exitless).
    fn exits(
        &mut self,
        states: &[RawState],
        index: &HashMap<&str, usize>,
        defs: &[TransitionDef],
        def_from_pos: &[Pos],
        froms_ok: bool,
    ) {
        let terminal = |name: &str| index.get(name).is_some_and(|&i| states[i].terminal);
        for (t, &from_pos) in defs.iter().zip(def_from_pos) {
            if terminal(t.from.as_str()) {
                self.diags.emit(
                    Code::MachineTerminalExit,
                    from_pos,
                    format!(
                        "terminal state `{}` has an exit: transition `{}` to `{}`",
                        t.from, t.name, t.to
                    ),
                );
            }
        }
        if !(self.shape_ok && froms_ok) {
            return;
        }
        for (i, s) in states.iter().enumerate() {
            let first_def = index.get(s.name.text.as_str()) == Some(&i);
            let has_exits = defs.iter().any(|t| t.from == s.name.text.as_str());
            if first_def && !s.terminal && !has_exits {
                self.diags.emit(
                    Code::MachineDeadEnd,
                    s.name.pos,
                    format!(
                        "state `{}` has no transitions out and is not terminal; add a transition or mark it `terminal: true`",
                        s.name.text
                    ),
                );
            }
        }
    }

    /// Unreachable states, no terminal reachable, states that cannot reach a terminal.
    fn reachability(
        &mut self,
        states: &[RawState],
        index: &HashMap<&str, usize>,
        defs: &[TransitionDef],
        initial: &Located,
    ) {
        let n = states.len();
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
        for t in defs {
            if let (Some(&a), Some(&b)) = (index.get(t.from.as_str()), index.get(t.to.as_str())) {
                succ[a].push(b);
                pred[b].push(a);
            }
        }
        let Some(&start) = index.get(initial.text.as_str()) else {
            return;
        };
        let forward = bfs(&[start], &succ, n);
        let terminals: Vec<usize> = (0..n)
            .filter(|&i| states[i].terminal && index.get(states[i].name.text.as_str()) == Some(&i))
            .collect();
        let backward = bfs(&terminals, &pred, n);
        let first_def = |i: usize| index.get(states[i].name.text.as_str()) == Some(&i);
        for (i, s) in states.iter().enumerate() {
            if first_def(i) && !forward[i] {
                self.diags.emit(
                    Code::MachineUnreachable,
                    s.name.pos,
                    format!(
                        "state `{}` is unreachable from the initial state `{}`",
                        s.name.text, initial.text
                    ),
                );
            }
        }
        if !backward[start] {
            self.diags.emit(
                Code::MachineNoTerminal,
                initial.pos,
                format!(
                    "no terminal state can be reached from the initial state `{}`",
                    initial.text
                ),
            );
            return;
        }
        for (i, s) in states.iter().enumerate() {
            let has_exits = !succ[i].is_empty();
            if first_def(i) && forward[i] && !backward[i] && has_exits {
                self.diags.emit(
                    Code::MachineStuck,
                    s.name.pos,
                    format!(
                        "state `{}` cannot reach any terminal state; orders entering it would be stuck",
                        s.name.text
                    ),
                );
            }
        }
    }

    /// Timeouts: not on terminal states, naming a transition that leaves the state.
    fn timeouts(&mut self, states: &[RawState], defs: &[TransitionDef]) {
        for s in states {
            let Some(timeout) = &s.timeout else { continue };
            if s.terminal {
                self.diags.emit(
                    Code::MachineTimeoutOnTerminal,
                    timeout.pos,
                    format!(
                        "timeout on terminal state `{}`: nothing can leave it",
                        s.name.text
                    ),
                );
                continue;
            }
            let Some(RawTimeoutAction::Transition(t)) = &timeout.action else {
                continue;
            };
            let state = s.name.text.as_str();
            let leaving: Vec<&TransitionDef> = defs.iter().filter(|d| d.from == state).collect();
            match leaving.iter().find(|d| d.name == t.text) {
                Some(d) => {
                    if d.guard.is_some() {
                        self.diags.emit(
                            Code::MachineGuardedTimeout,
                            t.pos,
                            format!(
                                "timeout transition `{}` has a guard; while it rejects, the timeout does nothing",
                                t.text
                            ),
                        );
                    }
                }
                None => match defs.iter().find(|d| d.name == t.text) {
                    Some(other) => self.diags.emit(
                        Code::MachineTimeoutForeignTransition,
                        t.pos,
                        format!(
                            "timeout transition `{}` does not leave state `{state}` (it leaves `{}`){}",
                            t.text,
                            other.from,
                            did_you_mean(&t.text, leaving.iter().map(|d| d.name.as_str()))
                        ),
                    ),
                    None => self.diags.emit(
                        Code::MachineTimeoutUnknownTransition,
                        t.pos,
                        format!(
                            "timeout names unknown transition `{}` out of state `{state}`{}",
                            t.text,
                            did_you_mean(&t.text, leaving.iter().map(|d| d.name.as_str()))
                        ),
                    ),
                },
            }
        }
    }

    /// Waiting states: neither terminal nor manual review, and left by an
    /// automatic step (checked only when every `from` resolved, as for
    /// exits).
    fn waits(
        &mut self,
        states: &[RawState],
        index: &HashMap<&str, usize>,
        defs: &[TransitionDef],
        froms_ok: bool,
    ) {
        let review = |name: &str| {
            index
                .get(name)
                .is_some_and(|&i| states[i].automation_status == AutomationStatus::ManualReview)
        };
        for s in states {
            let Some((wait, pos)) = s.waits_for else {
                continue;
            };
            let name = s.name.text.as_str();
            if s.terminal || s.automation_status == AutomationStatus::ManualReview {
                let what = if s.terminal {
                    "terminal"
                } else {
                    "a manual-review state"
                };
                self.diags.emit(
                    Code::MachineWaitOnFinalState,
                    pos,
                    format!(
                        "state `{name}` waits for `{wait}` but is {what}: no automatic step leaves it; remove `waits_for`"
                    ),
                );
                continue;
            }
            if !(self.shape_ok && froms_ok) {
                continue;
            }
            let automatic = defs
                .iter()
                .filter(|d| d.from == name)
                .any(|d| automatic_target(name, d.to.as_str(), review(d.to.as_str())));
            if !automatic {
                self.diags.emit(
                    Code::MachineWaitWithoutNext,
                    pos,
                    format!(
                        "state `{name}` waits for `{wait}` but has no automatic next state: add a transition from it to a state that is neither manual review nor `{}`",
                        super::CANCELLED
                    ),
                );
            }
        }
    }

    /// A string that must name one of a closed set (`names`, read by
    /// `parse`); otherwise `code` at the value: "unknown `key` `x`: expected
    /// one of …; did you mean …?".
    fn named<T, I: Iterator<Item = &'static str>>(
        &mut self,
        n: &Node,
        key: &str,
        parse: impl Fn(&str) -> Option<T>,
        names: impl Fn() -> I,
        code: Code,
    ) -> Option<T> {
        let s = reader::string(n, key, self.diags)?;
        let value = parse(s);
        if value.is_none() {
            self.diags.emit(
                code,
                n.pos,
                format!(
                    "unknown {key} `{s}`: expected one of {}{}",
                    names().collect::<Vec<_>>().join(", "),
                    did_you_mean(s, names())
                ),
            );
        }
        value
    }

    fn opt_string(&mut self, m: &mut MapReader<'_>, key: &str) -> Option<String> {
        m.opt(key)
            .and_then(|n| reader::string(n, key, self.diags))
            .map(str::to_owned)
    }

    fn located(&mut self, n: &Node, key: &str) -> Option<Located> {
        reader::string(n, key, self.diags).map(|s| Located {
            text: s.to_owned(),
            pos: n.pos,
        })
    }

    fn state(&mut self, node: &Node) -> Option<RawState> {
        let Some(mut m) = MapReader::new(node, "state", STATE_KEYS, self.diags) else {
            self.shape_ok = false;
            return None;
        };
        let name = m.req("name", self.diags).and_then(|n| {
            let l = self.located(n, "name")?;
            if l.text.is_empty()
                || !l
                    .text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                self.diags.emit(
                    Code::MachineBadStateName,
                    n.pos,
                    format!(
                        "state name `{}` must be non-empty and use only letters, digits, `_` and `-`",
                        l.text
                    ),
                );
            }
            Some(l)
        });
        let description = self.opt_string(&mut m, "description");
        let progress = m
            .req("progress", self.diags)
            .and_then(|n| {
                let v = reader::int(n, "progress", self.diags)?;
                let p = u8::try_from(v).ok().filter(|p| *p <= 100);
                if p.is_none() {
                    self.diags.emit(
                        Code::MachineProgressRange,
                        n.pos,
                        format!("`progress` must be between 0 and 100, found {v}"),
                    );
                }
                p
            })
            .unwrap_or(0);
        let automation_status = m
            .req("automation_status", self.diags)
            .and_then(|n| {
                self.named(
                    n,
                    "automation_status",
                    AutomationStatus::parse,
                    AutomationStatus::names,
                    Code::MachineUnknownStatus,
                )
            })
            .unwrap_or_default();
        let terminal = m
            .opt("terminal")
            .and_then(|n| reader::boolean(n, "terminal", self.diags))
            .unwrap_or(false);
        let timeout = m.opt("timeout").and_then(|n| self.timeout(n));
        let waits_for = m.opt("waits_for").and_then(|n| {
            self.named(
                n,
                "waits_for",
                WaitFor::parse,
                WaitFor::names,
                Code::MachineUnknownWait,
            )
            .map(|w| (w, n.pos))
        });
        m.finish(self.diags);
        let Some(name) = name else {
            self.shape_ok = false;
            return None;
        };
        Some(RawState {
            name,
            pos: node.pos,
            description,
            progress,
            automation_status,
            terminal,
            timeout,
            waits_for,
        })
    }

    fn timeout(&mut self, node: &Node) -> Option<RawTimeout> {
        let mut m = MapReader::new(node, "timeout", TIMEOUT_KEYS, self.diags)?;
        let after = m
            .req("after", self.diags)
            .and_then(|n| {
                let s = reader::string(n, "after", self.diags)?;
                crate::parse_duration(s)
                    .map_err(|e| {
                        self.diags.emit(
                            Code::MachineBadTimeout,
                            n.pos,
                            format!("bad timeout `after`: {e}"),
                        )
                    })
                    .ok()
            })
            .unwrap_or_default();
        let transition = m
            .opt("transition")
            .and_then(|n| self.located(n, "transition"));
        let escalate = m.opt("escalate");
        let action = match (transition, escalate) {
            (Some(t), None) => Some(RawTimeoutAction::Transition(t)),
            (None, Some(e)) => self.escalation(e),
            (Some(_), Some(_)) => {
                self.diags.emit(
                    Code::MachineTimeoutTwoActions,
                    node.pos,
                    "a timeout takes `transition` or `escalate`, not both",
                );
                None
            }
            (None, None) => {
                self.diags.emit(
                    Code::MachineTimeoutNoAction,
                    node.pos,
                    "a timeout needs `transition` or `escalate`",
                );
                None
            }
        };
        m.finish(self.diags);
        Some(RawTimeout {
            pos: node.pos,
            after,
            action,
        })
    }

    fn escalation(&mut self, node: &Node) -> Option<RawTimeoutAction> {
        let mut m = MapReader::new(node, "escalate", ESCALATE_KEYS, self.diags)?;
        let before = self.diags.error_count();
        let new_priority = m.opt("new_priority").and_then(|n| {
            reader::one_of(
                n,
                "new_priority",
                Priority::parse,
                Priority::names,
                self.diags,
            )
        });
        let new_impact = m.opt("new_impact").and_then(|n| {
            reader::one_of(n, "new_impact", Impact::parse, Impact::names, self.diags)
        });
        m.finish(self.diags);
        if new_priority.is_none() && new_impact.is_none() {
            // A value given but invalid was reported above.
            if self.diags.error_count() == before {
                self.diags.emit(
                    Code::MachineEmptyEscalation,
                    node.pos,
                    "`escalate` needs `new_priority` or `new_impact`",
                );
            }
            return None;
        }
        Some(RawTimeoutAction::Escalate {
            new_priority,
            new_impact,
        })
    }

    fn transition(&mut self, node: &Node) -> Option<RawTransition> {
        let Some(mut m) = MapReader::new(node, "transition", TRANSITION_KEYS, self.diags) else {
            self.shape_ok = false;
            return None;
        };
        let name = m.opt("name").and_then(|n| {
            let l = self.located(n, "name")?;
            if l.text.trim().is_empty() {
                self.diags.emit(
                    Code::MachineEmptyTransitionName,
                    n.pos,
                    "transition `name` must not be empty",
                );
            }
            Some(l)
        });
        let description = self.opt_string(&mut m, "description");
        let from = m.req("from", self.diags).and_then(|n| match &n.kind {
            NodeKind::Seq(items) => {
                if items.is_empty() {
                    self.diags.emit(
                        Code::MachineEmptyFrom,
                        n.pos,
                        "`from` must name at least one state",
                    );
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(self.located(item, "from")?);
                }
                Some(out)
            }
            _ => self.located(n, "from").map(|l| vec![l]),
        });
        let to = m.req("to", self.diags).and_then(|n| self.located(n, "to"));
        let guard_node = m.opt("guard");
        let script_node = m.opt("guard_script");
        let guard = match (guard_node, script_node) {
            (Some(_), Some(s)) => {
                self.diags.emit(
                    Code::MachineGuardAndScript,
                    s.pos,
                    "a transition takes `guard` or `guard_script`, not both",
                );
                None
            }
            (Some(g), None) => compile_guard(g, &self.sandbox, self.diags),
            (None, Some(s)) => compile_guard_script(s, &self.sandbox, self.diags),
            (None, None) => None,
        };
        let custom = &self.options.custom_action_types;
        let actions = m
            .opt("actions")
            .and_then(|n| parse_actions(n, "actions", custom, true, self.diags))
            .unwrap_or_default();
        let rollback = m
            .opt("rollback")
            .and_then(|n| parse_actions(n, "rollback", custom, true, self.diags))
            .unwrap_or_default();
        m.finish(self.diags);
        let (Some(from), Some(to)) = (from, to) else {
            self.shape_ok = false;
            return None;
        };
        Some(RawTransition {
            pos: node.pos,
            name,
            description,
            from,
            to,
            guard,
            actions,
            rollback,
        })
    }
}

/// The machine, from parts that passed validation.
fn build(
    name: String,
    description: Option<String>,
    initial: Located,
    states: Vec<RawState>,
    transitions: Vec<TransitionDef>,
) -> Machine {
    let states: Vec<StateDef> = states
        .into_iter()
        .map(|s| StateDef {
            name: StateName::new(&s.name.text),
            description: s.description,
            progress: s.progress,
            automation_status: s.automation_status,
            terminal: s.terminal,
            timeout: s.timeout.and_then(|t| {
                let action = match t.action? {
                    RawTimeoutAction::Transition(l) => TimeoutAction::Transition(l.text),
                    RawTimeoutAction::Escalate {
                        new_priority,
                        new_impact,
                    } => TimeoutAction::Escalate {
                        new_priority,
                        new_impact,
                    },
                };
                Some(Timeout {
                    after: t.after,
                    action,
                    pos: t.pos,
                })
            }),
            waits_for: s.waits_for.map(|(w, _)| w),
            pos: s.pos,
        })
        .collect();
    let mut state_index = crate::FastMap::default();
    for (i, s) in states.iter().enumerate() {
        state_index.entry(s.name.clone()).or_insert(i);
    }
    let mut outgoing: crate::FastMap<StateName, Vec<usize>> = crate::FastMap::default();
    for (i, t) in transitions.iter().enumerate() {
        outgoing.entry(t.from.clone()).or_default().push(i);
    }
    Machine {
        name,
        description,
        initial: StateName::new(&initial.text),
        states,
        transitions,
        warnings: Vec::new(),
        file: Arc::from(""),
        state_index,
        outgoing,
    }
}

/// The nodes reachable from `starts` along `edges`.
fn bfs(starts: &[usize], edges: &[Vec<usize>], n: usize) -> Vec<bool> {
    let mut seen = vec![false; n];
    let mut queue: VecDeque<usize> = VecDeque::new();
    for &s in starts {
        if !seen[s] {
            seen[s] = true;
            queue.push_back(s);
        }
    }
    while let Some(a) = queue.pop_front() {
        for &b in &edges[a] {
            if !seen[b] {
                seen[b] = true;
                queue.push_back(b);
            }
        }
    }
    seen
}
