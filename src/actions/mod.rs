//! Actions: what a fired rule or a state transition asks the host to do,
//! and the executor that runs them.
//!
//! - [`spec`](ActionSpec): the declarative side — the 14 built-in action
//!   types, an action's parameters, timeout and retry policy, its rollback;
//! - [`ActionHandler`]: the async trait a host implements for its own
//!   services (or [`handler_fn`] over an async closure), registered per type
//!   in a [`HandlerRegistry`];
//! - [`DefaultHandlers`]: simulated handlers for all 14 types, an explicit
//!   opt-in ([`HandlerRegistry::simulated`]) for the simulator, the command
//!   line and tests (effects logged; inventory and carrier simulated);
//! - [`HttpEffect`] (feature `http-effect`): an action delivered to the
//!   creator's own service as a signed JSON POST (the [`http`] contract),
//!   with [`sign_effect`] / [`verify_effect_signature`] for receivers;
//! - [`Executor`]: runs a step's actions with per-action timeouts, retries of
//!   retryable errors with backoff and jitter ([`backoff_delay`]) or the
//!   service's own `retry_after` when longer, a
//!   [circuit breaker](CircuitBreakers) per action type, compensation in
//!   reverse order, and escalation when retries are exhausted. Every call of
//!   one action of one step carries the same idempotency key, retries
//!   included; a rollback or compensation says so
//!   ([`ActionContext::rollback`]).

mod breaker;
mod defaults;
mod executor;
mod handler;
pub mod http;
mod recent;
mod retry;
use crate::model::action as spec;

pub use breaker::{BreakerState, CircuitBreakers};
pub use defaults::{DefaultHandlers, LogHandler, SimConfig, SimulatedCarrier, SimulatedInventory};
pub(crate) use executor::records_json;
pub use executor::{
    ActionRecord, Executor, ExecutorConfig, ExecutorStats, NoSleep, Phase, Sleeper, Step,
    StepReport, StepResult, TokioSleeper,
};
pub use handler::{
    ActionCall, ActionContext, ActionError, ActionFuture, ActionHandler, ActionOutcome,
    AsyncFnHandler, BoxFuture, ErrorClass, FnHandler, HandlerRegistry, handler_fn,
};
#[cfg(feature = "http-effect")]
pub use http::{HttpEffect, HttpEffectError, HttpTarget};
pub use http::{SIGNATURE_HEADER, SignatureError, sign_effect, verify_effect_signature};
pub use retry::{RetryPreset, backoff_delay};
pub use spec::{ActionSpec, ActionType, BackoffStrategy, RetrySpec};

#[cfg(test)]
mod tests;
