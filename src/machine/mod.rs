//! The declarative order-workflow state machine: definition, loading,
//! validation, planning of transitions, and diagrams.
//!
//! A machine is a YAML file (the default one ships as
//! `rules/order-workflow.yaml` and is built into the crate, see
//! [`Machine::default_order_workflow`]). Loading is strict, like rule packs:
//! it either yields a [`Machine`] or **every** problem of the file at once, each
//! a [`Diagnostic`] with file, line and column.
//!
//! # File format
//!
//! ```yaml
//! machine: order-workflow            # required: the machine's name
//! description: TikTok Shop orders    # optional
//! initial: received                  # required: where new orders start
//!
//! states:                            # required, a list; `name` unique
//!   - name: received                 # required; letters, digits, `_` and `-`
//!     description: Order arrived     # optional
//!     progress: 10                   # required, 0..=100 (the order's flow_progress)
//!     automation_status: Processing  # required: Processing | Shipped | Delivered | Manual Review
//!     terminal: false                # optional, default false; terminal states have no exits
//!     waits_for: in_transit          # optional: in_transit | delivered, an external confirmation
//!                                    # (see below); not on terminal or manual-review states
//!     timeout:                       # optional; never on a terminal state
//!       after: 72h                   # required: a whole number + s, m, h or d
//!       transition: fail             # a transition leaving this state ...
//!       # escalate: { new_priority: urgent, new_impact: HIGH }   # ... or an escalation (exactly one)
//!
//! transitions:                       # required, a list, in priority order
//!   - name: validate                 # optional, unique among the transitions
//!                                    # leaving one state; default `<from>-><to>`
//!     from: received                 # required: a state, or a list of states
//!     to: validated                  # required: a state
//!     description: Address checked   # optional
//!     guard:                         # optional: a condition in the rule syntax
//!       { field: quantity, operator: greater_than, value: 0 }   # (or a list: all must hold)
//!     # guard_script: "order.quantity > 0"   # optional Rhai guard; not together with `guard`
//!     actions:                       # optional: what the transition does, in order
//!       - type: validate_address
//!     rollback:                      # optional: actions undoing earlier steps, run
//!       - type: reserve_inventory    # before `actions`, in the listed order
//!         parameters: { operation: release }
//! ```
//!
//! Actions are written as in rule files (`type`, `parameters`, `timeout_ms`,
//! `retry`), and may carry their own `rollback:` — one compensating action the
//! executor runs if a later step of the same transition fails.
//!
//! # Semantics
//!
//! - The order of `transitions` in the file is the order of
//!   [`Machine::allowed_transitions`], and the order in which
//!   [`Machine::transition`] tries the transitions from one state to another:
//!   the first whose guard holds is taken. A guard that *errors* (a script
//!   failure) stops the search with [`TransitionError::GuardError`]; it never
//!   silently falls through to the next candidate.
//! - Structural questions ([`Machine::can_transition`], diagrams, validation)
//!   ignore guards.
//! - A timeout fires once an order has stayed in its state for `after`
//!   (measured from `state_changed_at`): either the named transition is taken
//!   (through [`Machine::transition_named`], guards included) or the order's
//!   priority / impact is escalated.
//! - The **automatic next state** of a state ([`Machine::automatic_next`]) is
//!   the first target of its transitions, in file order, that is neither a
//!   manual-review state (`automation_status: Manual Review`) nor
//!   `cancelled`; terminal and manual-review states have none. The engine's
//!   workers move orders along it.
//! - A state that `waits_for` an external confirmation (`in_transit`:
//!   TikTok's `IN_TRANSIT` or a carrier's pickup; `delivered`: `DELIVERED`)
//!   is left only when that confirmation arrives, through its automatic
//!   next state, or by its timeout (`transition: fail` sends the order to a
//!   person, `escalate:` raises its priority and it keeps waiting) — when the
//!   engine runs with external events (`EngineBuilder::external_events`).
//!   Without, as in the simulator, the wait is ignored and orders move on as
//!   from any other state.
//!
//! # Validation
//!
//! Besides YAML syntax, unknown keys, missing keys and wrong types, each of
//! these is an error: an unknown state (in `initial`, `from`, `to`, with a
//! suggestion), a duplicate state, a duplicate transition name out of one
//! state, a state unreachable from `initial`, a terminal state with exits, a
//! non-terminal state without exits, no terminal state reachable from
//! `initial`, a reachable state from which no terminal state can be reached,
//! `progress` outside 0..=100, an unknown `automation_status`, a malformed
//! timeout duration, a timeout naming a transition that does not leave its
//! state, a timeout on a terminal state, and `guard` together with
//! `guard_script`, an unknown `waits_for` value (with a suggestion), and a
//! waiting state that is terminal, a manual-review state, or has no
//! automatic next state. A timeout whose transition has a guard is a
//! warning (the timeout does nothing while the guard rejects).
//!
//! The reachability checks run only when every state reference resolves, so a
//! misspelt state name yields one diagnostic rather than a cascade of
//! "unreachable" follow-ups.

