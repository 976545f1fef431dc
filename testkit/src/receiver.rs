//! A receiver of outbound `http` effects (see the crate docs): what a
//! creator's own service does with CreatorFlow's signed POSTs, written from
//! the wire format alone.
//!
//! Every POST (any path) is recorded as a [`Delivery`]. Its
//! `X-CreatorFlow-Signature: t=UNIX_SECONDS,v1=HEX` is checked here with
//! `hmac`/`sha2` (HMAC-SHA256 of `"UNIX_SECONDS." + raw body`, constant-time
//! compare, `t` within the tolerance of the system clock); a bad or stale
//! signature answers 401. Otherwise the receiver answers 200, unless a
//! scripted [`Failure`] applies. The **effects** are the distinct
//! `Idempotency-Key`s that got a 2xx: what a real receiver, deduplicating
//! on that key, would have done once each.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The default timestamp tolerance, in seconds (Stripe's).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// An answer the receiver gives on purpose instead of a 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Answer this status (500, 400, 503, …).
    Status(u16),
    /// Answer 429 with `Retry-After: SECONDS`.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after_secs: u64,
    },
    /// Take the effect, then answer 200 only after this delay (longer than
    /// the caller's timeout: the caller gives up although the effect
    /// happened, and must retry with the same key).
    Delay(Duration),
}

/// One POST the receiver got.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The request path.
    pub path: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The body's `action`.
    pub action: Option<String>,
    /// The body's `attempt`.
    pub attempt: Option<u64>,
    /// The body's `rollback` (absent: `false`).
    pub rollback: bool,
    /// The body as JSON (`null` when it is not JSON).
    pub body: Value,
    /// The body's exact bytes.
    pub raw_body: Vec<u8>,
    /// Every header, names in lower case (a repeated header: the last).
    pub headers: BTreeMap<String, String>,
    /// Whether the signature was right and fresh.
    pub signature_ok: bool,
    /// The status answered.
    pub status: u16,
    /// When it arrived.
    pub received_at: Instant,
}

/// Waiting for deliveries took longer than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitTimeout {
    /// Deliveries wanted.
    pub wanted: usize,
    /// Deliveries received.
    pub got: usize,
}

impl std::fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "waited for {} deliveries, got {}", self.wanted, self.got)
    }
}

impl std::error::Error for WaitTimeout {}

struct Script {
    action: Option<String>,
    remaining: u32,
    failure: Failure,
}

#[derive(Default)]
struct Log {
    deliveries: Vec<Delivery>,
    effects: Vec<String>,
    scripts: Vec<Script>,
}

struct Shared {
    secret: Vec<u8>,
    tolerance_secs: AtomicU64,
    log: Mutex<Log>,
    count: watch::Sender<usize>,
}

