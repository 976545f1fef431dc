//! The engine's error type.

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
    /// The engine was configured inconsistently.
    #[error("engine configuration: {0}")]
    Config(String),
}
