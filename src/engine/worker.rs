//! One step of one work item: the next-state logic, the actions, and the
//! single store write that records it.

use chrono::{DateTime, Utc};

use super::{EngineError, Inner, WORK_KIND};
use crate::actions::{ActionRecord, Step, StepResult};
use crate::machine::TransitionPlan;
use crate::model::{AutomationStatus, Priority};
use crate::store::{AfterStep, Lease, Settle, Store, StoredOrder, Transition, WorkItem, WorkSpec};

/// What a step asks the store to do.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Record a transition (which settles the lease).
    Write(String, Box<Transition>),
    /// Give the item back, due at this time; nothing recorded.
    Release(Lease, DateTime<Utc>),
    /// The item has nothing left to do.
    Complete(Lease),
}

impl<S: Store> Inner<S> {
    /// The order as this engine last wrote it, if cached. A stale entry
    /// (another worker or a person moved the order) is harmless: the
    /// transition's version check refuses it and the entry is dropped.
    fn cached(&self, tenant: &str, id: crate::store::OrderId) -> Option<StoredOrder> {
        let cache = super::lock(&self.cache);
        cache
            .get(&id)
            .filter(|s| s.order.user_id.as_deref() == Some(tenant))
            .cloned()
    }

    /// Remembers `order` for its next step (or forgets it once it has none).
    pub(super) fn remember(&self, order: StoredOrder) {
        let mut cache = super::lock(&self.cache);
        if self
            .next_state(order.order.current_state.as_str())
            .is_none()
        {
            cache.remove(&order.id);
        } else if cache.len() < super::CACHE_LIMIT || cache.contains_key(&order.id) {
            cache.insert(order.id, order);
        }
    }

    /// Forgets the cached copy of order `id`.
    pub(super) fn forget(&self, id: crate::store::OrderId) {
        super::lock(&self.cache).remove(&id);
    }

    /// The automatic next state after `state`: the first target of the
    /// machine that is not a failure or a cancellation; none for terminal
    /// states and states waiting for a person (`Manual Review`).
    pub(super) fn next_state(&self, state: &str) -> Option<&str> {
        let def = self.machine.state(state)?;
        if def.terminal || def.automation_status == AutomationStatus::ManualReview {
            return None;
        }
        self.machine
            .targets(state)
            .into_iter()
            .map(|s| s.as_str())
            .find(|t| *t != state && !self.is_failure(t) && !self.is_cancel(t))
    }

    pub(super) fn is_failure(&self, state: &str) -> bool {
        self.machine
            .state(state)
            .is_some_and(|s| s.automation_status == AutomationStatus::ManualReview)
    }

    fn is_cancel(&self, state: &str) -> bool {
        state == super::CANCELLED
    }

    /// Whether orders in `state` wait for the carrier's confirmation.
    fn awaits_delivery(&self, state: &str) -> bool {
        self.machine
            .state(state)
            .is_some_and(|s| s.automation_status == AutomationStatus::Shipped)
    }

    /// How the work item continues once the order is in `state`.
    pub(super) fn after(&self, state: &str, now: DateTime<Utc>) -> AfterStep {
        match self.next_state(state) {
            None => AfterStep::Complete,
            Some(_) if self.awaits_delivery(state) => AfterStep::Reschedule {
                run_at: now + self.delivery_check_every,
                payload: None,
            },
            Some(_) => AfterStep::Reschedule {
                run_at: now,
                payload: None,
            },
        }
    }

    /// The first work item of a new order.
    pub(super) fn first_work(&self, lane: Priority, now: DateTime<Utc>) -> WorkSpec {
        WorkSpec {
            kind: WORK_KIND.to_owned(),
            lane,
            run_at: now,
            payload: serde_json::Value::Null,
        }
    }

