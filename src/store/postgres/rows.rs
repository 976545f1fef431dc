//! Rows ↔ records on PostgreSQL: column lists, array binding for `UNNEST`
//! batches, and decoding.
//!
//! Exact values travel as text: NUMERIC columns are bound as `text` and cast
//! in SQL, and read back with `::text`; JSON columns likewise (`::json` on
//! the way in, `::text` on the way out), so nothing passes through a float
//! or a re-serialization. Times are bound as `timestamptz` and decoded from
//! their wire form with checked arithmetic (never a panic on an
//! out-of-range value such as `infinity`).

use crate::store::Result;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgRow, Postgres};

use crate::store::decode;
use crate::store::logic::{from_ms, is_viral, priority_rank, to_i64};
use crate::store::{HistoryEntry, OrderId, StoreError, StoredOrder};

pub(super) use crate::store::error::db;

/// One field of every element of `items`, as an array to bind to an
/// `UNNEST` parameter.
pub(super) fn field<'a, S, T>(items: &'a [S], f: impl FnMut(&'a S) -> T) -> Vec<T> {
    items.iter().map(f).collect()
}

/// The columns of `orders` as selected (exact values as text).
pub(super) const ORDER_COLUMNS: &str = "id, user_id, tiktok_order_id, version, terminal, \
    current_state, previous_state, priority, impact, automation_status, customer_handle, \
    customer_tier, customer_id, product_name, product_id, quantity, price::text AS price, \
    processing_time_ms, automation_score, flow_progress, viral_indicators::text AS viral_indicators, \
    orders_per_hour_current::text AS orders_per_hour_current, \
    velocity_multiplier::text AS velocity_multiplier, shipping_location, carrier_preference, \
    shipping_zone, deadline, user_ref::text AS user_ref, created_at, updated_at, state_changed_at, \
    shop_id";

/// `INSERT INTO orders` from one array per column (`UNNEST`), skipping
/// orders that exist; returns the ids inserted.
pub(super) const INSERT_ORDERS: &str = "INSERT INTO orders (id, user_id, tiktok_order_id, \
    version, terminal, current_state, previous_state, priority, priority_rank, impact, viral, \
    automation_status, customer_handle, customer_tier, customer_id, product_name, product_id, \
    quantity, price, processing_time_ms, automation_score, flow_progress, viral_indicators, \
    orders_per_hour_current, velocity_multiplier, shipping_location, carrier_preference, \
    shipping_zone, deadline, user_ref, created_at, updated_at, state_changed_at, shop_id) \
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::int8[], $5::bool[], \
    $6::text[], $7::text[], $8::text[], $9::int8[], $10::text[], $11::bool[], $12::text[], \
    $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::int8[], \
    $19::numeric[], $20::int8[], $21::int8[], $22::int8[], $23::json[], $24::numeric[], \
    $25::numeric[], $26::text[], $27::text[], $28::text[], $29::timestamptz[], $30::json[], \
    $31::timestamptz[], $32::timestamptz[], $33::timestamptz[], $34::text[]) \
    ON CONFLICT DO NOTHING RETURNING id";

/// A query with positional arguments.
pub(super) type Q<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Orders as one array per column, in [`INSERT_ORDERS`] order.
#[derive(Default)]
pub(super) struct OrderArrays {
    id: Vec<OrderId>,
    user_id: Vec<String>,
    tiktok_order_id: Vec<String>,
    version: Vec<i64>,
    terminal: Vec<bool>,
    current_state: Vec<String>,
    previous_state: Vec<Option<String>>,
    priority: Vec<String>,
    priority_rank: Vec<i64>,
    impact: Vec<String>,
    viral: Vec<bool>,
    automation_status: Vec<String>,
    customer_handle: Vec<String>,
    customer_tier: Vec<String>,
    customer_id: Vec<Option<String>>,
    product_name: Vec<String>,
    product_id: Vec<String>,
    quantity: Vec<i64>,
    price: Vec<String>,
    processing_time_ms: Vec<i64>,
    automation_score: Vec<i64>,
    flow_progress: Vec<i64>,
    viral_indicators: Vec<String>,
    orders_per_hour_current: Vec<String>,
    velocity_multiplier: Vec<String>,
    shipping_location: Vec<Option<String>>,
    carrier_preference: Vec<Option<String>>,
    shipping_zone: Vec<Option<String>>,
    deadline: Vec<Option<DateTime<Utc>>>,
    user_ref: Vec<Option<String>>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    state_changed_at: Vec<DateTime<Utc>>,
    shop_id: Vec<Option<String>>,
}

