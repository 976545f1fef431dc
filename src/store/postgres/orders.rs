//! Orders and transitions on PostgreSQL.

use crate::FastMap;
use crate::store::Result;
use std::collections::{HashMap, HashSet};

use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;

use super::rows::{
    HISTORY_COLUMNS, HistoryArrays, INSERT_ORDERS, ORDER_COLUMNS, OrderArrays, Q, column, db,
    field, json, order_from_row,
};
use super::{Mode, PostgresStore, Role, Tx};
use crate::store::decode;
use crate::store::fault::{FaultPoint, injected};
use crate::store::logic::{self, Effects, LeaseState, is_viral, priority_rank, to_i64};
use crate::store::{
    Created, HistoryEntry, NewOrder, OrderId, OrderStore, OrderWithHistory, StoreError,
    StoredOrder, Transition, WorkId,
};

/// A `usize` limit as a bind value.
pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn one_order(
    conn: &mut PgConnection,
    filter: &str,
    tenant: &str,
    key: impl for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
) -> Result<Option<StoredOrder>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND {filter}"
    )))
    .bind(tenant)
    .bind(key)
    .fetch_optional(conn)
    .await
    .map_err(db("reading an order"))?;
    row.as_ref().map(order_from_row).transpose()
}

/// The orders `SELECT {ORDER_COLUMNS} FROM orders WHERE {filter}` reads,
/// `bind` binding the filter's parameters; `what` names the read in errors.
pub(super) async fn orders_where<'q>(
    conn: &mut PgConnection,
    filter: &str,
    bind: impl FnOnce(Q<'q>) -> Q<'q>,
    what: &'static str,
) -> Result<Vec<StoredOrder>> {
    let query = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE {filter}"
    )));
    bind(query)
        .fetch_all(conn)
        .await
        .map_err(db(what))?
        .iter()
        .map(order_from_row)
        .collect()
}

