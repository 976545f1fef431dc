//! The action executor: runs a step's actions with timeouts, retries with
//! backoff, circuit breakers, compensation and escalation.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use serde_json::Value;

use super::breaker::{Admission, CircuitBreakers};
use super::handler::{ActionContext, ActionError, BoxFuture, HandlerRegistry};
use super::retry::{backoff_delay, retry_allowed};
use super::spec::{ActionSpec, ActionType, RetrySpec};
use crate::clock::Clock;
use crate::model::Order;

/// Waits between retries. The default, [`TokioSleeper`], sleeps in real
/// time; [`NoSleep`] returns at once (tests, virtual time).
pub trait Sleeper: Send + Sync {
    /// Waits `d`.
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()>;
}

/// Sleeps with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSleeper;

impl Sleeper for TokioSleeper {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Does not wait; adds up the delays it was asked for.
#[derive(Debug, Default)]
pub struct NoSleep {
    total_ms: AtomicU64,
}

impl NoSleep {
    /// The delays asked for so far, in milliseconds.
    pub fn total_ms(&self) -> u64 {
        self.total_ms.load(Ordering::Relaxed)
    }
}

impl Sleeper for NoSleep {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        self.total_ms
            .fetch_add(d.as_millis() as u64, Ordering::Relaxed);
        Box::pin(std::future::ready(()))
    }
}

/// The executor's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecutorConfig {
    /// Timeout of an action that declares none.
    pub default_timeout: Duration,
    /// How long an open circuit breaker refuses calls.
    pub breaker_cooldown: TimeDelta,
    /// Breaker threshold for a retry policy that names none.
    pub default_breaker_threshold: u32,
    /// Seed of the jitter RNG.
    pub seed: u64,
    /// The longest wait a handler's `retry_after` (an HTTP `Retry-After`)
    /// may impose before a retry; an action whose timeout is longer may wait
    /// up to its timeout instead. The executor waits the larger of the
    /// backoff delay and the (capped) `retry_after`: a service asking for
    /// an hour is retried after this bound and, if it still refuses, the
    /// step fails or is tried again later as any failure is. The bound stays
    /// well inside a claim's lease (twice the longest lane timeout).
    pub max_retry_after: Duration,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            default_timeout: Duration::from_secs(10),
            breaker_cooldown: TimeDelta::seconds(30),
            default_breaker_threshold: 5,
            seed: 0,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Which part of a step an action ran in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The transition's `rollback:` list (undoing earlier steps), run first.
    Rollback,
    /// The transition's `actions:`.
    Action,
    /// An action's own `rollback`, run (in reverse order) because a later
    /// action of the step failed for good.
    Compensation,
}

/// One action as run, recorded in the order's history (`actions_executed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionRecord {
    /// The action type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where in the step it ran.
    pub phase: Phase,
    /// The `operation` parameter, if any (reserve / release, create / void).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Attempts made (0 when a circuit breaker refused the call).
    pub attempts: u32,
    /// Whether it succeeded.
    pub ok: bool,
    /// Its outcome, when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    /// Its last error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ActionError>,
    /// Time spent, retries included (by the engine's clock).
    pub duration_ms: u64,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepResult {
    /// Every action succeeded.
    Succeeded,
    /// An action failed for good; actions done before it were compensated.
    Failed {
        /// The action that failed.
        action: ActionType,
        /// Its last error.
        error: ActionError,
        /// `true` when retries were exhausted: escalate to manual review.
        escalate: bool,
    },
    /// A circuit breaker refused an action; actions done before it were
    /// compensated. Nothing failed: try the step again at `retry_at`.
    Refused {
        /// The refused action type.
        action: ActionType,
        /// When the breaker admits a call again.
        retry_at: DateTime<Utc>,
    },
}

/// What [`Executor::run_step`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Every action run, in order.
    pub records: Vec<ActionRecord>,
    /// How the step ended.
    pub result: StepResult,
    /// Time spent on the whole step (by the engine's clock).
    pub duration_ms: u64,
}

impl StepReport {
    /// The records as the JSON array stored in history.
    pub fn records_json(&self) -> crate::model::JsonText {
        records_json(&self.records)
    }
}

/// `records` as the JSON array stored in history (serialised straight to
/// text: no `Value` tree).
pub(crate) fn records_json(records: &[ActionRecord]) -> crate::model::JsonText {
    crate::model::JsonText::encode(records).unwrap_or_default()
}

