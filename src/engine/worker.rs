//! One step of one work item: the next-state logic, the actions, and the
//! single store write that records it.

use chrono::{DateTime, Utc};

use std::sync::Arc;

use chrono::TimeDelta;

use super::{EngineError, Inner, WORK_KIND, rule_actions};

/// The most steps of one order a claim runs before writing: the default of [`super::EngineBuilder::max_chain`].
pub(super) const MAX_CHAIN: usize = 16;
use crate::actions::{ActionRecord, RetrySpec, Step, StepReport, StepResult};
use crate::machine::{Timeout, TimeoutAction, TransitionPlan, WaitFor};
use crate::model::{AutomationStatus, Priority};
use crate::store::{AfterStep, Lease, Settle, Store, StoredOrder, Transition, WorkItem, WorkSpec};

/// What a step asks the store to do.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Record a transition (which settles the lease).
    Write(String, Box<Transition>),
    /// Record a chain of transitions of one order, in order (the last
    /// settles the lease, the others hold it).
    Chain(String, Vec<Transition>),
    /// Give the item back, due at this time; nothing recorded.
    Release(Lease, DateTime<Utc>),
    /// The item has nothing left to do.
    Complete(Lease),
}

impl<S: Store> Inner<S> {
    /// The order as this engine last wrote it, if cached and still current
    /// for `lease`: the cached copy was written when the order's work item
    /// had been claimed `attempt` times, and this claim is the very next one
    /// (no other worker claimed the item in between, so none advanced the
    /// order through the queue). Anything else is read from the store. A
    /// copy made stale outside the queue (a cancellation by another
    /// process) is still harmless: the transition's version check refuses
    /// it and the step is redone from the stored order.
    pub(super) fn cached(
        &self,
        lease: &Lease,
        id: crate::store::OrderId,
    ) -> Option<Arc<StoredOrder>> {
        let cache = super::lock(&self.cache);
        cache
            .get(&id)
            .filter(|(s, attempt)| {
                s.order.user_id.as_deref() == Some(lease.tenant.as_str())
                    && attempt.checked_add(1) == Some(lease.attempt)
            })
            .map(|(s, _)| Arc::clone(s))
    }

