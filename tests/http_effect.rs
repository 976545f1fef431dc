//! The `http` effect through the real executor, delivering to the testkit's
//! receiver (which checks signatures with its own HMAC code): signatures,
//! stable idempotency keys, classification of answers, Retry-After,
//! timeouts, rollbacks, the circuit breaker; and the Python verifier of
//! `docs/effects.md`, run as documented.
#![cfg(feature = "http-effect")]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use creatorflow::actions::{
    ActionSpec, ActionType, BackoffStrategy, Executor, ExecutorConfig, HandlerRegistry, HttpEffect,
    HttpTarget, RetrySpec, SIGNATURE_HEADER, SignatureError, Step, StepReport, StepResult,
    sign_effect, verify_effect_signature,
};
use creatorflow::{Clock, Order, SystemClock};
use creatorflow_testkit::receiver::{Delivery, Failure, Receiver};
use serde_json::{Value, json};

const SECRET: &str = "whsec_test_secret";
const WAIT: Duration = Duration::from_secs(10);

fn order() -> Order {
    let mut o = Order::from_json(
        r#"{"tiktok_order_id":"576486316948490001","customer_handle":"@ana","product_name":"Lamp",
        "product_id":"p1","quantity":2,"price":"25.50","created_at":"2025-06-12T10:00:00Z"}"#,
    )
    .expect("valid order");
    o.user_id = Some("creator-1".into());
    o
}

fn action(kind: ActionType, params: Value) -> ActionSpec {
    ActionSpec {
        kind,
        parameters: params.as_object().cloned().unwrap_or_default(),
        timeout_ms: None,
        retry: None,
        rollback: None,
        pos: Default::default(),
    }
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

/// A receiver, and an executor whose `kinds` are `http` effects delivering
/// to it (path `/hooks`), signed with `secret`, each attempt timing out
/// after `timeout`.
struct Fixture {
    receiver: Receiver,
    executor: Executor,
}

async fn fixture(kinds: &[ActionType], secret: &str, timeout: Option<Duration>) -> Fixture {
    let receiver = Receiver::start(SECRET).await.expect("receiver");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = HttpTarget {
        url: receiver.url("/hooks"),
        secret: secret.into(),
        timeout,
    };
    let effect = Arc::new(HttpEffect::new(target, clock.clone()).expect("effect"));
    let mut registry = HandlerRegistry::empty();
    for kind in kinds {
        registry.register(kind.clone(), effect.clone());
    }
    let executor = Executor::new(registry, clock, ExecutorConfig::default());
    Fixture { receiver, executor }
}

impl Fixture {
    async fn run(
        &self,
        o: &Order,
        rollbacks: &[ActionSpec],
        actions: &[ActionSpec],
        r: &RetrySpec,
    ) -> StepReport {
        self.executor
            .run_step(Step {
                order: o,
                transition: "notify",
                version: 4,
                rollbacks,
                actions,
                retry: r,
            })
            .await
    }
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
    let o = order();
    let actions = [action(kind, json!({"template": "order_confirmed"}))];
    let rep = f.run(&o, &[], &actions, &retry(3, 5)).await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].outcome, Some(json!({"http_status": 200})));
    let d = &f.receiver.deliveries()[0];
    assert!(d.signature_ok, "the receiver's own HMAC check");
    assert_eq!(d.path, "/hooks");
    let header = d.headers.get("x-creatorflow-signature").expect("signed");
    assert_eq!(
        verify_effect_signature(header, &d.raw_body, SECRET, now_unix(), 300),
        Ok(())
    );
    assert_eq!(
        verify_effect_signature(header, &d.raw_body, "another secret", now_unix(), 300),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        SIGNATURE_HEADER.to_ascii_lowercase(),
        "x-creatorflow-signature"
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
    let key = format!("{}:notify:4:a0", o.tiktok_order_id);
    assert_eq!(d.idempotency_key.as_deref(), Some(key.as_str()));
    let body = &d.body;
    assert_eq!(body["action"], "send_customer_notification");
    assert_eq!(body["idempotency_key"], key.as_str());
    assert_eq!(body["tenant"], "creator-1");
    assert_eq!(body["order"]["tiktok_order_id"], "576486316948490001");
    // Exact money: the decimal as written.
    assert_eq!(body["order"]["price"].to_string(), "25.50");
    assert_eq!(body["parameters"], json!({"template": "order_confirmed"}));
    assert_eq!(body["attempt"], 1);
    assert!(body.get("rollback").is_none(), "{body}");
    assert_eq!(f.receiver.effects(), [key]);
}

#[tokio::test]
async fn a_server_error_is_retried_with_the_same_key() {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(std::slice::from_ref(&kind), SECRET, None).await;
    f.receiver.fail_next(1, Failure::Status(500));
    let o = order();
    let rep = f
        .run(&o, &[], &[action(kind, json!({}))], &retry(3, 5))
        .await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].attempts, 2);
    let ds = f.receiver.deliveries();
    assert_eq!(ds.iter().map(|d| d.status).collect::<Vec<_>>(), [500, 200]);
    assert_eq!(
        ds.iter().map(|d| d.attempt).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    let k = keys(&ds);
    assert_eq!(k[0], k[1], "the key is the step's, not the attempt's");
    assert_eq!(f.receiver.effects().len(), 1);
    assert!(ds.iter().all(|d| d.signature_ok));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(std::slice::from_ref(&kind), SECRET, None).await;
    f.receiver.fail_next(
        1,
        Failure::RateLimited {
            retry_after_secs: 1,
        },
    );
    let o = order();
    let rep = f
        .run(&o, &[], &[action(kind, json!({}))], &retry(3, 5))
        .await;
    assert_eq!(rep.result, StepResult::Succeeded);
    let ds = f.receiver.deliveries();
    assert_eq!(ds.iter().map(|d| d.status).collect::<Vec<_>>(), [429, 200]);
    let gap = ds[1].received_at - ds[0].received_at;
    assert!(
        gap >= Duration::from_secs(1),
        "retried after {gap:?}, backoff 10 ms"
    );
    assert_eq!(keys(&ds)[0], keys(&ds)[1]);
}

