//! [`OrderReads`]: the bounded, indexed reads the operator API and the
//! dashboard make at scale — order counts kept by the store as orders move,
//! a filtered page of orders most urgent first, and the review queue.
//!
//! Each method has a reference implementation that scans every order of the
//! tenant ([`scan`]); the memory store uses it, the SQL backends answer from
//! counters and indexes, and the conformance suite checks they agree.

use std::collections::BTreeMap;
use std::future::Future;

use super::{OrderStore, StoreError, StoredOrder};
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
}

/// The reference implementations: every order of the tenant read, by id
/// pages (what the conformance suite compares the fast reads with).
pub mod scan {
    use super::{BTreeMap, OrderCount, OrderQuery, OrderStore, StoreError, StoredOrder, urgency};

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
}
