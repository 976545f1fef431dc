//! The statements of a bulk insert ([`OrderStore::insert_orders`]) on
//! SQLite: orders with their decisions in one multi-row `INSERT` per
//! [`CHUNK`] rows (no second pass to store the decisions), and their work
//! items with payloads bound as the text they already are.
//!
//! The SQL of a full chunk is built once per process: at 35 columns × 500
//! rows its placeholder list alone is 50 kB, and sqlx finds the prepared
//! statement by its text.
//!
//! # Bound while the statement before runs, checked by count
//!
//! Binding a chunk's values (a sixth of a bulk ingest's time, measured)
//! used to hold the writer while SQLite's thread waited. A [`Plan`] binds
//! its first statement before the writer is taken and each next one while
//! SQLite runs the one before ([`pipelined`]), so the writer never waits
//! and at most two statements' values are in memory. The plan's `INSERT`s
//! return nothing: when the orders inserted are as many as the plan holds
//! (every order new, as the engine asked the store just before), every
//! work item is inserted too and that is the whole answer. Otherwise (a
//! racing writer, a repeat within the batch, an id clash) the caller drops
//! the transaction and runs [`insert_orders`] and [`insert_work`], which
//! tell each order apart by the ids `RETURNING` names.
//!
//! # Memory and checkpoints
//!
//! While the orders go in, the writer's page cache is 8 MiB, not 64: a
//! bulk load appends to every index and rereads few pages (measured on a
//! million orders: no slower, 50 MB less). After each commit a passive
//! checkpoint runs on a read connection ([`checkpoint_beside`]), copying
//! the batch's pages into the database while the next batch is inserted.
//!
//! [`OrderStore::insert_orders`]: crate::store::OrderStore::insert_orders

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::{AssertSqlSafe, Row, SqliteConnection, SqlitePool};

use super::orders::CHUNK;
use super::rows::{
    ORDER_COLUMN_COUNT, ORDER_COLUMNS, Q, bind_order, db, id_text, placeholders, text, uuid,
};
use crate::store::logic::{PreparedBulk, is_viral, ms};
use crate::store::{BulkWork, JsonText, OrderId, Result, StoredOrder};

/// Columns of a work item as a bulk insert writes it.
const WORK_COLUMNS: usize = 13;

/// A sweep of `work_payloads` runs once this many texts were added since
/// the last (or as many as it kept then, if more).
const SWEEP_EVERY: u64 = 4_096;

/// Payloads at least this long are written once per tenant in
/// `work_payloads` and named by the work items (see [`share_payloads`]);
/// shorter ones (`null`, a few ids) stay in the item.
const SHARED_PAYLOAD_MIN: usize = 64;

/// The `INSERT` of `rows` orders with their decisions, naming the ids
/// inserted if `returning`; the text of a full chunk is kept.
fn orders_sql(rows: usize, returning: bool) -> String {
    let build = |rows, returning| {
        format!(
            "INSERT INTO orders ({ORDER_COLUMNS}, decision) VALUES {} \
             ON CONFLICT DO NOTHING{}",
            placeholders(ORDER_COLUMN_COUNT + 1, rows),
            if returning { " RETURNING id" } else { "" }
        )
    };
    static FULL: OnceLock<String> = OnceLock::new();
    static FULL_RETURNING: OnceLock<String> = OnceLock::new();
    match (rows == CHUNK, returning) {
        (true, true) => FULL_RETURNING.get_or_init(|| build(CHUNK, true)).clone(),
        (true, false) => FULL.get_or_init(|| build(CHUNK, false)).clone(),
        (false, _) => build(rows, returning),
    }
}

