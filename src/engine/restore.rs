//! Rebuilding the engine's in-memory state from the store after a restart.
//!
//! Two things live in memory for speed and are derived from recent orders:
//! the rules' window facts (`product_orders`, `customer_orders`, … over
//! their `time_window`) and the viral enricher's velocity and baseline. An
//! engine that starts over an existing store replays the tenant's orders
//! created within their reach (the pack's longest window, and a week for
//! the enricher), oldest first, before its first ingest — so a restart
//! neither forgets a spike in progress nor resets a rule's counts.

use chrono::TimeDelta;

use super::{Engine, EngineError, lock};
use crate::model::Order;
use crate::store::{CreatedRange, Store};

/// How far back the viral enricher's state reaches (its longest window and
/// the baseline's memory).
const ENRICHER_REACH: TimeDelta = TimeDelta::days(7);

/// Orders read per page while restoring.
const PAGE: usize = 5_000;

impl<S: Store + 'static> Engine<S> {
    /// Replays the tenant's recent orders into the rules' window facts and
    /// the viral enricher, once: the first [`ingest`](Engine::ingest) calls
    /// it, a host may call it earlier (at start-up) to pay the cost there.
    /// Returns how many orders were replayed (by this or the earlier call).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use creatorflow::{engine::EngineBuilder, store::MemoryStore};
    /// let engine = EngineBuilder::new(MemoryStore::new())
    ///     .simulated_handlers()
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(engine.restore().await.unwrap(), 0); // a fresh store
    /// # });
    /// ```
    pub async fn restore(&self) -> Result<usize, EngineError> {
        let inner = &*self.inner;
        let n = inner
            .restored
            .get_or_try_init(|| async {
                let reach = {
                    let rules = lock(&inner.rules).window_reach();
                    if inner.enricher.is_some() {
                        rules.max(ENRICHER_REACH)
                    } else {
                        rules
                    }
                };
                let started = std::time::Instant::now();
                let replayed = self
                    .replay_recent(reach, |page| {
                        let mut rules = lock(&inner.rules);
                        let mut enricher = inner.enricher.as_ref().map(|e| lock(e));
                        for o in page {
                            rules.record(o);
                            if let Some(e) = enricher.as_mut() {
                                e.record(
                                    &o.product_id,
                                    &o.customer_handle,
                                    o.created_at,
                                    o.quantity,
                                );
                            }
                        }
                    })
                    .await?;
                tracing::info!(
                    tenant = %inner.tenant,
                    orders = replayed,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "window facts restored from the store"
                );
                Ok::<usize, EngineError>(replayed)
            })
            .await?;
        Ok(*n)
    }

    /// Calls `record` on the tenant's orders created within `reach` of now,
    /// oldest first, a page at a time (none for a reach of zero); returns
    /// how many. Read through the store's creation-time index from
    /// `now - reach` on, so that the cost follows the orders within reach,
    /// not every order the tenant ever had, and memory holds one page.
    pub(super) async fn replay_recent(
        &self,
        reach: TimeDelta,
        mut record: impl FnMut(&[Order]) + Send,
    ) -> Result<usize, EngineError> {
        let inner = &*self.inner;
        if reach <= TimeDelta::zero() {
            return Ok(0);
        }
        let mut range = CreatedRange {
            since: Some(inner.clock.now() - reach),
            ..CreatedRange::default()
        };
        let mut replayed = 0;
        loop {
            let page = inner
                .store
                .orders_by_created(&inner.tenant, &range, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            range = range.after_order(&last.order);
            let full = page.len() == PAGE;
            let orders: Vec<Order> = page.into_iter().map(|d| d.order.order).collect();
            replayed += orders.len();
            record(&orders);
            if !full {
                break;
            }
        }
        Ok(replayed)
    }
}
