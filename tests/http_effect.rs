//! The `http` effect through the real executor, delivering to the testkit's
//! receiver (which checks signatures with its own HMAC code): signatures,
//! stable idempotency keys, classification of answers, Retry-After,
//! timeouts, rollbacks, the circuit breaker; and the Python verifier of
//! `docs/effects.md`, run as documented.
#![cfg(feature = "http-effect")]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use creatorflow::actions::{
    ActionError, ActionSpec, ActionType, BackoffStrategy, Executor, ExecutorConfig,
    HandlerRegistry, HttpEffect, HttpTarget, RetrySpec, SIGNATURE_HEADER, SignatureError, Step,
    StepReport, StepResult, sign_effect, verify_effect_signature,
};
use creatorflow::{Clock, Order, SystemClock};
use creatorflow_testkit::receiver::{Delivery, Failure, Receiver};
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_secret";
const WAIT: Duration = Duration::from_secs(10);

/// The second order of the sample batch (its price written `24.0`), of
/// tenant `creator-1`.
fn order() -> Order {
    let line = include_str!("../examples/orders.jsonl").lines().nth(1);
    let mut o = Order::from_json(line.unwrap_or_default()).expect("a sample order");
    o.user_id = Some("creator-1".into());
    o
}

fn action(kind: ActionType, params: Value) -> ActionSpec {
    ActionSpec::new(kind, params.as_object().cloned().unwrap_or_default())
}

/// `max` attempts, 10 ms fixed backoff, the breaker after `breaker` failures.
fn retry(max: u32, breaker: u32) -> RetrySpec {
    RetrySpec {
        max_attempts: max,
        backoff_strategy: BackoffStrategy::Fixed,
        initial_delay_ms: 10,
        max_delay_ms: 10,
        retry_conditions: vec![],
        circuit_breaker_threshold: Some(breaker),
    }
}

/// An executor whose `kinds` are `http` effects delivering to `target`.
fn executor(target: HttpTarget, kinds: &[ActionType]) -> Executor {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let effect = Arc::new(HttpEffect::new(target, clock.clone()).expect("effect"));
    let mut registry = HandlerRegistry::empty();
    for kind in kinds {
        registry.register(kind.clone(), effect.clone());
    }
    Executor::new(registry, clock, ExecutorConfig::default())
}

/// Runs the step `notify` from version 4 of `order()`.
async fn run(
    executor: &Executor,
    rollbacks: &[ActionSpec],
    actions: &[ActionSpec],
    r: &RetrySpec,
) -> StepReport {
    let o = order();
    executor
        .run_step(Step {
            order: &o,
            transition: "notify",
            version: 4,
            rollbacks,
            actions,
            retry: r,
        })
        .await
}

/// A receiver, and an executor whose `kinds` are `http` effects delivering
/// to it (path `/hooks`), signed with `secret`, each attempt timing out
/// after `timeout`.
struct Fixture {
    receiver: Receiver,
    executor: Executor,
}

async fn fixture(kinds: &[ActionType], secret: &str, timeout: Option<Duration>) -> Fixture {
    let receiver = Receiver::start(SECRET).await.expect("receiver");
    let target = HttpTarget {
        url: receiver.url("/hooks"),
        secret: secret.into(),
        timeout,
    };
    let executor = executor(target, kinds);
    Fixture { receiver, executor }
}

/// One `trigger_webhook` to a receiver that first answers with `failure`
/// (`times` times), under `retry`; the fixture (for its receiver) and the
/// step's report.
async fn webhook(
    failure: Failure,
    times: u32,
    timeout: Option<Duration>,
    r: RetrySpec,
) -> (Fixture, StepReport) {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(std::slice::from_ref(&kind), SECRET, timeout).await;
    f.receiver.fail_next(times, failure);
    let rep = run(&f.executor, &[], &[action(kind, json!({}))], &r).await;
    (f, rep)
}

fn statuses(deliveries: &[Delivery]) -> Vec<u16> {
    deliveries.iter().map(|d| d.status).collect()
}

