//! Orders and transitions on SQLite.

use crate::FastMap;
use crate::store::Result;
use std::collections::{HashMap, HashSet};

use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Either, SqliteConnection};

use super::bulk;
use super::rows::{
    HISTORY_COLUMN_COUNT, HISTORY_COLUMNS, LIMIT, ORDER_COLUMN_COUNT, ORDER_COLUMNS, Q,
    bind_history, bind_order, column, db, json, order_from_row, params, placeholders, uuid,
};
use super::{BULK_CACHE_SIZE, CACHE_SIZE, SqliteStore};
use crate::model::{Impact, Priority};
use crate::store::decode;
use crate::store::fault::{FaultPoint, injected};
use crate::store::logic::{self, Effects, LeaseState, is_viral, ms, priority_rank, to_i64};
use crate::store::{
    Created, HistoryEntry, NewOrder, OrderId, OrderStore, OrderWithHistory, StoreError,
    StoredOrder, Transition, WorkId,
};

/// Rows per multi-row statement (well under SQLite's 32766 parameters).
pub(super) const CHUNK: usize = 500;

/// Ids per `known_orders` statement (one parameter each).
const KNOWN_CHUNK: usize = 5_000;

/// The SQL for selecting orders.
pub(super) fn select_orders(filter: &str) -> String {
    format!("SELECT {ORDER_COLUMNS} FROM orders WHERE {filter}")
}

pub(super) fn decode_all(rows: &[SqliteRow]) -> Result<Vec<StoredOrder>> {
    rows.iter().map(order_from_row).collect()
}

/// The tenant's order `id`, if any.
async fn order_by_id<'e, E>(executor: E, tenant: &str, id: OrderId) -> Result<Option<StoredOrder>>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row = sqlx::query(AssertSqlSafe(select_orders("id = ? AND user_id = ?")))
        .bind(id.to_string())
        .bind(tenant.to_owned())
        .fetch_optional(executor)
        .await
        .map_err(db("reading an order"))?;
    row.as_ref().map(order_from_row).transpose()
}

impl OrderStore for SqliteStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created>>> {
        let prepared = logic::prepare_batch(tenant, orders);
        let Some(valid) = logic::valid_orders(&prepared) else {
            return Ok(logic::refused(prepared));
        };
        // In a group, the call's savepoint opens with the first insert.
        let mut tx = self.main.write_deferred().await?;
        let mut inserted: HashSet<OrderId> = HashSet::new();
        for chunk in valid.chunks(CHUNK) {
            let sql = format!(
                "{}INSERT INTO orders ({ORDER_COLUMNS}) VALUES {} ON CONFLICT DO NOTHING RETURNING id",
                tx.opening(),
                placeholders(ORDER_COLUMN_COUNT, chunk.len())
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for o in chunk {
                q = bind_order(q, o)?;
            }
            for step in tx.script(q).await? {
                if let Either::Right(row) = step {
                    inserted.insert(uuid(&row, "id")?);
                }
            }
        }
        let duplicates = logic::not_inserted(&valid, &inserted);
        let mut existing: HashMap<String, StoredOrder> = HashMap::new();
        for chunk in duplicates.chunks(CHUNK) {
            let sql = select_orders(&format!(
                "user_id = ? AND tiktok_order_id IN ({})",
                params(chunk.len())
            ));
            let mut q = sqlx::query(AssertSqlSafe(sql)).bind(tenant.to_owned());
            for t in chunk {
                q = q.bind((*t).to_owned());
            }
            for row in q
                .fetch_all(&mut *tx)
                .await
                .map_err(db("reading existing orders"))?
            {
                let o = order_from_row(&row)?;
                existing.insert(o.order.tiktok_order_id.clone(), o);
            }
        }
        // The decisions and the first work items: one script.
        let decisions = logic::new_decisions(orders, &prepared, &inserted);
        let (results, enqueue) = logic::decide_created(tenant, prepared, &inserted, &existing);
        let mut sql = String::new();
        decisions_sql(&mut sql, decisions.len());
        insert_work_sql(&mut sql, enqueue.len());
        if !sql.is_empty() {
            let q = bind_decisions(sqlx::query(AssertSqlSafe(sql)), &decisions);
            bind_work(q, &enqueue)?
                .execute(&mut *tx)
                .await
                .map_err(db("storing decisions and work"))?;
        }
        tx.commit().await.map_err(db("committing new orders"))?;
        Ok(results)
    }