/// The `INSERT` of `rows` work items; the text of a full chunk is kept.
fn work_sql(rows: usize) -> String {
    let build = |rows| {
        format!(
            "INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, \
             run_at, payload, attempts, created_at, updated_at, ready, payload_ref) VALUES {} \
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

/// Sets the page cache of `conn` (the writer) to `size` (`PRAGMA
/// cache_size`): a bulk insert runs with a small one.
pub(super) async fn cache_size(conn: &mut SqliteConnection, size: &str) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA cache_size = {size}")))
        .execute(conn)
        .await
        .map_err(db("sizing the page cache"))?;
    Ok(())
}

/// Starts a passive checkpoint of the file `reader` reads, on one of its
/// connections, unless one is running: after a bulk insert's commit, so
/// that copying the batch's pages into the database (and syncing it) runs
/// beside the next batch's inserts instead of in a commit on the writer.
/// The writer's own checkpoint (`wal_autocheckpoint`) then finds little
/// left to copy, and still restarts the WAL. Best effort: a checkpoint
/// that fails leaves the work to the writer's.
pub(super) fn checkpoint_beside(reader: &SqlitePool, running: &Arc<AtomicBool>) {
    if running.swap(true, Ordering::AcqRel) {
        return;
    }
    let reader = reader.clone();
    let running = Arc::clone(running);
    tokio::spawn(async move {
        let done = match reader.acquire().await {
            Ok(mut conn) => sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *conn)
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            tracing::debug!(error = %e, "checkpoint beside the writer");
        }
        running.store(false, Ordering::Release);
    });
}

/// A valid order of a bulk insert: the stored order, its work, its decision.
type Valid = (StoredOrder, Option<BulkWork>, Option<JsonText>);

/// The statements of a bulk insert whose orders are all new (see the
/// module docs): the first built before the writer is taken, each next one
/// while SQLite runs the one before.
pub(super) struct Plan<'a> {
    tenant: &'a str,
    /// When to sweep the shared payloads.
    sweep: &'a Sweep,
    /// The valid orders.
    valid: Vec<&'a Valid>,
    /// The first chunk's `INSERT`, every value bound.
    first: Option<Q<'static>>,
}

impl<'a> Plan<'a> {
    /// The plan of the valid orders of `prepared`, its first statement
    /// built.
    pub(super) fn new(
        tenant: &'a str,
        prepared: &'a [PreparedBulk],
        sweep: &'a Sweep,
    ) -> Result<Plan<'a>> {
        let valid: Vec<&Valid> = prepared.iter().flatten().collect();
        let first = valid
            .chunks(CHUNK)
            .next()
            .map(|chunk| orders_query(chunk, false))
            .transpose()?;
        Ok(Plan {
            tenant,
            sweep,
            valid,
            first,
        })
    }

    /// Runs the plan on `conn` (in a transaction): whether every order was
    /// new, and so every statement ran. `false`: some order was not
    /// inserted, the work items were not, and the transaction must be
    /// dropped (it holds the other orders).
    pub(super) async fn run(self, conn: &mut SqliteConnection) -> Result<bool> {
        let chunks: Vec<&[&Valid]> = self.valid.chunks(CHUNK).collect();
        let inserted = pipelined(
            conn,
            self.first,
            chunks.len(),
            |i| orders_query(chunks[i], false),
            "inserting orders",
        )
        .await?;
        if inserted != self.valid.len() as u64 {
            return Ok(false);
        }
        let items: Vec<(&StoredOrder, &BulkWork)> = self
            .valid
            .iter()
            .filter_map(|(o, w, _)| w.as_ref().map(|w| (o, w)))
            .collect();
        insert_work(conn, self.tenant, &items, self.sweep).await?;
        Ok(true)
    }
}

/// Runs `count` statements on `conn` in order, `build(i)` making the
/// `i`th (`first`, if given, is the 0th, already built): each next one is
/// built while SQLite runs the one before, so the writer never waits for
/// binding and at most two statements' values are in memory. The rows
/// they changed, in all.
async fn pipelined<F>(
    conn: &mut SqliteConnection,
    first: Option<Q<'static>>,
    count: usize,
    mut build: F,
    what: &'static str,
) -> Result<u64>
where
    F: FnMut(usize) -> Result<Q<'static>>,
{
    let mut changed = 0;
    let mut next = match first {
        Some(q) => Some(q),
        None if count > 0 => Some(build(0)?),
        None => None,
    };
    let mut i = 1;
    while let Some(q) = next.take() {
        // `join` polls the statement first (sent to SQLite's thread), then
        // builds the next one meanwhile.
        let (done, built) = tokio::join!(q.execute(&mut *conn), async {
            (i < count).then(|| build(i)).transpose()
        });
        changed += done.map_err(db(what))?.rows_affected();
        next = built?;
        i += 1;
    }
    Ok(changed)
}

