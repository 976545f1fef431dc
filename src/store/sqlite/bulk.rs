//! The statements of a bulk insert ([`OrderStore::insert_orders`]) on
//! SQLite: orders with their decisions in one multi-row `INSERT` per
//! [`CHUNK`] rows (no second pass to store the decisions), and their work
//! items with payloads bound as the text they already are.
//!
//! The SQL of a full chunk is built once per process: at 35 columns × 500
//! rows its placeholder list alone is 50 kB, and sqlx finds the prepared
//! statement by its text.
//!
//! [`OrderStore::insert_orders`]: crate::store::OrderStore::insert_orders

use std::collections::HashSet;
use std::sync::OnceLock;

use sqlx::{AssertSqlSafe, SqliteConnection};

use super::orders::CHUNK;
use super::rows::{ORDER_COLUMN_COUNT, ORDER_COLUMNS, bind_order, db, placeholders, uuid};
use crate::store::logic::{PreparedBulk, is_viral, ms};
use crate::store::{BulkWork, OrderId, Result, StoredOrder};

/// Columns of a work item as a bulk insert writes it.
const WORK_COLUMNS: usize = 12;

/// The `INSERT` of `rows` orders with their decisions; the text of a full
/// chunk is kept.
fn orders_sql(rows: usize) -> String {
    let build = |rows| {
        format!(
            "INSERT INTO orders ({ORDER_COLUMNS}, decision) VALUES {} \
             ON CONFLICT DO NOTHING RETURNING id",
            placeholders(ORDER_COLUMN_COUNT + 1, rows)
        )
    };
    static FULL: OnceLock<String> = OnceLock::new();
    if rows == CHUNK {
        FULL.get_or_init(|| build(CHUNK)).clone()
    } else {
        build(rows)
    }
}

/// The `INSERT` of `rows` work items; the text of a full chunk is kept.
fn work_sql(rows: usize) -> String {
    let build = |rows| {
        format!(
            "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, \
             run_at, payload, attempts, created_at, updated_at, ready) VALUES {} \
             ON CONFLICT (order_id, kind) DO NOTHING",
            placeholders(WORK_COLUMNS, rows)
        )
    };
    static FULL: OnceLock<String> = OnceLock::new();
    if rows == CHUNK {
        FULL.get_or_init(|| build(CHUNK)).clone()
    } else {
        build(rows)
    }
}

/// Inserts the valid orders of `prepared` with their decisions, each
/// unless its id or `(tenant, tiktok_order_id)` exists; the ids inserted.
pub(super) async fn insert_orders(
    conn: &mut SqliteConnection,
    prepared: &[PreparedBulk],
) -> Result<HashSet<OrderId>> {
    let valid: Vec<_> = prepared.iter().flatten().collect();
    let mut inserted: HashSet<OrderId> = HashSet::with_capacity(valid.len());
    for chunk in valid.chunks(CHUNK) {
        let mut q = sqlx::query(AssertSqlSafe(orders_sql(chunk.len())));
        for (o, _, decision) in chunk {
            q = bind_order(q, o)?.bind(decision.as_ref().map(|d| d.as_str().to_owned()));
        }
        for row in q
            .fetch_all(&mut *conn)
            .await
            .map_err(db("inserting orders"))?
        {
            inserted.insert(uuid(&row, "id")?);
        }
    }
    Ok(inserted)
}

/// Inserts the first work items of newly inserted orders, each unless its
/// `(order, kind)` exists (as `create_orders` enqueues them).
pub(super) async fn insert_work(
    conn: &mut SqliteConnection,
    tenant: &str,
    items: &[(&StoredOrder, &BulkWork)],
) -> Result<()> {
    for chunk in items.chunks(CHUNK) {
        let mut q = sqlx::query(AssertSqlSafe(work_sql(chunk.len())));
        for (o, w) in chunk {
            q = q
                .bind(tenant.to_owned())
                .bind(o.id.to_string())
                .bind(w.kind.clone())
                .bind(w.lane.as_str())
                .bind(is_viral(o.order.impact))
                .bind(ms(o.order.created_at))
                .bind(ms(w.run_at))
                .bind(w.payload.as_str().to_owned())
                .bind(0_i64)
                .bind(ms(w.run_at))
                .bind(ms(w.run_at))
                .bind(true);
        }
        q.execute(&mut *conn).await.map_err(db("enqueueing work"))?;
    }
    Ok(())
}