    async fn insert_orders(
        &self,
        tenant: &str,
        orders: Vec<crate::store::BulkOrder>,
    ) -> Result<Vec<Result<bool>>> {
        let prepared = logic::prepare_owned_batch(tenant, orders);
        if prepared.iter().all(|p| p.is_err()) {
            return Ok(prepared.into_iter().map(|p| p.map(|_| false)).collect());
        }
        // Every statement built before the writer is taken (see `bulk.rs`).
        let plan = bulk::Plan::new(tenant, &prepared, &self.payload_sweep)?;
        let mut tx = self.main.write().await?;
        // A small page cache while the orders go in (see `BULK_CACHE_SIZE`),
        // the usual one again whatever happened.
        bulk::cache_size(&mut tx, BULK_CACHE_SIZE).await?;
        let all_new = plan.run(&mut tx).await;
        bulk::cache_size(&mut tx, CACHE_SIZE).await?;
        let all_new = all_new?;
        if all_new {
            tx.commit().await.map_err(db("committing new orders"))?;
            bulk::checkpoint_beside(&self.main.reader, &self.checkpointing);
            return Ok(prepared.into_iter().map(|p| p.map(|_| true)).collect());
        }
        // Not every order was new: dropped, the transaction wrote nothing.
        drop(tx);
        let mut tx = self.main.write().await?;
        let inserted = bulk::insert_orders(&mut tx, &prepared).await?;
        // What was not inserted (rare: a racing writer, a repeat within
        // the batch, an id clash) is told apart as `create_orders` does.
        let mut first: HashSet<OrderId> = HashSet::with_capacity(inserted.len());
        let missed: Vec<&str> = prepared
            .iter()
            .flatten()
            .filter(|(o, _, _)| !inserted.contains(&o.id) || !first.insert(o.id))
            .map(|(o, _, _)| o.order.tiktok_order_id.as_str())
            .collect();
        let present: HashSet<String> = stored_ids(&mut tx, tenant, &missed)
            .await?
            .into_iter()
            .collect();
        let mut claimed: HashSet<OrderId> = HashSet::with_capacity(inserted.len());
        let mut results = Vec::with_capacity(prepared.len());
        let mut work = Vec::with_capacity(inserted.len());
        for p in &prepared {
            results.push(match p {
                Ok((stored, w, _))
                    if inserted.contains(&stored.id) && claimed.insert(stored.id) =>
                {
                    if let Some(w) = w {
                        work.push((stored, w));
                    }
                    Ok(true)
                }
                Ok((stored, _, _)) if present.contains(&stored.order.tiktok_order_id) => Ok(false),
                Ok((stored, _, _)) => Err(StoreError::invalid(format!(
                    "order id {} is already used by another order",
                    stored.id
                ))),
                Err(e) => Err(e.clone()),
            });
        }
        bulk::insert_work(&mut tx, tenant, &work, &self.payload_sweep).await?;
        tx.commit().await.map_err(db("committing new orders"))?;
        Ok(results)
    }

    async fn get_order(&self, tenant: &str, id: OrderId) -> Result<Option<StoredOrder>> {
        order_by_id(&mut *self.main.reading().await?, tenant, id).await
    }