#[tokio::test]
async fn a_timeout_is_retried_and_the_effect_taken_once() {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(
        std::slice::from_ref(&kind),
        SECRET,
        Some(Duration::from_millis(300)),
    )
    .await;
    f.receiver
        .fail_next(1, Failure::Delay(Duration::from_secs(5)));
    let o = order();
    let rep = f
        .run(&o, &[], &[action(kind, json!({}))], &retry(3, 5))
        .await;
    assert_eq!(rep.result, StepResult::Succeeded);
    assert_eq!(rep.records[0].attempts, 2);
    let ds = f.receiver.deliveries();
    assert_eq!(ds.len(), 2);
    assert_eq!(keys(&ds)[0], keys(&ds)[1]);
    // The slow delivery was taken too: the receiver dedupes on the key.
    assert_eq!(f.receiver.effects().len(), 1);
}

#[tokio::test]
async fn a_client_error_fails_for_good_after_one_delivery() {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(std::slice::from_ref(&kind), SECRET, None).await;
    f.receiver.fail_next(1, Failure::Status(400));
    let o = order();
    let rep = f
        .run(&o, &[], &[action(kind, json!({}))], &retry(5, 5))
        .await;
    match &rep.result {
        StepResult::Failed {
            error, escalate, ..
        } => {
            assert_eq!(error.error_kind, "http_400");
            assert!(!error.is_retryable());
            assert!(!escalate);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(f.receiver.deliveries().len(), 1);
    assert!(f.receiver.effects().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver() {
    let kind = ActionType::TriggerWebhook;
    let f = fixture(
        std::slice::from_ref(&kind),
        "not the receiver's secret",
        None,
    )
    .await;
    let o = order();
    let rep = f
        .run(&o, &[], &[action(kind, json!({}))], &retry(3, 5))
        .await;
    let StepResult::Failed { error, .. } = &rep.result else {
        panic!("expected a failure, got {:?}", rep.result);
    };
    assert_eq!(error.error_kind, "http_401");
    assert!(!error.message.contains("not the receiver's secret"));
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
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = HttpTarget::new(format!("http://user:pw@127.0.0.1:{port}/x"), SECRET);
    let effect = Arc::new(HttpEffect::new(target, clock.clone()).expect("effect"));
    let kind = ActionType::TriggerWebhook;
    let registry = HandlerRegistry::empty().with(kind.clone(), effect);
    let executor = Executor::new(registry, clock, ExecutorConfig::default());
    let o = order();
    let actions = [action(kind, json!({}))];
    let r = retry(2, 5);
    let rep = executor
        .run_step(Step {
            order: &o,
            transition: "notify",
            version: 1,
            rollbacks: &[],
            actions: &actions,
            retry: &r,
        })
        .await;
    let StepResult::Failed {
        error, escalate, ..
    } = &rep.result
    else {
        panic!("expected a failure, got {:?}", rep.result);
    };
    assert_eq!(error.error_kind, "connect");
    assert!(error.is_retryable() && *escalate);
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
    let f = fixture(
        &[notify.clone(), hook.clone(), reserve.clone()],
        SECRET,
        None,
    )
    .await;
    f.receiver
        .fail_next_for(hook.as_str(), 1, Failure::Status(422));
    let o = order();
    let rollbacks = [action(notify, json!({"template": "sorry"}))];
    let mut first = action(reserve.clone(), json!({"operation": "reserve"}));
    first.rollback = Some(Box::new(action(reserve, json!({"operation": "release"}))));
    let actions = [first, action(hook, json!({}))];
    let rep = f.run(&o, &rollbacks, &actions, &retry(3, 5)).await;
    assert!(
        matches!(rep.result, StepResult::Failed { .. }),
        "{:?}",
        rep.result
    );
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
    let f = fixture(std::slice::from_ref(&kind), SECRET, None).await;
    f.receiver.fail_next(100, Failure::Status(503));
    let o = order();
    let actions = [action(kind.clone(), json!({}))];
    let rep = f.run(&o, &[], &actions, &retry(10, 3)).await;
    let StepResult::Refused { action, retry_at } = &rep.result else {
        panic!("expected a refusal, got {:?}", rep.result);
    };
    assert_eq!(action, &kind);
    assert!(*retry_at > chrono::Utc::now());
    assert_eq!(f.receiver.deliveries().len(), 3);
    assert_eq!(rep.records[0].attempts, 3);
    let error = rep.records[0].error.as_ref().expect("recorded");
    assert_eq!(error.error_kind, "circuit_open");
    // Refused without a call while open.
    let rep = f.run(&o, &[], &actions, &retry(10, 3)).await;
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
