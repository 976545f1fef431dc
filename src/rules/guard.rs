//! Transition guards for the state machine: a condition (or a list of
//! conditions, all of which must hold) in the rule syntax, or a Rhai expression.

use chrono::{DateTime, Utc};
use rhai::Scope;

use super::def::Condition;
use super::load::parse_condition;
use super::ops::operand_json;
use crate::diag::{Code, Diagnostics};
use crate::model::Order;
use crate::script::{Sandbox, Script, order_map};
use crate::yaml::{Node, NodeKind};

/// A compiled guard.
#[derive(Debug, Clone)]
pub struct Guard {
    kind: GuardKind,
}

#[derive(Debug, Clone)]
enum GuardKind {
    Conditions(Vec<Condition>),
    Script(Script, Sandbox),
}

/// Compiles `guard:` — one condition mapping or a list of them (all must hold).
/// Window facts are refused (a guard has no order stream to count over).
pub fn compile_guard(node: &Node, _sandbox: &Sandbox, diags: &mut Diagnostics) -> Option<Guard> {
    let before = diags.error_count();
    let conds: Vec<Condition> = match &node.kind {
        NodeKind::Seq(items) => {
            if items.is_empty() {
                diags.emit(
                    Code::MachineEmptyGuard,
                    node.pos,
                    "`guard` must have at least one condition",
                );
            }
            items
                .iter()
                .filter_map(|n| parse_condition(n, true, diags))
                .collect()
        }
        _ => parse_condition(node, true, diags).into_iter().collect(),
    };
    (diags.error_count() == before).then_some(Guard {
        kind: GuardKind::Conditions(conds),
    })
}

/// Compiles `guard_script:` — a Rhai expression over `order` that returns a bool.
pub fn compile_guard_script(
    node: &Node,
    sandbox: &Sandbox,
    diags: &mut Diagnostics,
) -> Option<Guard> {
    let src = crate::yaml::reader::string(node, "guard_script", diags)?;
    match sandbox.compile(src, &[]) {
        Ok(script) => Some(Guard {
            kind: GuardKind::Script(script, sandbox.clone()),
        }),
        Err(e) => {
            diags.emit(
                Code::MachineGuardScriptCompile,
                node.pos,
                format!("guard_script does not compile: {}", e.message),
            );
            None
        }
    }
}

impl Guard {
    /// Evaluates the guard for `order` at time `now`; `Err` carries a script error.
    pub fn eval(&self, order: &Order, now: DateTime<Utc>) -> Result<bool, String> {
        match &self.kind {
            GuardKind::Conditions(conds) => {
                let now_ms = now.timestamp_millis();
                Ok(conds.iter().all(|c| c.test(order, now_ms, &[])))
            }
            GuardKind::Script(script, sandbox) => {
                let mut scope = Scope::new();
                scope.push("order", order_map(order, now, script.access()));
                sandbox.eval_bool(script, &mut scope)
            }
        }
    }

    /// A short human description for diagrams (`quantity greater_than 0`, or the script).
    pub fn describe(&self) -> String {
        match &self.kind {
            GuardKind::Conditions(conds) => conds
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {}",
                        c.field.name(),
                        c.operator,
                        operand_json(&c.operand)
                    )
                })
                .collect::<Vec<_>>()
                .join(" and "),
            GuardKind::Script(script, _) => script.source().to_owned(),
        }
    }
}
