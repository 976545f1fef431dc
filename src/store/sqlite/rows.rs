//! Rows ↔ records: column lists, binding and decoding.

use crate::store::Result;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteQueryResult, SqliteRow};
use sqlx::{Either, Row};
use std::sync::Arc;

use crate::store::decode::{self, Columns};
use crate::store::logic::{from_ms, is_viral, ms, priority_rank, to_i64};
use crate::store::{HistoryEntry, OrderId, StoreError, StoredOrder};

/// A query with positional arguments.
pub(super) type Q<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Runs a **script** — several statements in one query string, their
/// anonymous `?` parameters bound in order across them — and returns every
/// step: each statement's rows, then its [`Either::Left`] result.
///
/// A script is one command to SQLite's worker thread, where each statement
/// would be one round trip (~25 µs, most of a small statement's cost). The
/// store sends a transition batch's reads as one script and its writes as
/// another. sqlx's SQLite driver runs every statement of a query string
/// (`execute` and `fetch_all` too, not `fetch_optional`); sqlx calls this
/// deprecated for a future release (launchbadge/sqlx#3108), so the test
/// `scripts_run_every_statement` pins it: an sqlx upgrade that drops it
/// fails there, not in production.
pub(super) async fn script_steps(
    conn: &mut sqlx::SqliteConnection,
    q: Q<'_>,
) -> Result<Vec<Either<SqliteQueryResult, SqliteRow>>, sqlx::Error> {
    sqlx::Executor::fetch_many(conn, q).try_collect().await
}

pub(super) use crate::store::error::db;

/// The columns of `orders`, in binding order.
pub(super) const ORDER_COLUMNS: &str = "id, user_id, tiktok_order_id, version, terminal, \
    current_state, previous_state, priority, priority_rank, impact, viral, automation_status, \
    customer_handle, customer_tier, customer_id, product_name, product_id, quantity, price, \
    processing_time_ms, automation_score, flow_progress, viral_indicators, \
    orders_per_hour_current, velocity_multiplier, shipping_location, carrier_preference, \
    shipping_zone, deadline, user_ref, created_at, updated_at, state_changed_at, shop_id";

/// How many columns [`ORDER_COLUMNS`] lists.
pub(super) const ORDER_COLUMN_COUNT: usize = 34;

/// A `LIMIT` bound to a parameter. SQLite's planner reads the bound value
/// of a bare `LIMIT ?`, so binding it again expires the prepared statement
/// and every execution is prepared anew (on the claim, a fifth of
/// `simulate`'s CPU); `? + 0` keeps the value out of the planner's sight.
pub(super) const LIMIT: &str = "LIMIT ? + 0";

/// `(?, ?, …)` repeated `rows` times for `cols` columns, comma separated.
pub(super) fn placeholders(cols: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    vec![one; rows].join(", ")
}

/// `?, ?, …` (`n` of them).
pub(super) fn params(n: usize) -> String {
    vec!["?"; n].join(", ")
}

pub(super) use crate::store::decode::{count, json, lane};

/// `s` as a bound text value: one allocation, where a `String` or `&str`
/// bind costs two (sqlx wraps it in an `Arc`), and the value is freed on
/// SQLite's thread.
pub(super) fn text(s: &str) -> Arc<str> {
    Arc::from(s)
}

/// An id as a bound text value (see [`text`]).
pub(super) fn id_text(id: &OrderId) -> Arc<str> {
    text(
        id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    )
}

/// Binds one order's columns, in [`ORDER_COLUMNS`] order.
pub(super) fn bind_order<'q>(q: Q<'q>, s: &StoredOrder) -> Result<Q<'q>> {
    let o = &s.order;
    let user_ref = o.user.as_ref().map(|u| json(u, "user")).transpose()?;
    let opt = |v: &Option<String>| v.as_deref().map(text);
    Ok(q.bind(id_text(&s.id))
        .bind(text(o.user_id.as_deref().unwrap_or_default()))
        .bind(text(&o.tiktok_order_id))
        .bind(to_i64(s.version, "version")?)
        .bind(s.terminal)
        .bind(text(o.current_state.as_str()))
        .bind(o.previous_state.as_ref().map(|p| text(p.as_str())))
        .bind(text(o.priority.as_str()))
        .bind(priority_rank(o.priority))
        .bind(text(o.impact.as_str()))
        .bind(is_viral(o.impact))
        .bind(text(o.automation_status.as_str()))
        .bind(text(&o.customer_handle))
        .bind(text(o.customer_tier.as_str()))
        .bind(opt(&o.customer_id))
        .bind(text(&o.product_name))
        .bind(text(&o.product_id))
        .bind(i64::from(o.quantity))
        .bind(o.price.to_string())
        .bind(to_i64(o.processing_time_ms, "processing_time_ms")?)
        .bind(i64::from(o.automation_score))
        .bind(i64::from(o.flow_progress))
        .bind(json(&o.viral_indicators, "viral_indicators")?)
        .bind(o.orders_per_hour_current.to_string())
        .bind(o.velocity_multiplier.to_string())
        .bind(opt(&o.shipping_location))
        .bind(opt(&o.carrier_preference))
        .bind(opt(&o.shipping_zone))
        .bind(o.deadline.map(ms))
        .bind(user_ref)
        .bind(ms(o.created_at))
        .bind(ms(o.updated_at.unwrap_or(o.created_at)))
        .bind(ms(o.state_changed_at.unwrap_or(o.created_at)))
        .bind(opt(&o.shop_id)))
}