/// One step to run: an order, the transition taken, and its actions.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The order (as it was before the step).
    pub order: &'a Order,
    /// The transition's name.
    pub transition: &'a str,
    /// The order version the step starts from (part of idempotency keys).
    pub version: u64,
    /// Actions undoing earlier steps, run first, in order; failures are
    /// recorded and do not stop the step.
    pub rollbacks: &'a [ActionSpec],
    /// The actions, in order.
    pub actions: &'a [ActionSpec],
    /// The retry policy of an action that declares none (the lane's).
    pub retry: &'a RetrySpec,
}

/// Counters over every step run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExecutorStats {
    /// Handler calls made.
    pub attempts: u64,
    /// Of which retries.
    pub retries: u64,
    /// Actions that failed for good.
    pub failures: u64,
    /// Times a circuit breaker opened.
    pub circuit_opened: u64,
}

/// Runs actions through their handlers.
pub struct Executor {
    registry: HandlerRegistry,
    breakers: CircuitBreakers,
    clock: Arc<dyn Clock>,
    sleeper: Arc<dyn Sleeper>,
    config: ExecutorConfig,
    rng: Mutex<StdRng>,
    attempts: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("registry", &self.registry)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

enum Attempted {
    Ok(Value, u32),
    Err(ActionError, u32, bool),
    Refused(DateTime<Utc>, u32),
}

impl Executor {
    /// An executor calling `registry`'s handlers, timing with `clock` and
    /// sleeping between retries in real time.
    pub fn new(registry: HandlerRegistry, clock: Arc<dyn Clock>, config: ExecutorConfig) -> Self {
        Executor {
            registry,
            breakers: CircuitBreakers::new(config.breaker_cooldown),
            clock,
            sleeper: Arc::new(TokioSleeper),
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            config,
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Replaces the sleeper (e.g. [`NoSleep`] in tests).
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The circuit breakers.
    pub fn breakers(&self) -> &CircuitBreakers {
        &self.breakers
    }

    /// The handler registry.
    pub fn registry(&self) -> &HandlerRegistry {
        &self.registry
    }

    /// The counters so far.
    pub fn stats(&self) -> ExecutorStats {
        ExecutorStats {
            attempts: self.attempts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            circuit_opened: self.breakers.times_opened(),
        }
    }

    /// The wait before the next attempt: the backoff `delay`, or the
    /// service's `retry_after` when longer, capped at the larger of
    /// [`ExecutorConfig::max_retry_after`] and the action's `timeout`.
    fn retry_wait(
        &self,
        delay: Duration,
        retry_after: Option<Duration>,
        timeout: Duration,
    ) -> Duration {
        let cap = self.config.max_retry_after.max(timeout);
        retry_after.map_or(delay, |asked| delay.max(asked.min(cap)))
    }

    fn elapsed_ms(&self, since: DateTime<Utc>) -> u64 {
        (self.clock.now() - since).num_milliseconds().max(0) as u64
    }

    /// Runs a step: its rollbacks, then its actions; if an action fails for
    /// good (or a breaker refuses it), the compensating `rollback` of every
    /// earlier action of the step runs, in reverse order.
    pub async fn run_step(&self, step: Step<'_>) -> StepReport {
        let start = self.clock.now();
        let mut records = Vec::with_capacity(step.rollbacks.len() + step.actions.len());
        for (i, spec) in step.rollbacks.iter().enumerate() {
            let (rec, _) = self
                .run_action(&step, spec, Phase::Rollback, &format!("r{i}"))
                .await;
            records.push(rec);
        }
        let mut result = StepResult::Succeeded;
        let mut done = 0;
        for (i, spec) in step.actions.iter().enumerate() {
            let (rec, outcome) = self
                .run_action(&step, spec, Phase::Action, &format!("a{i}"))
                .await;
            records.push(rec);
            match outcome {
                Attempted::Ok(..) => done = i + 1,
                Attempted::Err(error, _, escalate) => {
                    result = StepResult::Failed {
                        action: spec.kind.clone(),
                        error,
                        escalate,
                    };
                    break;
                }
                Attempted::Refused(retry_at, _) => {
                    result = StepResult::Refused {
                        action: spec.kind.clone(),
                        retry_at,
                    };
                    break;
                }
            }
        }
        if result != StepResult::Succeeded {
            for (i, spec) in step.actions[..done].iter().enumerate().rev() {
                if let Some(rb) = &spec.rollback {
                    let (rec, _) = self
                        .run_action(&step, rb, Phase::Compensation, &format!("c{i}"))
                        .await;
                    records.push(rec);
                }
            }
        }
        StepReport {
            records,
            result,
            duration_ms: self.elapsed_ms(start),
        }
    }

    async fn run_action(
        &self,
        step: &Step<'_>,
        spec: &ActionSpec,
        phase: Phase,
        slot: &str,
    ) -> (ActionRecord, Attempted) {
        let start = self.clock.now();
        let outcome = self
            .attempt_all(step, spec, slot, phase != Phase::Action)
            .await;
        let mut rec = ActionRecord {
            kind: spec.kind.as_str().to_owned(),
            phase,
            operation: spec
                .parameters
                .get("operation")
                .and_then(Value::as_str)
                .map(str::to_owned),
            attempts: 0,
            ok: false,
            outcome: None,
            error: None,
            duration_ms: 0,
        };
        let outcome = match outcome {
            Attempted::Ok(v, n) => {
                rec.ok = true;
                rec.outcome = Some(v);
                rec.attempts = n;
                Attempted::Ok(Value::Null, n)
            }
            Attempted::Err(e, n, escalate) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                rec.error = Some(e.clone());
                rec.attempts = n;
                Attempted::Err(e, n, escalate)
            }
            Attempted::Refused(until, n) => {
                rec.error = Some(ActionError::retryable(
                    "circuit_open",
                    format!("circuit breaker of `{}` open until {until}", spec.kind),
                ));
                rec.attempts = n;
                Attempted::Refused(until, n)
            }
        };
        rec.duration_ms = self.elapsed_ms(start);
        (rec, outcome)
    }

    async fn attempt_all(
        &self,
        step: &Step<'_>,
        spec: &ActionSpec,
        slot: &str,
        rollback: bool,
    ) -> Attempted {
        let retry = spec.retry.as_ref().unwrap_or(step.retry);
        let max = retry.max_attempts.max(1);
        let threshold = retry
            .circuit_breaker_threshold
            .unwrap_or(self.config.default_breaker_threshold);
        let Some(handler) = self.registry.get(&spec.kind) else {
            return Attempted::Err(
                ActionError::permanent(
                    "no_handler",
                    format!("no handler registered for `{}`", spec.kind),
                ),
                0,
                false,
            );
        };
        let timeout = spec
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.config.default_timeout);
        let order_ref = step
            .order
            .id
            .map(|id| id.to_string())
            .unwrap_or_else(|| step.order.tiktok_order_id.clone());
        // The same on every attempt: a receiver dedupes retries on it.
        let key = format!("{order_ref}:{}:{}:{slot}", step.transition, step.version);
        let mut attempt = 1;
        loop {
            let now = self.clock.now();
            if let Admission::Refused { retry_at } = self.breakers.admit(&spec.kind, now) {
                return Attempted::Refused(retry_at, attempt - 1);
            }
            self.attempts.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            let ctx = ActionContext {
                order: step.order,
                action: spec,
                transition: step.transition,
                idempotency_key: &key,
                attempt,
                rollback,
                now,
            };
            let result = match tokio::time::timeout(timeout, handler.call(ctx)).await {
                Ok(r) => r,
                Err(_) => Err(ActionError::retryable(
                    "timeout",
                    format!(
                        "`{}` took longer than {} ms",
                        spec.kind,
                        timeout.as_millis()
                    ),
                )),
            };
            match result {
                Ok(out) => {
                    self.breakers.on_success(&spec.kind);
                    return Attempted::Ok(out.0, attempt);
                }
                Err(e) if !e.is_retryable() => {
                    self.breakers.on_success(&spec.kind);
                    return Attempted::Err(e, attempt, false);
                }
                Err(e) => {
                    self.breakers
                        .on_failure(&spec.kind, threshold, self.clock.now());
                    if !retry_allowed(retry, &e.error_kind) {
                        return Attempted::Err(e, attempt, false);
                    }
                    if attempt >= max {
                        return Attempted::Err(e, attempt, true);
                    }
                    let delay = {
                        let mut rng = self
                            .rng
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        backoff_delay(retry, attempt, &mut *rng)
                    };
                    self.sleeper
                        .sleep(self.retry_wait(delay, e.retry_after, timeout))
                        .await;
                    attempt += 1;
                }
            }
        }
    }
}