mod diagram;
mod load;
mod wait;

pub use wait::WaitFor;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use compact_str::CompactString;

use crate::diag::{Diagnostic, Pos};
use crate::model::action::{ActionSpec, ActionType};
use crate::model::{AutomationStatus, Impact, Order, Priority, StateName};
use crate::rules::Guard;

/// The shipped default workflow, `rules/order-workflow.yaml`.
const DEFAULT_ORDER_WORKFLOW: &str = include_str!("../../rules/order-workflow.yaml");

/// The state customer cancellations go to; never an automatic next state.
pub const CANCELLED: &str = "cancelled";

/// A validated state machine.
///
/// Built only by loading a machine file ([`Machine::from_str`],
/// [`Machine::from_file`], [`Machine::load`]) or the shipped default
/// ([`Machine::default_order_workflow`]), so every `Machine` has passed
/// validation: every state is reachable, every non-terminal state has an exit,
/// and a terminal state can be reached from everywhere.
///
/// ```
/// use creatorflow::machine::{Machine, TransitionError};
/// use creatorflow::Order;
///
/// let machine = Machine::from_str(
///     r#"
/// machine: tiny
/// initial: open
/// states:
///   - { name: open, progress: 0, automation_status: Processing }
///   - { name: done, progress: 100, automation_status: Delivered, terminal: true }
/// transitions:
///   - { name: finish, from: open, to: done, actions: [ { type: send_customer_notification } ] }
/// "#,
///     "tiny.yaml",
/// )
/// .unwrap();
/// assert!(machine.can_transition("open", "done"));
///
/// let mut order = Order::from_json(
///     r#"{"tiktok_order_id":"1","customer_handle":"@a","product_name":"Lamp",
///         "product_id":"p1","quantity":1,"price":9.5,"current_state":"open",
///         "created_at":"2025-03-01T12:00:00Z"}"#,
/// )
/// .unwrap();
/// let now = order.created_at;
/// let plan = machine.transition(&order, "done", now).unwrap();
/// assert_eq!(plan.transition, "finish");
/// assert_eq!(plan.progress, 100);
/// assert_eq!(plan.actions[0].kind.as_str(), "send_customer_notification");
/// plan.apply_to(&mut order, now);
/// assert_eq!(order.current_state, "done");
///
/// // `done` is terminal: nothing leaves it.
/// let err = machine.transition(&order, "open", now).unwrap_err();
/// assert!(matches!(err, TransitionError::Terminal { .. }));
///
/// // Loading reports every problem, with file:line:col.
/// let errors = Machine::from_str(
///     "machine: bad\ninitial: opne\nstates: []\ntransitions: []\n",
///     "bad.yaml",
/// )
/// .unwrap_err();
/// assert_eq!(
///     errors[0].to_string(),
///     "bad.yaml:2:10: error[E0305]: unknown initial state `opne`"
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Machine {
    name: String,
    description: Option<String>,
    initial: StateName,
    states: Vec<StateDef>,
    transitions: Vec<TransitionDef>,
    warnings: Vec<Diagnostic>,
    file: Arc<str>,
    /// State name → index in `states`.
    state_index: crate::FastMap<StateName, usize>,
    /// State name → indexes in `transitions` of the transitions leaving it, in file order.
    outgoing: crate::FastMap<StateName, Vec<usize>>,
}

