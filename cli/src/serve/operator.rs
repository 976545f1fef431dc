//! The operator API: people read an order and act on it, and see the
//! review queue.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/orders/{id}[?tenant=]` | the order, its history (each row with `actor` and `pack_version`) and the rules' decisions recorded in it |
//! | `GET /api/review[?tenant=&limit=&after=]` | the orders waiting for a person, longest waiting first; `next` is the `after` of the next page |
//! | `POST /api/orders/{id}/approve\|reject\|retry\|cancel[?tenant=]` | body `{"reason": "..."}` (optional, but required to reject; an empty body is no reason): the order after the step; 409 `{"error", "state"}` when its state does not allow it; 422 without a reason to reject |
//!
//! Every route takes a bearer token ([`super::auth::authorize`]): a
//! tenant's token acts on its tenant, an admin's on `?tenant=` (else the
//! default tenant). An order that does not exist and another tenant's
//! order get the same 404. The token's name is the `actor` of the history
//! row a command writes.
//!
//! `{id}` is the order's id in the store (a UUID) or its TikTok order id
//! (digits, never a UUID), so a person can paste either.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use creatorflow::engine::Command;
use creatorflow::store::{
    HistoryEntry, OrderStore, ReviewCursor, ReviewStore, StoreError, StoredOrder,
};
use creatorflow::tiktok::OrderApi;
use creatorflow::{Engine, EngineError};
use serde_json::{Value, json};

use super::api::{store_failed, summary};
use super::auth::{Access, authorize, not_found};
use super::{AppState, SharedStore};

