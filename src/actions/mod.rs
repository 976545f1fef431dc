//! Actions: what a fired rule or a state transition asks the host to do.
//!
//! This module holds the declarative side (the 14 built-in action types, an
//! action's parameters, timeout and retry policy, and its rollback); the
//! executor that runs them belongs to the runtime.

mod spec;

pub use spec::{ActionSpec, ActionType, BackoffStrategy, RetrySpec, parse_action, parse_actions};