/// One state of a machine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StateDef {
    /// The state's name.
    pub name: StateName,
    /// Optional human description.
    pub description: Option<String>,
    /// The order's `flow_progress` in this state, 0..=100.
    pub progress: u8,
    /// The order's `automation_status` in this state.
    pub automation_status: AutomationStatus,
    /// Whether the state is final (no transition leaves it).
    pub terminal: bool,
    /// What happens when an order stays too long in this state.
    pub timeout: Option<Timeout>,
    /// The external confirmation the state waits for (`waits_for:`), if
    /// any: honoured by an engine with external events, ignored otherwise.
    pub waits_for: Option<WaitFor>,
    /// Where the state is declared.
    pub pos: Pos,
}

/// A state's timeout (`timeout:`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Timeout {
    /// How long an order may stay in the state (from `state_changed_at`).
    pub after: TimeDelta,
    /// What happens then.
    pub action: TimeoutAction,
    /// Where the timeout is declared.
    pub pos: Pos,
}

/// What a timeout does.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TimeoutAction {
    /// Take the named transition out of the state (`transition: fail`).
    Transition(String),
    /// Raise the order's priority and/or impact (`escalate: {new_priority, new_impact}`);
    /// at least one is set.
    Escalate {
        /// The new priority, if any.
        new_priority: Option<Priority>,
        /// The new impact, if any.
        new_impact: Option<Impact>,
    },
}

impl Timeout {
    /// The escalation as an `escalate_priority` action the executor can run,
    /// or `None` for a timeout that takes a transition.
    pub fn escalation_action(&self) -> Option<ActionSpec> {
        let TimeoutAction::Escalate {
            new_priority,
            new_impact,
        } = &self.action
        else {
            return None;
        };
        let mut parameters = serde_json::Map::new();
        if let Some(p) = new_priority {
            parameters.insert("new_priority".into(), p.as_str().into());
        }
        if let Some(i) = new_impact {
            parameters.insert("new_impact".into(), i.as_str().into());
        }
        Some(ActionSpec {
            kind: ActionType::EscalatePriority,
            parameters,
            timeout_ms: None,
            retry: None,
            rollback: None,
            pos: self.pos,
        })
    }
}

/// One transition of a machine. A transition written with a list of `from`
/// states appears once per `from` state, in list order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransitionDef {
    /// The name, unique among the transitions leaving `from` (default `<from>-><to>`).
    pub name: String,
    /// The state it leaves.
    pub from: StateName,
    /// The state it enters.
    pub to: StateName,
    /// Optional human description.
    pub description: Option<String>,
    /// The guard that must hold for the transition to be taken, if any.
    pub guard: Option<Guard>,
    /// What the transition does, in order.
    pub actions: Vec<ActionSpec>,
    /// Actions undoing earlier steps (release a reservation, void a label),
    /// run before `actions`, in order.
    pub rollback: Vec<ActionSpec>,
    /// Where the transition is declared.
    pub pos: Pos,
}

/// What taking a transition means for an order: the result of
/// [`Machine::transition`] and [`Machine::transition_named`]. The plan only
/// describes the step; running the actions is the executor's job, and
/// [`TransitionPlan::apply_to`] then moves the order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TransitionPlan {
    /// The order's state before the step.
    pub from: StateName,
    /// The order's state after the step.
    pub to: StateName,
    /// The name of the transition taken.
    pub transition: String,
    /// The actions to run, in order (each may carry its own compensating `rollback`).
    pub actions: Vec<ActionSpec>,
    /// Actions undoing earlier steps, to run before `actions`, in order.
    pub rollbacks: Vec<ActionSpec>,
    /// The order's `flow_progress` in the new state.
    pub progress: u8,
    /// The order's `automation_status` in the new state.
    pub automation_status: AutomationStatus,
    /// Whether the new state is terminal.
    pub terminal: bool,
}

impl TransitionPlan {
    /// Moves `order` to the plan's target state: sets `previous_state`,
    /// `current_state`, `flow_progress`, `automation_status`,
    /// `state_changed_at` and `updated_at` (to `now`). Call it once the
    /// plan's actions have succeeded.
    pub fn apply_to(&self, order: &mut Order, now: DateTime<Utc>) {
        order.previous_state = Some(self.from.clone());
        order.current_state = self.to.clone();
        order.flow_progress = self.progress;
        order.automation_status = self.automation_status;
        order.state_changed_at = Some(now);
        order.updated_at = Some(now);
    }
}

