//! Rows ↔ records: column lists, binding and decoding.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};

use crate::model::{
    AutomationStatus, CustomerTier, Impact, Order, Priority, StateName, UserRef, ViralIndicator,
};
use crate::store::logic::{from_ms, is_viral, ms, priority_rank, to_i64, to_u64};
use crate::store::{HistoryEntry, OrderId, StoreError, StoredOrder, WorkflowMetric};

/// A query with positional arguments.
pub(super) type Q<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Maps an sqlx error to [`StoreError::Database`], naming what was being done.
pub(super) fn db(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| StoreError::Database {
        message: format!("{context}: {e}"),
        source: Some(std::sync::Arc::new(e)),
    }
}

/// The columns of `orders`, in binding order.
pub(super) const ORDER_COLUMNS: &str = "id, user_id, tiktok_order_id, version, terminal, \
    current_state, previous_state, priority, priority_rank, impact, viral, automation_status, \
    customer_handle, customer_tier, customer_id, product_name, product_id, quantity, price, \
    processing_time_ms, automation_score, flow_progress, viral_indicators, \
    orders_per_hour_current, velocity_multiplier, shipping_location, carrier_preference, \
    shipping_zone, deadline, user_ref, created_at, updated_at, state_changed_at";

/// How many columns [`ORDER_COLUMNS`] lists.
pub(super) const ORDER_COLUMN_COUNT: usize = 33;

/// `(?, ?, …)` repeated `rows` times for `cols` columns, comma separated.
pub(super) fn placeholders(cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

/// `?, ?, …` (`n` of them).
pub(super) fn params(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Serializes a value for a JSON column.
pub(super) fn json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::invalid(format!("{what} cannot be stored as JSON: {e}")))
}

/// Reads a JSON column.
pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} is not valid JSON: {e}")))
}

/// Binds one order's columns, in [`ORDER_COLUMNS`] order.
pub(super) fn bind_order<'q>(q: Q<'q>, s: &StoredOrder) -> Result<Q<'q>, StoreError> {
    let o = &s.order;
    let user_ref = o.user.as_ref().map(|u| json(u, "user")).transpose()?;
    Ok(q.bind(s.id.to_string())
        .bind(o.user_id.clone().unwrap_or_default())
        .bind(o.tiktok_order_id.clone())
        .bind(to_i64(s.version, "version")?)
        .bind(s.terminal)
        .bind(o.current_state.as_str().to_owned())
        .bind(o.previous_state.as_ref().map(|p| p.as_str().to_owned()))
        .bind(o.priority.as_str())
        .bind(priority_rank(o.priority))
        .bind(o.impact.as_str())
        .bind(is_viral(o.impact))
        .bind(o.automation_status.as_str())
        .bind(o.customer_handle.clone())
        .bind(o.customer_tier.as_str())
        .bind(o.customer_id.clone())
        .bind(o.product_name.clone())
        .bind(o.product_id.clone())
        .bind(i64::from(o.quantity))
        .bind(o.price.to_string())
        .bind(to_i64(o.processing_time_ms, "processing_time_ms")?)
        .bind(i64::from(o.automation_score))
        .bind(i64::from(o.flow_progress))
        .bind(json(&o.viral_indicators, "viral_indicators")?)
        .bind(o.orders_per_hour_current.to_string())
        .bind(o.velocity_multiplier.to_string())
        .bind(o.shipping_location.clone())
        .bind(o.carrier_preference.clone())
        .bind(o.shipping_zone.clone())
        .bind(o.deadline.map(ms))
        .bind(user_ref)
        .bind(ms(o.created_at))
        .bind(ms(o.updated_at.unwrap_or(o.created_at)))
        .bind(ms(o.state_changed_at.unwrap_or(o.created_at))))
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col)
        .map_err(|e| StoreError::database(format!("reading column {col}: {e}")))
}

fn parse_enum<T>(text: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::database(format!("stored {what} `{text}` is unknown")))
}

fn decimal(text: &str, what: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} `{text}` is not a decimal: {e}")))
}

/// Reads a UUID column.
pub(super) fn uuid(row: &SqliteRow, col: &str) -> Result<OrderId, StoreError> {
    let text: String = get(row, col)?;
    OrderId::parse_str(&text)
        .map_err(|e| StoreError::database(format!("stored {col} `{text}` is not a UUID: {e}")))
}

fn small<T: TryFrom<i64>>(row: &SqliteRow, col: &str) -> Result<T, StoreError> {
    let v: i64 = get(row, col)?;
    T::try_from(v).map_err(|_| StoreError::database(format!("stored {col} {v} is out of range")))
}

