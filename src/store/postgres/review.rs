//! The review queue on PostgreSQL: a range of the partial index
//! `orders_review` (migration 0009), under the tenant's row-level security.

use sqlx::AssertSqlSafe;

use super::orders::limit;
use super::rows::{ORDER_COLUMNS, db, order_from_row};
use super::{Mode, PostgresStore};
use crate::store::Result;
use crate::store::{ReviewCursor, ReviewStore, StoredOrder};

/// The review queue's filter, literally the index's own condition (the
/// planner proves a partial index usable from literal terms, not from
/// parameters of a generic plan).
const IN_REVIEW: &str = "NOT terminal AND automation_status = 'Manual Review'";

impl ReviewStore for PostgresStore {
    async fn review_queue(
        &self,
        tenant: &str,
        after: Option<ReviewCursor>,
        n: usize,
    ) -> Result<Vec<StoredOrder>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let from = if after.is_some() {
                " AND (state_changed_at, id) > ($3, $4)"
            } else {
                ""
            };
            let mut query = sqlx::query(AssertSqlSafe(format!(
                "SELECT {ORDER_COLUMNS} FROM orders \
                 WHERE user_id = $1 AND {IN_REVIEW}{from} \
                 ORDER BY state_changed_at, id LIMIT $2"
            )))
            .bind(tenant)
            .bind(limit(n));
            if let Some(c) = after {
                query = query.bind(c.since).bind(c.id);
            }
            query
                .fetch_all(&mut *conn)
                .await
                .map_err(db("reading the review queue"))?
                .iter()
                .map(order_from_row)
                .collect()
        })
        .await
    }
}