async fn with_history_in(
    conn: &mut PgConnection,
    tenant: &str,
    id: OrderId,
) -> Result<Option<OrderWithHistory>> {
    let Some(order) = one_order(conn, "id = $2", tenant, id).await? else {
        return Ok(None);
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {HISTORY_COLUMNS} FROM order_transitions \
         WHERE user_id = $1 AND order_id = $2 ORDER BY version"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .map_err(db("reading an order's history"))?;
    let history = decode::history_rows(&rows)?;
    let decision: Option<String> =
        sqlx::query_scalar("SELECT decision FROM orders WHERE user_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_one(conn)
            .await
            .map_err(db("reading an order's decision"))?;
    Ok(Some(OrderWithHistory {
        order,
        history,
        decision: decode::decision(decision)?,
    }))
}

pub(super) async fn active_in(
    conn: &mut PgConnection,
    tenant: &str,
    n: usize,
) -> Result<Vec<StoredOrder>> {
    orders_where(
        conn,
        "user_id = $1 AND NOT terminal \
         ORDER BY priority_rank, viral DESC, created_at, id LIMIT $2",
        |q| q.bind(tenant).bind(limit(n)),
        "listing active orders",
    )
    .await
}

impl OrderStore for PostgresStore {
    async fn create_orders(
        &self,
        tenant: &str,
        orders: &[NewOrder],
    ) -> Result<Vec<Result<Created>>> {
        let prepared = logic::prepare_batch(tenant, orders);
        if logic::valid_orders(&prepared).is_none() {
            return Ok(logic::refused(prepared));
        }
        let mut tx = self.begin(Role::App, Some(tenant), Mode::Write).await?;
        let result = create_in(&mut tx, tenant, orders, prepared).await;
        tx.end(result).await
    }

    async fn get_order(&self, tenant: &str, id: OrderId) -> Result<Option<StoredOrder>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            one_order(conn, "id = $2", tenant, id).await
        })
        .await
    }

    async fn get_orders(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<StoredOrder>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.for_tenant(tenant, Mode::Read, async |conn| {
            orders_where(
                conn,
                "user_id = $1 AND id = ANY($2)",
                |q| q.bind(tenant).bind(ids),
                "reading orders",
            )
            .await
        })
        .await
    }

    async fn find_order(&self, tenant: &str, tiktok_order_id: &str) -> Result<Option<StoredOrder>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            one_order(
                conn,
                "tiktok_order_id = $2",
                tenant,
                tiktok_order_id.to_owned(),
            )
            .await
        })
        .await
    }

    async fn order_with_history(
        &self,
        tenant: &str,
        id: OrderId,
    ) -> Result<Option<OrderWithHistory>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            with_history_in(conn, tenant, id).await
        })
        .await
    }

    async fn histories(&self, tenant: &str, ids: &[OrderId]) -> Result<Vec<Vec<HistoryEntry>>> {
        let rows = self
            .for_tenant(tenant, Mode::Read, async |conn| {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {HISTORY_COLUMNS} FROM order_transitions \
                     WHERE user_id = $1 AND order_id = ANY($2) ORDER BY order_id, version"
                )))
                .bind(tenant)
                .bind(ids)
                .fetch_all(&mut *conn)
                .await
                .map_err(db("reading histories"))
            })
            .await?;
        let mut by_order: FastMap<OrderId, Vec<HistoryEntry>> = FastMap::default();
        for h in decode::history_rows(&rows)? {
            by_order.entry(h.order_id).or_default().push(h);
        }
        Ok(ids
            .iter()
            .map(|id| by_order.get(id).cloned().unwrap_or_default())
            .collect())
    }

    async fn list_orders(
        &self,
        tenant: &str,
        after: Option<OrderId>,
        n: usize,
    ) -> Result<Vec<StoredOrder>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            orders_where(
                conn,
                "user_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
                |q| q.bind(tenant).bind(after).bind(limit(n)),
                "listing orders",
            )
            .await
        })
        .await
    }

    async fn active_orders(&self, tenant: &str, n: usize) -> Result<Vec<StoredOrder>> {
        self.for_tenant(tenant, Mode::Read, async |conn| {
            active_in(conn, tenant, n).await
        })
        .await
    }

    async fn transitions(&self, batch: &[(&str, Transition)]) -> Result<Vec<Result<StoredOrder>>> {
        let Some((first, _)) = batch.first() else {
            return Ok(Vec::new());
        };
        let mut tx = self.begin(Role::App, Some(first), Mode::Write).await?;
        let result = transitions_in(self, &mut tx, batch).await;
        tx.end(result).await
    }

    async fn known_orders(&self, tenant: &str, tiktok_order_ids: &[&str]) -> Result<Vec<String>> {
        if tiktok_order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = tiktok_order_ids.iter().map(|t| (*t).to_owned()).collect();
        self.for_tenant(tenant, Mode::Read, async |conn| {
            sqlx::query_scalar(
                "SELECT tiktok_order_id FROM orders WHERE user_id = $1 AND tiktok_order_id = ANY($2)",
            )
            .bind(tenant)
            .bind(&ids)
            .fetch_all(conn)
            .await
            .map_err(db("reading known orders"))
        })
        .await
    }
}

async fn create_in(
    tx: &mut Tx,
    tenant: &str,
    orders: &[NewOrder],
    prepared: Vec<logic::Prepared>,
) -> Result<Vec<Result<Created>>> {
    let valid = logic::valid_orders(&prepared).unwrap_or_default();
    let mut arrays = OrderArrays::default();
    for o in &valid {
        arrays.push(o)?;
    }
    let inserted: HashSet<OrderId> = arrays
        .bind(sqlx::query(INSERT_ORDERS))
        .fetch_all(tx.conn())
        .await
        .map_err(db("inserting orders"))?
        .iter()
        .map(|row| column(row, "id"))
        .collect::<Result<_, _>>()?;
    let duplicates = logic::not_inserted(&valid, &inserted);
    let mut existing: HashMap<String, StoredOrder> = HashMap::new();
    if !duplicates.is_empty() {
        let found = orders_where(
            tx.conn(),
            "user_id = $1 AND tiktok_order_id = ANY($2)",
            |q| q.bind(tenant).bind(&duplicates),
            "reading existing orders",
        )
        .await?;
        for o in found {
            existing.insert(o.order.tiktok_order_id.clone(), o);
        }
    }
    let decisions = logic::new_decisions(orders, &prepared, &inserted);
    if !decisions.is_empty() {
        sqlx::query(
            "UPDATE orders SET decision = v.decision \
             FROM UNNEST($1::uuid[], $2::text[]) AS v(id, decision) \
             WHERE orders.id = ANY($1::uuid[]) AND orders.id = v.id",
        )
        .bind(field(&decisions, |d| d.0))
        .bind(field(&decisions, |d| d.1.as_str().to_owned()))
        .execute(tx.conn())
        .await
        .map_err(db("storing decisions"))?;
    }
    let (results, work) = logic::decide_created(tenant, prepared, &inserted, &existing);
    insert_work(tx.conn(), &work).await?;
    Ok(results)
}