    async fn get_orders(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<StoredOrder>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut q = sqlx::query(AssertSqlSafe(select_orders(&format!(
                "user_id = ? AND id IN ({})",
                params(chunk.len())
            ))))
            .bind(tenant.to_owned());
            for id in chunk {
                q = q.bind(id.to_string());
            }
            let rows = q
                .fetch_all(&mut *self.main.reading().await?)
                .await
                .map_err(db("reading orders"))?;
            out.extend(decode_all(&rows)?);
        }
        Ok(out)
    }

    async fn find_order(&self, tenant: &str, tiktok_order_id: &str) -> Result<Option<StoredOrder>> {
        let row = sqlx::query(AssertSqlSafe(select_orders(
            "user_id = ? AND tiktok_order_id = ?",
        )))
        .bind(tenant.to_owned())
        .bind(tiktok_order_id.to_owned())
        .fetch_optional(&mut *self.main.reading().await?)
        .await
        .map_err(db("finding an order"))?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<OrderWithHistory>> {
        let mut tx = self.main.read().await?;
        let Some(order) = order_by_id(&mut *tx, tenant, id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {HISTORY_COLUMNS} FROM order_transitions WHERE order_id = ? AND user_id = ? ORDER BY version"
        )))
        .bind(id.to_string())
        .bind(tenant.to_owned())
        .fetch_all(&mut *tx)
        .await
        .map_err(db("reading an order's history"))?;
        let history = decode::history_rows(&rows)?;
        let decision: Option<String> =
            sqlx::query_scalar("SELECT decision FROM orders WHERE id = ? AND user_id = ?")
                .bind(id.to_string())
                .bind(tenant.to_owned())
                .fetch_one(&mut *tx)
                .await
                .map_err(db("reading an order's decision"))?;
        tx.commit().await.map_err(db("ending a read"))?;
        Ok(Some(OrderWithHistory {
            order,
            history,
            decision: decode::decision(decision)?,
        }))
    }

    async fn histories(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<Vec<HistoryEntry>>> {
        // By primary key (`+user_id` keeps the planner off the window
        // index, which would scan every step of the tenant: ~0.3 s a page
        // after a simulated day).
        let mut by_order: FastMap<OrderId, Vec<HistoryEntry>> = FastMap::default();
        let mut tx = self.main.read().await?;
        for chunk in ids.chunks(CHUNK) {
            let rows = {
                let mut q = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {HISTORY_COLUMNS} FROM order_transitions \
                     WHERE +user_id = ? AND order_id IN ({}) ORDER BY order_id, version",
                    params(chunk.len())
                )))
                .bind(tenant.to_owned());
                for id in chunk {
                    q = q.bind(id.to_string());
                }
                q.fetch_all(&mut *tx)
                    .await
                    .map_err(db("reading histories"))?
            };
            for h in decode::history_rows(&rows)? {
                by_order.entry(h.order_id).or_default().push(h);
            }
        }
        tx.commit().await.map_err(db("ending a read"))?;
        Ok(ids
            .iter()
            .map(|id| by_order.get(id).cloned().unwrap_or_default())
            .collect())
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        limit: usize,
    ) -> Result<Vec<StoredOrder>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{} ORDER BY id {LIMIT}",
            select_orders("user_id = ? AND id > ?")
        )))
        .bind(tenant.to_owned())
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.main.reading().await?)
        .await
        .map_err(db("listing orders"))?;
        decode_all(&rows)
    }

    async fn active_orders(&self, tenant: &str, limit: usize) -> Result<Vec<StoredOrder>> {
        active_on(&mut *self.main.reading().await?, tenant, limit).await
    }

    async fn transitions(&self, batch: &[(&str, Transition)]) -> Result<Vec<Result<StoredOrder>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // In a group, the call's savepoint opens with the read script.
        let mut tx = self.main.write_deferred().await?;
        // Load every order and lease the batch names, in one round trip; the
        // write lock keeps them as read.
        let ids: Vec<String> = dedup(batch.iter().map(|(_, t)| t.order_id.to_string()));
        let lease_ids: Vec<WorkId> = dedup(
            batch
                .iter()
                .filter_map(|(_, t)| t.settle.as_ref().map(|s| s.lease.id)),
        );
        let mut sql = String::new();
        let mut reads = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            sql.push_str(&select_orders(&format!("id IN ({})", params(chunk.len()))));
            sql.push_str(";\n");
            reads.push(Read::Orders);
        }
        for chunk in lease_ids.chunks(CHUNK) {
            sql.push_str(&format!(
                "SELECT id, user_id, order_id, lease_owner, attempts, lease_expires_at \
                 FROM work_queue WHERE id IN ({});\n",
                params(chunk.len())
            ));
            reads.push(Read::Leases);
        }
        let mut q = sqlx::query(AssertSqlSafe(format!("{}{sql}", tx.opening())));
        for id in &ids {
            q = q.bind(id.clone());
        }
        for id in &lease_ids {
            q = q.bind(*id);
        }
        let mut orders: FastMap<OrderId, StoredOrder> = FastMap::default();
        let mut leases: FastMap<WorkId, LeaseState> = FastMap::default();
        let mut statement = 0;
        for step in tx.script(q).await? {
            match (step, reads.get(statement)) {
                (Either::Left(_), _) => statement += 1,
                (Either::Right(row), Some(Read::Orders)) => {
                    let o = order_from_row(&row)?;
                    orders.insert(o.id, o);
                }
                (Either::Right(row), Some(Read::Leases)) => {
                    leases.insert(
                        column(&row, "id")?,
                        crate::store::decode::lease_state(&row)?,
                    );
                }
                (Either::Right(_), None) => {
                    return Err(StoreError::invalid("a row after the last statement"));
                }
            }
        }
        let ranking: HashMap<OrderId, Rank> = orders.values().map(|s| (s.id, rank_of(s))).collect();
        let items: Vec<(&str, &Transition)> = batch.iter().map(|(t, tr)| (*t, tr)).collect();
        let (results, mut effects) = logic::resolve(&items, &mut orders, &mut leases);
        effects.take_orders(&orders);
        if !effects.orders.is_empty() {
            write_effects(self, &mut tx, &effects, &ranking).await?;
            tx.commit().await.map_err(db("committing transitions"))?;
        }
        Ok(results)
    }

    async fn known_orders(&self, tenant: &str, tiktok_order_ids: &[&str]) -> Result<Vec<String>> {
        let mut seen = HashSet::new();
        let unique: Vec<&str> = tiktok_order_ids
            .iter()
            .copied()
            .filter(|t| seen.insert(*t))
            .collect();
        stored_ids(&mut *self.main.reading().await?, tenant, &unique).await
    }
}

