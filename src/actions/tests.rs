//! Executor tests: retries, conditions, timeouts, breakers, compensation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::model::Order;

fn order() -> Order {
    Order::from_json(
        r#"{"tiktok_order_id":"t1","customer_handle":"@a","product_name":"Lamp",
        "product_id":"p1","quantity":2,"price":"10","created_at":"2025-06-12T10:00:00Z"}"#,
    )
    .expect("valid order")
}

fn spec(kind: ActionType, params: serde_json::Value) -> ActionSpec {
    ActionSpec::new(kind, params.as_object().cloned().unwrap_or_default())
}

fn retry(max: u32) -> RetrySpec {
    RetrySpec {
        max_attempts: max,
        backoff_strategy: BackoffStrategy::Exponential,
        initial_delay_ms: 100,
        max_delay_ms: 1_000,
        retry_conditions: vec![],
        circuit_breaker_threshold: Some(100),
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        "2025-06-12T10:00:00Z".parse().expect("time"),
    ))
}

/// Fails with `error` the first `fail_first` calls, then succeeds; counts calls.
struct Flaky {
    fail_first: u32,
    error: ActionError,
    calls: AtomicU32,
    keys: std::sync::Mutex<Vec<String>>,
}

impl Flaky {
    fn new(fail_first: u32, error: ActionError) -> Arc<Self> {
        Arc::new(Flaky {
            fail_first,
            error,
            calls: AtomicU32::new(0),
            keys: Default::default(),
        })
    }
}

impl ActionHandler for Flaky {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut k) = self.keys.lock() {
            k.push(ctx.idempotency_key.to_owned());
        }
        let r = if n <= self.fail_first {
            Err(self.error.clone())
        } else {
            Ok(ActionOutcome(json!({"call": n})))
        };
        Box::pin(std::future::ready(r))
    }
}

fn executor(reg: HandlerRegistry, clock: Arc<ManualClock>) -> (Executor, Arc<NoSleep>) {
    let sleep = Arc::new(NoSleep::default());
    let ex = Executor::new(reg, clock, ExecutorConfig::default()).with_sleeper(sleep.clone());
    (ex, sleep)
}

fn step<'a>(o: &'a Order, actions: &'a [ActionSpec], r: &'a RetrySpec) -> Step<'a> {
    Step {
        order: o,
        transition: "label",
        version: 3,
        rollbacks: &[],
        actions,
        retry: r,
    }
}

#[tokio::test]
async fn retries_retryable_errors_then_succeeds() {
    let h = Flaky::new(2, ActionError::retryable("carrier_unavailable", "down"));
    let reg = HandlerRegistry::empty().with(ActionType::SelectCarrier, h.clone());
    let (ex, sleep) = executor(reg, clock());
    let o = order();
    let actions = [spec(ActionType::SelectCarrier, json!({}))];
    let r = retry(3);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].attempts, 3);
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    // exponential 100, 200 with equal jitter: [50,100] + [100,200]
    assert!(
        (150..=300).contains(&sleep.total_ms()),
        "{}",
        sleep.total_ms()
    );
    let keys = h.keys.lock().map(|k| k.clone()).unwrap_or_default();
    // The key is the step's, the same on every retry.
    assert_eq!(keys, ["t1:label:3:a0"; 3]);
    assert_eq!(ex.stats().retries, 2);
}

/// Runs one `kind` action whose handler always fails with `error`, under
/// `r`; returns the step's result and how many times the handler was called.
async fn always_failing(kind: ActionType, error: ActionError, r: RetrySpec) -> (StepResult, u32) {
    let h = Flaky::new(10, error);
    let reg = HandlerRegistry::empty().with(kind.clone(), h.clone());
    let (ex, _) = executor(reg, clock());
    let o = order();
    let actions = [spec(kind, json!({}))];
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    (rep.result, h.calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn exhausted_retries_escalate() {
    let timeout = ActionError::retryable("timeout", "slow");
    let (result, calls) = always_failing(ActionType::SelectCarrier, timeout, retry(4)).await;
    assert!(matches!(result, StepResult::Failed { escalate: true, .. }));
    assert_eq!(calls, 4);
}

#[tokio::test]
async fn permanent_errors_and_unlisted_kinds_are_not_retried() {
    let permanent = ActionError::permanent("out_of_stock", "none");
    let (result, calls) = always_failing(ActionType::CheckInventory, permanent, retry(5)).await;
    let not_escalated = |r: &StepResult| {
        matches!(
            r,
            StepResult::Failed {
                escalate: false,
                ..
            }
        )
    };
    assert!(not_escalated(&result));
    assert_eq!(calls, 1);

    let unlisted = ActionError::retryable("rate_limited", "slow down");
    let mut r = retry(5);
    r.retry_conditions = vec!["timeout".into()];
    let (result, calls) = always_failing(ActionType::CheckInventory, unlisted, r).await;
    assert!(not_escalated(&result));
    assert_eq!(calls, 1);
}

struct Slow;
impl ActionHandler for Slow {
    fn call<'a>(&'a self, _ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(ActionOutcome::default())
        })
    }
}