/// The most orders one page of `/api/review` holds.
const MAX_REVIEW_PAGE: usize = 500;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// An engine failure as the answer: a store call's as [`store_failed`]
/// says (503 while the store is away), anything else 500.
fn internal(e: &EngineError) -> Response {
    match e {
        EngineError::Store(s) => store_failed(s),
        _ => {
            tracing::error!(error = %e, "operator command failed; answered 500");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// Who acts (the bearer token) on which tenant's engine (`?tenant=` for
/// an admin), or the refusal to answer.
fn access<'a, A: OrderApi + 'static>(
    s: &'a AppState<A>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(Access<'a>, &'a Engine<SharedStore>), Box<Response>> {
    let access = authorize(s, headers, q.get("tenant").map(String::as_str)).map_err(Box::new)?;
    let engine = s
        .processor
        .engine(&access.tenant)
        .ok_or_else(|| Box::new(not_found()))?;
    Ok((access, engine))
}

/// The tenant's order `id` (a store id or a TikTok order id), or 404.
async fn find(engine: &Engine<SharedStore>, id: &str) -> Result<StoredOrder, Response> {
    let found = match id.parse::<uuid::Uuid>() {
        Ok(uuid) => engine.store().get_order(engine.tenant(), uuid).await,
        Err(_) => engine.store().find_order(engine.tenant(), id).await,
    };
    found.map_err(|e| store_failed(&e))?.ok_or_else(not_found)
}

/// One history row as the API shows it.
fn row(h: &HistoryEntry) -> Value {
    json!({
        "version": h.version,
        "from": h.from.as_str(),
        "to": h.to.as_str(),
        "reason": h.reason,
        "automated": h.automated,
        "actor": h.actor,
        "pack_version": h.pack_version,
        "duration_ms": h.duration_ms,
        "actions": h.actions_executed.to_value(),
        "error": h.error_message,
        "at": h.at,
    })
}

/// The rules' decisions the history records: each step that names rules
/// — in its reason (`…; rules: a, b`: the rules that fired, whose actions
/// the step ran) or in its error (``rule `x` asked for manual review``) —
/// with the pack version that made them. Priority and impact, decided at
/// ingest, are on the order.
fn decisions(history: &[HistoryEntry]) -> Vec<Value> {
    history
        .iter()
        .filter_map(|h| {
            let mut rules: Vec<&str> = Vec::new();
            if let Some(fired) = h
                .reason
                .as_deref()
                .and_then(|r| r.split("; rules: ").nth(1))
            {
                let fired = fired.split(';').next().unwrap_or_default();
                rules.extend(fired.split(", ").map(str::trim).filter(|r| !r.is_empty()));
            }
            for named in h
                .error_message
                .as_deref()
                .unwrap_or_default()
                .split("rule `")
                .skip(1)
            {
                if let Some((id, _)) = named.split_once('`')
                    && !rules.contains(&id)
                {
                    rules.push(id);
                }
            }
            (!rules.is_empty()).then(|| {
                json!({
                    "version": h.version,
                    "rules": rules,
                    "pack_version": h.pack_version,
                    "at": h.at,
                })
            })
        })
        .collect()
}

/// An order in full: the summary's fields and its own.
fn detail(o: &StoredOrder) -> Value {
    let mut v = summary(o);
    if let Value::Object(m) = &mut v {
        m.insert("version".into(), json!(o.version));
        m.insert("terminal".into(), json!(o.terminal));
        m.insert("state_changed_at".into(), json!(o.order.state_changed_at));
        m.insert("updated_at".into(), json!(o.order.updated_at));
    }
    v
}

/// `GET /api/orders/{id}[?tenant=]`.
pub(crate) async fn order<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let engine = match access(&s, &headers, &q) {
        Ok((_, e)) => e,
        Err(r) => return *r,
    };
    let order = match find(engine, &id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let full = match engine
        .store()
        .order_with_history(engine.tenant(), order.id)
        .await
    {
        Ok(Some(full)) => full,
        Ok(None) => return not_found(),
        Err(e) => return store_failed(&e),
    };
    let allowed: Vec<&str> = Command::ALL
        .into_iter()
        .filter(|c| allows(engine, &full.order, *c))
        .map(Command::as_str)
        .collect();
    Json(json!({
        "tenant": engine.tenant(),
        "order": detail(&full.order),
        "history": full.history.iter().map(row).collect::<Vec<_>>(),
        "decisions": decisions(&full.history),
        "commands": allowed,
    }))
    .into_response()
}

/// Whether `command` looks allowed on `o` now (for the dashboard's
/// buttons; the command itself decides).
fn allows(engine: &Engine<SharedStore>, o: &StoredOrder, command: Command) -> bool {
    let m = engine.machine();
    let state = o.order.current_state.as_str();
    let in_review = o.order.automation_status == creatorflow::model::AutomationStatus::ManualReview;
    match command {
        Command::Cancel => !o.terminal && m.can_transition(state, creatorflow::machine::CANCELLED),
        Command::Reject => in_review && m.can_transition(state, creatorflow::machine::CANCELLED),
        Command::Approve | Command::Retry => in_review && !o.terminal,
    }
}

/// `GET /api/review[?tenant=&limit=&after=]`.
pub(crate) async fn review<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let engine = match access(&s, &headers, &q) {
        Ok((_, e)) => e,
        Err(r) => return *r,
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=MAX_REVIEW_PAGE).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("`limit` must be an integer from 1 to {MAX_REVIEW_PAGE}"),
            );
        }
    };
    let after = match q.get("after").map(|a| ReviewCursor::decode(a)) {
        None => None,
        Some(Some(c)) => Some(c),
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "`after` must be the `next` of a previous page",
            );
        }
    };
    let page = match engine
        .store()
        .review_queue(engine.tenant(), after, limit)
        .await
    {
        Ok(p) => p,
        Err(e) => return store_failed(&e),
    };
    let next = (page.len() == limit)
        .then(|| page.last().map(|o| ReviewCursor::after(o).encode()))
        .flatten();
    Json(json!({
        "tenant": engine.tenant(),
        "orders": page.iter().map(detail).collect::<Vec<_>>(),
        "next": next,
    }))
    .into_response()
}

/// The request body's `reason`: none for an empty body; an error message
/// (for a 400) for a body that is not a JSON object whose `reason` is a
/// string (or null).
fn reason(body: &[u8]) -> Result<Option<String>, &'static str> {
    const BAD: &str = "the body must be a JSON object such as {\"reason\": \"...\"}";
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => match m.get("reason") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(r)) => Ok(Some(r.clone())),
            Some(_) => Err(BAD),
        },
        _ => Err(BAD),
    }
}

/// `POST /api/orders/{id}/{command}[?tenant=]`.
pub(crate) async fn command<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    Path((id, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (who, engine) = match access(&s, &headers, &q) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some(command) = Command::parse(&name) else {
        return not_found();
    };
    let reason = match reason(&body) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let order = match find(engine, &id).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let e = match engine
        .command(order.id, command, who.actor(), reason.as_deref())
        .await
    {
        Ok(o) => {
            return Json(json!({ "tenant": engine.tenant(), "order": detail(&o) })).into_response();
        }
        Err(e) => e,
    };
    match &e {
        EngineError::NotFound(_) | EngineError::Store(StoreError::NotFound { .. }) => not_found(),
        EngineError::ReasonRequired { .. } => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("{command} needs a reason: {{\"reason\": \"...\"}}"),
        ),
        EngineError::WrongState { state, .. } => (
            StatusCode::CONFLICT,
            Json(json!({ "error": e.to_string(), "state": state })),
        )
            .into_response(),
        _ => internal(&e),
    }
}