    /// Remembers `order`, written under a lease whose item had been claimed
    /// `attempt` times (0 for a new order), for its next step; forgets it
    /// once it has none, and while it waits for the world: a confirmation
    /// (possibly through another engine, such as a tenant's webhook
    /// processor) moves it without claiming its item, so the claim count
    /// cannot tell that a copy went stale.
    pub(super) fn remember(&self, order: StoredOrder, attempt: u32) {
        let mut cache = super::lock(&self.cache);
        let state = order.order.current_state.as_str();
        if self.next_state(state).is_none() || self.waiting(state).is_some() {
            cache.remove(&order.id);
        } else {
            cache.keep(order, attempt, self.clock.now());
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
        self.machine.automatic_next(state).map(|s| s.as_str())
    }

    /// What orders in `state` wait for, when this engine lets the world
    /// move them ([`super::EngineBuilder::external_events`]); `None` for
    /// every state otherwise.
    pub(super) fn waiting(&self, state: &str) -> Option<WaitFor> {
        self.machine
            .waits_for(state)
            .filter(|_| self.external_events)
    }

    /// How the work item of an order waiting in `state` since `since`
    /// continues at `now`: due when the state's timeout falls due, or done
    /// when there is no timeout still ahead (the confirmation moves the
    /// order and schedules its work again; nothing is polled).
    pub(super) fn wait_then(
        &self,
        state: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> AfterStep {
        match self
            .machine
            .timeout_of(state)
            .map(|t| since + t.after)
            .filter(|due| *due > now)
        {
            Some(run_at) => AfterStep::Reschedule {
                run_at,
                payload: None,
            },
            None => AfterStep::Complete,
        }
    }

    pub(super) fn is_failure(&self, state: &str) -> bool {
        self.machine
            .state(state)
            .is_some_and(|s| s.automation_status == AutomationStatus::ManualReview)
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
            Some(_) if self.waiting(state).is_some() => self.wait_then(state, now, now),
            Some(_) if self.awaits_delivery(state) => AfterStep::Reschedule {
                // Checked again after the interval, or when the state's
                // timeout falls due if that is sooner.
                run_at: now
                    + self
                        .machine
                        .timeout_of(state)
                        .map_or(self.delivery_check_every, |t| {
                            t.after.min(self.delivery_check_every)
                        }),
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
    /// `loaded` is the order as read for this round, when this engine had
    /// no current copy of it.
    ///
    /// Steps chain: while a step leads straight to another one that is due
    /// now (received → validated → … → shipped), the next runs at once on
    /// the order as the previous step left it, under the same lease, and
    /// the whole chain is recorded by one store write (every transition but
    /// the last holds the lease, the last settles it). An order's way to
    /// `shipped` takes one claim and one write instead of five. The chain
    /// stops at a step that waits (a delivery check, an open breaker, a
    /// state waiting for the world), at a failure, after `max_chain` steps,
    /// when the lease would not outlast another step, or when the worker
    /// loop is stopping (`stop`).
    pub(super) async fn step(
        &self,
        item: WorkItem,
        loaded: Option<StoredOrder>,
        stop: Option<&super::run_loop::Stop>,
    ) -> Result<Outcome, EngineError> {
        let tenant = item.lease.tenant.clone();
        let lease = item.lease.clone();
        let stored = match loaded
            .map(Arc::new)
            .or_else(|| self.cached(&lease, item.order_id))
        {
            Some(s) => s,
            // Boxed: a rare path (the round loads what it can in one
            // read), and a store future (sqlx's, behind `AnyStore`) would
            // otherwise make every step's future several KiB larger.
            None => match Box::pin(self.store.get_order(&tenant, item.order_id)).await? {
                Some(s) => Arc::new(s),
                None => return Ok(Outcome::Complete(lease)),
            },
        };
        let clears_payload = !item.payload.is_null();
        let mut chain: Vec<Transition> = Vec::new();
        let mut current = stored;
        let mut payload = item.payload;
        loop {
            let outcome = match self
                .step_one(&tenant, &lease, Arc::clone(&current), &payload)
                .await
            {
                Ok(o) => o,
                // Record what the chain did; the failed step is retried by
                // the next claim.
                Err(_) if !chain.is_empty() => Outcome::Release(lease.clone(), self.clock.now()),
                Err(e) => return Err(e),
            };
            let t = match outcome {
                Outcome::Write(_, t) => *t,
                done => {
                    let Some(last) = chain.last_mut() else {
                        return Ok(done);
                    };
                    let then = match done {
                        Outcome::Release(_, at) => AfterStep::Reschedule {
                            run_at: at,
                            payload: clears_payload.then_some(serde_json::Value::Null),
                        },
                        _ => AfterStep::Complete,
                    };
                    last.settle = Some(Settle {
                        lease: lease.clone(),
                        then,
                    });
                    return Ok(Outcome::Chain(tenant, chain));
                }
            };
            let goes_on = matches!(
                t.settle.as_ref().map(|s| &s.then),
                Some(AfterStep::Reschedule { run_at, .. }) if *run_at <= t.at
            ) && chain.len() + 1 < self.max_chain
                && !stop.is_some_and(|s| s.stopping())
                && self.clock.now() + self.lanes.get(current.order.priority).timeout
                    < lease.expires_at;
            if !goes_on {
                if chain.is_empty() {
                    return Ok(Outcome::Write(tenant, Box::new(t)));
                }
                chain.push(t);
                return Ok(Outcome::Chain(tenant, chain));
            }
            // In place unless the cache still shares it (the chain's
            // first step): later steps own their copy.
            crate::store::apply_transition(Arc::make_mut(&mut current), &t);
            let mut held = t;
            if let Some(settle) = held.settle.as_mut() {
                settle.then = AfterStep::Hold;
            }
            chain.push(held);
            payload = serde_json::Value::Null;
        }
    }

    /// One step of the order `stored`, under `lease`; `payload` is the work
    /// item's (the fired rules' actions, for the first step).
    async fn step_one(
        &self,
        tenant: &str,
        lease: &Lease,
        stored: Arc<StoredOrder>,
        payload: &serde_json::Value,
    ) -> Result<Outcome, EngineError> {
        let tenant = tenant.to_owned();
        let lease = lease.clone();
        let now = self.clock.now();
        if let Some(timeout) = self.machine.due_timeout(&stored.order, now)
            && let Some(outcome) = self
                .on_timeout(&tenant, &stored, &lease, timeout, now)
                .await?
        {
            return Ok(outcome);
        }
        let state = stored.order.current_state.clone();
        let Some(next) = self.next_state(state.as_str()) else {
            return Ok(Outcome::Complete(lease));
        };
        if self.waiting(state.as_str()).is_some() {
            // Only the world moves it on (or its timeout, handled above).
            let since = stored
                .order
                .state_changed_at
                .unwrap_or(stored.order.created_at);
            return Ok(match self.wait_then(state.as_str(), since, now) {
                AfterStep::Reschedule { run_at, .. } => Outcome::Release(lease, run_at),
                _ => Outcome::Complete(lease),
            });
        }
        if self.awaits_delivery(state.as_str()) && !(self.delivery)(&stored.order, now) {
            return Ok(Outcome::Release(lease, self.next_check(&stored.order, now)));
        }
        let lane = self.lanes.get(stored.order.priority);
        // The fired rules' actions, with the first step (see `rule_actions`).
        let mut records = Vec::new();
        let mut spent_ms = 0;
        let mut asked = None;
        if !payload.is_null() && state == *self.machine.initial() {
            let asked = asked.insert(rule_actions::from_payload(&self.current_pack(), payload));
            if !asked.actions.is_empty() {
                let run = self.executor.run_step(Step {
                    order: &stored.order,
                    transition: rule_actions::RULES_TRANSITION,
                    version: stored.version,
                    rollbacks: &[],
                    actions: &asked.actions,
                    retry: &lane.retry,
                });
                let Some(report) = timed(lane.timeout, run).await else {
                    return Ok(Outcome::Release(lease, self.clock.now()));
                };
                records = report.records;
                spent_ms = report.duration_ms;
            }
            if let Some(rule) = &asked.manual {
                let message = format!("rule `{rule}` asked for manual review (escalate_to_manual)");
                return self
                    .fail(&tenant, &stored, Some(lease), records, message, spent_ms)
                    .await;
            }
        }
        let plan = match self.machine.transition(&stored.order, next, now) {
            Ok(p) => p,
            Err(e) => {
                return self
                    .fail(
                        &tenant,
                        &stored,
                        Some(lease),
                        records,
                        e.to_string(),
                        spent_ms,
                    )
                    .await;
            }
        };
        let run = self
            .executor
            .run_step(plan_step(&stored, &plan, &lane.retry));
        // A step that overruns its lane's timeout is given back; nothing was
        // recorded, the next attempt starts over.
        let Some(report) = timed(lane.timeout, run).await else {
            return Ok(Outcome::Release(lease, self.clock.now()));
        };
        records.extend(report.records);
        spent_ms += report.duration_ms;
        match report.result {
            StepResult::Succeeded => {
                let at = self.clock.now();
                let mut t = self.transition(&stored, &plan, at, spent_ms);
                t.actions_executed = crate::actions::records_json(&records);
                if let Some(asked) = &asked {
                    t.reason = Some(rule_actions::reason(&plan.transition, asked));
                }
                let mut then = self.after(plan.to.as_str(), at);
                if let AfterStep::Reschedule { payload: p, .. } = &mut then
                    && !payload.is_null()
                {
                    // The rule actions ran: the next step must not run them again.
                    *p = Some(serde_json::Value::Null);
                }
                t.settle = Some(Settle { lease, then });
                Ok(Outcome::Write(tenant, Box::new(t)))
            }
            StepResult::Failed { error, .. } => {
                self.fail(
                    &tenant,
                    &stored,
                    Some(lease),
                    records,
                    format!("{}: {error}", plan.transition),
                    spent_ms,
                )
                .await
            }
            StepResult::Refused { retry_at, .. } => Ok(Outcome::Release(lease, retry_at)),
        }
    }

    /// When a shipped order is checked again: after the check interval, or
    /// when its state's timeout falls due if that is sooner (and still ahead).
    fn next_check(&self, order: &crate::model::Order, now: DateTime<Utc>) -> DateTime<Utc> {
        let every = now + self.delivery_check_every;
        match self.machine.timeout_of(order.current_state.as_str()) {
            Some(t) => {
                let due = order.state_changed_at.unwrap_or(order.created_at) + t.after;
                if due > now && due < every { due } else { every }
            }
            None => every,
        }
    }

    /// Acts on the order's state timeout, due at `now`: takes the timeout's
    /// transition (with its actions, like any step), or raises the order's
    /// priority / impact (a history row from the state to itself, which
    /// moves its work to the new lane). `None` when there is nothing to do:
    /// the escalation would not raise anything (already as urgent, or
    /// escalated before), or the transition's guard refuses it.
    async fn on_timeout(
        &self,
        tenant: &str,
        stored: &StoredOrder,
        lease: &Lease,
        timeout: &Timeout,
        now: DateTime<Utc>,
    ) -> Result<Option<Outcome>, EngineError> {
        let after = humanize(timeout.after);
        match &timeout.action {
            TimeoutAction::Transition(name) => {
                let Ok(plan) = self.machine.transition_named(&stored.order, name, now) else {
                    return Ok(None);
                };
                let report = self.run_plan(stored, &plan).await;
                let at = self.clock.now();
                let mut t = self.transition(stored, &plan, at, report.duration_ms);
                t.actions_executed = report.records_json();
                t.reason = Some(format!("timeout: {after} in `{}`: {name}", plan.from));
                if let StepResult::Failed { error, .. } = &report.result {
                    t.error_message = Some(error.to_string());
                }
                t.settle = Some(Settle {
                    lease: lease.clone(),
                    then: self.after(plan.to.as_str(), at),
                });
                Ok(Some(Outcome::Write(tenant.to_owned(), Box::new(t))))
            }
            TimeoutAction::Escalate {
                new_priority,
                new_impact,
            } => {
                let order = &stored.order;
                let priority = new_priority.filter(|p| *p < order.priority);
                let impact = new_impact.filter(|i| *i < order.impact);
                if priority.is_none() && impact.is_none() {
                    return Ok(None);
                }
                let state = order.current_state.clone();
                let def = self.machine.state(state.as_str());
                let mut raised = Vec::new();
                if let Some(p) = priority {
                    raised.push(format!("priority {} → {p}", order.priority));
                }
                if let Some(i) = impact {
                    raised.push(format!("impact {} → {i}", order.impact));
                }
                let since = order.state_changed_at.unwrap_or(order.created_at);
                let then = match self.waiting(state.as_str()) {
                    // Escalated: the order keeps waiting, with no timeout left ahead.
                    Some(_) => self.wait_then(state.as_str(), since, now),
                    None => self.after(state.as_str(), now),
                };
                let t = Transition {
                    order_id: stored.id,
                    expected_state: state.clone(),
                    expected_version: Some(stored.version),
                    to: state.clone(),
                    terminal: def.is_some_and(|d| d.terminal),
                    progress: order.flow_progress,
                    automation_status: order.automation_status,
                    processing_time_ms: order.processing_time_ms,
                    priority,
                    impact,
                    reason: Some(format!(
                        "timeout: {after} in `{state}`: escalate ({})",
                        raised.join(", ")
                    )),
                    automated: true,
                    duration_ms: 0,
                    actions_executed: crate::model::JsonText::empty_array(),
                    error_message: None,
                    actor: None,
                    pack_version: Some(self.pack_version()),
                    at: now,
                    settle: Some(Settle {
                        lease: lease.clone(),
                        then,
                    }),
                    enqueue: None,
                };
                Ok(Some(Outcome::Write(tenant.to_owned(), Box::new(t))))
            }
        }
    }

    /// Runs `plan`'s rollbacks and actions on `stored`, with the retry policy
    /// of the order's lane.
    pub(super) async fn run_plan(&self, stored: &StoredOrder, plan: &TransitionPlan) -> StepReport {
        let lane = self.lanes.get(stored.order.priority);
        self.executor
            .run_step(plan_step(stored, plan, &lane.retry))
            .await
    }

    /// A transition for `plan` taken at `at`, the step having taken `duration_ms`.
    pub(super) fn transition(
        &self,
        stored: &StoredOrder,
        plan: &TransitionPlan,
        at: DateTime<Utc>,
        duration_ms: u64,
    ) -> Transition {
        Transition {
            order_id: stored.id,
            expected_state: plan.from.clone(),
            expected_version: Some(stored.version),
            to: plan.to.clone(),
            terminal: plan.terminal,
            progress: plan.progress,
            automation_status: plan.automation_status,
            processing_time_ms: stored.order.processing_time_ms.saturating_add(duration_ms),
            priority: None,
            impact: None,
            reason: Some(plan.transition.clone()),
            automated: true,
            duration_ms,
            actions_executed: crate::store::JsonText::empty_array(),
            error_message: None,
            actor: None,
            pack_version: Some(self.pack_version()),
            at,
            settle: None,
            enqueue: None,
        }
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
        let report = self.run_plan(stored, &plan).await;
        records.extend(report.records);
        let at = self.clock.now();
        let mut t = self.transition(stored, &plan, at, spent_ms + report.duration_ms);
        t.actions_executed = crate::actions::records_json(&records);
        t.error_message = Some(message);
        t.settle = lease.map(|lease| Settle {
            lease,
            then: AfterStep::Complete,
        });
        Ok(Outcome::Write(tenant.to_owned(), Box::new(t)))
    }
}

/// Runs `step` under the lane's `limit`; `None` when it overran.
async fn timed(
    limit: TimeDelta,
    step: impl std::future::Future<Output = StepReport>,
) -> Option<StepReport> {
    match limit.to_std() {
        Ok(limit) => tokio::time::timeout(limit, step).await.ok(),
        Err(_) => Some(step.await),
    }
}

/// `72h`, `7d`, `90m`, `30s`: a duration as a machine file would write it
/// (days from a week up, hours below).
fn humanize(d: TimeDelta) -> String {
    let s = d.num_seconds();
    match s {
        s if s >= 7 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// The step that carries out `plan` on `stored`, actions without a retry
/// policy of their own retrying under `retry`.
fn plan_step<'a>(
    stored: &'a StoredOrder,
    plan: &'a TransitionPlan,
    retry: &'a RetrySpec,
) -> Step<'a> {
    Step {
        order: &stored.order,
        transition: &plan.transition,
        version: stored.version,
        rollbacks: &plan.rollbacks,
        actions: &plan.actions,
        retry,
    }
}
