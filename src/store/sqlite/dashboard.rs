//! The dashboard's aggregate queries on SQLite.

use crate::store::Result;

use super::SqliteStore;
use super::orders::active_on;
use super::reads::counts_on;
use super::rows::db;
use crate::store::logic::{Aggregates, Figures, Window};
use crate::store::{MOST_URGENT_LIMIT, StoredOrder};

impl Aggregates for SqliteStore {
    async fn aggregates(&self, tenant: &str, w: &Window) -> Result<(Figures, Vec<StoredOrder>)> {
        let mut tx = self.main.read().await?;
        let mut figures = Figures::default();
        figures.add_counts(&counts_on(&mut tx, tenant).await?);
        // Both windows in one pass over the tenant's recent history.
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE created_at > ?2) AS n, \
                    COALESCE(SUM(automated = 1 AND error_message IS NULL) \
                             FILTER (WHERE created_at > ?2), 0) AS healthy, \
                    COUNT(DISTINCT CASE WHEN created_at > ?2 AND error_message IS NULL \
                                        THEN order_id END) AS processed, \
                    AVG(duration_ms) FILTER (WHERE created_at > ?2) AS avg_ms, \
                    AVG(duration_ms) FILTER (WHERE created_at <= ?2) AS prev_avg_ms \
             FROM order_transitions WHERE user_id = ?1 AND created_at > ?3 AND created_at <= ?4",
        )
        .bind(tenant.to_owned())
        .bind(w.start)
        .bind(w.prev_start)
        .bind(w.end)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("aggregating the windows' transitions"))?;
        figures.set_window(&row)?;
        // Time to ship: the orders shipped in either window, one range of
        // the partial index `orders_shipped` (covering: no table row read).
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE shipped_at > ?2) AS shipped, \
                    AVG(MAX(shipped_at - created_at, 0)) FILTER (WHERE shipped_at > ?2) AS ship_ms, \
                    AVG(MAX(shipped_at - created_at, 0)) FILTER (WHERE shipped_at <= ?2) \
                        AS prev_ship_ms \
             FROM orders INDEXED BY orders_shipped \
             WHERE user_id = ?1 AND shipped_at > ?3 AND shipped_at <= ?4",
        )
        .bind(tenant.to_owned())
        .bind(w.start)
        .bind(w.prev_start)
        .bind(w.end)
        .fetch_one(&mut *tx)
        .await
        .map_err(db("aggregating the windows' shipments"))?;
        figures.set_shipped(&row)?;
        let most_urgent = active_on(&mut *tx, tenant, MOST_URGENT_LIMIT).await?;
        tx.commit().await.map_err(db("ending a read"))?;
        Ok((figures, most_urgent))
    }
}
