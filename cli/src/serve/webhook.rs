//! `POST /webhooks/tiktok-shop`: verify, parse, append to the service's
//! durable inbox (group-committed), acknowledge; and the counters it keeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use creatorflow::store::InboxEntry;
use creatorflow::tiktok::{Envelope, OrderApi, verify_webhook};
use serde::Serialize;

use super::AppState;

/// Upper bounds (seconds) of the acknowledgement-latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters of the webhook endpoint since the server started.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// New notifications stored in the inbox (answered 200).
    pub accepted: AtomicU64,
    /// Duplicate deliveries (answered 200, not stored again).
    pub duplicates: AtomicU64,
    /// Verified notifications of a shop no tenant is configured for
    /// (answered 200 so TikTok stops retrying; not stored).
    pub unrouted: AtomicU64,
    /// Bad or missing signatures (401).
    pub unauthorized: AtomicU64,
    /// Malformed bodies (400).
    pub malformed: AtomicU64,
    /// Bodies over the limit (413).
    pub too_large: AtomicU64,
    /// Inbox write failures (503: TikTok retries).
    pub inbox_errors: AtomicU64,
    /// Acknowledgement latency histogram (counts per bucket, not cumulative).
    buckets: [AtomicU64; 12],
    latency_sum_us: AtomicU64,
    latency_count: AtomicU64,
}

/// A snapshot of [`WebhookStats`] for JSON.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookCounts {
    /// See [`WebhookStats::accepted`].
    pub accepted: u64,
    /// See [`WebhookStats::duplicates`].
    pub duplicates: u64,
    /// See [`WebhookStats::unrouted`].
    pub unrouted: u64,
    /// See [`WebhookStats::unauthorized`].
    pub unauthorized: u64,
    /// See [`WebhookStats::malformed`].
    pub malformed: u64,
    /// See [`WebhookStats::too_large`].
    pub too_large: u64,
    /// See [`WebhookStats::inbox_errors`].
    pub inbox_errors: u64,
}

impl WebhookStats {
    fn count(&self, c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn observe(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.latency_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn counts(&self) -> WebhookCounts {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WebhookCounts {
            accepted: g(&self.accepted),
            duplicates: g(&self.duplicates),
            unrouted: g(&self.unrouted),
            unauthorized: g(&self.unauthorized),
            malformed: g(&self.malformed),
            too_large: g(&self.too_large),
            inbox_errors: g(&self.inbox_errors),
        }
    }

    /// The latency histogram: cumulative counts per bucket bound (the
    /// last is `+Inf`), the sum in seconds, and the count.
    pub fn histogram(&self) -> (Vec<u64>, f64, u64) {
        let mut acc = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                acc += b.load(Ordering::Relaxed);
                acc
            })
            .collect();
        (
            cumulative,
            self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            self.latency_count.load(Ordering::Relaxed),
        )
    }
}

/// The longest an acknowledgement waits for the inbox (TikTok allows 3 s).
const ACK_BUDGET: Duration = Duration::from_millis(2500);

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The handler: see the [module docs](super).
pub(crate) async fn receive<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let stats = &s.stats;
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            stats.count(&stats.too_large);
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", s.config.body_limit),
            );
        }
        Err(r) => {
            stats.count(&stats.malformed);
            return text(StatusCode::BAD_REQUEST, r.body_text());
        }
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify_webhook(&s.config.app_key, &s.config.app_secret, &body, auth) {
        stats.count(&stats.unauthorized);
        return text(StatusCode::UNAUTHORIZED, "bad or missing signature".into());
    }
    let envelope = match Envelope::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            stats.count(&stats.malformed);
            return text(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let Some(tenant) = s.processor.tenant_of(&envelope.shop_id) else {
        stats.count(&stats.unrouted);
        tracing::info!(
            shop = %envelope.shop_id,
            "webhook for an unconfigured shop acknowledged and dropped"
        );
        stats.observe(started.elapsed());
        return StatusCode::OK.into_response();
    };
    let entry = InboxEntry {
        dedup_key: envelope.dedup_key().0,
        topic: envelope.code,
        body: body.to_vec(),
        received_at: chrono::Utc::now(),
    };
    match tokio::time::timeout(ACK_BUDGET, s.inbox.append(&tenant, entry)).await {
        Ok(Ok(true)) => stats.count(&stats.accepted),
        Ok(Ok(false)) => stats.count(&stats.duplicates),
        Ok(Err(e)) => {
            stats.count(&stats.inbox_errors);
            tracing::error!(tenant = %tenant, error = %e, "inbox write failed; answered 503");
            return text(StatusCode::SERVICE_UNAVAILABLE, "inbox unavailable".into());
        }
        Err(_) => {
            stats.count(&stats.inbox_errors);
            tracing::warn!(tenant = %tenant, "inbox write too slow; answered 503");
            return text(StatusCode::SERVICE_UNAVAILABLE, "inbox too slow".into());
        }
    }
    stats.observe(started.elapsed());
    StatusCode::OK.into_response()
}
