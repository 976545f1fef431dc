//! The workflow runtime: an [`Engine`] ingests orders and drives them to
//! completion through priority lanes, actions, retries and leases.
//!
//! The store is the source of truth: every order has at most one work item
//! (kind `advance`) in its priority lane; a worker claims due items with a
//! lease (per-lane limits = lane concurrency, VIRAL first then oldest),
//! runs the next step — the machine plans the transition, the
//! [executor](crate::actions::Executor) runs its actions — and records it
//! with **one** [`OrderStore::transitions`](crate::store::OrderStore::transitions) call that writes the state and the
//! history row, settles the lease and schedules the next step. A worker
//! that dies mid-step loses nothing: its heartbeat lapses (or, for a
//! worker that keeps none, its lease) and the step is claimed again; the
//! lease and version checks mean no step is recorded twice.
//!
//! Next state (the plan's orchestrator, read from the machine): the first
//! target of the current state that is neither a failure (`Manual Review`)
//! nor a cancellation — received → validated → processing →
//! inventory_reserved → label_generated → shipped → delivered. A step whose
//! action fails for good sends the order to `failed`; an order in a
//! `Shipped` state waits for the carrier's confirmation, checked on a
//! schedule ([`EngineBuilder::delivery_check_every`]). A step refused by an
//! open circuit breaker is put back until the breaker's cool-down ends,
//! without a history row. With external events
//! ([`EngineBuilder::external_events`]) an order in a state that
//! `waits_for` a confirmation is not moved by workers: its work item sleeps
//! until the state's timeout (or is done, without one), and
//! [`Engine::confirm_shipped`] / [`Engine::confirm_delivered`] move it.
//!
//! # Decisions
//!
//! - **Rule actions run with the first step.** Ingest applies `escalate_priority`
//!   (the lane is decided then) and leaves the fired rules' other actions, as
//!   declared, in the first work item's payload (with the fired rules' ids);
//!   the first step runs them through the executor (side effects: a failure
//!   is recorded, the order goes on) and `escalate_to_manual` sends the order
//!   to manual review naming the rule. In the payload, they survive a restart
//!   with the queue, and a worker with another pack (another tenant's, or
//!   one reloaded since) runs what the ingesting pack decided.
//! - **State timeouts are checked when an order's item is claimed.** A due
//!   `transition:` timeout takes that transition (received 72 h → failed); a due
//!   `escalate:` timeout raises priority/impact once, recorded as a history row
//!   from the state to itself (shipped 7 d → urgent). A shipped order's delivery
//!   check is scheduled no later than its state's timeout. An ingested order
//!   enters its first state at ingest time (its `state_changed_at`), so a
//!   backfill of old orders does not time out at once.
//! - **In-memory state is rebuilt from the store.** The rules' window facts and
//!   the viral enricher are replayed from the tenant's orders within their
//!   reach (the pack's longest window, a week for the enricher) before the
//!   first ingest (`Engine::restore`).
//! - **A worker's order cache is checked against the claim count.** The engine
//!   keeps the order it last wrote with the claim count of its work item; the
//!   copy is used only if this claim is the very next one (no other worker
//!   claimed the item since). Other orders of a round are read in one
//!   `get_orders` call per tenant. Two workers on one database therefore never
//!   run a step from a stale copy (which the version check would refuse, wasting
//!   the step).
//! - **Steps chain under one lease and one write.** When a step leads straight
//!   to another that is due now, the worker runs it at once on the order as the
//!   step left it (`store::apply_transition`, the same code the store applies),
//!   under the same lease; the chain is written as one batch in which every
//!   transition but the last holds the lease (`AfterStep::Hold`, checked) and
//!   the last settles it. received → shipped is one claim and one write, not
//!   five; the chain stops at a waiting step (a delivery check, a state
//!   waiting for the world), a failure, 16 steps
//!   (`EngineBuilder::max_chain`; 1 turns chaining off), or when the
//!   lease would not outlast another step (a claim's lease is twice the longest
//!   lane timeout, so every lane chains; a dead worker's items do not wait
//!   for that: they are taken over once its heartbeat lapses, see
//!   `heartbeat.rs`). `Round::more` says whether anything
//!   touched is due again at once, so a driver need not claim again to find out.
//! - **Known limit: a cancellation racing a step in flight.** `cancel` runs
//!   the rollbacks of the state the store holds. A step (or chain) already
//!   running when the cancellation lands has made its handler calls (an
//!   inventory reservation, a label); its write then fails the version check
//!   and is dropped, and those calls are not compensated (their idempotency
//!   keys let the host's services find them). A chain widens the window from
//!   one step to the chain; `max_chain(1)` narrows it back. The fix is to run,
//!   for a dropped chain, the cancellation's rollbacks of the state the chain
//!   had reached; not built yet.
//! - **A duplicate delivery is not counted twice.** The engine remembers the
//!   `tiktok_order_id`s the store confirmed (bounded, 200k, oldest evicted);
//!   a known one goes to the store without enrichment or evaluation (the store
//!   answers with the stored order), so velocity and window facts count each
//!   order once.
//! - **History actions are JSON text.** `actions_executed` is a `JsonText`
//!   (shared text, serialised once from the action records, parsed when read),
//!   not a `serde_json::Value` tree copied by every layer.