/// Why a transition was refused. The order is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The order's current state, or the requested target, is not a state of the machine.
    #[error("unknown state `{state}` in machine `{machine}`")]
    UnknownState {
        /// The unknown state name.
        state: String,
        /// The machine's name.
        machine: String,
    },
    /// The order's state is terminal: no transition leaves it.
    #[error("state `{state}` is terminal; no transition leaves it")]
    Terminal {
        /// The terminal state.
        state: String,
    },
    /// No transition leads from the order's state to the requested one.
    #[error("no transition from `{from}` to `{to}`; allowed: {}", list(allowed))]
    NotAllowed {
        /// The order's state.
        from: String,
        /// The requested state.
        to: String,
        /// The states reachable in one step from `from`, in file order, without repeats.
        allowed: Vec<String>,
    },
    /// No transition leaving the order's state has the requested name.
    #[error(
        "no transition named `{name}` leaves `{from}`; allowed: {}",
        list(allowed)
    )]
    UnknownTransition {
        /// The order's state.
        from: String,
        /// The requested transition name.
        name: String,
        /// The names of the transitions leaving `from`, in file order.
        allowed: Vec<String>,
    },
    /// Transitions exist, but the guard of every one of them rejected the order.
    #[error("transition from `{from}` to `{to}` rejected by guard {guard}")]
    GuardRejected {
        /// The order's state.
        from: String,
        /// The requested state.
        to: String,
        /// The rejecting guards' descriptions (joined with ` | ` when several).
        guard: String,
    },
    /// A guard failed to evaluate (a script error); the search stopped there.
    #[error("guard of transition `{transition}` from `{from}` to `{to}` failed: {message}")]
    GuardError {
        /// The order's state.
        from: String,
        /// The target state.
        to: String,
        /// The transition whose guard failed.
        transition: String,
        /// The evaluation error.
        message: String,
    },
}

