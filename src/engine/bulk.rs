//! Bulk ingest ([`Engine::ingest_bulk`]): a large load of orders (a
//! backfill, `creatorflow ingest`) in bounded store transactions, with none
//! of the per-order memory a live engine keeps.
//!
//! # What it writes, and what it does not keep
//!
//! Each new order is prepared exactly as [`Engine::ingest`] prepares it
//! ([`Inner::prepare_new`], shared by both): the machine's first state as
//! of now, the viral enricher's facts (its detector warmed by the order),
//! the rule pack's decision (counted in the rule statistics and the window
//! facts), the first work item with the fired rules' actions; an order on
//! which the pack errors is sent to manual review. The store ends in the
//! same state as after `ingest` of the same orders, in the same order
//! (`tests/ingest_bulk.rs`).
//!
//! What differs is memory and round trips: the worker's order cache and
//! the known-id set are neither read nor filled (a bulk load of a million
//! orders would fill both for nothing); instead every batch asks the store
//! once which of its ids the tenant has ([`OrderStore::known_orders`]) and
//! writes the new ones with one [`OrderStore::insert_orders`], which hands
//! nothing back. Memory is therefore one batch, whatever the load.
//!
//! An interrupted load leaves whole batches stored; running it again skips
//! them as known and stores the rest (idempotent on `tiktok_order_id`).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, EngineError, IngestReport, Ingested, Inner, lock, reload, rule_actions};
use crate::model::{Order, Priority};
use crate::rules::{Decision, RuleEngine};
use crate::store::{BulkOrder, BulkWork, JsonText, NewOrder, Store, WorkSpec};
use crate::viral::Enricher;

/// The most orders [`Engine::ingest_bulk`] writes in one store transaction
/// (one durable commit each).
pub const BULK_BATCH: usize = 5_000;

/// A batch of [`Engine::bulk_prepare`]: its new orders evaluated, waiting
/// for [`Engine::bulk_write`]. Holds the engine's ingest gate (shared), so
/// a rule reload that rebuilds the window facts from the store waits for
/// the batch to be written or dropped.
pub struct BulkBatch {
    /// The input's positions of `orders`.
    positions: Vec<usize>,
    /// The new orders, evaluated.
    orders: Vec<BulkOrder>,
    /// The orders the pack errored on (index into `orders`, TikTok id, the
    /// errors), to send to manual review once stored.
    failing: Vec<(usize, String, String)>,
    /// What preparing decided (orders known before, or repeated).
    report: IngestReport,
    /// The TikTok ids of `orders`.
    ids: Arc<InFlight>,
    _gate: tokio::sync::OwnedRwLockReadGuard<()>,
}

impl std::fmt::Debug for BulkBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkBatch")
            .field("orders", &self.orders.len())
            .field("known", &self.report.known)
            .finish_non_exhaustive()
    }
}

impl BulkBatch {
    /// The TikTok ids of the batch's new orders: the next batch, prepared
    /// while this one is written, counts them as known.
    pub fn in_flight(&self) -> Arc<InFlight> {
        self.ids.clone()
    }
}

/// The TikTok ids of a [`BulkBatch`] being written.
#[derive(Debug, Default)]
pub struct InFlight(foldhash::HashSet<String>);