mod builder;
mod bulk;
mod cache;
mod error;
pub mod external;
mod heartbeat;
mod known;
mod lanes;
mod operator;
mod reload;
mod restore;
mod rule_actions;
mod rule_stats;
mod run_loop;
mod status;
#[cfg(test)]
mod tests;
mod worker;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

pub use builder::EngineBuilder;
pub use bulk::{BULK_BATCH, BulkBatch, InFlight};
pub use error::{BuildError, EngineError};
pub use heartbeat::HeartbeatPolicy;
pub use lanes::{LaneConfig, Lanes};
pub use operator::Command;
pub use run_loop::{Backoff, RunPolicy};
pub use status::{Integrity, Status};

use crate::actions::{Executor, ExecutorStats};
use crate::clock::Clock;
use crate::machine::Machine;
use crate::model::{Order, Priority};
use crate::rules::{RuleEngine, RulePack};
use crate::store::{
    ClaimRequest, Created, Dashboard, NewOrder, OrderId, QueueSummary, Store, StoreError,
    StoredOrder, TenantScope, Transition,
};
use crate::viral::Enricher;
use worker::Outcome;

/// The work item kind the engine uses for every automatic step.
pub const WORK_KIND: &str = "advance";
const FAILED: &str = "failed";
const CANCELLED: &str = crate::machine::CANCELLED;

/// Whether the carrier confirmed a shipped order's delivery at a time.
pub type DeliveryCheck = Arc<dyn Fn(&Order, DateTime<Utc>) -> bool + Send + Sync>;

/// The embeddable workflow runtime. Cheap to clone (shared state).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use chrono::TimeDelta;
/// use creatorflow::{Clock, ManualClock, Order, engine::EngineBuilder, store::MemoryStore};
///
/// let clock = Arc::new(ManualClock::new("2025-06-12T10:00:00Z".parse().unwrap()));
/// let engine = EngineBuilder::new(MemoryStore::new())
///     .clock(clock.clone())
///     .simulated_handlers()
///     .build()
///     .unwrap();
/// let order = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@ana",
///     "product_name":"Lamp","product_id":"p1","quantity":1,"price":"25.00",
///     "created_at":"2025-06-12T10:00:00Z"}"#).unwrap();
/// let first = engine.ingest(order.clone()).await.unwrap();
/// assert!(first.created);
/// assert!(!engine.ingest(order).await.unwrap().created); // idempotent
///
/// let idle = engine.run_until_idle().await.unwrap();
/// let shipped = engine.order(first.order.id).await.unwrap();
/// assert_eq!(shipped.order.current_state, "shipped");
/// // The delivery check is scheduled, not busy-waited: advance virtual time.
/// clock.set(idle.next_due.unwrap() + TimeDelta::days(2));
/// engine.run_until_idle().await.unwrap();
/// let done = engine.order(first.order.id).await.unwrap();
/// assert_eq!(done.order.current_state, "delivered");
/// assert_eq!(done.order.flow_progress, 100);
/// # });
/// ```
pub struct Engine<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("machine", &self.inner.machine.name())
            .field("tenant", &self.inner.tenant)
            .field("worker", &self.inner.worker)
            .finish_non_exhaustive()
    }
}

