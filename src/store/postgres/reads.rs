//! Bounded reads on PostgreSQL: counts from `order_counts` (deltas appended
//! by triggers, folded here), pages of orders through the `orders_active`,
//! `orders_state` and `orders_state_age` indexes; orders in creation order
//! through `orders_created` (migration 0010).

use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::orders::{limit, orders_where};
use super::rows::{ORDER_COLUMNS, db, order_from_row};
use super::{Mode, PostgresStore};
use crate::store::decode::{self, order_count};
use crate::store::logic::priority_rank;
use crate::store::{
    CreatedRange, DecidedOrder, OrderCount, OrderQuery, OrderReads, Result, StoredOrder,
};

/// The tenant's order counts (the sum of its deltas per key), read on `conn`.
pub(super) async fn counts_in(conn: &mut PgConnection, tenant: &str) -> Result<Vec<OrderCount>> {
    let rows = sqlx::query(
        "SELECT current_state, priority, terminal, viral, sum(n)::bigint AS n FROM order_counts \
         WHERE user_id = $1 GROUP BY current_state, priority, terminal, viral",
    )
    .bind(tenant)
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

impl PostgresStore {
    /// Folds the tenant's count deltas into one row per key (keeps the
    /// reads of [`counts_in`] short). Concurrent folds are safe: each row is
    /// deleted, and so summed, by one of them only.
    pub(super) async fn fold_counts(&self, tenant: &str) -> Result<()> {
        self.for_tenant(tenant, Mode::Write, async |conn| {
            sqlx::query(
                "WITH d AS (DELETE FROM order_counts WHERE user_id = $1 RETURNING *) \
                 INSERT INTO order_counts (user_id, current_state, priority, terminal, viral, n) \
                 SELECT user_id, current_state, priority, terminal, viral, sum(n)::bigint FROM d \
                 GROUP BY user_id, current_state, priority, terminal, viral HAVING sum(n) <> 0",
            )
            .bind(tenant)
            .execute(&mut *conn)
            .await
            .map_err(db("folding order counts"))?;
            Ok(())
        })
        .await
    }
}

impl OrderReads for PostgresStore {
    async fn order_counts(&self, tenant: &str) -> Result<Vec<OrderCount>> {
        self.fold_counts(tenant).await?;
        self.for_tenant(tenant, Mode::Read, async |conn| {
            counts_in(conn, tenant).await
        })
        .await
    }

    async fn find_orders(
        &self,
        tenant: &str,
        query: &OrderQuery,
        n: usize,
    ) -> Result<Vec<StoredOrder>> {
        let mut filter = String::from("user_id = $1");
        filter.push_str(if query.state.is_some() {
            " AND current_state = $3"
        } else {
            " AND NOT terminal AND $3::text IS NULL"
        });
        filter.push_str(
            " AND ($4::bigint IS NULL OR priority_rank = $4) \
             ORDER BY priority_rank, viral DESC, created_at, id LIMIT $2",
        );
        let state = query.state.clone();
        let rank = query.priority.map(priority_rank);
        self.for_tenant(tenant, Mode::Read, async |conn| {
            orders_where(
                conn,
                &filter,
                |q| q.bind(tenant).bind(limit(n)).bind(state).bind(rank),
                "finding orders",
            )
            .await
        })
        .await
    }

    async fn orders_by_created(
        &self,
        tenant: &str,
        range: &CreatedRange,
        n: usize,
    ) -> Result<Vec<DecidedOrder>> {
        // Only the bounds given are in the SQL, so the planner sees a plain
        // range of `orders_created (user_id, created_at, id)`.
        let mut sql =
            format!("SELECT {ORDER_COLUMNS}, decision FROM orders WHERE user_id = $1 AND TRUE");
        let mut next = 2;
        let mut param = |sql: &mut String, cond: &str| {
            sql.push_str(&cond.replace('?', &format!("${next}")));
            next += 1;
        };
        if range.since.is_some() {
            param(&mut sql, " AND created_at >= ?");
        }
        if range.until.is_some() {
            param(&mut sql, " AND created_at < ?");
        }
        if range.after.is_some() {
            param(&mut sql, " AND (created_at, id) > (?");
            param(&mut sql, ", ?)");
        }
        param(&mut sql, " ORDER BY created_at, id LIMIT ?");
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant);
            if let Some(t) = range.since {
                q = q.bind(t);
            }
            if let Some(t) = range.until {
                q = q.bind(t);
            }
            if let Some((t, id)) = range.after {
                q = q.bind(t).bind(id);
            }
            let rows = q
                .bind(limit(n))
                .fetch_all(&mut *conn)
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
        })
        .await
    }
}