/// Inserts work items unless their `(order, kind)` exists (one statement).
pub(super) async fn insert_work(conn: &mut PgConnection, items: &[logic::Enqueue]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut payloads = Vec::with_capacity(items.len());
    for e in items {
        payloads.push(json(&e.spec.payload, "payload")?);
    }
    sqlx::query(
        "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, run_at, \
         payload, created_at, updated_at, ready) \
         SELECT u.user_id, u.order_id, u.kind, u.lane, u.viral, u.order_created_at, u.run_at, \
                u.payload, u.at, u.at, u.run_at <= u.at \
         FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::bool[], \
                     $6::timestamptz[], $7::timestamptz[], $8::json[], $9::timestamptz[]) \
              AS u(user_id, order_id, kind, lane, viral, order_created_at, run_at, payload, at) \
         ON CONFLICT (order_id, kind) DO NOTHING",
    )
    .bind(field(items, |e| e.tenant.clone()))
    .bind(field(items, |e| e.order_id))
    .bind(field(items, |e| e.spec.kind.clone()))
    .bind(field(items, |e| e.spec.lane.as_str()))
    .bind(field(items, |e| e.viral))
    .bind(field(items, |e| e.order_created_at))
    .bind(field(items, |e| e.spec.run_at))
    .bind(payloads)
    .bind(field(items, |e| e.at))
    .execute(conn)
    .await
    .map_err(db("enqueueing work"))?;
    Ok(())
}

/// The batch's tenants, in order of first appearance (the first is the
/// transaction's tenant when this is called).
fn tenants_of<'a>(batch: &[(&'a str, Transition)]) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| seen.insert(*t))
        .collect()
}