/// The `INSERT` of one chunk of orders with their decisions, every value
/// bound.
fn orders_query(chunk: &[&Valid], returning: bool) -> Result<Q<'static>> {
    let mut q = sqlx::query(AssertSqlSafe(orders_sql(chunk.len(), returning)));
    for (o, _, decision) in chunk {
        q = bind_order(q, o)?.bind(decision.as_ref().map(JsonText::shared));
    }
    Ok(q)
}

/// The `INSERT` of one chunk of work items, every value bound; an item
/// with a shared payload (`refs`, one per item) is bound with its row's
/// id, its own payload `null`.
fn work_query(
    tenant: &str,
    chunk: &[(&StoredOrder, &BulkWork)],
    refs: &[Option<i64>],
) -> Q<'static> {
    static NULL: OnceLock<Arc<str>> = OnceLock::new();
    let mut q = sqlx::query(AssertSqlSafe(work_sql(chunk.len())));
    for ((o, w), by_ref) in chunk.iter().zip(refs) {
        q = q
            .bind(text(tenant))
            .bind(id_text(&o.id))
            .bind(text(&w.kind))
            .bind(text(w.lane.as_str()))
            .bind(is_viral(o.order.impact))
            .bind(ms(o.order.created_at))
            .bind(ms(w.run_at))
            .bind(match by_ref {
                Some(_) => Arc::clone(NULL.get_or_init(|| text("null"))),
                None => w.payload.shared(),
            })
            .bind(0_i64)
            .bind(ms(w.run_at))
            .bind(ms(w.run_at))
            .bind(true)
            .bind(*by_ref);
    }
    q
}

/// When a bulk insert sweeps `work_payloads` of the texts no work item
/// names any more (the items done, or given another payload): at the
/// first bulk insert of the process, then each time the texts added since
/// reach [`SWEEP_EVERY`] or the number kept by the last sweep, whichever
/// is more. A sweep reads `work_queue` once, so its cost per text added
/// stays constant, and the table holds at most about twice what the queue
/// names plus what one process added. (A sweep whose transaction is rolled
/// back is counted all the same: the next one comes later, nothing is
/// lost.)
#[derive(Debug, Default)]
pub(super) struct Sweep(std::sync::Mutex<SweepState>);

#[derive(Debug, Default)]
struct SweepState {
    /// Whether this process swept once.
    swept: bool,
    /// Texts added since.
    added: u64,
    /// Texts the last sweep kept.
    kept: u64,
}

impl Sweep {
    fn state(&self) -> std::sync::MutexGuard<'_, SweepState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a sweep is due.
    fn due(&self) -> bool {
        let s = self.state();
        !s.swept || s.added >= s.kept.max(SWEEP_EVERY)
    }
}

/// Removes the shared payloads no work item names (every tenant's).
async fn sweep_unused(conn: &mut SqliteConnection, sweep: &Sweep) -> Result<()> {
    let kept: i64 = sqlx::query_scalar(
        "DELETE FROM work_payloads WHERE id NOT IN \
         (SELECT payload_ref FROM work_queue WHERE payload_ref IS NOT NULL); \
         SELECT count(*) FROM work_payloads",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("removing unused shared payloads"))?;
    *sweep.state() = SweepState {
        swept: true,
        added: 0,
        kept: u64::try_from(kept).unwrap_or(0),
    };
    Ok(())
}

