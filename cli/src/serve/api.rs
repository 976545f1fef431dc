//! The read endpoints: `/healthz`, `/api/metrics`, `/api/orders` and the
//! Prometheus `/metrics`.
//!
//! Every read but `/healthz` needs a bearer token ([`super::auth`]): the
//! JSON reads are scoped to one tenant (the token's own; an admin's:
//! `?tenant=`, else the default one) and answer 404 for a tenant the token
//! may not read, exactly as for an absent order. What spans tenants is for
//! admins only: in `/api/metrics` the process-wide counters (`webhooks`,
//! `processor`, `actions`: a webhook or an action is not always one
//! tenant's), and `/metrics`, which lists every tenant (an admin token or
//! the `metrics_token`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use creatorflow::Engine;
use creatorflow::model::Priority;
use creatorflow::store::{
    DashboardStore, Inbox, OrderQuery, OrderReads, QueueStore, StoreError, StoredOrder, TenantScope,
};
use creatorflow::tiktok::OrderApi;
use serde_json::{Value, json};

use super::auth::{Access, Principal, authorize, authorize_metrics, not_found};
use super::webhook::LATENCY_BUCKETS;
use super::{AppState, SharedStore};

/// The most orders `/api/orders` returns.
const MAX_LIMIT: usize = 1000;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// A failed store call as the answer: 503 with `Retry-After: 1` while the
/// store is away (PostgreSQL restarting: the same request succeeds once it
/// is back), else 500. Logged either way.
pub(super) fn store_failed(e: &StoreError) -> Response {
    if e.is_transient() {
        tracing::warn!(error = %e, "store unavailable; answered 503");
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable; try again".to_owned(),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        tracing::error!(error = %e, "store call failed; answered 500");
        error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

/// Who reads, and the engine of the tenant read (`?tenant=`, else the
/// token's own, else the default): 401 without a known token, 404 for a
/// tenant the token may not read or the server does not serve.
// The refusal is the handler's answer as is: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn engine<'a, A: OrderApi + 'static>(
    s: &'a AppState<A>,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(Access<'a>, &'a Engine<SharedStore>), Response> {
    let access = authorize(s, headers, q.get("tenant").map(String::as_str))?;
    let engine = s.processor.engine(&access.tenant).ok_or_else(not_found)?;
    Ok((access, engine))
}

/// `GET /healthz`.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The dashboard figures of `model.md` for one tenant, with its queue and
/// its inbox; for an admin also the process-wide counters (webhooks, the
/// inbox processor, actions), which span tenants.
async fn figures<A: OrderApi + 'static>(
    s: &AppState<A>,
    who: &Principal,
    e: &Engine<SharedStore>,
) -> Result<Value, StoreError> {
    let (store, tenant, now) = (e.store(), e.tenant(), e.now());
    let d = store
        .dashboard(tenant, now, chrono::TimeDelta::hours(1))
        .await?;
    // The tenant's own queue (the engine's may span every tenant).
    let queue = store
        .queue_summary(TenantScope::Tenant(tenant), now)
        .await?;
    let inbox = store.inbox_stats(tenant).await?;
    let active: u64 = d.orders_by_priority.values().sum();
    let mut v = json!({
        "tenant": tenant,
        "now": d.now,
        "window_ms": d.window_ms,
        "orders_processed_per_minute": d.orders_processed_per_minute,
        "automation_health_pct": d.automation_health_pct,
        "orders_shipped": d.orders_shipped,
        "avg_time_to_ship_s": d.avg_time_to_ship_s,
        "avg_time_to_ship_change_pct": d.avg_time_to_ship_change_pct,
        "avg_step_time_s": d.avg_step_time_s,
        "avg_step_time_change_pct": d.avg_step_time_change_pct,
        "orders_total": d.orders_by_state.values().sum::<u64>(),
        "orders_by_state": d.orders_by_state,
        "active_orders": active,
        "orders_by_priority": d.orders_by_priority,
        "viral_orders": d.viral_orders,
        "most_urgent": d.most_urgent.iter().map(summary).collect::<Vec<_>>(),
        "queue": queue,
        "inbox": inbox,
        "uptime_s": s.started.elapsed().as_secs(),
    });
    if matches!(who, Principal::Admin { .. })
        && let Some(o) = v.as_object_mut()
    {
        o.insert("actions".into(), json!(e.executor().stats()));
        o.insert("webhooks".into(), json!(s.stats.counts()));
        o.insert("processor".into(), json!(s.processor.stats()));
    }
    Ok(v)
}