/// Decodes an `orders` row selected with [`ORDER_COLUMNS`].
pub(super) fn order_from_row(row: &SqliteRow) -> Result<StoredOrder, StoreError> {
    let id = uuid(row, "id")?;
    let text = |col: &str| get::<String>(row, col);
    let opt = |col: &str| get::<Option<String>>(row, col);
    let user: Option<UserRef> = opt("user_ref")?
        .map(|u| from_json(&u, "user_ref"))
        .transpose()?;
    let viral_indicators: Vec<ViralIndicator> =
        from_json(&text("viral_indicators")?, "viral_indicators")?;
    let order = Order {
        id: Some(id),
        user_id: Some(text("user_id")?),
        tiktok_order_id: text("tiktok_order_id")?,
        current_state: StateName::new(&text("current_state")?),
        previous_state: opt("previous_state")?.map(|s| StateName::new(&s)),
        priority: parse_enum(&text("priority")?, Priority::parse, "priority")?,
        impact: parse_enum(&text("impact")?, Impact::parse, "impact")?,
        automation_status: parse_enum(
            &text("automation_status")?,
            AutomationStatus::parse,
            "automation_status",
        )?,
        customer_handle: text("customer_handle")?,
        customer_tier: parse_enum(
            &text("customer_tier")?,
            CustomerTier::parse,
            "customer_tier",
        )?,
        customer_id: opt("customer_id")?,
        product_name: text("product_name")?,
        product_id: text("product_id")?,
        quantity: small(row, "quantity")?,
        price: decimal(&text("price")?, "price")?,
        processing_time_ms: to_u64(get(row, "processing_time_ms")?, "processing_time_ms")?,
        automation_score: small(row, "automation_score")?,
        flow_progress: small(row, "flow_progress")?,
        viral_indicators,
        orders_per_hour_current: decimal(
            &text("orders_per_hour_current")?,
            "orders_per_hour_current",
        )?,
        velocity_multiplier: decimal(&text("velocity_multiplier")?, "velocity_multiplier")?,
        shipping_location: opt("shipping_location")?,
        carrier_preference: opt("carrier_preference")?,
        shipping_zone: opt("shipping_zone")?,
        deadline: get::<Option<i64>>(row, "deadline")?
            .map(from_ms)
            .transpose()?,
        created_at: from_ms(get(row, "created_at")?)?,
        updated_at: Some(from_ms(get(row, "updated_at")?)?),
        state_changed_at: Some(from_ms(get(row, "state_changed_at")?)?),
        user,
    };
    Ok(StoredOrder {
        id,
        version: to_u64(get(row, "version")?, "version")?,
        terminal: get(row, "terminal")?,
        order,
    })
}

/// The columns of `order_transitions`, in binding order.
pub(super) const HISTORY_COLUMNS: &str = "order_id, user_id, version, from_state, to_state, \
    transition_reason, automated, duration_ms, actions_executed, error_message, created_at";

/// How many columns [`HISTORY_COLUMNS`] lists.
pub(super) const HISTORY_COLUMN_COUNT: usize = 11;

/// Binds one history row, in [`HISTORY_COLUMNS`] order.
pub(super) fn bind_history<'q>(
    q: Q<'q>,
    tenant: &str,
    h: &HistoryEntry,
) -> Result<Q<'q>, StoreError> {
    Ok(q.bind(h.order_id.to_string())
        .bind(tenant.to_owned())
        .bind(to_i64(h.version, "version")?)
        .bind(h.from.as_str().to_owned())
        .bind(h.to.as_str().to_owned())
        .bind(h.reason.clone())
        .bind(h.automated)
        .bind(to_i64(h.duration_ms, "duration_ms")?)
        .bind(json(&h.actions_executed, "actions_executed")?)
        .bind(h.error_message.clone())
        .bind(ms(h.at)))
}

/// Decodes an `order_transitions` row selected with [`HISTORY_COLUMNS`].
pub(super) fn history_from_row(row: &SqliteRow) -> Result<HistoryEntry, StoreError> {
    Ok(HistoryEntry {
        order_id: uuid(row, "order_id")?,
        version: to_u64(get(row, "version")?, "version")?,
        from: StateName::new(&get::<String>(row, "from_state")?),
        to: StateName::new(&get::<String>(row, "to_state")?),
        reason: get(row, "transition_reason")?,
        automated: get(row, "automated")?,
        duration_ms: to_u64(get(row, "duration_ms")?, "duration_ms")?,
        actions_executed: from_json(&get::<String>(row, "actions_executed")?, "actions_executed")?,
        error_message: get(row, "error_message")?,
        at: from_ms(get(row, "created_at")?)?,
    })
}

/// Decodes a `workflow_metrics` row.
pub(super) fn metric_from_row(row: &SqliteRow) -> Result<WorkflowMetric, StoreError> {
    Ok(WorkflowMetric {
        order_id: get::<Option<String>>(row, "order_id")?
            .map(|_| uuid(row, "order_id"))
            .transpose()?,
        metric_type: get(row, "metric_type")?,
        metric_name: get(row, "metric_name")?,
        value: decimal(&get::<String>(row, "metric_value")?, "metric_value")?,
        dimensions: from_json(&get::<String>(row, "dimensions")?, "dimensions")?,
        recorded_at: from_ms(get(row, "recorded_at")?)?,
    })
}

/// Reads a column as `T`.
pub(super) fn column<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    get(row, col)
}

/// Reads a lane column.
pub(super) fn lane(row: &SqliteRow, col: &str) -> Result<Priority, StoreError> {
    parse_enum(&get::<String>(row, col)?, Priority::parse, "lane")
}