struct Inner<S> {
    store: S,
    machine: Machine,
    rules: Mutex<RuleEngine>,
    /// The pack `rules` evaluates (its version goes on every transition).
    pack: Mutex<Arc<RulePack>>,
    /// Held (shared) by an ingest from evaluation to store write; held
    /// alone by a reload that rebuilds the window facts from the store, so
    /// that no order is evaluated or stored meanwhile (see `reload`).
    gate: Arc<tokio::sync::RwLock<()>>,
    clock: Arc<dyn Clock>,
    executor: Executor,
    lanes: Lanes,
    enricher: Option<Mutex<Box<dyn Enricher>>>,
    tenant: String,
    worker: String,
    delivery_check_every: TimeDelta,
    /// The most steps a claim runs back to back for one order.
    max_chain: usize,
    delivery: DeliveryCheck,
    serve_all_tenants: bool,
    /// Whether waiting states wait for confirmations from the world
    /// ([`EngineBuilder::external_events`]).
    external_events: bool,
    /// Whether the ids remembered as stored are all the store has
    /// ([`EngineBuilder::sole_ingester`]).
    sole_ingester: bool,
    /// How the worker loops keep this worker's heartbeat ([`EngineBuilder::heartbeat`]).
    heartbeat: Option<HeartbeatPolicy>,
    /// Orders as last written, with the claim count of their work item then.
    cache: Mutex<cache::OrderCache>,
    /// `tiktok_order_id`s stored, so duplicates are not enriched again.
    known: Mutex<known::KnownOrders>,
    /// Orders replayed by [`Engine::restore`], once.
    restored: tokio::sync::OnceCell<usize>,
    /// The leases of a round that failed because the store went away,
    /// handed back by the next round once it is back: their orders do not
    /// wait for the leases to lapse.
    stranded: Mutex<Vec<crate::store::Lease>>,
}

/// Whether the order of `t` has its next step due within [`cache::OrderCache::HORIZON`]
/// (a chain's inner transitions and completions count as soon: the chain's
/// last transition decides, and a completed item caches nothing).
fn next_soon(t: &Transition) -> bool {
    match t.settle.as_ref().map(|s| &s.then) {
        Some(crate::store::AfterStep::Reschedule { run_at, .. }) => {
            *run_at - t.at <= cache::OrderCache::HORIZON
        }
        _ => true,
    }
}

/// The most orders [`Engine::ingest_many`] writes in one store transaction.
pub const INGEST_BATCH: usize = 5_000;

/// What [`Engine::ingest`] did with one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingested {
    /// The stored order (after the rule-error failure, if any).
    pub order: StoredOrder,
    /// `false` when the tenant already had this `tiktok_order_id`.
    pub created: bool,
}

/// What [`Engine::ingest_many`] did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct IngestReport {
    /// Orders stored now.
    pub new: usize,
    /// Orders the tenant already had (nothing changed).
    pub known: usize,
    /// Orders refused, by position in the input, with the reason.
    pub refused: Vec<(usize, String)>,
    /// New orders stored as `failed` because the rule pack errored on them.
    pub rule_failures: usize,
}

/// What one claim round did ([`Engine::run_once`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Round {
    /// The items claimed, in claim order: order, lane, viral.
    pub claimed: Vec<(OrderId, Priority, bool)>,
    /// Steps recorded.
    pub recorded: usize,
    /// Steps whose write lost a race (lease lapsed or the order moved on);
    /// nothing was written for them.
    pub lost: usize,
    /// Whether work may be due right away: a lane gave all it was allowed
    /// (more may be waiting), or an item was given back or rescheduled due
    /// now. When `false`, nothing this round touched is due before later,
    /// and a driver may wait for the next event instead of claiming again.
    pub more: bool,
}

/// What [`Engine::run_until_idle`] did.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Idle {
    /// Items claimed in all.
    pub claimed: usize,
    /// Steps recorded in all.
    pub recorded: usize,
    /// When the next item becomes due (a delivery check, a deferred step, a
    /// lease expiry, the timeout of a state waiting for the world); `None`
    /// when the queue is empty. A virtual-time driver
    /// advances its clock there.
    pub next_due: Option<DateTime<Utc>>,
    /// Steps of workers whose heartbeat lapsed that this worker gave back
    /// to the queue (see [`HeartbeatPolicy`]); it then claimed them like
    /// any due step.
    pub taken_over: u64,
}