/// Whether a transition from `from` to `to` may be an automatic step (`to`
/// being a manual-review state or not): not to `from` itself, not to
/// [`CANCELLED`], not to manual review. Shared by the machine and its
/// loader's checks.
fn automatic_target(from: &str, to: &str, to_is_review: bool) -> bool {
    to != from && to != CANCELLED && !to_is_review
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Options for [`Machine::load`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Action types the host registered besides the built-in ones; machine
    /// files may use them in `actions` and `rollback`.
    pub custom_action_types: Vec<CompactString>,
}

impl LoadOptions {
    /// Adds a host-registered action type.
    pub fn with_custom_action_type(mut self, name: &str) -> Self {
        self.custom_action_types.push(CompactString::new(name));
        self
    }
}

impl Machine {
    /// Loads and validates a machine from YAML text; `file_name` names the
    /// source in diagnostics. On failure, returns every diagnostic (errors and
    /// warnings) sorted by position.
    pub fn from_str(source: &str, file_name: &str) -> Result<Machine, Vec<Diagnostic>> {
        Self::load(source, file_name, &LoadOptions::default())
    }

    /// Like [`Machine::from_str`], with options (host-registered action types).
    pub fn load(
        source: &str,
        file_name: &str,
        options: &LoadOptions,
    ) -> Result<Machine, Vec<Diagnostic>> {
        load::load(source, file_name, options)
    }

    /// Reads and loads a machine file. A file that cannot be read yields a
    /// single diagnostic at `path:1:1` saying why (`cannot read machine file: ...`),
    /// so callers print I/O and validation problems the same way.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Machine, Vec<Diagnostic>> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(source) => Self::from_str(&source, &name),
            Err(e) => {
                let mut d = crate::diag::Diagnostics::new(name);
                d.emit(
                    crate::diag::Code::MachineUnreadable,
                    Pos::new(1, 1),
                    format!("cannot read machine file: {e}"),
                );
                Err(d.into_vec())
            }
        }
    }

    /// The shipped default workflow (`rules/order-workflow.yaml`, built into
    /// the crate): the order table of the model plus customer cancellations
    /// before shipment, with timeouts on `received`, `label_generated` and
    /// `shipped`, and waits for the world in `label_generated` (`in_transit`)
    /// and `shipped` (`delivered`).
    pub fn default_order_workflow() -> Machine {
        match Self::from_str(DEFAULT_ORDER_WORKFLOW, "rules/order-workflow.yaml") {
            Ok(m) => m,
            // A unit test loads the shipped file; this cannot happen in a tested build.
            Err(diags) => panic!(
                "the shipped rules/order-workflow.yaml is invalid:\n{}",
                diags
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    /// The YAML source of the shipped default workflow.
    pub fn default_order_workflow_source() -> &'static str {
        DEFAULT_ORDER_WORKFLOW
    }

    /// The machine's name (`machine:`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The machine's description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The file the machine was loaded from, as named to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The initial state of new orders.
    pub fn initial(&self) -> &StateName {
        &self.initial
    }

    /// The states, in file order.
    pub fn states(&self) -> &[StateDef] {
        &self.states
    }

    /// A state by name.
    pub fn state(&self, name: &str) -> Option<&StateDef> {
        self.state_index
            .get(&StateName::new(name))
            .map(|&i| &self.states[i])
    }

    /// Every transition, in file order (a transition with several `from`
    /// states appears once per state).
    pub fn transitions(&self) -> &[TransitionDef] {
        &self.transitions
    }

    /// Warnings found while loading (the machine loaded despite them).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The transitions leaving `from`, in file order (none for an unknown or terminal state).
    pub fn allowed_transitions<'a>(
        &'a self,
        from: &str,
    ) -> impl Iterator<Item = &'a TransitionDef> + 'a {
        self.outgoing
            .get(&StateName::new(from))
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.transitions[i])
    }

    /// The distinct states reachable in one step from `from`, in file order.
    pub fn targets(&self, from: &str) -> Vec<&StateName> {
        let mut out: Vec<&StateName> = Vec::new();
        for t in self.allowed_transitions(from) {
            if !out.contains(&&t.to) {
                out.push(&t.to);
            }
        }
        out
    }

    /// The automatic next state after `state`: the first target of its
    /// transitions (file order) that is neither a manual-review state nor
    /// [`CANCELLED`] nor `state` itself; none for terminal and manual-review
    /// states (and unknown ones).
    ///
    /// ```
    /// let m = creatorflow::machine::Machine::default_order_workflow();
    /// assert_eq!(m.automatic_next("label_generated").map(|s| s.as_str()), Some("shipped"));
    /// assert_eq!(m.automatic_next("failed"), None); // waits for a person
    /// assert_eq!(m.automatic_next("delivered"), None);
    /// ```
    pub fn automatic_next(&self, state: &str) -> Option<&StateName> {
        let def = self.state(state)?;
        if def.terminal || def.automation_status == AutomationStatus::ManualReview {
            return None;
        }
        self.targets(state).into_iter().find(|t| {
            let review = self
                .state(t.as_str())
                .is_some_and(|s| s.automation_status == AutomationStatus::ManualReview);
            automatic_target(state, t.as_str(), review)
        })
    }

    /// What `state` waits for, if it waits for an external confirmation.
    pub fn waits_for(&self, state: &str) -> Option<WaitFor> {
        self.state(state).and_then(|s| s.waits_for)
    }

    /// Whether some transition leads from `from` to `to`, guards ignored.
    pub fn can_transition(&self, from: &str, to: &str) -> bool {
        self.allowed_transitions(from).any(|t| t.to == to)
    }

    /// The timeout of a state, if it has one.
    pub fn timeout_of(&self, state: &str) -> Option<&Timeout> {
        self.state(state).and_then(|s| s.timeout.as_ref())
    }

    /// The timeout of the order's current state if it is due at `now`: the
    /// order entered the state (`state_changed_at`, else `created_at`) at least
    /// `after` ago.
    pub fn due_timeout(&self, order: &Order, now: DateTime<Utc>) -> Option<&Timeout> {
        let timeout = self.timeout_of(order.current_state.as_str())?;
        let since = order.state_changed_at.unwrap_or(order.created_at);
        (now - since >= timeout.after).then_some(timeout)
    }

    /// Plans moving `order` from its current state to `to`: the first
    /// transition from the current state to `to` (in file order) whose guard
    /// holds at `now` is taken.
    pub fn transition(
        &self,
        order: &Order,
        to: &str,
        now: DateTime<Utc>,
    ) -> Result<TransitionPlan, TransitionError> {
        let from = self.check_from(order)?;
        if !self.state_index.contains_key(&StateName::new(to)) {
            return Err(TransitionError::UnknownState {
                state: to.to_owned(),
                machine: self.name.clone(),
            });
        }
        let candidates = self
            .allowed_transitions(from.name.as_str())
            .filter(|t| t.to == to);
        self.pick(order, from, to, candidates, now).map_err(|e| {
            if let TransitionError::NotAllowed { .. } = e {
                TransitionError::NotAllowed {
                    from: from.name.to_string(),
                    to: to.to_owned(),
                    allowed: self
                        .targets(from.name.as_str())
                        .into_iter()
                        .map(ToString::to_string)
                        .collect(),
                }
            } else {
                e
            }
        })
    }

    /// Plans taking the transition called `name` out of the order's current
    /// state (used for timeouts and named events). Among several transitions
    /// of that name (impossible in a valid machine, since names are unique
    /// per state) the first is taken. The guard must hold.
    pub fn transition_named(
        &self,
        order: &Order,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<TransitionPlan, TransitionError> {
        let from = self.check_from(order)?;
        let Some(t) = self
            .allowed_transitions(from.name.as_str())
            .find(|t| t.name == name)
        else {
            return Err(TransitionError::UnknownTransition {
                from: from.name.to_string(),
                name: name.to_owned(),
                allowed: self
                    .allowed_transitions(from.name.as_str())
                    .map(|t| t.name.clone())
                    .collect(),
            });
        };
        self.pick(order, from, t.to.as_str(), std::iter::once(t), now)
    }

    /// The order's current state, refused when unknown or terminal.
    fn check_from(&self, order: &Order) -> Result<&StateDef, TransitionError> {
        let from = self.state(order.current_state.as_str()).ok_or_else(|| {
            TransitionError::UnknownState {
                state: order.current_state.to_string(),
                machine: self.name.clone(),
            }
        })?;
        if from.terminal {
            return Err(TransitionError::Terminal {
                state: from.name.to_string(),
            });
        }
        Ok(from)
    }

    /// Takes the first candidate whose guard holds. No candidate at all gives
    /// a `NotAllowed` with an empty `allowed` (the caller fills it in).
    fn pick<'a>(
        &'a self,
        order: &Order,
        from: &StateDef,
        to: &str,
        candidates: impl Iterator<Item = &'a TransitionDef>,
        now: DateTime<Utc>,
    ) -> Result<TransitionPlan, TransitionError> {
        let mut rejected: Vec<String> = Vec::new();
        for t in candidates {
            if let Some(guard) = &t.guard {
                match guard.eval(order, now) {
                    Ok(true) => {}
                    Ok(false) => {
                        rejected.push(guard.describe());
                        continue;
                    }
                    Err(message) => {
                        return Err(TransitionError::GuardError {
                            from: from.name.to_string(),
                            to: to.to_owned(),
                            transition: t.name.clone(),
                            message,
                        });
                    }
                }
            }
            return Ok(self.plan(t));
        }
        if rejected.is_empty() {
            Err(TransitionError::NotAllowed {
                from: from.name.to_string(),
                to: to.to_owned(),
                allowed: Vec::new(),
            })
        } else {
            Err(TransitionError::GuardRejected {
                from: from.name.to_string(),
                to: to.to_owned(),
                guard: rejected.join(" | "),
            })
        }
    }

    fn plan(&self, t: &TransitionDef) -> TransitionPlan {
        // Validation guarantees `to` is a state; the fallback is never used.
        let (progress, automation_status, terminal) = self
            .state(t.to.as_str())
            .map_or((0, AutomationStatus::Processing, false), |s| {
                (s.progress, s.automation_status, s.terminal)
            });
        TransitionPlan {
            from: t.from.clone(),
            to: t.to.clone(),
            transition: t.name.clone(),
            actions: t.actions.clone(),
            rollbacks: t.rollback.clone(),
            progress,
            automation_status,
            terminal,
        }
    }
}

#[cfg(test)]
mod tests;