/// `GET /api/metrics[?tenant=]`.
pub(crate) async fn metrics<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (access, e) = match engine(&s, &headers, &q) {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    match figures(&s, access.who, e).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => store_failed(&e),
    }
}

/// One order as the API and the dashboard show it.
pub(super) fn summary(o: &StoredOrder) -> Value {
    let x = &o.order;
    json!({
        "id": o.id,
        "tiktok_order_id": x.tiktok_order_id,
        "state": x.current_state.as_str(),
        "priority": x.priority,
        "impact": x.impact,
        "automation_status": x.automation_status,
        "flow_progress": x.flow_progress,
        "customer_handle": x.customer_handle,
        "product_name": x.product_name,
        "quantity": x.quantity,
        "price": x.price.to_string(),
        "created_at": x.created_at,
        "deadline": x.deadline,
    })
}

/// `GET /api/orders[?tenant=&state=&priority=&limit=]`: active orders most
/// urgent first; with `state=` any order in that state (terminal ones too).
pub(crate) async fn orders<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (_, e) = match engine(&s, &headers, &q) {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let priority = match q.get("priority").map(|p| (p, Priority::parse(p))) {
        None => None,
        Some((_, Some(p))) => Some(p),
        Some((p, None)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "`priority`: unknown value `{p}`; expected one of {}",
                    Priority::names().collect::<Vec<_>>().join(", ")
                ),
            );
        }
    };
    let state = q.get("state").cloned();
    if let Some(st) = &state
        && e.machine().state(st).is_none()
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("`state`: `{st}` is not a state of the workflow"),
        );
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`limit` must be an integer from 1 to {MAX_LIMIT}"),
            );
        }
    };
    // Counters for the total, an index range for the page (bounded reads).
    let query = OrderQuery { state, priority };
    let total = match e.store().order_counts(e.tenant()).await {
        Ok(counts) => query.total(&counts),
        Err(err) => return store_failed(&err),
    };
    let found = match e.store().find_orders(e.tenant(), &query, limit).await {
        Ok(found) => found,
        Err(err) => return store_failed(&err),
    };
    Json(json!({
        "tenant": e.tenant(),
        "total": total,
        "orders": found.iter().map(summary).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// A Prometheus label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A gauge: name, help, and its values by label set.
type Gauge<'a> = (&'a str, &'a str, Vec<(String, f64)>);

/// `GET /metrics`: Prometheus text format (every configured tenant), for
/// an admin token or the metrics token.
pub(crate) async fn prometheus<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize_metrics(&s, &headers) {
        return refused;
    }
    let mut out = String::new();
    // Per-process figures carry the replica, so that Prometheus can sum
    // them over replicas; figures read from the store are the same on
    // every replica and carry none.
    let r = label(&s.config.replica);
    let w = s.stats.counts();
    let _ = writeln!(
        out,
        "# HELP creatorflow_webhooks_total TikTok Shop webhook requests by result.\n\
         # TYPE creatorflow_webhooks_total counter"
    );
    for (result, n) in [
        ("accepted", w.accepted),
        ("duplicate", w.duplicates),
        ("unrouted", w.unrouted),
        ("unauthorized", w.unauthorized),
        ("malformed", w.malformed),
        ("too_large", w.too_large),
        ("inbox_error", w.inbox_errors),
    ] {
        let _ = writeln!(
            out,
            "creatorflow_webhooks_total{{result=\"{result}\",replica=\"{r}\"}} {n}"
        );
    }
    let (cumulative, sum, count) = s.stats.histogram();
    let _ = writeln!(
        out,
        "# HELP creatorflow_webhook_ack_seconds Time from request to acknowledgement.\n\
         # TYPE creatorflow_webhook_ack_seconds histogram"
    );
    for (bound, n) in LATENCY_BUCKETS
        .iter()
        .map(|b| b.to_string())
        .chain(std::iter::once("+Inf".to_owned()))
        .zip(&cumulative)
    {
        let _ = writeln!(
            out,
            "creatorflow_webhook_ack_seconds_bucket{{le=\"{bound}\",replica=\"{r}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "creatorflow_webhook_ack_seconds_sum{{replica=\"{r}\"}} {sum}"
    );
    let _ = writeln!(
        out,
        "creatorflow_webhook_ack_seconds_count{{replica=\"{r}\"}} {count}"
    );
    let p = s.processor.stats();
    let _ = writeln!(
        out,
        "# HELP creatorflow_inbox_processed_total Inbox entries processed by this process.\n\
         # TYPE creatorflow_inbox_processed_total counter\n\
         creatorflow_inbox_processed_total{{replica=\"{r}\"}} {}\n\
         # HELP creatorflow_inbox_retried_total Inbox entries left pending after a transient failure.\n\
         # TYPE creatorflow_inbox_retried_total counter\n\
         creatorflow_inbox_retried_total{{replica=\"{r}\"}} {}\n\
         # HELP creatorflow_singleton_held Singleton jobs this replica runs (1 per lease held).\n\
         # TYPE creatorflow_singleton_held gauge",
        p.processed, p.retried
    );
    for job in s.singletons.held().keys() {
        let _ = writeln!(
            out,
            "creatorflow_singleton_held{{replica=\"{r}\",job=\"{}\"}} 1",
            label(job)
        );
    }
    let _ = writeln!(
        out,
        "# HELP creatorflow_rules_in_sync 1 when this replica runs the recorded (active) rule-pack versions.\n\
         # TYPE creatorflow_rules_in_sync gauge\n\
         creatorflow_rules_in_sync{{replica=\"{r}\"}} {}",
        u8::from(s.rules_sync.in_sync())
    );
    let mut gauges: Vec<Gauge<'_>> = vec![
        ("creatorflow_orders", "Orders by state.", Vec::new()),
        (
            "creatorflow_active_orders",
            "Active orders by priority.",
            Vec::new(),
        ),
        (
            "creatorflow_viral_orders",
            "Active orders with VIRAL impact.",
            Vec::new(),
        ),
        (
            "creatorflow_orders_processed_per_minute",
            "Orders with a successful step in the last hour, per minute.",
            Vec::new(),
        ),
        (
            "creatorflow_automation_health_percent",
            "Automated, successful transitions in the last hour, percent.",
            Vec::new(),
        ),
        (
            "creatorflow_inbox_pending",
            "Inbox entries not yet processed.",
            Vec::new(),
        ),
        (
            "creatorflow_orders_shipped_last_hour",
            "Orders that shipped in the last hour (first step into a Shipped or Delivered state).",
            Vec::new(),
        ),
        (
            "creatorflow_time_to_ship_seconds",
            "Mean time from received (the order's created_at) to shipped (its first step into \
             a Shipped or Delivered state) of the orders shipped in the last hour, seconds; \
             absent when none shipped.",
            Vec::new(),
        ),
    ];
    let tenants: Vec<String> = s.processor.tenants().map(str::to_owned).collect();
    for tenant in &tenants {
        let Some(e) = s.processor.engine(tenant) else {
            continue;
        };
        let now = e.now();
        let Ok(d) = e
            .store()
            .dashboard(tenant, now, chrono::TimeDelta::hours(1))
            .await
        else {
            continue;
        };
        let t = label(tenant);
        for (st, n) in &d.orders_by_state {
            gauges[0]
                .2
                .push((format!("tenant=\"{t}\",state=\"{}\"", label(st)), *n as f64));
        }
        for (pr, n) in &d.orders_by_priority {
            gauges[1]
                .2
                .push((format!("tenant=\"{t}\",priority=\"{pr}\""), *n as f64));
        }
        gauges[2]
            .2
            .push((format!("tenant=\"{t}\""), d.viral_orders as f64));
        gauges[3]
            .2
            .push((format!("tenant=\"{t}\""), d.orders_processed_per_minute));
        if let Some(h) = d.automation_health_pct {
            gauges[4].2.push((format!("tenant=\"{t}\""), h));
        }
        gauges[6]
            .2
            .push((format!("tenant=\"{t}\""), d.orders_shipped as f64));
        if let Some(s) = d.avg_time_to_ship_s {
            gauges[7].2.push((format!("tenant=\"{t}\""), s));
        }
        if let Ok(i) = e.store().inbox_stats(tenant).await {
            gauges[5]
                .2
                .push((format!("tenant=\"{t}\""), i.pending as f64));
        }
    }
    for (name, help, values) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in values {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
