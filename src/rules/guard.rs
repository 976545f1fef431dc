//! Transition guards for the state machine: a condition (or a list of
//! conditions, all of which must hold) in the rule syntax, or a Rhai expression.

use chrono::{DateTime, Utc};

use crate::diag::Diagnostics;
use crate::model::Order;
use crate::script::Sandbox;
use crate::yaml::Node;

/// A compiled guard.
#[derive(Debug, Clone)]
pub struct Guard {
    _todo: (),
}

/// Compiles `guard:` — one condition mapping or a list of them (all must hold).
/// Window facts are refused (a guard has no order stream to count over).
pub fn compile_guard(_node: &Node, _sandbox: &Sandbox, _diags: &mut Diagnostics) -> Option<Guard> {
    todo!()
}

/// Compiles `guard_script:` — a Rhai expression over `order` that returns a bool.
pub fn compile_guard_script(
    _node: &Node,
    _sandbox: &Sandbox,
    _diags: &mut Diagnostics,
) -> Option<Guard> {
    todo!()
}

impl Guard {
    /// Evaluates the guard for `order` at time `now`; `Err` carries a script error.
    pub fn eval(&self, _order: &Order, _now: DateTime<Utc>) -> Result<bool, String> {
        todo!()
    }

    /// A short human description for diagrams (`quantity > 0`, or the script).
    pub fn describe(&self) -> String {
        todo!()
    }
}
