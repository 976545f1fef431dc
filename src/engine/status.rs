//! [`Engine::status`]: counts and the integrity check of `creatorflow status`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Engine, EngineError};
use crate::store::{Holders, OrderWithHistory, Store, TenantScope};

/// Counts by state and lane, and the integrity check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The tenant's orders.
    pub orders: u64,
    /// Orders by current state.
    pub by_state: BTreeMap<String, u64>,
    /// Orders by lane (priority), terminal ones included.
    pub by_lane: BTreeMap<String, u64>,
    /// The integrity check.
    pub integrity: Integrity,
    /// The tenant's steps in flight (claimed, lease not expired) and who
    /// holds them: workers whose heartbeat is alive, or dead ones (whose
    /// steps the next live worker takes over once their heartbeat lapsed).
    pub in_flight: Holders,
}

/// The result of the integrity check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Integrity {
    /// No problem found.
    pub ok: bool,
    /// What is wrong, one line each.
    pub problems: Vec<String>,
}

/// How many orders [`Engine::status`] reads per page.
const PAGE: usize = 500;

impl<S: Store + 'static> Engine<S> {
    /// Counts the tenant's orders by state and lane, and checks integrity:
    /// every order's history replays from the machine's initial state to its
    /// current state through allowed transitions, each version recorded
    /// exactly once (no step twice), and no work item holds a lease past
    /// its expiry (a dead worker's).
    pub async fn status(&self) -> Result<Status, EngineError> {
        let store = self.store();
        let tenant = self.tenant();
        let mut status = Status {
            orders: 0,
            by_state: BTreeMap::new(),
            by_lane: BTreeMap::new(),
            integrity: Integrity {
                ok: true,
                problems: Vec::new(),
            },
            in_flight: Holders::default(),
        };
        let mut after = None;
        loop {
            let page = store.list_orders(tenant, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for o in &page {
                status.orders += 1;
                *status
                    .by_state
                    .entry(o.order.current_state.to_string())
                    .or_default() += 1;
                *status
                    .by_lane
                    .entry(o.order.priority.as_str().to_owned())
                    .or_default() += 1;
                match store.order_with_history(tenant, o.id).await? {
                    Some(h) => self.replay(&h, &mut status.integrity.problems),
                    None => status
                        .integrity
                        .problems
                        .push(format!("order {} vanished while checking", o.id)),
                }
            }
            if page.len() < PAGE {
                break;
            }
        }
        let now = self.inner.clock.now();
        let queue = store
            .queue_summary(TenantScope::Tenant(tenant), now)
            .await?;
        if queue.expired_leases > 0 {
            status.integrity.problems.push(format!(
                "{} work item(s) hold a lease past its expiry (a worker died or stalled; start a worker to resume)",
                queue.expired_leases
            ));
        }
        status.in_flight = store.holders(TenantScope::Tenant(tenant), now).await?;
        status.integrity.ok = status.integrity.problems.is_empty();
        Ok(status)
    }

    fn replay(&self, o: &OrderWithHistory, problems: &mut Vec<String>) {
        let machine = self.machine();
        let id = o.order.id;
        let mut state = machine.initial().to_string();
        for (i, h) in o.history.iter().enumerate() {
            let expected = i as u64 + 1;
            if h.version != expected {
                problems.push(format!(
                    "order {id}: history row {expected} has version {} (a step recorded twice or missing)",
                    h.version
                ));
            }
            if h.from.as_str() != state {
                problems.push(format!(
                    "order {id}: step {expected} leaves `{}` but the order was in `{state}`",
                    h.from
                ));
            }
            // A row from a state to itself records an event that does not
            // move the order (a timeout's escalation); any state may have one.
            if h.from != h.to && !machine.can_transition(h.from.as_str(), h.to.as_str()) {
                problems.push(format!(
                    "order {id}: step {expected} `{}` -> `{}` is not a transition of the machine",
                    h.from, h.to
                ));
            }
            state = h.to.to_string();
        }
        if state != o.order.order.current_state.as_str() {
            problems.push(format!(
                "order {id}: history ends in `{state}` but the order is in `{}`",
                o.order.order.current_state
            ));
        }
        if o.order.version != o.history.len() as u64 {
            problems.push(format!(
                "order {id}: version {} but {} history rows",
                o.order.version,
                o.history.len()
            ));
        }
    }
}