    /// Runs one claimed work item.
    pub(super) async fn step(&self, item: WorkItem) -> Result<Outcome, EngineError> {
        let tenant = item.lease.tenant.clone();
        let lease = item.lease;
        let stored = match self.cached(&tenant, item.order_id) {
            Some(s) => s,
            None => match self.store.get_order(&tenant, item.order_id).await? {
                Some(s) => s,
                None => return Ok(Outcome::Complete(lease)),
            },
        };
        let state = stored.order.current_state.clone();
        let Some(next) = self.next_state(state.as_str()) else {
            return Ok(Outcome::Complete(lease));
        };
        let now = self.clock.now();
        if self.awaits_delivery(state.as_str()) && !(self.delivery)(&stored.order, now) {
            return Ok(Outcome::Release(lease, now + self.delivery_check_every));
        }
        let plan = match self.machine.transition(&stored.order, next, now) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .fail(&tenant, &stored, Some(lease), Vec::new(), e.to_string(), 0)
                    .await;
            }
        };
        let lane = self.lanes.get(stored.order.priority);
        let run = self.executor.run_step(Step {
            order: &stored.order,
            transition: &plan.transition,
            version: stored.version,
            rollbacks: &plan.rollbacks,
            actions: &plan.actions,
            retry: &lane.retry,
        });
        let report = match lane.timeout.to_std() {
            Ok(limit) => match tokio::time::timeout(limit, run).await {
                Ok(r) => r,
                // The step overran its lane's timeout: give the item back;
                // nothing was recorded, the next attempt starts over.
                Err(_) => return Ok(Outcome::Release(lease, self.clock.now())),
            },
            Err(_) => run.await,
        };
        match report.result {
            StepResult::Succeeded => {
                let at = self.clock.now();
                let mut t = self.transition(&stored, &plan, at, report.duration_ms);
                t.actions_executed = report.records_json();
                t.settle = Some(Settle {
                    lease,
                    then: self.after(plan.to.as_str(), at),
                });
                Ok(Outcome::Write(tenant, Box::new(t)))
            }
            StepResult::Failed { error, .. } => {
                self.fail(
                    &tenant,
                    &stored,
                    Some(lease),
                    report.records,
                    format!("{}: {error}", plan.transition),
                    report.duration_ms,
                )
                .await
            }
            StepResult::Refused { retry_at, .. } => Ok(Outcome::Release(lease, retry_at)),
        }
    }

    /// A transition for `plan` taken at `at`, the step having taken `duration_ms`.
    pub(super) fn transition(
        &self,
        stored: &StoredOrder,
        plan: &TransitionPlan,
        at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Transition {
        let mut t = Transition::from_plan(stored, plan, at);
        t.duration_ms = duration_ms;
        t.processing_time_ms = stored.order.processing_time_ms.saturating_add(duration_ms);
        t
    }

    /// Sends the order to the machine's failure state (manual review),
    /// running that transition's rollbacks and actions; records `records`
    /// of the failed step first and `message` as the error.
    pub(super) async fn fail(
        &self,
        tenant: &str,
        stored: &StoredOrder,
        lease: Option<Lease>,
        mut records: Vec<ActionRecord>,
        message: String,
        spent_ms: u64,
    ) -> Result<Outcome, EngineError> {
        let now = self.clock.now();
        let state = stored.order.current_state.as_str();
        let target = self
            .machine
            .targets(state)
            .into_iter()
            .find(|t| self.is_failure(t.as_str()))
            .map_or(super::FAILED, |t| t.as_str());
        let plan = match self.machine.transition(&stored.order, target, now) {
            Ok(p) => p,
            Err(e) => {
                // No way to manual review from here: try the step again later.
                return match lease {
                    Some(l) => {
                        let later = now + self.lanes.get(stored.order.priority).timeout;
                        Ok(Outcome::Release(l, later))
                    }
                    None => Err(e.into()),
                };
            }
        };
        let lane = self.lanes.get(stored.order.priority);
        let report = self
            .executor
            .run_step(Step {
                order: &stored.order,
                transition: &plan.transition,
                version: stored.version,
                rollbacks: &plan.rollbacks,
                actions: &plan.actions,
                retry: &lane.retry,
            })
            .await;
        records.extend(report.records);
        let at = self.clock.now();
        let mut t = self.transition(stored, &plan, at, spent_ms + report.duration_ms);
        t.actions_executed = serde_json::to_value(&records).unwrap_or_default();
        t.error_message = Some(message);
        t.settle = lease.map(|lease| Settle {
            lease,
            then: AfterStep::Complete,
        });
        Ok(Outcome::Write(tenant.to_owned(), Box::new(t)))
    }
}