impl<S: Store + 'static> Engine<S> {
    /// Ingests a large batch of orders in store transactions of at most
    /// [`BULK_BATCH`] orders, keeping nothing per order in memory (the
    /// worker's order cache and the known-id set are neither read nor
    /// filled; the store is asked once per batch): what
    /// [`Engine::ingest_many`] stores, with the same report, for loads too
    /// large for the worker's cache to be of use. Orders the tenant already has (and repeats within the input)
    /// are counted as known and not evaluated. A failure leaves the
    /// transactions before it stored; running the batch again stores the
    /// rest.
    pub async fn ingest_bulk(&self, orders: Vec<Order>) -> Result<IngestReport, EngineError> {
        let mut report = IngestReport::default();
        let mut rest = orders.into_iter();
        let mut offset = 0;
        loop {
            let chunk: Vec<Order> = rest.by_ref().take(BULK_BATCH).collect();
            if chunk.is_empty() {
                return Ok(report);
            }
            let n = chunk.len();
            let batch = self.bulk_prepare(chunk, None).await?;
            let r = self.bulk_write(batch).await?;
            report.new += r.new;
            report.known += r.known;
            report.rule_failures += r.rule_failures;
            report
                .refused
                .extend(r.refused.into_iter().map(|(i, why)| (offset + i, why)));
            offset += n;
        }
    }

    /// The first half of [`Engine::ingest_bulk`] for one batch (at most
    /// [`BULK_BATCH`] orders: one store transaction): asks the store which
    /// orders the tenant has (those, the repeats within the batch and the
    /// ids `in_flight`, a batch being written meanwhile, are counted as
    /// known), evaluates the others. [`Engine::bulk_write`] stores them; a
    /// caller may prepare the next batch while one is written (the
    /// evaluation overlaps the store's work), passing that one's
    /// [`BulkBatch::in_flight`]. Positions in reports are within `orders`.
    pub async fn bulk_prepare(
        &self,
        orders: Vec<Order>,
        in_flight: Option<&InFlight>,
    ) -> Result<BulkBatch, EngineError> {
        self.restore().await?;
        let inner = &*self.inner;
        let stored: foldhash::HashSet<String> = {
            let ids: Vec<&str> = orders.iter().map(|o| o.tiktok_order_id.as_str()).collect();
            inner
                .store
                .known_orders(&inner.tenant, &ids)
                .await?
                .into_iter()
                .collect()
        };
        // A reload rebuilding the windows waits for this batch to be stored.
        let gate = inner.gate.clone().read_owned().await;
        let now = inner.clock.now();
        let mut report = IngestReport::default();
        let mut positions = Vec::with_capacity(orders.len());
        let mut batch = Vec::with_capacity(orders.len());
        let mut rule_errors = Vec::new();
        let mut seen: foldhash::HashSet<String> = foldhash::HashSet::default();
        seen.reserve(orders.len());
        {
            let mut rules = lock(&inner.rules);
            let mut enricher = inner.enricher.as_ref().map(|e| lock(e));
            let mut decision = Decision::default();
            let mut memo = Memo::default();
            for (i, order) in orders.into_iter().enumerate() {
                if stored.contains(&order.tiktok_order_id)
                    || in_flight.is_some_and(|f| f.0.contains(&order.tiktok_order_id))
                    || !seen.insert(order.tiktok_order_id.clone())
                {
                    report.known += 1;
                    continue;
                }
                let (order, error) = inner.prepare_new(
                    &mut rules,
                    enricher.as_deref_mut(),
                    &mut decision,
                    order,
                    now,
                );
                let new = match error {
                    Some(e) => {
                        rule_errors.push((batch.len(), e));
                        BulkOrder::from(inner.new_order(&rules, &decision, order, true, now))
                    }
                    None => {
                        let (payload, text) = memo.texts(&rules, &decision);
                        let first = inner.first_work(order.priority, now);
                        BulkOrder {
                            order,
                            work: Some(BulkWork {
                                kind: first.kind,
                                lane: first.lane,
                                run_at: first.run_at,
                                payload,
                            }),
                            decision: text,
                        }
                    }
                };
                positions.push(i);
                batch.push(new);
            }
        }
        let failing = rule_errors
            .into_iter()
            .filter_map(|(n, e)| {
                batch
                    .get(n)
                    .map(|o| (n, o.order.tiktok_order_id.clone(), e))
            })
            .collect();
        Ok(BulkBatch {
            positions,
            orders: batch,
            failing,
            report,
            ids: Arc::new(InFlight(seen)),
            _gate: gate,
        })
    }

    /// The second half of [`Engine::ingest_bulk`]: writes a prepared batch
    /// in one store transaction ([`OrderStore::insert_orders`]) and sends
    /// the orders the pack errored on to manual review. The batch's report.
    ///
    /// [`OrderStore::insert_orders`]: crate::store::OrderStore::insert_orders
    pub async fn bulk_write(&self, batch: BulkBatch) -> Result<IngestReport, EngineError> {
        let inner = &*self.inner;
        let BulkBatch {
            positions,
            orders,
            failing,
            mut report,
            ids: _,
            _gate,
        } = batch;
        if orders.is_empty() {
            return Ok(report);
        }
        let results = inner.store.insert_orders(&inner.tenant, orders).await?;
        for (r, i) in results.iter().zip(&positions) {
            match r {
                Ok(true) => report.new += 1,
                Ok(false) => report.known += 1,
                Err(e) => report.refused.push((*i, e.to_string())),
            }
        }
        for (n, tiktok_order_id, error) in failing {
            if !matches!(results.get(n), Some(Ok(true))) {
                continue;
            }
            let Some(order) = inner
                .store
                .find_order(&inner.tenant, &tiktok_order_id)
                .await?
            else {
                continue;
            };
            let Ingested { order, .. } = self.fail_on_ingest(order, error).await?;
            if inner.is_failure(order.order.current_state.as_str()) {
                report.rule_failures += 1;
            }
        }
        Ok(report)
    }
}