/// The `tiktok_order_id`s among `ids` (no repeats) the tenant has, read on
/// `conn` in chunks of [`KNOWN_CHUNK`].
async fn stored_ids(
    conn: &mut SqliteConnection,
    tenant: &str,
    ids: &[&str],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(KNOWN_CHUNK) {
        let sql = format!(
            "SELECT tiktok_order_id FROM orders WHERE user_id = ? AND tiktok_order_id IN ({})",
            params(chunk.len())
        );
        let mut q = sqlx::query_scalar(AssertSqlSafe(sql)).bind(tenant.to_owned());
        for t in chunk {
            q = q.bind((*t).to_owned());
        }
        out.extend(
            q.fetch_all(&mut *conn)
                .await
                .map_err(db("reading known orders"))?,
        );
    }
    Ok(out)
}

/// The `ORDER BY` of the most urgent active orders.
pub(super) const URGENT_ORDER: &str = "ORDER BY priority_rank, viral DESC, created_at, id";

pub(super) async fn active_on<'e, E>(
    executor: E,
    tenant: &str,
    limit: usize,
) -> Result<Vec<StoredOrder>>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{} {URGENT_ORDER} {LIMIT}",
        select_orders("user_id = ? AND terminal = 0")
    )))
    .bind(tenant.to_owned())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(executor)
    .await
    .map_err(db("listing active orders"))?;
    decode_all(&rows)
}

/// Appends the statements storing `n` ingest decisions of newly inserted
/// orders (see [`bind_decisions`]).
fn decisions_sql(sql: &mut String, n: usize) {
    let mut left = n;
    while left > 0 {
        let rows = left.min(CHUNK);
        left -= rows;
        sql.push_str(&format!(
            "WITH v(id, decision) AS (VALUES {}) UPDATE orders SET decision = v.decision \
             FROM v WHERE orders.id = v.id;\n",
            placeholders(2, rows)
        ));
    }
}

/// Binds the decisions of [`decisions_sql`].
fn bind_decisions<'q>(mut q: Q<'q>, decisions: &[(OrderId, &crate::store::JsonText)]) -> Q<'q> {
    for (id, d) in decisions {
        q = q.bind(id.to_string()).bind(d.as_str().to_owned());
    }
    q
}

/// Inserts work items unless their `(order, kind)` exists.
pub(super) async fn insert_work(
    conn: &mut SqliteConnection,
    items: &[logic::Enqueue],
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut sql = String::new();
    insert_work_sql(&mut sql, items.len());
    bind_work(sqlx::query(AssertSqlSafe(sql)), items)?
        .execute(&mut *conn)
        .await
        .map_err(db("enqueueing work"))?;
    Ok(())
}

