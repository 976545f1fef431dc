//! Connecting a TikTok shop (service.md, "Who may do what"):
//!
//! - `POST /api/tiktok/connect[?tenant=ID]` (the tenant's own token, or an
//!   admin token: the named tenant, else the default one): answers the authorization link
//!   with a fresh single-use `state`;
//! - `GET /tiktok/callback?code=…&state=…` (TikTok sends the seller's
//!   browser here; no token): refuses an unknown, used or expired `state`
//!   (403), exchanges the code, stores the tokens and shops for the state's
//!   tenant, and routes the shops' webhooks to it from then on.
//!
//! The tokens never appear in an answer or a log line.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use creatorflow::tiktok::{AuthError, OrderApi, TokenManager};
use serde_json::json;

use super::auth::authorize;
use super::{AppState, SharedStore};

/// The token manager the routes use; `Debug` says only that it is there.
#[derive(Clone)]
pub struct Connector(pub Arc<TokenManager<SharedStore>>);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `POST /api/tiktok/connect[?tenant=ID]`.
pub(crate) async fn connect<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let tenant = match authorize(&s, &headers, q.get("tenant").map(String::as_str)) {
        Ok(access) => access.tenant,
        Err(refused) => return refused,
    };
    let Some(Connector(tokens)) = &s.config.connector else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no TikTok app is configured",
        );
    };
    let now = chrono::Utc::now();
    match tokens.authorization_link(&tenant, now).await {
        Ok((url, state)) => Json(json!({
            "tenant": tenant,
            "authorization_url": url,
            "state": state,
        }))
        .into_response(),
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "cannot start a TikTok authorization");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot start an authorization now",
            )
        }
    }
}

/// `GET /tiktok/callback?code=…&state=…`.
pub(crate) async fn callback<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(code), Some(state)) = (q.get("code"), q.get("state")) else {
        return error(StatusCode::BAD_REQUEST, "`code` and `state` are required");
    };
    let Some(Connector(tokens)) = &s.config.connector else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no TikTok app is configured",
        );
    };
    match tokens.connect(state, code, chrono::Utc::now()).await {
        Ok((tenant, shops)) => {
            let mut names = Vec::with_capacity(shops.len());
            for shop in &shops {
                s.processor.add_shop(&shop.shop_id, &tenant);
                names.push(json!({ "id": shop.shop_id, "name": shop.name, "region": shop.region }));
            }
            tracing::info!(tenant = %tenant, shops = shops.len(), "TikTok shop(s) connected");
            Json(json!({ "tenant": tenant, "shops": names })).into_response()
        }
        Err(AuthError::InvalidState) => error(
            StatusCode::FORBIDDEN,
            "unknown, used or expired authorization state",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "TikTok authorization failed");
            error(StatusCode::BAD_GATEWAY, "TikTok refused the authorization")
        }
    }
}
