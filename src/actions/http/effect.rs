//! [`HttpEffect`]: an action carried out by a signed POST to the creator's
//! own service (see the module docs of [`http`](super) for the contract).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER, USER_AGENT};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::retry_after::parse_retry_after;
use super::signature::{SIGNATURE_HEADER, sign_effect};
use super::target::{HttpTarget, redact_url};
use crate::actions::handler::{
    ActionContext, ActionError, ActionFuture, ActionHandler, ActionOutcome,
};
use crate::clock::Clock;
use crate::model::Order;

/// The `User-Agent` of every delivery.
const AGENT: &str = concat!("creatorflow/", env!("CARGO_PKG_VERSION"));

/// How much of an error answer's body an error message quotes.
const QUOTED_BODY: usize = 200;

/// Why an [`HttpEffect`] could not be built. Names the URL only redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpEffectError {
    /// The URL is not an absolute `http` or `https` URL.
    #[error("invalid effect URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client: {message}")]
    Client {
        /// The client's error.
        message: String,
    },
}

/// An [`ActionHandler`] delivering the action to an [`HttpTarget`]: a
/// signed JSON POST, classified into success, retryable and permanent
/// failures (see the [module docs](super)). One client (and connection
/// pool) per effect; cheap to share behind an `Arc` across action types.
pub struct HttpEffect {
    target: HttpTarget,
    url: reqwest::Url,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for HttpEffect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEffect")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The JSON body of a delivery.
#[derive(Serialize)]
struct Delivery<'a> {
    action: &'a str,
    idempotency_key: &'a str,
    tenant: Option<&'a str>,
    order: &'a Order,
    parameters: &'a Map<String, Value>,
    attempt: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rollback: bool,
}

impl HttpEffect {
    /// An effect delivering to `target`; `clock` gives the signed timestamp
    /// (`t=`) and the time an HTTP-date `Retry-After` is measured from.
    pub fn new(target: HttpTarget, clock: Arc<dyn Clock>) -> Result<Self, HttpEffectError> {
        let invalid = |reason: String| HttpEffectError::InvalidUrl {
            url: target.redacted_url(),
            reason,
        };
        let url = reqwest::Url::parse(&target.url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        // A receiver that moved answers 3xx: a permanent failure to fix in
        // the configuration, not a POST silently replayed as a GET.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpEffectError::Client {
                message: e.without_url().to_string(),
            })?;
        Ok(HttpEffect {
            target,
            url,
            client,
            clock,
        })
    }

    /// Where it delivers.
    pub fn target(&self) -> &HttpTarget {
        &self.target
    }

    async fn deliver(&self, ctx: ActionContext<'_>) -> Result<ActionOutcome, ActionError> {
        let body = serde_json::to_vec(&Delivery {
            action: ctx.action.kind.as_str(),
            idempotency_key: ctx.idempotency_key,
            tenant: ctx.order.user_id.as_deref(),
            order: ctx.order,
            parameters: &ctx.action.parameters,
            attempt: ctx.attempt,
            rollback: ctx.rollback,
        })
        .map_err(|e| ActionError::permanent("encode", e.to_string()))?;
        let now = self.clock.now();
        let signature = sign_effect(&self.target.secret, now.timestamp(), &body);
        let mut request = self
            .client
            .post(self.url.clone())
            .header(SIGNATURE_HEADER, signature)
            .header("Idempotency-Key", ctx.idempotency_key)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, AGENT)
            .body(body);
        if let Some(timeout) = self.target.timeout {
            request = request.timeout(timeout);
        }
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(ActionOutcome(json!({ "http_status": status.as_u16() })));
        }
        let retry_after = retry_after(response.headers(), now);
        // The start of the answer, for the operator; a body that does not
        // come is no reason to wait longer.
        let quoted = match response.chunk().await {
            Ok(Some(bytes)) => quote(&bytes),
            _ => String::new(),
        };
        Err(self.refusal(status, retry_after, &quoted))
    }

    /// The error of a non-2xx answer.
    fn refusal(
        &self,
        status: StatusCode,
        retry_after: Option<std::time::Duration>,
        quoted: &str,
    ) -> ActionError {
        let kind = format!("http_{}", status.as_u16());
        let mut message = format!("the receiver answered {status}");
        if !quoted.is_empty() {
            message.push_str(": ");
            message.push_str(quoted);
        }
        let message = self.redact(message);
        if is_retryable(status) {
            let e = ActionError::retryable(kind, message);
            match retry_after {
                Some(d) => e.with_retry_after(d),
                None => e,
            }
        } else {
            ActionError::permanent(kind, message)
        }
    }

    /// The error of a request that got no answer: its chain of causes,
    /// without the URL (it may hold credentials).
    fn transport(&self, e: reqwest::Error) -> ActionError {
        let (kind, retryable) = if e.is_timeout() {
            ("timeout", true)
        } else if e.is_connect() {
            ("connect", true)
        } else if e.is_builder() {
            ("request", false)
        } else {
            ("transport", true)
        };
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        let message = self.redact(message);
        if retryable {
            ActionError::retryable(kind, message)
        } else {
            ActionError::permanent(kind, message)
        }
    }

    /// `message` with the URL (whole or as parsed) and the secret masked:
    /// an error text never carries either.
    fn redact(&self, message: String) -> String {
        let mut out = message;
        for hidden in [self.target.url.as_str(), self.url.as_str()] {
            out = out.replace(hidden, &redact_url(hidden));
        }
        if !self.target.secret.is_empty() {
            out = out.replace(&self.target.secret, "***");
        }
        out
    }
}