impl OrderArrays {
    /// Adds one order.
    pub(super) fn push(&mut self, s: &StoredOrder) -> Result<()> {
        let o = &s.order;
        self.id.push(s.id);
        self.user_id.push(o.user_id.clone().unwrap_or_default());
        self.tiktok_order_id.push(o.tiktok_order_id.clone());
        self.version.push(to_i64(s.version, "version")?);
        self.terminal.push(s.terminal);
        self.current_state.push(o.current_state.as_str().to_owned());
        self.previous_state
            .push(o.previous_state.as_ref().map(|p| p.as_str().to_owned()));
        self.priority.push(o.priority.as_str().to_owned());
        self.priority_rank.push(priority_rank(o.priority));
        self.impact.push(o.impact.as_str().to_owned());
        self.viral.push(is_viral(o.impact));
        self.automation_status
            .push(o.automation_status.as_str().to_owned());
        self.customer_handle.push(o.customer_handle.clone());
        self.customer_tier.push(o.customer_tier.as_str().to_owned());
        self.customer_id.push(o.customer_id.clone());
        self.product_name.push(o.product_name.clone());
        self.product_id.push(o.product_id.clone());
        self.quantity.push(i64::from(o.quantity));
        self.price.push(o.price.to_string());
        self.processing_time_ms
            .push(to_i64(o.processing_time_ms, "processing_time_ms")?);
        self.automation_score.push(i64::from(o.automation_score));
        self.flow_progress.push(i64::from(o.flow_progress));
        self.viral_indicators
            .push(json(&o.viral_indicators, "viral_indicators")?);
        self.orders_per_hour_current
            .push(o.orders_per_hour_current.to_string());
        self.velocity_multiplier
            .push(o.velocity_multiplier.to_string());
        self.shipping_location.push(o.shipping_location.clone());
        self.carrier_preference.push(o.carrier_preference.clone());
        self.shipping_zone.push(o.shipping_zone.clone());
        self.deadline.push(o.deadline);
        self.user_ref
            .push(o.user.as_ref().map(|u| json(u, "user")).transpose()?);
        self.created_at.push(o.created_at);
        self.updated_at.push(o.updated_at.unwrap_or(o.created_at));
        self.state_changed_at
            .push(o.state_changed_at.unwrap_or(o.created_at));
        self.shop_id.push(o.shop_id.clone());
        Ok(())
    }

    /// Binds the arrays to [`INSERT_ORDERS`].
    pub(super) fn bind(self, q: Q<'_>) -> Q<'_> {
        q.bind(self.id)
            .bind(self.user_id)
            .bind(self.tiktok_order_id)
            .bind(self.version)
            .bind(self.terminal)
            .bind(self.current_state)
            .bind(self.previous_state)
            .bind(self.priority)
            .bind(self.priority_rank)
            .bind(self.impact)
            .bind(self.viral)
            .bind(self.automation_status)
            .bind(self.customer_handle)
            .bind(self.customer_tier)
            .bind(self.customer_id)
            .bind(self.product_name)
            .bind(self.product_id)
            .bind(self.quantity)
            .bind(self.price)
            .bind(self.processing_time_ms)
            .bind(self.automation_score)
            .bind(self.flow_progress)
            .bind(self.viral_indicators)
            .bind(self.orders_per_hour_current)
            .bind(self.velocity_multiplier)
            .bind(self.shipping_location)
            .bind(self.carrier_preference)
            .bind(self.shipping_zone)
            .bind(self.deadline)
            .bind(self.user_ref)
            .bind(self.created_at)
            .bind(self.updated_at)
            .bind(self.state_changed_at)
            .bind(self.shop_id)
    }
}

pub(super) use crate::store::decode::{count, json, lane};

/// Reads a column as `T`.
pub(super) fn column<'r, T>(row: &'r PgRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col)
        .map_err(|e| StoreError::database(format!("reading column {col}: {e}")))
}

