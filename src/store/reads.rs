//! [`OrderReads`]: the bounded, indexed reads the operator API and the
//! dashboard make at scale — order counts kept by the store as orders move,
//! a filtered page of orders most urgent first, and the review queue.
//!
//! It also reads a tenant's orders in the order they were created, in
//! pages, with the rules' decision at ingest ([`OrderReads::orders_by_created`]:
//! what `creatorflow backtest` replays).
//!
//! Each method has a reference implementation that scans every order of the
//! tenant ([`scan`]); the memory store uses it, the SQL backends answer from
//! counters and indexes, and the conformance suite checks they agree.

use std::collections::BTreeMap;
use std::future::Future;

use chrono::{DateTime, Utc};

use super::{JsonText, OrderId, OrderStore, StoreError, StoredOrder};
use crate::model::{Impact, Priority};

/// How many of a tenant's orders share one (state, priority, terminal,
/// viral) key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OrderCount {
    /// The orders' current state.
    pub state: String,
    /// Their priority.
    pub priority: Priority,
    /// Whether the state is terminal.
    pub terminal: bool,
    /// Whether their impact is `VIRAL`.
    pub viral: bool,
    /// How many orders (never 0).
    pub n: u64,
}

/// Which orders [`OrderReads::find_orders`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only orders in this state (terminal ones too); `None`: every active
    /// (non-terminal) order.
    pub state: Option<String>,
    /// Only orders of this priority.
    pub priority: Option<Priority>,
}

impl OrderQuery {
    /// Whether `o` matches.
    pub fn matches(&self, o: &StoredOrder) -> bool {
        self.priority.is_none_or(|p| o.order.priority == p)
            && match &self.state {
                Some(st) => o.order.current_state.as_str() == st,
                None => !o.terminal,
            }
    }

    /// How many of the counted orders match.
    pub fn total(&self, counts: &[OrderCount]) -> u64 {
        counts
            .iter()
            .filter(|c| {
                self.priority.is_none_or(|p| c.priority == p)
                    && match &self.state {
                        Some(st) => &c.state == st,
                        None => !c.terminal,
                    }
            })
            .map(|c| c.n)
            .sum()
    }
}

/// Which orders [`OrderReads::orders_by_created`] returns: those created in
/// `[since, until)`, after the cursor `after`, in `(created_at, id)` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedRange {
    /// Only orders created at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only orders created before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only orders after this `(created_at, id)` (the last one of the
    /// previous page).
    pub after: Option<(DateTime<Utc>, OrderId)>,
}

impl CreatedRange {
    /// Whether `o` is in the range.
    pub fn contains(&self, o: &StoredOrder) -> bool {
        let t = o.order.created_at;
        self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
            && self.after.is_none_or(|a| (t, o.id) > a)
    }

    /// The same range, continued after `o`.
    pub fn after_order(self, o: &StoredOrder) -> Self {
        CreatedRange {
            after: Some((o.order.created_at, o.id)),
            ..self
        }
    }
}

/// A stored order with the rules' decision at its ingest.
#[derive(Debug, Clone, PartialEq)]
pub struct DecidedOrder {
    /// The order as stored.
    pub order: StoredOrder,
    /// The decision stored with it ([`super::NewOrder::decision`]), if any.
    pub decision: Option<JsonText>,
}

/// The urgency order of [`OrderStore::active_orders`]: priority, `VIRAL`
/// first, oldest, id.
pub fn urgency(o: &StoredOrder) -> (Priority, bool, chrono::DateTime<chrono::Utc>, uuid::Uuid) {
    (
        o.order.priority,
        o.order.impact != Impact::Viral,
        o.order.created_at,
        o.id,
    )
}

/// Bounded reads of a tenant's orders (see the module docs,
/// `src/store/reads.rs`).
pub trait OrderReads: OrderStore {
    /// The tenant's orders counted by (state, priority, terminal, viral),
    /// sorted by that key; keys without orders are left out.
    fn order_counts(
        &self,
        tenant: &str,
    ) -> impl Future<Output = Result<Vec<OrderCount>, StoreError>> + Send {
        scan::order_counts(self, tenant)
    }