/// Writes the distinct payloads of `items` at least [`SHARED_PAYLOAD_MIN`]
/// long in `work_payloads` (a row per tenant and text, kept if there), and
/// answers, per item, the id of its payload's row (`None`: the payload
/// stays in the item). A history load's first work items carry the
/// actions of the rules that fired, the same text for every order the
/// same rules fired on: stored once, they halve the bytes of the load.
/// Sweeps first when due (see [`Sweep`]).
async fn share_payloads(
    conn: &mut SqliteConnection,
    tenant: &str,
    items: &[(&StoredOrder, &BulkWork)],
    sweep: &Sweep,
) -> Result<Vec<Option<i64>>> {
    // Each distinct text once (its position in `distinct`), each item's.
    let mut position: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    let mut distinct: Vec<&JsonText> = Vec::new();
    let slots: Vec<Option<usize>> = items
        .iter()
        .map(|(_, w)| {
            let p = w.payload.as_str();
            (p.len() >= SHARED_PAYLOAD_MIN).then(|| {
                *position.entry(p).or_insert_with(|| {
                    distinct.push(&w.payload);
                    distinct.len() - 1
                })
            })
        })
        .collect();
    if distinct.is_empty() {
        return Ok(vec![None; items.len()]);
    }
    let mut ids: Vec<Option<i64>> = vec![None; distinct.len()];
    if sweep.due() {
        sweep_unused(conn, sweep).await?;
    }
    let mut added = 0;
    for chunk in distinct.chunks(CHUNK) {
        // The new texts, then the ids of those already there.
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO work_payloads (user_id, body) VALUES {} \
             ON CONFLICT (user_id, body) DO NOTHING RETURNING id, body",
            placeholders(2, chunk.len())
        )));
        for body in chunk {
            q = q.bind(text(tenant)).bind(body.shared());
        }
        added += ids_into(&mut ids, &position, q, &mut *conn).await?;
        let known: Vec<&&JsonText> = chunk
            .iter()
            .filter(|b| ids[position[b.as_str()]].is_none())
            .collect();
        if known.is_empty() {
            continue;
        }
        let mut q = sqlx::query(AssertSqlSafe(format!(
            "SELECT id, body FROM work_payloads WHERE user_id = ? AND body IN ({})",
            super::rows::params(known.len())
        )))
        .bind(text(tenant));
        for body in known {
            q = q.bind(body.shared());
        }
        ids_into(&mut ids, &position, q, &mut *conn).await?;
    }
    sweep.state().added += added;
    // A text without its row (none expected) stays in its items.
    Ok(slots.iter().map(|s| s.and_then(|i| ids[i])).collect())
}

