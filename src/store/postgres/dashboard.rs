//! The dashboard's aggregate queries on PostgreSQL.

use crate::store::Result;

use super::orders::active_in;
use super::reads::counts_in;
use super::rows::db;
use super::{Mode, PostgresStore};
use crate::store::logic::{Aggregates, Figures, Window, from_ms};
use crate::store::{MOST_URGENT_LIMIT, StoredOrder};

impl Aggregates for PostgresStore {
    async fn aggregates(&self, tenant: &str, w: &Window) -> Result<(Figures, Vec<StoredOrder>)> {
        let (start, end, prev_start) = (from_ms(w.start)?, from_ms(w.end)?, from_ms(w.prev_start)?);
        self.fold_counts(tenant).await?;
        self.for_tenant(tenant, Mode::Read, async |conn| {
            let mut figures = Figures::default();
            figures.add_counts(&counts_in(conn, tenant).await?);
            let row = sqlx::query(
                "SELECT count(*) FILTER (WHERE created_at > $3) AS n, \
                        count(*) FILTER (WHERE created_at > $3 AND automated \
                                         AND error_message IS NULL) AS healthy, \
                        count(DISTINCT order_id) FILTER (WHERE created_at > $3 \
                                                         AND error_message IS NULL) AS processed, \
                        (avg(duration_ms) FILTER (WHERE created_at > $3))::float8 AS avg_ms, \
                        (avg(duration_ms) FILTER (WHERE created_at <= $3))::float8 AS prev_avg_ms \
                 FROM order_transitions \
                 WHERE user_id = $1 AND created_at > $2 AND created_at <= $4",
            )
            .bind(tenant)
            .bind(prev_start)
            .bind(start)
            .bind(end)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("aggregating the windows' transitions"))?;
            figures.set_window(&row)?;
            // Time to ship: the orders shipped in either window, one range
            // of the partial index `orders_shipped` (`created_at` included).
            let row = sqlx::query(
                "SELECT count(*) FILTER (WHERE shipped_at > $3) AS shipped, \
                        (avg(GREATEST(extract(epoch FROM shipped_at - created_at), 0)) \
                            FILTER (WHERE shipped_at > $3) * 1000)::float8 AS ship_ms, \
                        (avg(GREATEST(extract(epoch FROM shipped_at - created_at), 0)) \
                            FILTER (WHERE shipped_at <= $3) * 1000)::float8 AS prev_ship_ms \
                 FROM orders \
                 WHERE user_id = $1 AND shipped_at > $2 AND shipped_at <= $4",
            )
            .bind(tenant)
            .bind(prev_start)
            .bind(start)
            .bind(end)
            .fetch_one(&mut *conn)
            .await
            .map_err(db("aggregating the windows' shipments"))?;
            figures.set_shipped(&row)?;
            let most_urgent = active_in(conn, tenant, MOST_URGENT_LIMIT).await?;
            Ok((figures, most_urgent))
        })
        .await
    }
}