/// 408, 429 and 5xx are worth another attempt; other answers are final.
fn is_retryable(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<std::time::Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// The first [`QUOTED_BODY`] bytes of `bytes` as text, cut at a character.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_BODY)]);
    text.trim_end_matches('\u{fffd}').trim().to_owned()
}

impl ActionHandler for HttpEffect {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin(self.deliver(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let retryable = [408, 429, 500, 502, 503, 504, 599];
        let permanent = [400, 401, 403, 404, 409, 410, 422, 301, 302];
        for s in retryable {
            let s = StatusCode::from_u16(s).unwrap_or(StatusCode::OK);
            assert!(is_retryable(s), "{s}");
        }
        for s in permanent {
            let s = StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!is_retryable(s), "{s}");
        }
    }

    #[test]
    fn building_refuses_bad_urls_without_showing_them() {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        for url in ["not a url", "ftp://u:pw@h/x", "/relative"] {
            let err = HttpEffect::new(HttpTarget::new(url, "s3cr3t"), clock.clone())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("invalid effect URL"), "{err}");
            assert!(!err.contains("pw") && !err.contains("s3cr3t"), "{err}");
        }
        let e = HttpEffect::new(
            HttpTarget::new("https://u:pw@h/x?t=s3cr3t", "s3cr3t"),
            clock,
        );
        let e = e.map_err(|e| e.to_string());
        assert!(e.is_ok(), "{e:?}");
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("pw") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[test]
    fn error_texts_hide_url_and_secret() {
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let target = HttpTarget::new("https://u:pw@h.example/x?token=tok", "s3cr3t");
        let Ok(effect) = HttpEffect::new(target, clock) else {
            panic!("valid target")
        };
        let e = effect.refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(std::time::Duration::from_secs(2)),
            "echo s3cr3t from https://u:pw@h.example/x?token=tok",
        );
        assert_eq!(e.error_kind, "http_503");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(2)));
        assert!(
            !e.message.contains("s3cr3t") && !e.message.contains("pw"),
            "{}",
            e.message
        );
        let e = effect.refusal(StatusCode::BAD_REQUEST, None, "");
        assert_eq!(
            (e.error_kind.as_str(), e.is_retryable()),
            ("http_400", false)
        );
        assert_eq!(e.message, "the receiver answered 400 Bad Request");
    }

    #[test]
    fn quotes_are_short_and_whole_characters() {
        let long = "é".repeat(300);
        let q = quote(long.as_bytes());
        assert!(q.len() <= QUOTED_BODY && q.chars().all(|c| c == 'é'), "{q}");
    }
}
