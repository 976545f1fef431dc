//! Bounded reads on SQLite: counts from `order_counts` (kept by triggers),
//! pages of orders through the `orders_active`, `orders_state` and
//! `orders_state_age` indexes; orders in creation order through
//! `orders_created` (migration 0011).

use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::SqliteStore;
use super::orders::{URGENT_ORDER, decode_all, select_orders};
use super::rows::{LIMIT, ORDER_COLUMNS, db, order_from_row};
use crate::store::decode::{self, order_count};
use crate::store::logic::{ms, priority_rank};
use crate::store::{
    CreatedRange, DecidedOrder, OrderCount, OrderQuery, OrderReads, Result, StoredOrder,
};

/// A `usize` limit as a bind value.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The tenant's order counts, read on `conn`.
pub(super) async fn counts_on(
    conn: &mut SqliteConnection,
    tenant: &str,
) -> Result<Vec<OrderCount>> {
    let rows = sqlx::query(
        "SELECT current_state, priority, terminal, viral, n FROM order_counts \
         WHERE user_id = ? AND n <> 0",
    )
    .bind(tenant.to_owned())
    .fetch_all(conn)
    .await
    .map_err(db("reading order counts"))?;
    let mut counts = rows
        .iter()
        .filter_map(|r| order_count(r).transpose())
        .collect::<Result<Vec<_>>>()?;
    counts.sort();
    Ok(counts)
}

impl OrderReads for SqliteStore {
    async fn order_counts(&self, tenant: &str) -> Result<Vec<OrderCount>> {
        let mut conn = self.main.reading().await?;
        counts_on(&mut conn, tenant).await
    }

    async fn find_orders(
        &self,
        tenant: &str,
        query: &OrderQuery,
        n: usize,
    ) -> Result<Vec<StoredOrder>> {
        let mut filter = String::from("user_id = ?");
        filter.push_str(if query.state.is_some() {
            " AND current_state = ?"
        } else {
            " AND terminal = 0"
        });
        if query.priority.is_some() {
            filter.push_str(" AND priority_rank = ?");
        }
        let sql = format!("{} {URGENT_ORDER} {LIMIT}", select_orders(&filter));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_owned());
        if let Some(st) = &query.state {
            q = q.bind(st.clone());
        }
        if let Some(p) = query.priority {
            q = q.bind(priority_rank(p));
        }
        let rows = q
            .bind(limit(n))
            .fetch_all(&mut *self.main.reading().await?)
            .await
            .map_err(db("finding orders"))?;
        decode_all(&rows)
    }

    async fn orders_by_created(
        &self,
        tenant: &str,
        range: &CreatedRange,
        n: usize,
    ) -> Result<Vec<DecidedOrder>> {
        // Missing bounds are the widest ones, so the query is always the
        // same range of `orders_created (user_id, created_at, id)`; the
        // cursor is a row-value comparison SQLite seeks to.
        let sql = format!(
            "SELECT {ORDER_COLUMNS}, decision FROM orders WHERE user_id = ? \
             AND created_at >= ? AND created_at < ? \
             AND (created_at, id) > (?, ?) ORDER BY created_at, id {LIMIT}"
        );
        let (after_ms, after_id) = range
            .after
            .map_or((i64::MIN, String::new()), |(t, id)| (ms(t), id.to_string()));
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(range.since.map_or(i64::MIN, ms))
            .bind(range.until.map_or(i64::MAX, ms))
            .bind(after_ms)
            .bind(after_id)
            .bind(limit(n))
            .fetch_all(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading orders by creation time"))?;
        rows.iter()
            .map(|r| {
                let decision: Option<String> =
                    r.try_get("decision").map_err(db("reading a decision"))?;
                Ok(DecidedOrder {
                    order: order_from_row(r)?,
                    decision: decode::decision(decision)?,
                })
            })
            .collect()
    }
}