#[tokio::test]
async fn timeouts_are_retryable_errors() {
    let reg = HandlerRegistry::empty().with(ActionType::SelectCarrier, Arc::new(Slow));
    let (ex, _) = executor(reg, clock());
    let o = order();
    let mut a = spec(ActionType::SelectCarrier, json!({}));
    a.timeout_ms = Some(10);
    let actions = [a];
    let r = retry(2);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    match rep.result {
        StepResult::Failed {
            error, escalate, ..
        } => {
            assert_eq!(error.error_kind, "timeout");
            assert!(escalate);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn breaker_opens_refuses_and_recovers() {
    let c = clock();
    let h = Flaky::new(3, ActionError::retryable("carrier_unavailable", "down"));
    let reg = HandlerRegistry::empty().with(ActionType::GenerateShippingLabel, h.clone());
    let (ex, _) = executor(reg, c.clone());
    let o = order();
    let actions = [spec(ActionType::GenerateShippingLabel, json!({}))];
    let mut r = retry(5);
    r.circuit_breaker_threshold = Some(3);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    let StepResult::Refused { retry_at, .. } = rep.result else {
        panic!("expected a refusal, got {:?}", rep.result);
    };
    assert_eq!(retry_at, c.now() + TimeDelta::seconds(30));
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    // Still open: refused without a call.
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    assert!(matches!(rep.result, StepResult::Refused { .. }));
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    // After the cool-down the probe succeeds and closes the breaker.
    c.advance(TimeDelta::seconds(30));
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert!(
        !ex.breakers()
            .state(&ActionType::GenerateShippingLabel)
            .is_open()
    );
    assert_eq!(ex.stats().circuit_opened, 1);
}

#[tokio::test]
async fn failure_compensates_in_reverse_order() {
    let defaults = DefaultHandlers::new(SimConfig::default(), SimConfig::default(), None);
    let reg = defaults.registry().with(
        ActionType::UpdateTiktokStatus,
        Flaky::new(9, ActionError::permanent("rejected", "no")),
    );
    let (ex, _) = executor(reg, clock());
    let o = order();
    let undone = |kind: ActionType, operation: &str, undo: &str| ActionSpec {
        rollback: Some(Box::new(spec(kind.clone(), json!({ "operation": undo })))),
        ..spec(kind, json!({ "operation": operation }))
    };
    let reserve = undone(ActionType::ReserveInventory, "reserve", "release");
    let label = undone(ActionType::GenerateShippingLabel, "create", "void");
    let actions = [
        reserve,
        spec(ActionType::SelectCarrier, json!({})),
        label,
        spec(ActionType::UpdateTiktokStatus, json!({})),
    ];
    let r = retry(3);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    assert!(matches!(rep.result, StepResult::Failed { .. }));
    let seen: Vec<(Phase, &str, Option<&str>)> = rep
        .records
        .iter()
        .map(|r| (r.phase, r.kind.as_str(), r.operation.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (Phase::Action, "reserve_inventory", Some("reserve")),
            (Phase::Action, "select_carrier", None),
            (Phase::Action, "generate_shipping_label", Some("create")),
            (Phase::Action, "update_tiktok_status", None),
            (Phase::Compensation, "generate_shipping_label", Some("void")),
            (Phase::Compensation, "reserve_inventory", Some("release")),
        ]
    );
    assert_eq!(defaults.inventory.reservations(), 0);
    assert_eq!(defaults.carrier.labels(), 0);
    assert!(rep.records_json().to_value().is_array());
}

#[tokio::test]
async fn defaults_cover_every_builtin_type_and_simulate_shortage() {
    let defaults = DefaultHandlers::new(SimConfig::default(), SimConfig::default(), Some(3));
    let reg = defaults.registry();
    for t in ActionType::BUILTIN {
        assert!(reg.get(t).is_some(), "{t}");
    }
    let (ex, _) = executor(reg, clock());
    let o = order(); // quantity 2
    let actions = [
        spec(ActionType::CheckInventory, json!({})),
        spec(
            ActionType::ReserveInventory,
            json!({"operation": "reserve"}),
        ),
    ];
    let r = retry(3);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(defaults.inventory.available("p1"), Some(1));
    let mut o2 = order();
    o2.tiktok_order_id = "t2".into();
    let rep = ex.run_step(step(&o2, &actions, &r)).await;
    match rep.result {
        StepResult::Failed { error, .. } => assert_eq!(error.error_kind, "out_of_stock"),
        other => panic!("unexpected {other:?}"),
    }
    defaults.inventory.set_stock("p1", 10);
    let rep = ex.run_step(step(&o2, &actions, &r)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
}

#[tokio::test]
async fn simulated_failures_are_seeded() {
    let run = || async {
        let cfg = SimConfig {
            failure_rate: 0.5,
            seed: 42,
            ..SimConfig::default()
        };
        let d = DefaultHandlers::new(cfg, cfg, None);
        let (ex, _) = executor(d.registry(), clock());
        let o = order();
        let actions = [spec(ActionType::SelectCarrier, json!({}))];
        let r = retry(1);
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(ex.run_step(step(&o, &actions, &r)).await.result == StepResult::Succeeded);
        }
        out
    };
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x));
}

#[tokio::test]
async fn missing_handler_is_a_permanent_failure() {
    let (ex, _) = executor(HandlerRegistry::empty(), clock());
    let o = order();
    let actions = [spec(ActionType::TriggerWebhook, json!({}))];
    let r = retry(3);
    let rep = ex.run_step(step(&o, &actions, &r)).await;
    match rep.result {
        StepResult::Failed { error, .. } => assert_eq!(error.error_kind, "no_handler"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_lengthens_the_wait_up_to_a_bound() {
    let run = |after: Duration, timeout_ms: Option<u64>| async move {
        let err = ActionError::retryable("http_429", "slow down").with_retry_after(after);
        let h = Flaky::new(1, err);
        let reg = HandlerRegistry::empty().with(ActionType::TriggerWebhook, h.clone());
        let (ex, sleep) = executor(reg, clock());
        let o = order();
        let mut a = spec(ActionType::TriggerWebhook, json!({}));
        a.timeout_ms = timeout_ms;
        let actions = [a];
        let r = retry(2);
        let rep = ex.run_step(step(&o, &actions, &r)).await;
        assert_eq!(rep.result, StepResult::Succeeded);
        sleep.total_ms()
    };
    // Longer than the backoff (100 ms, jittered to [50, 100]): wins.
    assert_eq!(run(Duration::from_secs(3), None).await, 3_000);
    // Shorter: the backoff wins.
    assert!(run(Duration::from_millis(1), None).await <= 100);
    // An hour: capped at 60 s, or at the action's longer timeout.
    assert_eq!(run(Duration::from_secs(3_600), None).await, 60_000);
    assert_eq!(run(Duration::from_secs(3_600), Some(90_000)).await, 90_000);
}

#[test]
fn retry_after_is_recorded_in_milliseconds() {
    let plain = serde_json::to_value(ActionError::retryable("timeout", "slow")).unwrap_or_default();
    assert!(plain.get("retry_after_ms").is_none(), "{plain}");
    let e =
        ActionError::retryable("http_503", "busy").with_retry_after(Duration::from_millis(1_500));
    let v = serde_json::to_value(&e).unwrap_or_default();
    assert_eq!(v["retry_after_ms"], 1_500, "{v}");
    assert_eq!(v["error_kind"], "http_503");
}

/// A call as [`Recorder`] saw it: kind, operation, rollback, key.
type Seen = (String, Option<String>, bool, String);

/// Records every call; fails the types in `fail`.
#[derive(Default)]
struct Recorder {
    fail: Vec<ActionType>,
    seen: std::sync::Mutex<Vec<Seen>>,
}

impl ActionHandler for Recorder {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        let call = ActionCall::from(ctx);
        if let Ok(mut s) = self.seen.lock() {
            s.push((
                call.action.kind.as_str().to_owned(),
                call.operation().map(str::to_owned),
                call.rollback,
                call.idempotency_key.clone(),
            ));
        }
        let r = if self.fail.contains(&ctx.action.kind) {
            Err(ActionError::permanent("rejected", "no"))
        } else {
            Ok(ActionOutcome::default())
        };
        Box::pin(std::future::ready(r))
    }
}

#[tokio::test]
async fn rollbacks_and_compensations_say_so() {
    let rec = Arc::new(Recorder {
        fail: vec![ActionType::UpdateTiktokStatus],
        ..Recorder::default()
    });
    let mut reg = HandlerRegistry::empty();
    for t in [
        ActionType::ReserveInventory,
        ActionType::GenerateShippingLabel,
        ActionType::UpdateTiktokStatus,
    ] {
        reg.register(t, rec.clone());
    }
    let (ex, _) = executor(reg, clock());
    let o = order();
    let rollbacks = [spec(
        ActionType::GenerateShippingLabel,
        json!({"operation": "void"}),
    )];
    let reserve = ActionSpec {
        rollback: Some(Box::new(spec(
            ActionType::ReserveInventory,
            json!({"operation": "release"}),
        ))),
        ..spec(
            ActionType::ReserveInventory,
            json!({"operation": "reserve"}),
        )
    };
    let actions = [reserve, spec(ActionType::UpdateTiktokStatus, json!({}))];
    let r = retry(1);
    let rep = ex
        .run_step(Step {
            rollbacks: &rollbacks,
            ..step(&o, &actions, &r)
        })
        .await;
    assert!(matches!(rep.result, StepResult::Failed { .. }));
    let seen = rec.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let op = |s: &str| Some(s.to_owned());
    assert_eq!(
        seen,
        [
            (
                "generate_shipping_label".into(),
                op("void"),
                true,
                "t1:label:3:r0".into()
            ),
            (
                "reserve_inventory".into(),
                op("reserve"),
                false,
                "t1:label:3:a0".into()
            ),
            (
                "update_tiktok_status".into(),
                None,
                false,
                "t1:label:3:a1".into()
            ),
            (
                "reserve_inventory".into(),
                op("release"),
                true,
                "t1:label:3:c0".into()
            ),
        ]
    );
}