async fn transitions_in(
    store: &PostgresStore,
    tx: &mut Tx,
    batch: &[(&str, Transition)],
) -> Result<Vec<Result<StoredOrder>>> {
    let tenants = tenants_of(batch);
    // Lock and load, tenant by tenant (row-level security shows each tenant
    // its own rows only): the orders the batch names, then the leases it
    // settles. Another tenant's order or lease is simply not found.
    let mut orders: FastMap<OrderId, StoredOrder> = FastMap::default();
    let mut leases: FastMap<WorkId, LeaseState> = FastMap::default();
    for (i, tenant) in tenants.iter().enumerate() {
        if i > 0 {
            tx.set_tenant(tenant).await?;
        }
        let mine = || batch.iter().filter(|(t, _)| t == tenant).map(|(_, tr)| tr);
        let ids: Vec<OrderId> = dedup(mine().map(|t| t.order_id));
        let locked = orders_where(
            tx.conn(),
            "id = ANY($1) ORDER BY id FOR UPDATE",
            |q| q.bind(&ids),
            "reading orders",
        )
        .await?;
        for o in locked {
            orders.insert(o.id, o);
        }
        let lease_ids: Vec<WorkId> =
            dedup(mine().filter_map(|t| t.settle.as_ref()).map(|s| s.lease.id));
        if !lease_ids.is_empty() {
            let rows = sqlx::query(
                "SELECT id, user_id, order_id, lease_owner, attempts, lease_expires_at \
                 FROM work_queue WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .bind(&lease_ids)
            .fetch_all(tx.conn())
            .await
            .map_err(db("reading leases"))?;
            for row in &rows {
                leases.insert(column(row, "id")?, crate::store::decode::lease_state(row)?);
            }
        }
    }
    let before: HashMap<OrderId, u64> = orders.values().map(|o| (o.id, o.version)).collect();
    let work_tenant: HashMap<WorkId, String> = leases
        .iter()
        .map(|(id, l)| (*id, l.tenant.clone()))
        .collect();
    let items: Vec<(&str, &Transition)> = batch.iter().map(|(t, tr)| (*t, tr)).collect();
    let (results, mut effects) = logic::resolve(&items, &mut orders, &mut leases);
    effects.take_orders(&orders);
    if effects.orders.is_empty() {
        return Ok(results);
    }
    // Write, tenant by tenant, the effects that belong to each (starting
    // with the tenant the transaction is set to now, the last one loaded).
    let mut current = tenants.last().copied();
    for &tenant in tenants.iter().rev() {
        let part = effects_of(&effects, tenant, &work_tenant);
        if part.orders.is_empty() {
            continue;
        }
        if current != Some(tenant) {
            tx.set_tenant(tenant).await?;
            current = Some(tenant);
        }
        write_effects(store, tx.conn(), &part, &before).await?;
    }
    Ok(results)
}

fn dedup<T: Clone + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

/// The part of `effects` that belongs to `tenant`.
fn effects_of(effects: &Effects, tenant: &str, work_tenant: &HashMap<WorkId, String>) -> Effects {
    let owns = |id: &WorkId| work_tenant.get(id).map(String::as_str) == Some(tenant);
    let orders: Vec<StoredOrder> = effects
        .orders
        .iter()
        .filter(|o| o.order.user_id.as_deref() == Some(tenant))
        .cloned()
        .collect();
    let mine: HashSet<OrderId> = orders.iter().map(|o| o.id).collect();
    Effects {
        changed: orders.iter().map(|o| o.id).collect(),
        shipped: effects
            .shipped
            .iter()
            .filter(|(id, _)| mine.contains(id))
            .copied()
            .collect(),
        history: effects
            .history
            .iter()
            .filter(|(t, _)| t == tenant)
            .cloned()
            .collect(),
        complete: effects.complete.iter().copied().filter(owns).collect(),
        reschedule: effects
            .reschedule
            .iter()
            .filter(|r| owns(&r.id))
            .cloned()
            .collect(),
        requeue: effects
            .requeue
            .iter()
            .filter(|(id, ..)| mine.contains(id))
            .copied()
            .collect(),
        enqueue: effects
            .enqueue
            .iter()
            .filter(|e| e.tenant == tenant)
            .cloned()
            .collect(),
        orders,
    }
}

/// The order updates (checked against the versions read), the history rows,
/// the completed and the rescheduled leases: one statement, since these
/// touch different rows. `$1`–`$15` and `$34` (`shipped_at`, kept where one
/// is stored) the orders, `$16`–`$26` and `$32`–`$33` the history, `$27`
/// completed items, `$28`–`$31` rescheduled items. The joins with the
/// arrays also name the ids with `= ANY(…)`, so that even a plan made while
/// the table was small looks rows up by id (not by scanning the tenant's
/// rows, which row-level security would offer first).
const WRITE_STEP: &str = "WITH v AS (SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::text[], \
        $4::text[], $5::text[], $6::int8[], $7::int8[], $8::timestamptz[], $9::timestamptz[], \
        $10::bool[], $11::text[], $12::int8[], $13::text[], $14::bool[], $15::int8[], \
        $34::timestamptz[]) \
        AS v(id, version, current_state, previous_state, automation_status, processing_time_ms, \
             flow_progress, updated_at, state_changed_at, terminal, priority, priority_rank, \
             impact, viral, old_version, shipped_at)), \
    o AS (UPDATE orders SET version = v.version, current_state = v.current_state, \
            previous_state = v.previous_state, automation_status = v.automation_status, \
            processing_time_ms = v.processing_time_ms, flow_progress = v.flow_progress, \
            updated_at = v.updated_at, state_changed_at = v.state_changed_at, \
            terminal = v.terminal, priority = v.priority, priority_rank = v.priority_rank, \
            impact = v.impact, viral = v.viral, \
            shipped_at = COALESCE(orders.shipped_at, v.shipped_at) \
          FROM v WHERE orders.id = ANY($1::uuid[]) AND orders.id = v.id \
            AND orders.version = v.old_version RETURNING 1), \
    h AS (INSERT INTO order_transitions (order_id, user_id, version, from_state, to_state, \
            transition_reason, automated, duration_ms, actions_executed, error_message, \
            created_at, actor, pack_version) \
          SELECT * FROM UNNEST($16::uuid[], $17::text[], $18::int8[], $19::text[], \
            $20::text[], $21::text[], $22::bool[], $23::int8[], $24::json[], $25::text[], \
            $26::timestamptz[], $32::text[], $33::text[]) RETURNING 1), \
    c AS (DELETE FROM work_queue WHERE id = ANY($27::int8[]) RETURNING 1), \
    r AS (UPDATE work_queue SET run_at = r.run_at, payload = COALESCE(r.payload, work_queue.payload), \
            lease_owner = NULL, lease_expires_at = NULL, updated_at = r.at, \
            ready = r.run_at <= r.at \
          FROM UNNEST($28::int8[], $29::timestamptz[], $30::json[], $31::timestamptz[]) \
               AS r(id, run_at, payload, at) \
          WHERE work_queue.id = ANY($28::int8[]) AND work_queue.id = r.id RETURNING 1) \
    SELECT (SELECT count(*) FROM o) AS updated";

async fn write_effects(
    store: &PostgresStore,
    conn: &mut PgConnection,
    effects: &Effects,
    before: &HashMap<OrderId, u64>,
) -> Result<()> {
    let fault = store.fault.take(FaultPoint::AfterOrderUpdate);
    let orders = &effects.orders;
    let mut old_versions = Vec::with_capacity(orders.len());
    let mut versions = Vec::with_capacity(orders.len());
    let mut processing = Vec::with_capacity(orders.len());
    for s in orders {
        let old = before
            .get(&s.id)
            .ok_or_else(|| StoreError::database("a changed order was not read"))?;
        old_versions.push(to_i64(*old, "version")?);
        versions.push(to_i64(s.version, "version")?);
        processing.push(to_i64(s.order.processing_time_ms, "processing_time_ms")?);
    }
    let mut history = HistoryArrays::default();
    if !fault {
        for (tenant, h) in &effects.history {
            history.push(tenant, h)?;
        }
    }
    let (complete, reschedule): (&[WorkId], &[logic::Reschedule]) = if fault {
        (&[], &[])
    } else {
        (&effects.complete, &effects.reschedule)
    };
    let mut payloads = Vec::with_capacity(reschedule.len());
    for r in reschedule {
        payloads.push(r.payload.as_ref().map(|p| json(p, "payload")).transpose()?);
    }
    let q = sqlx::query(WRITE_STEP)
        .bind(field(orders, |s| s.id))
        .bind(versions)
        .bind(field(orders, |s| s.order.current_state.as_str().to_owned()))
        .bind(field(orders, |s| {
            s.order
                .previous_state
                .as_ref()
                .map(|p| p.as_str().to_owned())
        }))
        .bind(field(orders, |s| s.order.automation_status.as_str()))
        .bind(processing)
        .bind(field(orders, |s| i64::from(s.order.flow_progress)))
        .bind(field(orders, |s| {
            s.order.updated_at.unwrap_or(s.order.created_at)
        }))
        .bind(field(orders, |s| {
            s.order.state_changed_at.unwrap_or(s.order.created_at)
        }))
        .bind(field(orders, |s| s.terminal))
        .bind(field(orders, |s| s.order.priority.as_str()))
        .bind(field(orders, |s| priority_rank(s.order.priority)))
        .bind(field(orders, |s| s.order.impact.as_str()))
        .bind(field(orders, |s| is_viral(s.order.impact)))
        .bind(old_versions);
    let q = history
        .bind(q)
        .bind(complete)
        .bind(field(reschedule, |r| r.id))
        .bind(field(reschedule, |r| r.run_at))
        .bind(payloads)
        .bind(field(reschedule, |r| r.at));
    let shipped: HashMap<OrderId, chrono::DateTime<chrono::Utc>> =
        effects.shipped.iter().copied().collect();
    let updated: i64 = history
        .bind_tail(q)
        .bind(field(orders, |s| shipped.get(&s.id).copied()))
        .fetch_one(&mut *conn)
        .await
        .map_err(db("writing transitions"))
        .and_then(|row| column(&row, "updated"))?;
    if usize::try_from(updated).ok() != Some(orders.len()) {
        // The rows are locked, so this means a bug, not a race.
        return Err(StoreError::database(
            "an order changed while its transition was being written",
        ));
    }
    if fault {
        // The orders are updated and the history is not: fail here.
        return Err(injected());
    }
    if !effects.requeue.is_empty() {
        sqlx::query(
            "UPDATE work_queue SET lane = v.lane, viral = v.viral \
             FROM UNNEST($1::uuid[], $2::text[], $3::bool[]) AS v(order_id, lane, viral) \
             WHERE work_queue.order_id = ANY($1::uuid[]) AND work_queue.order_id = v.order_id",
        )
        .bind(field(&effects.requeue, |r| r.0))
        .bind(field(&effects.requeue, |r| r.1.as_str()))
        .bind(field(&effects.requeue, |r| r.2))
        .execute(&mut *conn)
        .await
        .map_err(db("moving work to a new lane"))?;
    }
    insert_work(conn, &effects.enqueue).await
}
