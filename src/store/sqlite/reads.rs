//! Bounded reads on SQLite: counts from `order_counts` (kept by triggers),
//! pages of orders through the `orders_active`, `orders_state` and
//! `orders_state_age` indexes.

use sqlx::{AssertSqlSafe, SqliteConnection};

use super::SqliteStore;
use super::orders::{URGENT_ORDER, decode_all, select_orders};
use super::rows::db;
use crate::store::decode::order_count;
use crate::store::logic::priority_rank;
use crate::store::{OrderCount, OrderQuery, OrderReads, Result, StoredOrder};

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
        let mut conn = self
            .main
            .reader
            .acquire()
            .await
            .map_err(db("acquiring a connection"))?;
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
        let sql = format!("{} {URGENT_ORDER} LIMIT ?", select_orders(&filter));
        let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_owned());
        if let Some(st) = &query.state {
            q = q.bind(st.clone());
        }
        if let Some(p) = query.priority {
            q = q.bind(priority_rank(p));
        }
        let rows = q
            .bind(limit(n))
            .fetch_all(&self.main.reader)
            .await
            .map_err(db("finding orders"))?;
        decode_all(&rows)
    }
}
