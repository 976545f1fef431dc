//! The host-facing side of actions: the [`ActionHandler`] trait, its input
//! ([`ActionContext`]) and output ([`ActionOutcome`], [`ActionError`]), and
//! the [`HandlerRegistry`] mapping action types to handlers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::spec::{ActionSpec, ActionType};
use crate::model::Order;

/// A boxed, sendable future: what [`ActionHandler::call`] returns, so the
/// trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What [`ActionHandler::call`] returns: the action's outcome, later.
pub type ActionFuture<'a> = BoxFuture<'a, Result<ActionOutcome, ActionError>>;

/// Everything a handler knows about one call.
#[derive(Debug, Clone, Copy)]
pub struct ActionContext<'a> {
    /// The order the action is for (as it was before the step).
    pub order: &'a Order,
    /// The action as declared (type, parameters, timeout, retry).
    pub action: &'a ActionSpec,
    /// The transition being taken (`reserve`, `cancel`, …).
    pub transition: &'a str,
    /// De-duplication key for external effects,
    /// `{order}:{transition}:{version}:{slot}`: the order, the transition,
    /// the order version the step started from and the action's place in
    /// the step (`a0`, `r1`, `c0`, …). It is the same on every retry of the
    /// same action of the same step, and a worker that resumes a step after
    /// a crash uses the same keys again, so a receiver that dedupes on it
    /// takes the effect once.
    pub idempotency_key: &'a str,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// Whether the call undoes something: an action of the transition's
    /// `rollback:` list, or an action's own `rollback` run as a
    /// compensation.
    pub rollback: bool,
    /// The current time, from the engine's clock.
    pub now: DateTime<Utc>,
}

/// What a successful action reports: free-form JSON recorded in the order's
/// history (`actions_executed`).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(transparent)]
pub struct ActionOutcome(pub Value);

impl ActionOutcome {
    /// An outcome from any JSON value.
    pub fn json(value: Value) -> Self {
        ActionOutcome(value)
    }
}

/// Whether an error is worth retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A transient failure (timeout, service unavailable): retry.
    Retryable,
    /// A definitive refusal (out of stock, bad address): do not retry.
    Permanent,
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error_kind}: {message}")]
pub struct ActionError {
    /// Retryable or permanent.
    pub kind: ErrorClass,
    /// A short machine-readable kind (`timeout`, `out_of_stock`,
    /// `carrier_unavailable`, …), matched against a retry spec's
    /// `retry_conditions`.
    pub error_kind: String,
    /// A human-readable message.
    pub message: String,
    /// How long the service asked us to wait before trying again (an HTTP
    /// `Retry-After`), if it said. The executor waits at least this long
    /// before the next attempt (see [`Executor`](super::Executor)).
    /// Recorded in history as `retry_after_ms`.
    #[serde(
        rename = "retry_after_ms",
        serialize_with = "millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<Duration>,
}

/// Serialises a present `retry_after` as whole milliseconds.
fn millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => s.serialize_none(),
    }
}