/// A metrics snapshot for the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// The store's dashboard figures for the engine's tenant (last hour).
    pub dashboard: Dashboard,
    /// The queue, over the tenants the workers serve.
    pub queue: QueueSummary,
    /// Action counters.
    pub actions: ExecutorStats,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: Store + 'static> Engine<S> {
    /// A builder over `store`.
    pub fn builder(store: S) -> EngineBuilder<S> {
        EngineBuilder::new(store)
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.inner.machine
    }

    /// The executor (breaker states, counters).
    pub fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    /// The tenant `ingest`, `cancel` and `retry` act for.
    pub fn tenant(&self) -> &str {
        &self.inner.tenant
    }

    fn scope(&self) -> TenantScope<'_> {
        if self.inner.serve_all_tenants {
            TenantScope::All
        } else {
            TenantScope::Tenant(&self.inner.tenant)
        }
    }

    /// The tenant's order `id`.
    pub async fn order(&self, id: OrderId) -> Result<StoredOrder, EngineError> {
        self.inner
            .store
            .get_order(&self.inner.tenant, id)
            .await?
            .ok_or(EngineError::NotFound(id))
    }

    /// Ingests one order; see [`Engine::ingest_many`]. A refused order is
    /// [`StoreError::Invalid`].
    pub async fn ingest(&self, order: Order) -> Result<Ingested, EngineError> {
        self.recall(&order.tiktok_order_id).await?;
        let mut out = self.ingest_batch(vec![order]).await?;
        match out.pop() {
            Some(r) => r,
            None => Err(StoreError::Invalid {
                message: "empty batch result".into(),
            }
            .into()),
        }
    }

    /// Remembers `id` as stored if the store has it and this engine does not
    /// remember it (an id forgotten by the bounded set, or stored by another
    /// process), so that a duplicate is not enriched or evaluated again.
    async fn recall(&self, id: &str) -> Result<(), EngineError> {
        let inner = &*self.inner;
        {
            let known = lock(&inner.known);
            // The sole ingester's memory, complete, is the store's answer.
            if known.contains(id) || (inner.sole_ingester && known.complete()) {
                return Ok(());
            }
        }
        if !inner
            .store
            .known_orders(&inner.tenant, &[id])
            .await?
            .is_empty()
        {
            lock(&inner.known).insert(id);
        }
        Ok(())
    }

    /// Ingests a batch, idempotent on `(tenant, tiktok_order_id)`, in store
    /// transactions of at most [`INGEST_BATCH`] orders (a batch of any size
    /// is written in bounded steps; a failure leaves the steps before it
    /// stored, and running the batch again stores the rest). Orders the
    /// tenant already has are skipped in bulk (one indexed store read per
    /// step, no evaluation), counted as known. Each new order gets the tenant as
    /// `user_id` and enters the machine's first state now (`state_changed_at`
    /// and `updated_at` are the engine clock's time, so state timeouts count
    /// from ingest), is enriched (if the engine has an enricher), evaluated by
    /// the rules (priority and impact), stored with its first work item. An
    /// order on which the rule pack errors is stored and sent to `failed`
    /// with priority `urgent` (manual review), the errors in its history.
    pub async fn ingest_many(&self, orders: Vec<Order>) -> Result<IngestReport, EngineError> {
        self.restore().await?;
        let mut report = IngestReport::default();
        let mut rest = orders.into_iter().enumerate();
        loop {
            let chunk: Vec<(usize, Order)> = rest.by_ref().take(INGEST_BATCH).collect();
            if chunk.is_empty() {
                return Ok(report);
            }
            self.ingest_chunk(chunk, &mut report).await?;
        }
    }

    /// One transaction of [`Engine::ingest_many`]: the orders the tenant
    /// already has (remembered, else named by one store read) are counted
    /// as known and go no further; the others are evaluated and stored.
    async fn ingest_chunk(
        &self,
        chunk: Vec<(usize, Order)>,
        report: &mut IngestReport,
    ) -> Result<(), EngineError> {
        let inner = &*self.inner;
        let ask: Vec<&str> = {
            let known = lock(&inner.known);
            chunk
                .iter()
                .map(|(_, o)| o.tiktok_order_id.as_str())
                .filter(|t| !known.contains(t))
                .collect()
        };
        // The sole ingester's memory, complete, is the store's answer.
        let sole = inner.sole_ingester && lock(&inner.known).complete();
        let stored: std::collections::HashSet<String> = if ask.is_empty() || sole {
            std::collections::HashSet::new()
        } else {
            let found = inner.store.known_orders(&inner.tenant, &ask).await?;
            found.into_iter().collect()
        };
        let (positions, fresh): (Vec<usize>, Vec<Order>) = {
            let mut known = lock(&inner.known);
            let mut fresh = Vec::with_capacity(chunk.len());
            for (i, o) in chunk {
                if known.contains(&o.tiktok_order_id) {
                    report.known += 1;
                } else if stored.contains(&o.tiktok_order_id) {
                    known.insert(&o.tiktok_order_id);
                    report.known += 1;
                } else {
                    fresh.push((i, o));
                }
            }
            fresh.into_iter().unzip()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        for (i, r) in positions.into_iter().zip(self.ingest_batch(fresh).await?) {
            match r {
                Ok(x) if x.created => {
                    report.new += 1;
                    if inner.is_failure(x.order.order.current_state.as_str()) {
                        report.rule_failures += 1;
                    }
                }
                Ok(_) => report.known += 1,
                Err(e) => report.refused.push((i, e.to_string())),
            }
        }
        Ok(())
    }

    async fn ingest_batch(
        &self,
        orders: Vec<Order>,
    ) -> Result<Vec<Result<Ingested, EngineError>>, EngineError> {
        self.restore().await?;
        let inner = &*self.inner;
        // A reload rebuilding the windows waits for this batch to be stored.
        let _gate = inner.gate.read().await;
        let now = inner.clock.now();
        let mut batch = Vec::with_capacity(orders.len());
        let mut rule_errors = Vec::with_capacity(orders.len());
        {
            let mut rules = lock(&inner.rules);
            let mut enricher = inner.enricher.as_ref().map(|e| lock(e));
            let known = lock(&inner.known);
            let mut in_batch: crate::FastMap<String, ()> = crate::FastMap::default();
            let mut decision = crate::rules::Decision::default();
            for mut order in orders {
                order.user_id = Some(inner.tenant.clone());
                // A duplicate delivery (stored before, or earlier in this
                // batch): the store answers with the stored order; it must
                // not count again in the viral velocity or the window facts.
                if known.contains(&order.tiktok_order_id)
                    || in_batch.insert(order.tiktok_order_id.clone(), ()).is_some()
                {
                    batch.push(NewOrder {
                        order,
                        work: None,
                        decision: None,
                    });
                    rule_errors.push(None);
                    continue;
                }
                let (order, error) = inner.prepare_new(
                    &mut rules,
                    enricher.as_deref_mut(),
                    &mut decision,
                    order,
                    now,
                );
                batch.push(inner.new_order(&rules, &decision, order, error.is_some(), now));
                rule_errors.push(error);
            }
        }
        let created = inner.store.create_orders(&inner.tenant, &batch).await?;
        {
            let mut known = lock(&inner.known);
            for c in created.iter().flatten() {
                known.insert(&c.order.order.tiktok_order_id);
            }
        }
        let mut out = Vec::with_capacity(created.len());
        for (r, err) in created.into_iter().zip(rule_errors) {
            out.push(match (r, err) {
                (Ok(Created { order, created }), Some(msg)) if created => {
                    self.fail_on_ingest(order, msg).await
                }
                (Ok(Created { order, created }), _) => {
                    if created {
                        inner.remember(order.clone(), 0);
                    }
                    Ok(Ingested { order, created })
                }
                (Err(e), _) => Err(e.into()),
            });
        }
        Ok(out)
    }

    async fn fail_on_ingest(
        &self,
        order: StoredOrder,
        msg: String,
    ) -> Result<Ingested, EngineError> {
        let inner = &*self.inner;
        let outcome = inner
            .fail(
                &inner.tenant,
                &order,
                None,
                Vec::new(),
                format!("rule pack error: {msg}"),
                0,
            )
            .await?;
        let Outcome::Write(tenant, t) = outcome else {
            return Ok(Ingested {
                order,
                created: true,
            });
        };
        let mut t = *t;
        t.priority = Some(Priority::Urgent);
        let order = inner.store.transition(&tenant, &t).await?;
        Ok(Ingested {
            order,
            created: true,
        })
    }

    /// One claim round: claims due work in every lane (up to each lane's
    /// concurrency), runs the steps concurrently, and records them in one
    /// group-committed store call.
    pub async fn run_once(&self) -> Result<Round, EngineError> {
        self.round(None).await
    }

    /// [`run_once`](Self::run_once), under a stopping loop's `stop` (the
    /// leases claimed are noted there; chains end early once it stops).
    async fn round(&self, stop: Option<&run_loop::Stop>) -> Result<Round, EngineError> {
        self.release_stranded().await?;
        let inner = &self.inner;
        let limits = inner.lanes.limits();
        let now = inner.clock.now();
        let items = inner
            .store
            .claim(
                self.scope(),
                &ClaimRequest {
                    worker: &inner.worker,
                    lanes: &limits,
                    lease: inner.lanes.lease(),
                    now,
                },
            )
            .await?;
        if items.is_empty() {
            return Ok(Round::default());
        }
        if let Some(stop) = stop {
            stop.hold(items.iter().map(|i| i.lease.clone()));
        }
        let leases: Vec<_> = items.iter().map(|i| i.lease.clone()).collect();
        let result = self.run_claimed(items, &limits, stop).await;
        if result.as_ref().is_err_and(run_loop::store_away) {
            lock(&inner.stranded).extend(leases);
        }
        result
    }

    /// Gives back the leases of rounds that failed because the store went
    /// away (see `Inner::stranded`); those already settled or lapsed are
    /// dropped. Fails (keeping the rest) while the store is still away.
    async fn release_stranded(&self) -> Result<(), EngineError> {
        let inner = &self.inner;
        let stranded = std::mem::take(&mut *lock(&inner.stranded));
        for (n, lease) in stranded.iter().enumerate() {
            let now = inner.clock.now();
            match inner.store.release(lease, Some(now), now).await {
                Err(e) if !e.is_lease_lost() => {
                    lock(&inner.stranded).extend(stranded[n..].iter().cloned());
                    return Err(e.into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The rest of a round ([`Engine::run_once`]): runs the claimed `items`
    /// and records them.
    async fn run_claimed(
        &self,
        items: Vec<crate::store::WorkItem>,
        limits: &[crate::store::LaneLimit],
        stop: Option<&run_loop::Stop>,
    ) -> Result<Round, EngineError> {
        let inner = &self.inner;
        let mut round = Round {
            claimed: items
                .iter()
                .map(|i| (i.order_id, i.lane, i.viral))
                .collect(),
            ..Round::default()
        };
        round.more = limits
            .iter()
            .any(|l| l.limit > 0 && items.iter().filter(|i| i.lane == l.lane).count() >= l.limit);
        // The orders this engine has no current copy of (another worker
        // moved them, or this engine did not ingest them): one read per
        // tenant for the round.
        let mut loaded = self.load_missing(&items).await?;
        // The steps of a round run concurrently on this task (handlers are
        // I/O-bound; no spawn, no cross-thread wake-ups).
        let outcomes = join_all(items.into_iter().map(|item| {
            let order = loaded.remove(&item.order_id);
            inner.step(item, order, stop)
        }))
        .await;
        // The transitions to write and the tenant of each (an index into
        // `tenants`): each transition is moved once more, into the batch.
        let mut tenants: Vec<String> = Vec::new();
        let mut writes: Vec<(usize, Transition)> = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(Outcome::Write(tenant, t)) => {
                    writes.push((tenant_index(&mut tenants, tenant), *t));
                }
                Ok(Outcome::Chain(tenant, chain)) => {
                    let i = tenant_index(&mut tenants, tenant);
                    writes.extend(chain.into_iter().map(|t| (i, t)));
                }
                Ok(Outcome::Release(lease, at)) => {
                    let now = inner.clock.now();
                    round.more |= at <= now;
                    settle(inner.store.release(&lease, Some(at), now).await, &mut round)?;
                }
                Ok(Outcome::Complete(lease)) => settle(
                    inner.store.complete(&lease, inner.clock.now()).await,
                    &mut round,
                )?,
                Err(EngineError::Store(e)) if e.is_lease_lost() || e.is_conflict() => {
                    round.lost += 1
                }
                Err(e) => return Err(e),
            }
        }
        if !writes.is_empty() {
            round.more |= writes.iter().any(|(_, t)| {
                matches!(
                    t.settle.as_ref().map(|s| &s.then),
                    Some(crate::store::AfterStep::Reschedule { run_at, .. }) if *run_at <= t.at
                )
            });
            let keys: Vec<_> = writes
                .iter()
                .map(|(_, t)| {
                    (
                        t.order_id,
                        t.settle.as_ref().map(|s| s.lease.clone()),
                        next_soon(t),
                    )
                })
                .collect();
            let batch: Vec<(&str, Transition)> = writes
                .into_iter()
                .map(|(i, t)| (tenants[i].as_str(), t))
                .collect();
            let results = inner.store.transitions(&batch).await?;
            // A chain's transitions are adjacent: only the last one's order
            // is worth caching.
            let last: Vec<bool> = (0..keys.len())
                .map(|i| keys.get(i + 1).is_none_or(|next| next.0 != keys[i].0))
                .collect();
            // A chain's transitions share a lease: give it back once.
            let mut released = std::collections::HashSet::new();
            for ((r, (order_id, lease, soon)), last) in results.into_iter().zip(keys).zip(last) {
                match r {
                    Ok(order) => {
                        round.recorded += 1;
                        match lease.as_ref().filter(|_| last) {
                            Some(lease) if soon => inner.remember(order, lease.attempt),
                            // Its next step is far off (a delivery check, a
                            // long retry): a copy kept that long is memory
                            // held per order in flight, for one read saved.
                            Some(_) => inner.forget(order_id),
                            None => {}
                        }
                    }
                    Err(e) if e.is_conflict() => {
                        // The order moved on under us (a stale cached copy, a
                        // cancellation): give the item back at once; the next
                        // round reads the order afresh.
                        round.lost += 1;
                        inner.forget(order_id);
                        if let Some(lease) = lease.as_ref().filter(|l| released.insert(l.id)) {
                            let now = inner.clock.now();
                            settle(inner.store.release(lease, Some(now), now).await, &mut round)?;
                        }
                    }
                    Err(e) if e.is_lease_lost() => {
                        round.lost += 1;
                        inner.forget(order_id);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(round)
    }

    /// Reads, in one call per tenant, the orders of `items` this engine has
    /// no current cached copy of.
    async fn load_missing(
        &self,
        items: &[crate::store::WorkItem],
    ) -> Result<crate::FastMap<OrderId, StoredOrder>, EngineError> {
        let inner = &self.inner;
        let mut missing: std::collections::BTreeMap<&str, Vec<OrderId>> = Default::default();
        for item in items {
            if inner.cached(&item.lease, item.order_id).is_none() {
                missing
                    .entry(item.lease.tenant.as_str())
                    .or_default()
                    .push(item.order_id);
            }
        }
        let mut loaded = crate::FastMap::default();
        for (tenant, ids) in missing {
            for order in inner.store.get_orders(tenant, &ids).await? {
                loaded.insert(order.id, order);
            }
        }
        Ok(loaded)
    }

    /// When the next item of the engine's scope becomes due (waiting for a
    /// store that is away, as `policy` says).
    async fn next_due(&self, policy: RunPolicy) -> Result<Option<DateTime<Utc>>, EngineError> {
        let summary = run_loop::through_outages(policy, "workers", || async {
            Ok(self
                .inner
                .store
                .queue_due(self.scope(), self.inner.clock.now())
                .await?)
        })
        .await?;
        Ok(summary.next_run_at)
    }

    /// Runs claim rounds until no work is due (work scheduled for later,
    /// such as delivery checks, does not count) and says when the next item
    /// becomes due. While the store is away (PostgreSQL restarting) it
    /// waits for it with [`RunPolicy::default`]'s backoff; any other store
    /// error ends it.
    pub async fn run_until_idle(&self) -> Result<Idle, EngineError> {
        let policy = RunPolicy::default();
        let mut idle = Idle::default();
        loop {
            let round = run_loop::through_outages(policy, "workers", || self.run_once()).await?;
            if round.claimed.is_empty() {
                break;
            }
            idle.claimed += round.claimed.len();
            idle.recorded += round.recorded;
        }
        idle.next_due = self.next_due(policy).await?;
        Ok(idle)
    }

    /// Runs workers until `shutdown` completes (e.g. `tokio::signal::ctrl_c()`),
    /// polling every `poll` (real time) when idle: [`Engine::run_with`]
    /// [`RunPolicy::polling`].
    pub async fn run(
        &self,
        shutdown: impl Future<Output = ()>,
        poll: Duration,
    ) -> Result<Idle, EngineError> {
        self.run_with(RunPolicy::polling(poll), shutdown).await
    }

    /// Runs workers until `shutdown` completes, paced by `policy`, keeping
    /// this worker's heartbeat and taking over the steps of dead workers
    /// ([`EngineBuilder::heartbeat`]; retired when the loop ends).
    /// Graceful: no more claims; the round in flight stops chaining and is
    /// given `policy.stop_grace` (default: the longest lane timeout) to
    /// finish and be recorded; if it is still running then, it is dropped
    /// and its leases released, due at once, for another worker (see
    /// `run_loop`). A failing round (a store error) never ends the loop: it
    /// pauses with a capped exponential backoff and tries again (see
    /// [`RunPolicy`]). The closing read of the queue (`next_due`) is left
    /// empty if the store is away at that moment or does not answer within
    /// a few seconds (the workers stop anyway);
    /// the error returned is only that of a closing read that failed
    /// otherwise.
    pub async fn run_with(
        &self,
        policy: RunPolicy,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Idle, EngineError> {
        let stop = run_loop::Stop::default();
        let grace = policy.stop_grace.unwrap_or_else(|| {
            self.inner
                .lanes
                .max_timeout()
                .to_std()
                .unwrap_or(Duration::from_secs(30))
        });
        let taken = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let beating = self.start_beating(taken.clone()).await;
        let (mut total, ended) =
            run_loop::drive(policy, shutdown, (&stop, grace), "workers", || {
                self.round(Some(&stop))
            })
            .await;
        drop(beating);
        if ended == run_loop::Ended::Abandoned {
            self.release_all(stop.take_held()).await;
        }
        self.retire().await;
        total.taken_over = taken.load(std::sync::atomic::Ordering::Relaxed);
        let summary = self
            .inner
            .store
            .queue_summary(self.scope(), self.inner.clock.now());
        match tokio::time::timeout(run_loop::CLOSING_READ_LIMIT, summary).await {
            Ok(Ok(summary)) => total.next_due = summary.next_run_at,
            Ok(Err(e)) if !e.is_transient() => return Err(e.into()),
            Ok(Err(e)) => {
                tracing::warn!(task = "workers", error = %e, "stopped; next due unknown")
            }
            Err(_) => tracing::warn!(
                task = "workers",
                "stopped; next due unknown: no answer from the store"
            ),
        }
        Ok(total)
    }

    /// Gives `leases` back, due now (a dropped round's): another worker
    /// takes them at once. A lease already settled is skipped; a store
    /// error is logged (the lease then lapses as usual).
    async fn release_all(&self, leases: Vec<crate::store::Lease>) {
        let (mut released, mut failed) = (0usize, 0usize);
        for lease in &leases {
            let now = self.inner.clock.now();
            match self.inner.store.release(lease, Some(now), now).await {
                Ok(()) => released += 1,
                Err(e) if e.is_lease_lost() => {}
                Err(e) => {
                    failed += 1;
                    tracing::warn!(tenant = %lease.tenant, error = %e, "releasing a lease failed; it lapses instead");
                }
            }
        }
        tracing::info!(released, failed, "leases of the dropped round released");
    }

    /// A metrics snapshot: the tenant's dashboard over the last hour, the
    /// queue, and the action counters.
    pub async fn metrics(&self) -> Result<Metrics, EngineError> {
        let now = self.inner.clock.now();
        let dashboard = self
            .inner
            .store
            .dashboard(&self.inner.tenant, now, TimeDelta::hours(1))
            .await?;
        let queue = self.inner.store.queue_summary(self.scope(), now).await?;
        Ok(Metrics {
            dashboard,
            queue,
            actions: self.inner.executor.stats(),
        })
    }
}

/// The index of `tenant` in `tenants`, added if new (a round has one
/// tenant, or a few).
fn tenant_index(tenants: &mut Vec<String>, tenant: String) -> usize {
    match tenants.iter().position(|t| *t == tenant) {
        Some(i) => i,
        None => {
            tenants.push(tenant);
            tenants.len() - 1
        }
    }
}

/// Polls every future to completion on the current task; the outputs in input order.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn settle(r: Result<(), StoreError>, round: &mut Round) -> Result<(), EngineError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.is_lease_lost() => {
            round.lost += 1;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