/// Appends the statements inserting `n` work items (see [`bind_work`]).
fn insert_work_sql(sql: &mut String, n: usize) {
    let mut left = n;
    while left > 0 {
        let rows = left.min(CHUNK);
        left -= rows;
        sql.push_str(&format!(
            "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, \
             run_at, payload, attempts, created_at, updated_at, ready) VALUES {} \
             ON CONFLICT (order_id, kind) DO NOTHING;\n",
            placeholders(12, rows)
        ));
    }
}

/// Binds the work items of [`insert_work_sql`].
fn bind_work<'q>(mut q: Q<'q>, items: &[logic::Enqueue]) -> Result<Q<'q>> {
    for e in items {
        q = q
            .bind(e.tenant.clone())
            .bind(e.order_id.to_string())
            .bind(e.spec.kind.clone())
            .bind(e.spec.lane.as_str())
            .bind(e.viral)
            .bind(ms(e.order_created_at))
            .bind(ms(e.spec.run_at))
            .bind(json(&e.spec.payload, "payload")?)
            .bind(0_i64)
            .bind(ms(e.at))
            .bind(ms(e.at))
            .bind(e.spec.run_at <= e.at);
    }
    Ok(q)
}

/// What a statement of the transition batch's read script reads.
enum Read {
    Orders,
    Leases,
}

fn dedup<T: Clone + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

/// What decides an order's place in the active-order index.
type Rank = (Priority, Impact, bool);

fn rank_of(s: &StoredOrder) -> Rank {
    (s.order.priority, s.order.impact, s.terminal)
}

/// Writes a batch's effects in one round trip to SQLite's thread: the
/// statements go as one script, inside the caller's transaction.
async fn write_effects(
    store: &SqliteStore,
    tx: &mut SqliteConnection,
    effects: &Effects,
    ranking: &HashMap<OrderId, Rank>,
) -> Result<()> {
    let ranked: Vec<&StoredOrder> = effects
        .orders
        .iter()
        .filter(|s| ranking.get(&s.id) != Some(&rank_of(s)))
        .collect();
    if store.fault.take(FaultPoint::AfterOrderUpdate) {
        // The orders are updated, then the write fails (its transaction
        // rolls back): the atomicity tests inject this.
        let mut sql = String::new();
        orders_sql(&mut sql, effects, &ranked);
        bind_orders(sqlx::query(AssertSqlSafe(sql)), effects, &ranked)?
            .execute(&mut *tx)
            .await
            .map_err(db("updating orders"))?;
        return Err(injected());
    }
    let mut sql = String::new();
    orders_sql(&mut sql, effects, &ranked);
    rest_sql(&mut sql, effects);
    let q = bind_orders(sqlx::query(AssertSqlSafe(sql)), effects, &ranked)?;
    let q = bind_rest(q, effects)?;
    // A script (see `rows::script_steps`): every statement runs.
    q.execute(&mut *tx)
        .await
        .map_err(db("writing transitions"))?;
    Ok(())
}

/// The columns `orders_sql` updates on every changed order: those no index
/// covers. The indexed ones (priority, impact, terminal) are updated only
/// where they changed, so that index entries are not rewritten for nothing.
const UPDATE_COLS: &str = "id, version, current_state, previous_state, automation_status, \
    processing_time_ms, flow_progress, updated_at, state_changed_at";

/// Appends the statements updating the changed orders (see [`bind_orders`]).
fn orders_sql(sql: &mut String, effects: &Effects, ranked: &[&StoredOrder]) {
    for chunk in effects.orders.chunks(CHUNK) {
        sql.push_str(&format!(
            "WITH v({UPDATE_COLS}) AS (VALUES {}) UPDATE orders SET version = v.version, \
             current_state = v.current_state, previous_state = v.previous_state, \
             automation_status = v.automation_status, \
             processing_time_ms = v.processing_time_ms, flow_progress = v.flow_progress, \
             updated_at = v.updated_at, state_changed_at = v.state_changed_at \
             FROM v WHERE orders.id = v.id;\n",
            placeholders(9, chunk.len())
        ));
    }
    for _ in ranked {
        sql.push_str(
            "UPDATE orders SET terminal = ?, priority = ?, priority_rank = ?, impact = ?, \
             viral = ? WHERE id = ?;\n",
        );
    }
}