/// Reads the `(id, body)` rows of `q` into `ids`, at each body's
/// `position`; how many rows.
async fn ids_into(
    ids: &mut [Option<i64>],
    position: &foldhash::HashMap<&str, usize>,
    q: Q<'_>,
    conn: &mut SqliteConnection,
) -> Result<u64> {
    let rows = q
        .fetch_all(conn)
        .await
        .map_err(db("storing shared payloads"))?;
    for row in &rows {
        let id: i64 = row.try_get("id").map_err(db("reading a shared payload"))?;
        let body: &str = row
            .try_get("body")
            .map_err(db("reading a shared payload"))?;
        if let Some(&i) = position.get(body) {
            ids[i] = Some(id);
        }
    }
    Ok(rows.len() as u64)
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
        let q = orders_query(chunk, true)?;
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
    sweep: &Sweep,
) -> Result<()> {
    let refs = share_payloads(conn, tenant, items, sweep).await?;
    let chunks: Vec<_> = items.chunks(CHUNK).collect();
    pipelined(
        conn,
        None,
        chunks.len(),
        |i| Ok(work_query(tenant, chunks[i], &refs[i * CHUNK..])),
        "enqueueing work",
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::{Order, Priority};
    use crate::store::{BulkOrder, BulkWork, JsonText, OrderStore};

    use super::super::{CACHE_SIZE, SqliteStore};
    use super::{SWEEP_EVERY, Sweep, SweepState};

    /// A bulk insert shrinks the writer's page cache only while it runs,
    /// and its checkpoint beside the writer ends.
    #[tokio::test]
    async fn the_page_cache_is_restored_after_a_bulk_insert() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = SqliteStore::open(&url).await.expect("open");
        let order = Order::from_json(
            r#"{"tiktok_order_id":"1","customer_handle":"@a","product_name":"Lamp","product_id":"p1","quantity":1,"price":"2.00","created_at":"2025-06-12T10:00:00Z"}"#,
        )
        .expect("order");
        let orders = vec![BulkOrder {
            order,
            work: None,
            decision: None,
        }];
        let got = store.insert_orders("t", orders).await.expect("insert");
        assert!(matches!(got[..], [Ok(true)]), "{got:?}");
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&store.main.writer)
            .await
            .expect("pragma");
        assert_eq!(size.to_string(), CACHE_SIZE);
        // The checkpoint started beside the writer ends (and may start again).
        for _ in 0..500 {
            if !store
                .checkpointing
                .load(std::sync::atomic::Ordering::Acquire)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            !store
                .checkpointing
                .load(std::sync::atomic::Ordering::Acquire)
        );
        store.close().await;
    }

    /// A long payload many orders share is written once and named by each
    /// item; a payload no item names any more goes at the first bulk insert
    /// of the next process (a store opened anew).
    #[tokio::test]
    async fn shared_payloads_are_written_once_and_swept_when_unused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let payload = |n: usize| {
            JsonText::from(
                serde_json::json!({"rules": [format!("r{n}")], "actions": [{"type": "log_analytics_event", "parameters": {"event": "e"}}]}),
            )
        };
        let batch = |from: usize, n: usize| -> Vec<BulkOrder> {
            (from..from + 10)
                .map(|i| BulkOrder {
                    order: Order::from_json(&format!(
                        r#"{{"tiktok_order_id":"{i}","customer_handle":"@a","product_name":"Lamp","product_id":"p1","quantity":1,"price":"2.00","created_at":"2025-06-12T10:00:00Z"}}"#
                    ))
                    .expect("order"),
                    work: Some(BulkWork {
                        kind: "advance".into(),
                        lane: Priority::Standard,
                        run_at: chrono::Utc::now(),
                        payload: payload(n),
                    }),
                    decision: None,
                })
                .collect()
        };
        let bodies = |store: &SqliteStore| {
            let reader = store.main.reader.clone();
            async move {
                sqlx::query_scalar::<_, String>("SELECT body FROM work_payloads ORDER BY id")
                    .fetch_all(&reader)
                    .await
                    .expect("bodies")
            }
        };
        let store = SqliteStore::open(&url).await.expect("open");
        store.insert_orders("t", batch(0, 1)).await.expect("insert");
        assert_eq!(bodies(&store).await, [payload(1).as_str()]);
        let named: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM work_queue WHERE payload_ref IS NOT NULL AND payload = 'null'",
        )
        .fetch_one(&store.main.reader)
        .await
        .expect("count");
        assert_eq!(named, 10);
        // The first load's items gone; a second load in the same process
        // adds its text (no sweep due yet).
        sqlx::query("DELETE FROM work_queue")
            .execute(&store.main.writer)
            .await
            .expect("delete");
        store
            .insert_orders("t", batch(10, 2))
            .await
            .expect("insert");
        assert_eq!(
            bodies(&store).await,
            [payload(1).as_str(), payload(2).as_str()]
        );
        store.close().await;
        // The next process sweeps at its first bulk insert: what no item
        // names goes, the second load's text stays.
        let store = SqliteStore::open(&url).await.expect("open");
        store
            .insert_orders("t", batch(20, 3))
            .await
            .expect("insert");
        assert_eq!(
            bodies(&store).await,
            [payload(2).as_str(), payload(3).as_str()]
        );
        store.close().await;
    }

    /// A sweep is due at first, then once the texts added reach
    /// `SWEEP_EVERY` or the number the last sweep kept.
    #[test]
    fn sweeps_are_spaced_by_what_was_added() {
        let sweep = Sweep::default();
        assert!(sweep.due(), "the first bulk insert sweeps");
        *sweep.state() = SweepState {
            swept: true,
            added: SWEEP_EVERY - 1,
            kept: 10,
        };
        assert!(!sweep.due());
        sweep.state().added += 1;
        assert!(sweep.due());
        *sweep.state() = SweepState {
            swept: true,
            added: 2 * SWEEP_EVERY - 1,
            kept: 2 * SWEEP_EVERY,
        };
        assert!(!sweep.due(), "spaced by what the last sweep kept");
        sweep.state().added += 1;
        assert!(sweep.due());
    }
}