    /// The tenant's orders matching `query`, most urgent first (the order
    /// of [`OrderStore::active_orders`]), at most `limit`.
    fn find_orders(
        &self,
        tenant: &str,
        query: &OrderQuery,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredOrder>, StoreError>> + Send {
        scan::find_orders(self, tenant, query, limit)
    }

    /// At most `limit` of the tenant's orders in `range`, oldest first (by
    /// `created_at`, ties by id), each with its ingest decision. Page on by
    /// passing [`CreatedRange::after_order`] of the last one.
    fn orders_by_created(
        &self,
        tenant: &str,
        range: &CreatedRange,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DecidedOrder>, StoreError>> + Send {
        scan::orders_by_created(self, tenant, range, limit)
    }
}

/// The reference implementations: every order of the tenant read, by id
/// pages (what the conformance suite compares the fast reads with).
pub mod scan {
    use super::{
        BTreeMap, CreatedRange, DecidedOrder, OrderCount, OrderQuery, OrderStore, StoreError,
        StoredOrder, urgency,
    };

    /// Rows per page.
    const PAGE: usize = 1000;

    /// Calls `f` on each of the tenant's orders.
    async fn each<S: OrderStore + ?Sized>(
        store: &S,
        tenant: &str,
        mut f: impl FnMut(StoredOrder) + Send,
    ) -> Result<(), StoreError> {
        let mut after = None;
        loop {
            let page = store.list_orders(tenant, after, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.id);
            page.into_iter().for_each(&mut f);
        }
    }

    /// [`super::OrderReads::order_counts`] by a full scan.
    pub async fn order_counts<S: OrderStore + ?Sized>(
        store: &S,
        tenant: &str,
    ) -> Result<Vec<OrderCount>, StoreError> {
        let mut counts: BTreeMap<(String, crate::model::Priority, bool, bool), u64> =
            BTreeMap::new();
        each(store, tenant, |o| {
            let key = (
                o.order.current_state.as_str().to_owned(),
                o.order.priority,
                o.terminal,
                o.order.impact == crate::model::Impact::Viral,
            );
            *counts.entry(key).or_default() += 1;
        })
        .await?;
        Ok(counts
            .into_iter()
            .map(|((state, priority, terminal, viral), n)| OrderCount {
                state,
                priority,
                terminal,
                viral,
                n,
            })
            .collect())
    }

    /// [`super::OrderReads::find_orders`] by a full scan.
    pub async fn find_orders<S: OrderStore + ?Sized>(
        store: &S,
        tenant: &str,
        query: &OrderQuery,
        limit: usize,
    ) -> Result<Vec<StoredOrder>, StoreError> {
        let mut found = Vec::new();
        each(store, tenant, |o| {
            if query.matches(&o) {
                found.push(o);
            }
        })
        .await?;
        found.sort_by_key(urgency);
        found.truncate(limit);
        Ok(found)
    }

    /// [`super::OrderReads::orders_by_created`] by a full scan (the
    /// decisions read one order at a time).
    pub async fn orders_by_created<S: OrderStore + ?Sized>(
        store: &S,
        tenant: &str,
        range: &CreatedRange,
        limit: usize,
    ) -> Result<Vec<DecidedOrder>, StoreError> {
        let mut found = Vec::new();
        each(store, tenant, |o| {
            if range.contains(&o) {
                found.push(o);
            }
        })
        .await?;
        found.sort_by_key(|o| (o.order.created_at, o.id));
        found.truncate(limit);
        let mut out = Vec::with_capacity(found.len());
        for o in found {
            let decision = store
                .order_with_history(tenant, o.id)
                .await?
                .and_then(|h| h.decision);
            out.push(DecidedOrder { order: o, decision });
        }
        Ok(out)
    }
}