impl ActionError {
    /// A retryable error.
    pub fn retryable(error_kind: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError {
            kind: ErrorClass::Retryable,
            error_kind: error_kind.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// A permanent error.
    pub fn permanent(error_kind: impl Into<String>, message: impl Into<String>) -> Self {
        ActionError {
            kind: ErrorClass::Permanent,
            error_kind: error_kind.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, asking the executor to wait at least `delay` before
    /// the next attempt (e.g. an HTTP `Retry-After`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use creatorflow::actions::ActionError;
    /// let e = ActionError::retryable("http_429", "slow down").with_retry_after(Duration::from_secs(2));
    /// assert_eq!(serde_json::to_value(&e).unwrap()["retry_after_ms"], 2000);
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Whether the error is retryable.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorClass::Retryable
    }
}

/// Runs actions of one or more types. Hosts implement it for their own
/// services (inventory, carriers, notifications) and register it in a
/// [`HandlerRegistry`].
///
/// ```
/// use creatorflow::actions::{ActionContext, ActionFuture, ActionHandler, ActionOutcome};
///
/// struct Notifier;
/// impl ActionHandler for Notifier {
///     fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
///         Box::pin(async move {
///             Ok(ActionOutcome(serde_json::json!({ "sent_to": ctx.order.customer_handle })))
///         })
///     }
/// }
/// ```
pub trait ActionHandler: Send + Sync {
    /// Runs the action described by `ctx`.
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a>;
}

/// An [`ActionHandler`] made of a synchronous closure.
///
/// ```
/// use creatorflow::actions::{ActionOutcome, FnHandler};
/// let h = FnHandler::new(|ctx| Ok(ActionOutcome(serde_json::json!({"order": ctx.order.tiktok_order_id}))));
/// # let _ = h;
/// ```
pub struct FnHandler<F>(F);

impl<F> FnHandler<F>
where
    F: Fn(&ActionContext<'_>) -> Result<ActionOutcome, ActionError> + Send + Sync,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        FnHandler(f)
    }
}

impl<F> ActionHandler for FnHandler<F>
where
    F: Fn(&ActionContext<'_>) -> Result<ActionOutcome, ActionError> + Send + Sync,
{
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        let r = (self.0)(&ctx);
        Box::pin(std::future::ready(r))
    }
}

/// An owned copy of an [`ActionContext`]: what a [`handler_fn`] closure
/// gets, so that its `async move` block may keep it across awaits.
#[derive(Debug, Clone)]
pub struct ActionCall {
    /// The order the action is for (as it was before the step).
    pub order: Order,
    /// The action as declared (type, parameters, timeout, retry).
    pub action: ActionSpec,
    /// The transition being taken (`reserve`, `cancel`, …).
    pub transition: String,
    /// De-duplication key for external effects (see
    /// [`ActionContext::idempotency_key`]).
    pub idempotency_key: String,
    /// Which attempt this is (1 for the first).
    pub attempt: u32,
    /// Whether the call undoes something (see [`ActionContext::rollback`]).
    pub rollback: bool,
    /// The current time, from the engine's clock.
    pub now: DateTime<Utc>,
}

impl ActionCall {
    /// The call's operation parameter (`operation: release`, `void`, …), if any.
    pub fn operation(&self) -> Option<&str> {
        self.action
            .parameters
            .get("operation")
            .and_then(Value::as_str)
    }
}

impl From<ActionContext<'_>> for ActionCall {
    fn from(ctx: ActionContext<'_>) -> Self {
        ActionCall {
            order: ctx.order.clone(),
            action: ctx.action.clone(),
            transition: ctx.transition.to_owned(),
            idempotency_key: ctx.idempotency_key.to_owned(),
            attempt: ctx.attempt,
            rollback: ctx.rollback,
            now: ctx.now,
        }
    }
}

/// An [`ActionHandler`] made of an async closure; see [`handler_fn`].
pub struct AsyncFnHandler<F>(F);

/// A handler from an async closure over an owned [`ActionCall`], so that
/// a host never writes `Box::pin`:
///
/// ```
/// use creatorflow::actions::{ActionOutcome, ActionType, HandlerRegistry, handler_fn};
///
/// let notify = handler_fn(|call| async move {
///     Ok(ActionOutcome(serde_json::json!({ "sent_to": call.order.customer_handle })))
/// });
/// let registry = HandlerRegistry::empty().with(ActionType::SendCustomerNotification, std::sync::Arc::new(notify));
/// # let _ = registry;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> AsyncFnHandler<F>
where
    F: Fn(ActionCall) -> Fut + Send + Sync,
    Fut: Future<Output = Result<ActionOutcome, ActionError>> + Send + 'static,
{
    AsyncFnHandler(f)
}

impl<F, Fut> ActionHandler for AsyncFnHandler<F>
where
    F: Fn(ActionCall) -> Fut + Send + Sync,
    Fut: Future<Output = Result<ActionOutcome, ActionError>> + Send + 'static,
{
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin((self.0)(ActionCall::from(ctx)))
    }
}

/// Maps action types to handlers.
#[derive(Clone, Default)]
pub struct HandlerRegistry {
    handlers: crate::FastMap<ActionType, Arc<dyn ActionHandler>>,
}

impl fmt::Debug for HandlerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.handlers.keys().map(ActionType::as_str).collect();
        names.sort_unstable();
        f.debug_struct("HandlerRegistry")
            .field("types", &names)
            .finish()
    }
}

impl HandlerRegistry {
    /// An empty registry (an engine refuses to build over it when its
    /// machine or pack uses any action; the executor alone fails such an
    /// action with `no_handler`).
    pub fn empty() -> Self {
        HandlerRegistry::default()
    }

    /// Registers `handler` for `kind`, replacing any earlier one.
    pub fn register(&mut self, kind: ActionType, handler: Arc<dyn ActionHandler>) -> &mut Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// [`register`](Self::register), by value.
    pub fn with(mut self, kind: ActionType, handler: Arc<dyn ActionHandler>) -> Self {
        self.register(kind, handler);
        self
    }

    /// Registers the async closure `f` (see [`handler_fn`]) for each of `kinds`.
    pub fn with_fn<F, Fut>(mut self, kinds: impl IntoIterator<Item = ActionType>, f: F) -> Self
    where
        F: Fn(ActionCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActionOutcome, ActionError>> + Send + 'static,
    {
        let handler: Arc<dyn ActionHandler> = Arc::new(handler_fn(f));
        for kind in kinds {
            self.register(kind, handler.clone());
        }
        self
    }

    /// Of `kinds`, those without a handler, sorted and without repeats.
    pub fn missing<'k>(&self, kinds: impl IntoIterator<Item = &'k ActionType>) -> Vec<ActionType> {
        let mut out: Vec<ActionType> = kinds
            .into_iter()
            .filter(|k| !self.handlers.contains_key(*k))
            .cloned()
            .collect();
        out.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        out.dedup();
        out
    }

    /// The handler for `kind`, if any.
    pub fn get(&self, kind: &ActionType) -> Option<&Arc<dyn ActionHandler>> {
        self.handlers.get(kind)
    }

    /// The registered types.
    pub fn types(&self) -> impl Iterator<Item = &ActionType> {
        self.handlers.keys()
    }
}
