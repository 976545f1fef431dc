//! The review queue on SQLite: a range of the partial index
//! `orders_review` (migration 0010).

use sqlx::AssertSqlSafe;

use super::SqliteStore;
use super::rows::{LIMIT, ORDER_COLUMNS, db, order_from_row};
use crate::store::Result;
use crate::store::logic::ms;
use crate::store::{ReviewCursor, ReviewStore, StoredOrder};

/// The review queue's filter, literally the index's own condition (SQLite
/// uses a partial index only for a query whose terms imply it; a bound
/// parameter would not).
const IN_REVIEW: &str = "terminal = 0 AND automation_status = 'Manual Review'";

impl ReviewStore for SqliteStore {
    async fn review_queue(
        &self,
        tenant: &str,
        after: Option<ReviewCursor>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>> {
        let from = if after.is_some() {
            " AND (state_changed_at, id) > (?, ?)"
        } else {
            ""
        };
        // `INDEXED BY`: a query the index cannot answer is an error, not a
        // silent scan of every order.
        let mut query = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders INDEXED BY orders_review \
             WHERE user_id = ? AND {IN_REVIEW}{from} \
             ORDER BY state_changed_at, id {LIMIT}"
        )))
        .bind(tenant.to_owned());
        if let Some(c) = after {
            query = query.bind(ms(c.since)).bind(c.id.to_string());
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *self.main.reading().await?)
            .await
            .map_err(db("reading the review queue"))?;
        rows.iter().map(order_from_row).collect()
    }
}