fn get<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col)
        .map_err(|e| StoreError::database(format!("reading column {col}: {e}")))
}

/// Reads a UUID column.
pub(super) fn uuid(row: &SqliteRow, col: &str) -> Result<OrderId> {
    let text: String = get(row, col)?;
    OrderId::parse_str(&text)
        .map_err(|e| StoreError::database(format!("stored {col} `{text}` is not a UUID: {e}")))
}

/// Reads a time column (milliseconds since the epoch).
fn opt_time_ms(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, col)?.map(from_ms).transpose()
}

decode::impl_columns!(SqliteRow, get, uuid, opt_time_ms);

/// Decodes an `orders` row selected with [`ORDER_COLUMNS`].
pub(super) fn order_from_row(row: &SqliteRow) -> Result<StoredOrder> {
    decode::order(row)
}

/// The columns of `order_transitions`, in binding order.
pub(super) const HISTORY_COLUMNS: &str = "order_id, user_id, version, from_state, to_state, \
    transition_reason, automated, duration_ms, actions_executed, error_message, created_at, \
    actor, pack_version";

/// How many columns [`HISTORY_COLUMNS`] lists.
pub(super) const HISTORY_COLUMN_COUNT: usize = 13;

/// Binds one history row, in [`HISTORY_COLUMNS`] order.
pub(super) fn bind_history<'q>(q: Q<'q>, tenant: &str, h: &HistoryEntry) -> Result<Q<'q>> {
    Ok(q.bind(h.order_id.to_string())
        .bind(tenant.to_owned())
        .bind(to_i64(h.version, "version")?)
        .bind(h.from.as_str().to_owned())
        .bind(h.to.as_str().to_owned())
        .bind(h.reason.clone())
        .bind(h.automated)
        .bind(to_i64(h.duration_ms, "duration_ms")?)
        .bind(h.actions_executed.as_str().to_owned())
        .bind(h.error_message.clone())
        .bind(ms(h.at))
        .bind(h.actor.clone())
        .bind(h.pack_version.clone()))
}

/// Reads a column as `T`.
pub(super) fn column<'r, T>(row: &'r SqliteRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    get(row, col)
}

/// Reads an optional time column (milliseconds).
pub(super) fn time(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    row.opt_time(col)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// The store's scripts rely on sqlx running every statement of a query
    /// string and binding `?` across them in order (see [`script_steps`]).
    #[tokio::test]
    async fn scripts_run_every_statement() -> Result<(), sqlx::Error> {
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await?;
        sqlx::query("CREATE TABLE t (a INTEGER, b TEXT)")
            .execute(&mut conn)
            .await?;
        let q = sqlx::query(
            "INSERT INTO t VALUES (?, ?); INSERT INTO t VALUES (?, ?), (?, ?);\n\
             UPDATE t SET b = ? WHERE a = ?;",
        )
        .bind(1)
        .bind("one")
        .bind(2)
        .bind("two")
        .bind(3)
        .bind("three")
        .bind("TWO")
        .bind(2);
        let done = q.execute(&mut conn).await?;
        assert_eq!(done.rows_affected(), 4, "3 rows inserted, 1 updated");
        let q = sqlx::query("SELECT b FROM t WHERE a = ?; SELECT a FROM t WHERE a >= ? ORDER BY a")
            .bind(2)
            .bind(1);
        let steps = script_steps(&mut conn, q).await?;
        let shape: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Either::Left(_) => "end".to_owned(),
                Either::Right(row) => match row.try_get::<String, _>(0) {
                    Ok(b) => b,
                    Err(_) => row.get::<i64, _>(0).to_string(),
                },
            })
            .collect();
        assert_eq!(shape, ["TWO", "end", "1", "2", "3", "end"]);
        Ok(())
    }
}
