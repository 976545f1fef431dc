//! `GET /readyz`: the readiness probe (no token). `/healthz` says the
//! process lives; this says it can serve: the store answers and its
//! migrations are current. A load balancer or Kubernetes sends no traffic
//! while it answers 503.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use creatorflow::store::Readiness;
use creatorflow::tiktok::OrderApi;
use serde_json::json;

use super::AppState;

/// How long the probe waits for the store: a probe must answer quickly,
/// whatever the store's own connection timeouts are.
const BUDGET: Duration = Duration::from_secs(2);

/// `GET /readyz`: 200 `{"ready": true}`, or 503 `{"ready": false,
/// "reason": …}` (the store's error, or that it did not answer in time).
pub(crate) async fn readyz<A: OrderApi + 'static>(State(s): State<Arc<AppState<A>>>) -> Response {
    let processor = &s.processor;
    // Every engine shares the one store: any engine's will do.
    let engine = processor
        .engine(&s.config.default_tenant)
        .or_else(|| processor.tenants().next().and_then(|t| processor.engine(t)));
    let Some(engine) = engine else {
        return not_ready("no tenant is served".to_owned());
    };
    match tokio::time::timeout(BUDGET, engine.store().ready()).await {
        Ok(Ok(())) => Json(json!({ "ready": true })).into_response(),
        Ok(Err(e)) => not_ready(e.to_string()),
        Err(_) => not_ready(format!(
            "the store did not answer within {} s",
            BUDGET.as_secs()
        )),
    }
}

/// 503 with the reason, logged once per failed probe at `warn`.
fn not_ready(reason: String) -> Response {
    tracing::warn!(reason = %reason, "not ready");
    let body = Json(json!({ "ready": false, "reason": reason }));
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}
