//! The `http` effect: an action carried out by the creator's own service,
//! reached by a signed POST (service.md, "Real effects"; the receiver's
//! side, with verifiers in Python and Rust, is `docs/effects.md`).
//!
//! - **Body**: JSON `{"action": TYPE, "idempotency_key": KEY, "tenant": ID,
//!   "order": {...}, "parameters": {...}, "attempt": N}`, plus
//!   `"rollback": true` when the call undoes something (a transition's
//!   `rollback:` list, a compensation).
//! - **Headers**: `X-CreatorFlow-Signature: t=UNIX_SECONDS,v1=HEX` (hex
//!   HMAC-SHA256 of `"UNIX_SECONDS." + raw body` with the target's secret,
//!   the Stripe scheme, over the exact bytes sent; [`sign_effect`],
//!   [`verify_effect_signature`]), `Idempotency-Key: KEY` (the same on every
//!   retry of the same step: receivers dedupe on it), `Content-Type:
//!   application/json`, `User-Agent: creatorflow/VERSION`.
//! - **Answers**: 2xx is success (the outcome records `http_status`); 408,
//!   429, 5xx, timeouts (`timeout`), connection failures (`connect`) and
//!   broken exchanges (`transport`) are retryable under the action's retry
//!   policy, a `Retry-After` (seconds or HTTP-date) making the executor wait
//!   at least that long; any other answer (other 4xx; 3xx, as redirects are
//!   not followed) fails the step for good. Error kinds name the status:
//!   `http_429`, `http_503`, `http_400`, … No error text carries the
//!   secret or the URL's credentials.
//!
//! The signature helpers are always built; [`HttpEffect`] and
//! [`HttpTarget`] need the `http-effect` feature (reqwest, on by default).

#[cfg(feature = "http-effect")]
mod effect;
#[cfg(feature = "http-effect")]
mod retry_after;
mod signature;
#[cfg(feature = "http-effect")]
mod target;

#[cfg(feature = "http-effect")]
pub use effect::{HttpEffect, HttpEffectError};
pub use signature::{SIGNATURE_HEADER, SignatureError, sign_effect, verify_effect_signature};
#[cfg(feature = "http-effect")]
pub use target::HttpTarget;