/// Milliseconds from the Unix epoch to PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// Reads an optional `timestamptz` column (binary: microseconds since
/// 2000-01-01), with checked arithmetic.
pub(super) fn opt_time(row: &PgRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    let micros: Option<i64> = row
        .try_get_unchecked(col)
        .map_err(|e| StoreError::database(format!("reading column {col}: {e}")))?;
    micros
        .map(|us| {
            us.div_euclid(1000)
                .checked_add(PG_EPOCH_MS)
                .ok_or_else(|| StoreError::database(format!("stored {col} is out of range")))
                .and_then(from_ms)
        })
        .transpose()
}

decode::impl_columns!(PgRow, column, column, opt_time);

/// Decodes an `orders` row selected with [`ORDER_COLUMNS`].
pub(super) fn order_from_row(row: &PgRow) -> Result<StoredOrder> {
    decode::order(row)
}

/// The columns of `order_transitions` as selected.
pub(super) const HISTORY_COLUMNS: &str = "order_id, version, from_state, to_state, \
    transition_reason, automated, duration_ms, actions_executed::text AS actions_executed, \
    error_message, created_at, actor, pack_version";

/// History rows as one array per column.
#[derive(Default)]
pub(super) struct HistoryArrays {
    order_id: Vec<OrderId>,
    user_id: Vec<String>,
    version: Vec<i64>,
    from: Vec<String>,
    to: Vec<String>,
    reason: Vec<Option<String>>,
    automated: Vec<bool>,
    duration_ms: Vec<i64>,
    actions: Vec<String>,
    error: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
    actor: Vec<Option<String>>,
    pack_version: Vec<Option<String>>,
}

impl HistoryArrays {
    /// Adds one history row.
    pub(super) fn push(&mut self, tenant: &str, h: &HistoryEntry) -> Result<()> {
        self.order_id.push(h.order_id);
        self.user_id.push(tenant.to_owned());
        self.version.push(to_i64(h.version, "version")?);
        self.from.push(h.from.as_str().to_owned());
        self.to.push(h.to.as_str().to_owned());
        self.reason.push(h.reason.clone());
        self.automated.push(h.automated);
        self.duration_ms.push(to_i64(h.duration_ms, "duration_ms")?);
        self.actions.push(h.actions_executed.as_str().to_owned());
        self.error.push(h.error_message.clone());
        self.at.push(h.at);
        self.actor.push(h.actor.clone());
        self.pack_version.push(h.pack_version.clone());
        Ok(())
    }

    /// Binds the arrays: 11 parameters, in `order_transitions` column order
    /// (order_id, user_id, version, from, to, reason, automated,
    /// duration_ms, actions_executed, error_message, created_at); the
    /// last two columns (actor, pack_version) are bound by
    /// [`HistoryArrays::bind_tail`].
    pub(super) fn bind<'q>(&mut self, q: Q<'q>) -> Q<'q> {
        q.bind(std::mem::take(&mut self.order_id))
            .bind(std::mem::take(&mut self.user_id))
            .bind(std::mem::take(&mut self.version))
            .bind(std::mem::take(&mut self.from))
            .bind(std::mem::take(&mut self.to))
            .bind(std::mem::take(&mut self.reason))
            .bind(std::mem::take(&mut self.automated))
            .bind(std::mem::take(&mut self.duration_ms))
            .bind(std::mem::take(&mut self.actions))
            .bind(std::mem::take(&mut self.error))
            .bind(std::mem::take(&mut self.at))
    }

    /// Binds the last two columns' arrays (actor, pack_version): 2
    /// parameters, after the statement's others.
    pub(super) fn bind_tail(self, q: Q<'_>) -> Q<'_> {
        q.bind(self.actor).bind(self.pack_version)
    }
}