impl<S: Store> Inner<S> {
    /// Prepares a new order for the store, as every ingest does: the tenant
    /// as its `user_id`, the machine's first state as of `now`, enriched,
    /// evaluated by the rules (into `decision`, reused between orders), its
    /// priority and impact. The second value is the rule pack's errors on
    /// it, if any (the order is then `urgent` and gets no work: it goes to
    /// manual review once stored).
    pub(super) fn prepare_new(
        &self,
        rules: &mut RuleEngine,
        enricher: Option<&mut Box<dyn Enricher>>,
        decision: &mut Decision,
        mut order: Order,
        now: DateTime<Utc>,
    ) -> (Order, Option<String>) {
        order.user_id = Some(self.tenant.clone());
        // The order enters the machine's first state now (its state
        // timeout counts from here, not from `created_at`, which may be
        // long past for a backfill).
        order.state_changed_at = Some(now);
        order.updated_at = Some(now);
        // The machine's first state, whatever the input said (a machine
        // need not start in `received`).
        order.current_state = self.machine.initial().clone();
        order.previous_state = None;
        if let Some(e) = enricher {
            e.enrich(&mut order, now);
        }
        rules.evaluate_into(&order, None, decision);
        let error = (!decision.errors.is_empty()).then(|| {
            let pack = rules.pack();
            decision
                .errors
                .iter()
                .map(|(i, m)| {
                    let id = pack.rules().get(*i as usize).map_or("?", |r| r.id.as_str());
                    format!("rule `{id}`: {m}")
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        if error.is_some() {
            order.priority = Priority::Urgent;
        } else {
            order.priority = decision.priority;
            order.impact = decision.impact;
        }
        (order, error)
    }

    /// A new order as [`Engine::ingest`] stores it, [`Inner::prepare_new`]
    /// done: with its first work item (none for an order the pack errored
    /// on) carrying the fired rules' actions, and its decision.
    pub(super) fn new_order(
        &self,
        rules: &RuleEngine,
        decision: &Decision,
        order: Order,
        failed: bool,
        now: DateTime<Utc>,
    ) -> NewOrder {
        let work = (!failed).then(|| WorkSpec {
            payload: rule_actions::payload(rules.pack(), decision),
            ..self.first_work(order.priority, now)
        });
        NewOrder {
            order,
            work,
            decision: reload::ingest_decision(rules.pack(), decision),
        }
    }
}

/// The JSON texts of the decisions of one batch, by what they depend on:
/// orders that fired the same rules share one payload text and one
/// decision text, serialised once (most of a batch fires a few sets).
#[derive(Default)]
struct Memo {
    texts: foldhash::HashMap<Vec<u32>, (JsonText, Option<JsonText>)>,
    key: Vec<u32>,
}

impl Memo {
    /// The first work item's payload and the decision's text for
    /// `decision` (which has no errors) of `rules`' pack.
    fn texts(&mut self, rules: &RuleEngine, decision: &Decision) -> (JsonText, Option<JsonText>) {
        // What `rule_actions::payload` and `reload::ingest_decision` read.
        self.key.clear();
        self.key.extend_from_slice(&decision.matched);
        self.key.push(u32::MAX);
        self.key.extend_from_slice(&decision.rate_limited);
        self.key.push(decision.priority as u32);
        self.key.push(decision.impact as u32);
        if let Some(found) = self.texts.get(self.key.as_slice()) {
            return found.clone();
        }
        let texts = (
            JsonText::from(&rule_actions::payload(rules.pack(), decision)),
            reload::ingest_decision(rules.pack(), decision),
        );
        self.texts.insert(self.key.clone(), texts.clone());
        texts
    }
}
