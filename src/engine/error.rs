//! The engine's error type.

use crate::actions::ActionType;
use crate::machine::TransitionError;
use crate::store::{OrderId, StoreError};

/// Why an engine operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The machine refused the transition.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The tenant has no such order.
    #[error("order {0} not found")]
    NotFound(OrderId),
    /// The operation needs the order in another state.
    #[error("order {order_id} is in `{state}`; {operation} needs {expected}")]
    WrongState {
        /// The order.
        order_id: OrderId,
        /// Its state.
        state: String,
        /// What was asked.
        operation: &'static str,
        /// The state(s) it needs.
        expected: &'static str,
    },
    /// The operator command needs a reason (a rejection).
    #[error("{operation} needs a reason")]
    ReasonRequired {
        /// The command.
        operation: &'static str,
    },
    /// The engine was configured inconsistently.
    #[error("engine configuration: {0}")]
    Config(String),
    /// A rule pack the engine cannot run (an action type without a
    /// handler): [`Engine::reload_rules`](super::Engine::reload_rules) refused it.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Why [`EngineBuilder::build`](super::EngineBuilder::build) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The machine or the rule pack uses action types no handler was
    /// registered for.
    #[error(
        "no handler for the action type(s) {} used by the machine or the rule pack: register \
         one for each (`EngineBuilder::handlers`, `actions::handler_fn`), or opt into the \
         simulated ones (`EngineBuilder::simulated_handlers`)",
        .missing.iter().map(|k| format!("`{}`", k.as_str())).collect::<Vec<_>>().join(", ")
    )]
    MissingHandlers {
        /// The action types without a handler, sorted.
        missing: Vec<ActionType>,
    },
}