fn keys(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d.idempotency_key.clone().unwrap_or_default())
        .collect()
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test]
async fn a_delivery_is_signed_and_says_what_to_do() {
    let kind = ActionType::SendCustomerNotification;
    let f = fixture(std::slice::from_ref(&kind), SECRET, None).await;
    let actions = [action(kind, json!({"template": "order_confirmed"}))];
    let rep = run(&f.executor, &[], &actions, &retry(3, 5)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].outcome, Some(json!({"http_status": 200})));
    let d = &f.receiver.deliveries()[0];
    assert!(d.signature_ok, "the receiver's own HMAC check");
    assert_eq!(d.path, "/hooks");
    let header = d
        .headers
        .get(&SIGNATURE_HEADER.to_ascii_lowercase())
        .expect("signed");
    assert_eq!(
        verify_effect_signature(header, &d.raw_body, SECRET, now_unix(), 300),
        Ok(())
    );
    assert_eq!(
        verify_effect_signature(header, &d.raw_body, "another secret", now_unix(), 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        d.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert!(
        d.headers
            .get("user-agent")
            .is_some_and(|ua| ua.starts_with("creatorflow/")),
        "{:?}",
        d.headers
    );
    let o = order();
    let key = format!("{}:notify:4:a0", o.tiktok_order_id);
    assert_eq!(d.idempotency_key.as_deref(), Some(key.as_str()));
    let body = &d.body;
    assert_eq!(body["action"], "send_customer_notification");
    assert_eq!(body["idempotency_key"], key.as_str());
    assert_eq!(body["tenant"], "creator-1");
    assert_eq!(body["order"]["tiktok_order_id"], o.tiktok_order_id.as_str());
    // Exact money: the decimal as the order has it.
    assert_eq!(body["order"]["price"].to_string(), "24.0");
    assert_eq!(body["parameters"], json!({"template": "order_confirmed"}));
    assert_eq!(body["attempt"], 1);
    assert!(body.get("rollback").is_none(), "{body}");
    assert_eq!(f.receiver.effects(), [key]);
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_key() {
    let (f, rep) = webhook(Failure::Status(500), 1, None, retry(3, 5)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].attempts, 2);
    let ds = f.receiver.deliveries();
    assert_eq!(statuses(&ds), [500, 200]);
    let attempts: Vec<_> = ds.iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [Some(1), Some(2)]);
    let k = keys(&ds);
    assert_eq!(k[0], k[1], "the key is the step's, not the attempt's");
    assert_eq!(f.receiver.effects().len(), 1);
    assert!(ds.iter().all(|d| d.signature_ok));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let limited = Failure::RateLimited {
        retry_after_secs: 1,
    };
    let (f, rep) = webhook(limited, 1, None, retry(3, 5)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    let ds = f.receiver.deliveries();
    assert_eq!(statuses(&ds), [429, 200]);
    let gap = ds[1].received_at - ds[0].received_at;
    assert!(
        gap >= Duration::from_secs(1),
        "retried after {gap:?}, backoff 10 ms"
    );
    assert_eq!(keys(&ds)[0], keys(&ds)[1]);
}

#[tokio::test]
async fn a_timeout_is_retried_and_the_effect_taken_once() {
    let slow = Failure::Delay(Duration::from_secs(10));
    let timeout = Some(Duration::from_secs(1));
    let (f, rep) = webhook(slow, 1, timeout, retry(3, 5)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    let ds = f.receiver.deliveries();
    // At least the slow one and one answered in time (a loaded machine may
    // time out once more).
    assert!(ds.len() >= 2, "{ds:?}");
    assert_eq!(rep.records[0].attempts as usize, ds.len());
    assert!(keys(&ds).iter().all(|k| *k == keys(&ds)[0]));
    // The slow delivery was taken too: the receiver dedupes on the key.
    assert_eq!(f.receiver.effects().len(), 1);
}

/// The error of a step that failed, and whether it escalates.
fn failure(rep: &StepReport) -> (&ActionError, bool) {
    match &rep.result {
        StepResult::Failed {
            error, escalate, ..
        } => (error, *escalate),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_error_fails_for_good_after_one_delivery() {
    let (f, rep) = webhook(Failure::Status(400), 1, None, retry(5, 5)).await;
    let (error, escalate) = failure(&rep);
    assert_eq!(error.error_kind, "http_400");
    assert!(!error.is_retryable() && !escalate);
    assert_eq!(f.receiver.deliveries().len(), 1);
    assert!(f.receiver.effects().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver() {
    let kind = ActionType::TriggerWebhook;
    let wrong = "not the receiver's secret";
    let f = fixture(std::slice::from_ref(&kind), wrong, None).await;
    let rep = run(&f.executor, &[], &[action(kind, json!({}))], &retry(3, 5)).await;
    let (error, _) = failure(&rep);
    assert_eq!(error.error_kind, "http_401");
    // The start of the answer is quoted for the operator; the secret never.
    assert_eq!(
        error.message,
        "the receiver answered 401 Unauthorized: invalid or stale signature"
    );
    assert!(!error.message.contains(wrong));
    let ds = f.receiver.deliveries();
    assert_eq!(ds.len(), 1);
    assert!(!ds[0].signature_ok);
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_retryable_connect_error() {
    // A port nobody listens on: bind one, then let it go.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let kind = ActionType::TriggerWebhook;
    let target = HttpTarget::new(format!("http://user:pw@127.0.0.1:{port}/x"), SECRET);
    let executor = executor(target, std::slice::from_ref(&kind));
    let rep = run(&executor, &[], &[action(kind, json!({}))], &retry(2, 5)).await;
    let (error, escalate) = failure(&rep);
    assert_eq!(error.error_kind, "connect");
    assert!(error.is_retryable() && escalate);
    assert_eq!(rep.records[0].attempts, 2);
    for hidden in ["pw", SECRET] {
        assert!(!error.message.contains(hidden), "{}", error.message);
    }
}

#[tokio::test]
async fn rollbacks_and_compensations_carry_rollback_true() {
    let notify = ActionType::SendCustomerNotification;
    let hook = ActionType::TriggerWebhook;
    let reserve = ActionType::ReserveInventory;
    let kinds = [notify.clone(), hook.clone(), reserve.clone()];
    let f = fixture(&kinds, SECRET, None).await;
    f.receiver
        .fail_next_for(hook.as_str(), 1, Failure::Status(422));
    let rollbacks = [action(notify, json!({"template": "sorry"}))];
    let mut first = action(reserve.clone(), json!({"operation": "reserve"}));
    first.rollback = Some(Box::new(action(reserve, json!({"operation": "release"}))));
    let actions = [first, action(hook, json!({}))];
    let rep = run(&f.executor, &rollbacks, &actions, &retry(3, 5)).await;
    failure(&rep);
    let ds = f
        .receiver
        .wait_for_deliveries(4, WAIT)
        .await
        .expect("four deliveries");
    let seen: Vec<(String, bool, String)> = ds
        .iter()
        .map(|d| {
            let key = d.idempotency_key.clone().unwrap_or_default();
            let slot = key.rsplit(':').next().unwrap_or_default().to_owned();
            (d.action.clone().unwrap_or_default(), d.rollback, slot)
        })
        .collect();
    let row = |a: &str, rb: bool, slot: &str| (a.to_owned(), rb, slot.to_owned());
    assert_eq!(
        seen,
        [
            row("send_customer_notification", true, "r0"),
            row("reserve_inventory", false, "a0"),
            row("trigger_webhook", false, "a1"),
            row("reserve_inventory", true, "c0"),
        ]
    );
    assert_eq!(ds[0].body["rollback"], true);
    assert_eq!(ds[3].body["parameters"], json!({"operation": "release"}));
}

#[tokio::test]
async fn the_breaker_opens_after_its_threshold_and_the_step_is_refused() {
    let kind = ActionType::TriggerWebhook;
    let (f, rep) = webhook(Failure::Status(503), 100, None, retry(10, 3)).await;
    let StepResult::Refused {
        action: refused,
        retry_at,
    } = &rep.result
    else {
        panic!("expected a refusal, got {:?}", rep.result);
    };
    assert_eq!(refused, &kind);
    assert!(*retry_at > chrono::Utc::now());
    assert_eq!(f.receiver.deliveries().len(), 3);
    assert_eq!(rep.records[0].attempts, 3);
    let error = rep.records[0].error.as_ref().expect("recorded");
    assert_eq!(error.error_kind, "circuit_open");
    // Refused without a call while open.
    let actions = [action(kind.clone(), json!({}))];
    let rep = run(&f.executor, &[], &actions, &retry(10, 3)).await;
    assert!(matches!(rep.result, StepResult::Refused { .. }));
    assert_eq!(f.receiver.deliveries().len(), 3);
    assert!(f.executor.breakers().state(&kind).is_open());
}

/// The fenced ```python block of docs/effects.md.
fn python_snippet() -> String {
    let doc = include_str!("../docs/effects.md");
    let start = doc
        .find("```python\n")
        .expect("a python block in docs/effects.md")
        + 10;
    let len = doc[start..].find("```").expect("the block ends");
    doc[start..start + len].to_owned()
}

/// Runs the documented verifier on `body` with `header`: `Some(valid)`, or
/// `None` when python3 is missing outside CI.
fn python_verifies(header: &str, body: &[u8]) -> Option<bool> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("temp dir");
    let body_path = dir.path().join("body");
    std::fs::write(&body_path, body).expect("body written");
    let script = format!(
        "{}\nimport os, sys\nbody = open(os.environ['CF_BODY'], 'rb').read()\n\
         sys.exit(0 if verify_signature(os.environ['CF_HEADER'], body, os.environ['CF_SECRET']) else 1)\n",
        python_snippet()
    );
    let child = Command::new("python3")
        .arg("-")
        .env("CF_BODY", &body_path)
        .env("CF_HEADER", header)
        .env("CF_SECRET", SECRET)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("python3 is required in CI: {e}"),
        Err(e) => {
            eprintln!("skipped: python3 not available ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script written");
    let out = child.wait_with_output().expect("python3 ran");
    match out.status.code() {
        Some(0) => Some(true),
        Some(1) => Some(false),
        _ => panic!(
            "the snippet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn the_documented_python_verifier_accepts_our_signature() {
    let body = br#"{"action":"trigger_webhook","idempotency_key":"o:t:1:a0","attempt":1}"#;
    let header = sign_effect(SECRET, now_unix(), body);
    if let Some(ok) = python_verifies(&header, body) {
        assert!(ok, "the Python verifier refused a good signature");
    }
}

#[test]
fn the_documented_python_verifier_rejects_tampering() {
    let body = br#"{"action":"trigger_webhook","idempotency_key":"o:t:1:a0","attempt":1}"#;
    let header = sign_effect(SECRET, now_unix(), body);
    let tampered = br#"{"action":"trigger_webhook","idempotency_key":"o:t:1:a0","attempt":2}"#;
    let stale = sign_effect(SECRET, now_unix() - 3_600, body);
    for (header, body) in [(&header, &tampered[..]), (&stale, &body[..])] {
        if let Some(ok) = python_verifies(header, body) {
            assert!(!ok, "the Python verifier accepted {header}");
        }
    }
}