/// Binds the statements of [`orders_sql`].
fn bind_orders<'q>(mut q: Q<'q>, effects: &Effects, ranked: &[&StoredOrder]) -> Result<Q<'q>> {
    for s in &effects.orders {
        let o = &s.order;
        q = q
            .bind(s.id.to_string())
            .bind(to_i64(s.version, "version")?)
            .bind(o.current_state.as_str().to_owned())
            .bind(o.previous_state.as_ref().map(|p| p.as_str().to_owned()))
            .bind(o.automation_status.as_str())
            .bind(to_i64(o.processing_time_ms, "processing_time_ms")?)
            .bind(i64::from(o.flow_progress))
            .bind(ms(o.updated_at.unwrap_or(o.created_at)))
            .bind(ms(o.state_changed_at.unwrap_or(o.created_at)));
    }
    for s in ranked {
        q = q
            .bind(s.terminal)
            .bind(s.order.priority.as_str())
            .bind(priority_rank(s.order.priority))
            .bind(s.order.impact.as_str())
            .bind(is_viral(s.order.impact))
            .bind(s.id.to_string());
    }
    Ok(q)
}

/// Appends the statements writing history and the queue (see [`bind_rest`]).
fn rest_sql(sql: &mut String, effects: &Effects) {
    for chunk in effects.history.chunks(CHUNK) {
        sql.push_str(&format!(
            "INSERT INTO order_transitions ({HISTORY_COLUMNS}) VALUES {};\n",
            placeholders(HISTORY_COLUMN_COUNT, chunk.len())
        ));
    }
    for chunk in effects.complete.chunks(CHUNK) {
        sql.push_str(&format!(
            "DELETE FROM work_queue WHERE id IN ({});\n",
            params(chunk.len())
        ));
    }
    for chunk in effects.reschedule.chunks(CHUNK) {
        sql.push_str(&format!(
            "WITH v(id, run_at, payload, updated_at, ready) AS (VALUES {}) UPDATE work_queue SET \
             run_at = v.run_at, payload = COALESCE(v.payload, work_queue.payload), \
             payload_ref = CASE WHEN v.payload IS NULL THEN work_queue.payload_ref END, \
             lease_owner = NULL, lease_expires_at = NULL, updated_at = v.updated_at, \
             ready = v.ready FROM v WHERE work_queue.id = v.id;\n",
            placeholders(5, chunk.len())
        ));
    }
    for _ in &effects.requeue {
        sql.push_str("UPDATE work_queue SET lane = ?, viral = ? WHERE order_id = ?;\n");
    }
    // The orders that shipped: a statement of their own, only for them
    // (once per order), so other steps never touch `orders_shipped`.
    for chunk in effects.shipped.chunks(CHUNK) {
        sql.push_str(&format!(
            "WITH v(id, shipped_at) AS (VALUES {}) UPDATE orders SET shipped_at = v.shipped_at \
             FROM v WHERE orders.id = v.id AND orders.shipped_at IS NULL;\n",
            placeholders(2, chunk.len())
        ));
    }
    insert_work_sql(sql, effects.enqueue.len());
}

/// Binds the statements of [`rest_sql`].
fn bind_rest<'q>(mut q: Q<'q>, effects: &Effects) -> Result<Q<'q>> {
    for (tenant, h) in &effects.history {
        q = bind_history(q, tenant, h)?;
    }
    for id in &effects.complete {
        q = q.bind(*id);
    }
    for r in &effects.reschedule {
        q = q
            .bind(r.id)
            .bind(ms(r.run_at))
            .bind(r.payload.as_ref().map(|p| json(p, "payload")).transpose()?)
            .bind(ms(r.at))
            .bind(r.run_at <= r.at);
    }
    for (order_id, lane, viral) in &effects.requeue {
        q = q
            .bind(lane.as_str())
            .bind(*viral)
            .bind(order_id.to_string());
    }
    for (id, at) in &effects.shipped {
        q = q.bind(id.to_string()).bind(ms(*at));
    }
    bind_work(q, &effects.enqueue)
}