impl Shared {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A loopback receiver of `http` effects; stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1` (a free port) verifying with
    /// `secret`. Must be called within a Tokio runtime.
    pub async fn start(secret: impl Into<String>) -> io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            secret: secret.into().into_bytes(),
            tolerance_secs: AtomicU64::new(DEFAULT_TOLERANCE_SECS),
            log: Mutex::default(),
            count: watch::Sender::new(0),
        });
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let server = tokio::spawn(async move {
            // Ends only with the runtime or when the receiver is dropped.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver {
            addr,
            shared,
            server,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this receiver (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sets how far `t=` may be from the system clock, either way.
    pub fn set_tolerance(&self, secs: u64) {
        self.shared.tolerance_secs.store(secs, Ordering::Relaxed);
    }

    /// The next `n` correctly signed deliveries (of any action) get
    /// `failure`. Scripts for a specific action ([`fail_next_for`]) are
    /// consulted first; scripts queue up in the order given.
    ///
    /// [`fail_next_for`]: Self::fail_next_for
    pub fn fail_next(&self, n: u32, failure: Failure) {
        self.script(None, n, failure);
    }

    /// The next `n` correctly signed deliveries of `action` get `failure`.
    pub fn fail_next_for(&self, action: &str, n: u32, failure: Failure) {
        self.script(Some(action.to_owned()), n, failure);
    }

    fn script(&self, action: Option<String>, n: u32, failure: Failure) {
        self.shared.log().scripts.push(Script {
            action,
            remaining: n,
            failure,
        });
    }

    /// Every delivery so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.log().deliveries.clone()
    }

    /// The effects so far: distinct idempotency keys that got a 2xx, in
    /// the order first taken.
    pub fn effects(&self) -> Vec<String> {
        self.shared.log().effects.clone()
    }

    /// Waits until at least `n` deliveries arrived (answered or, for a
    /// [`Failure::Delay`], being answered), at most `timeout`; returns
    /// them all.
    pub async fn wait_for_deliveries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Delivery>, WaitTimeout> {
        let mut rx = self.shared.count.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|got| *got >= n))
            .await
            .is_ok_and(|r| r.is_ok());
        if reached {
            Ok(self.deliveries())
        } else {
            Err(WaitTimeout {
                wanted: n,
                got: *self.shared.count.borrow(),
            })
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let tolerance = shared.tolerance_secs.load(Ordering::Relaxed);
    let signature_ok = header("x-creatorflow-signature")
        .is_some_and(|h| signature_valid(&h, &body, &shared.secret, now, tolerance));
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name));
    let action = field("action").and_then(Value::as_str).map(str::to_owned);
    let mut delivery = Delivery {
        path: uri.path().to_owned(),
        idempotency_key: header("idempotency-key"),
        action: action.clone(),
        attempt: field("attempt").and_then(Value::as_u64),
        rollback: field("rollback").and_then(Value::as_bool).unwrap_or(false),
        body: json.clone().unwrap_or(Value::Null),
        raw_body: body.to_vec(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        signature_ok,
        status: 200,
        received_at: Instant::now(),
    };
    let (failure, text) = {
        let mut log = shared.log();
        let (failure, text) = if !signature_ok {
            (Some(Failure::Status(401)), "invalid or stale signature")
        } else if json.is_none() || delivery.idempotency_key.is_none() {
            (
                Some(Failure::Status(400)),
                "not a JSON body with an Idempotency-Key",
            )
        } else {
            let scripted = take_script(&mut log.scripts, action.as_deref());
            (scripted, "failing on purpose")
        };
        delivery.status = match failure {
            Some(Failure::Status(s)) => s,
            Some(Failure::RateLimited { .. }) => 429,
            Some(Failure::Delay(_)) | None => 200,
        };
        if (200..300).contains(&delivery.status)
            && let Some(key) = &delivery.idempotency_key
            && !log.effects.contains(key)
        {
            log.effects.push(key.clone());
        }
        log.deliveries.push(delivery.clone());
        let n = log.deliveries.len();
        shared.count.send_replace(n);
        (failure, text)
    };
    let status = StatusCode::from_u16(delivery.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match failure {
        Some(Failure::RateLimited { retry_after_secs }) => (
            status,
            [("retry-after", retry_after_secs.to_string())],
            "rate limited",
        )
            .into_response(),
        Some(Failure::Delay(d)) => {
            tokio::time::sleep(d).await;
            (status, "ok, late").into_response()
        }
        Some(Failure::Status(_)) => (status, text).into_response(),
        None => (status, "ok").into_response(),
    }
}

/// The first script for `action`, else the first for any action, with
/// deliveries left; one delivery used up.
fn take_script(scripts: &mut Vec<Script>, action: Option<&str>) -> Option<Failure> {
    let i = scripts
        .iter()
        .position(|s| s.remaining > 0 && s.action.is_some() && s.action.as_deref() == action)
        .or_else(|| {
            scripts
                .iter()
                .position(|s| s.remaining > 0 && s.action.is_none())
        })?;
    let script = &mut scripts[i];
    script.remaining -= 1;
    let failure = script.failure;
    if script.remaining == 0 {
        scripts.remove(i);
    }
    Some(failure)
}

/// `t=…,v1=…` checked against `body`: some `v1` is HMAC-SHA256(secret,
/// `"t." + body`) (constant-time) and `t` is within `tolerance` of `now`.
fn signature_valid(header: &str, body: &[u8], secret: &[u8], now: u64, tolerance: u64) -> bool {
    let mut t: Option<&str> = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if t.is_none() => t = Some(value),
            Some(("v1", value)) => v1.push(value),
            Some(("t", _)) | None => return false,
            Some(_) => {}
        }
    }
    let Some(t) = t else { return false };
    let Ok(stamp) = t.parse::<u64>() else {
        return false;
    };
    if stamp.abs_diff(now) > tolerance {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    v1.iter()
        .any(|sig| hex::decode(sig).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &[u8], t: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures() {
        let body = br#"{"action":"x"}"#;
        let h = sign(b"s", 1_000, body);
        assert!(signature_valid(&h, body, b"s", 1_000, 0));
        assert!(signature_valid(&h, body, b"s", 1_300, 300));
        assert!(!signature_valid(&h, body, b"s", 1_301, 300));
        assert!(!signature_valid(&h, body, b"other", 1_000, 300));
        assert!(!signature_valid(&h, b"{}", b"s", 1_000, 300));
        assert!(!signature_valid("t=1000", body, b"s", 1_000, 300));
        assert!(!signature_valid("", body, b"s", 1_000, 300));
    }

    #[test]
    fn scripts_prefer_the_action_then_run_out() {
        let mut s = vec![
            Script {
                action: None,
                remaining: 1,
                failure: Failure::Status(500),
            },
            Script {
                action: Some("a".into()),
                remaining: 2,
                failure: Failure::Status(400),
            },
        ];
        assert_eq!(take_script(&mut s, Some("a")), Some(Failure::Status(400)));
        assert_eq!(take_script(&mut s, Some("b")), Some(Failure::Status(500)));
        assert_eq!(take_script(&mut s, Some("b")), None);
        assert_eq!(take_script(&mut s, Some("a")), Some(Failure::Status(400)));
        assert_eq!(take_script(&mut s, Some("a")), None);
        assert!(s.is_empty());
    }
}
