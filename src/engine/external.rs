//! Events from outside the engine: TikTok Shop telling us an order is in
//! transit or delivered, and the guard that keeps a stale event from moving
//! an order backwards.
//!
//! Without external events the engine drives an order to `shipped` itself
//! and then waits for the carrier through the
//! [`DeliveryCheck`](super::DeliveryCheck); with them
//! ([`EngineBuilder::external_events`](super::EngineBuilder::external_events))
//! an order waits in each state that `waits_for` a confirmation (the shipped
//! workflow: `label_generated` for `in_transit`, `shipped` for `delivered`)
//! until one of these calls moves it. An external confirmation takes the
//! same transitions through the machine, with their actions and one history
//! row each (reason `…: <why>`), so the history reads the same whichever way
//! an order got there; the pending scheduled check of a delivered order then
//! finds nothing to do. With external events, the order's work item then
//! follows it (due now for an automatic step, or at the timeout of the
//! state it waits in next).
//!
//! Known limit: a confirmation that lands while a worker holds the order's
//! item (claimed at the waiting state's deadline, whose escalation was
//! already made or whose timeout transition's guard refuses) cannot move
//! that item; the worker puts it back for the old state (done, or at its
//! deadline). In the shipped workflow nothing is lost: the next state waits
//! too and is re-armed on the next claim, or is terminal. In a machine with
//! automatic steps after a confirmation, those steps wait until that
//! deadline, or, after a waiting state without one, for the next event or
//! a person. The window is the few milliseconds of that claim.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::worker::Outcome;
use super::{Engine, EngineError};
use crate::actions::StepResult;
use crate::model::AutomationStatus;
use crate::store::{
    AfterStep, OrderEvent, OrderId, Scheduled, Store, StoreError, StoredOrder, Transition, WorkSpec,
};

/// The most confirmations [`Engine::confirm_shipped_many`] writes in one
/// store call: a carrier's whole day of deliveries can come due in one
/// minute, and one batch's reads, steps and the store's undo record for
/// it are held in memory until it is written.
const CONFIRM_CHUNK: usize = 256;

/// What an external confirmation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum External {
    /// The order moved; `steps` transitions were recorded.
    Moved {
        /// The order afterwards.
        order: StoredOrder,
        /// How many transitions were recorded.
        steps: usize,
    },
    /// The order already is where the event says (or further): nothing to do.
    Unchanged(StoredOrder),
    /// The order cannot follow the event (a terminal state such as
    /// `cancelled`, or waiting for a person in manual review).
    Refused {
        /// The order, unchanged.
        order: StoredOrder,
        /// Why.
        reason: String,
    },
}

/// How far an external confirmation takes an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Shipped,
    Delivered,
}

/// At most this many steps (or lost races) per confirmation.
const MAX_STEPS: usize = 16;

impl<S: Store + 'static> Engine<S> {
    /// The engine's clock reading (for callers that write beside the
    /// engine, such as the webhook inbox).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The tenant's order with this TikTok order id, if any.
    pub async fn find_by_tiktok_id(
        &self,
        tiktok_order_id: &str,
    ) -> Result<Option<StoredOrder>, EngineError> {
        let inner = &*self.inner;
        Ok(inner
            .store
            .find_order(&inner.tenant, tiktok_order_id)
            .await?)
    }

    /// TikTok says the order is with the carrier: an order before `shipped`
    /// takes the machine's automatic steps up to it now (each with its
    /// actions and history row); a shipped or delivered order is unchanged.
    pub async fn confirm_shipped(&self, id: OrderId, why: &str) -> Result<External, EngineError> {
        self.confirm(id, why, Goal::Shipped).await
    }

    /// TikTok says the order is delivered: a shipped order moves to its
    /// delivered state through the machine (an order before `shipped` takes
    /// the steps up to it first).
    pub async fn confirm_delivered(&self, id: OrderId, why: &str) -> Result<External, EngineError> {
        self.confirm(id, why, Goal::Delivered).await
    }

    async fn confirm(&self, id: OrderId, why: &str, goal: Goal) -> Result<External, EngineError> {
        let out = self.take_steps(id, None, 0, why, goal).await?;
        if let External::Moved { order, .. } = &out {
            self.follow(order, self.inner.clock.now()).await?;
        }
        Ok(out)
    }

    /// [`confirm_shipped`](Self::confirm_shipped) for many orders at once,
    /// one result per id in order: the orders are read in one call, each
    /// one's step is planned and its actions run in turn (as one call after
    /// another would), the steps are written in one store call, and the work
    /// items that follow them are scheduled in one more; a few hundred ids at
    /// a time. An order that needs more than one step, that moved meanwhile,
    /// or that is named a second time goes on as
    /// [`confirm_shipped`](Self::confirm_shipped) would. The end is the same
    /// as confirming the ids one by one. How the simulator's carrier hands
    /// over a minute's pickups.
    pub async fn confirm_shipped_many(
        &self,
        ids: &[OrderId],
        why: &str,
    ) -> Result<Vec<Result<External, EngineError>>, EngineError> {
        self.confirm_many(ids, why, Goal::Shipped).await
    }

    /// [`confirm_delivered`](Self::confirm_delivered) for many orders at
    /// once, as [`confirm_shipped_many`](Self::confirm_shipped_many).
    pub async fn confirm_delivered_many(
        &self,
        ids: &[OrderId],
        why: &str,
    ) -> Result<Vec<Result<External, EngineError>>, EngineError> {
        self.confirm_many(ids, why, Goal::Delivered).await
    }

    /// Confirms `ids` in chunks of [`CONFIRM_CHUNK`].
    async fn confirm_many(
        &self,
        ids: &[OrderId],
        why: &str,
        goal: Goal,
    ) -> Result<Vec<Result<External, EngineError>>, EngineError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CONFIRM_CHUNK) {
            out.extend(self.confirm_chunk(chunk, why, goal).await?);
        }
        Ok(out)
    }

    /// [`Engine::confirm_many`] for one chunk: one read, one write.
    async fn confirm_chunk(
        &self,
        ids: &[OrderId],
        why: &str,
        goal: Goal,
    ) -> Result<Vec<Result<External, EngineError>>, EngineError> {
        let inner = &*self.inner;
        let mut read: crate::FastMap<OrderId, StoredOrder> = inner
            .store
            .get_orders(&inner.tenant, ids)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        let mut out: Vec<Option<Result<External, EngineError>>> =
            ids.iter().map(|_| None).collect();
        // The steps to write, and each one's position in `ids`, order and
        // time.
        let mut batch: Vec<(&str, Transition)> = Vec::new();
        let mut slots: Vec<(usize, OrderId, DateTime<Utc>)> = Vec::new();
        // Positions of ids named before in the chunk: confirmed after it.
        let mut again: Vec<usize> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            inner.forget(*id);
            let Some(stored) = read.remove(id) else {
                if ids[..i].contains(id) {
                    again.push(i);
                } else {
                    out[i] = Some(Err(EngineError::NotFound(*id)));
                }
                continue;
            };
            match self.next_step(stored, 0, why, goal).await {
                Ok(Next::Done(ext)) => out[i] = Some(Ok(ext)),
                Ok(Next::Write(t)) => {
                    slots.push((i, t.order_id, t.at));
                    batch.push((inner.tenant.as_str(), t));
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let results = inner.store.transitions(&batch).await?;
        // When each moved order's last step was made: its step in the
        // batch, or the time after the steps taken for it afterwards.
        let mut moved_at: Vec<(usize, DateTime<Utc>)> = Vec::new();
        for ((i, id, step_at), r) in slots.into_iter().zip(results) {
            out[i] = Some(match r {
                Ok(order) => {
                    let ext = self.take_steps(id, Some(order), 1, why, goal).await;
                    if let Ok(External::Moved { steps, .. }) = &ext {
                        let at = if *steps == 1 {
                            step_at
                        } else {
                            inner.clock.now()
                        };
                        moved_at.push((i, at));
                    }
                    ext
                }
                // The order moved meanwhile: from the store again.
                Err(e) if e.is_conflict() => self.confirm(id, why, goal).await,
                // This order's answer alone, as its own call would give it.
                Err(e) => Err(e.into()),
            });
        }
        let moved: Vec<(&StoredOrder, DateTime<Utc>)> = moved_at
            .iter()
            .filter_map(|(i, at)| match &out[*i] {
                Some(Ok(External::Moved { order, .. })) => Some((order, *at)),
                _ => None,
            })
            .collect();
        self.follow_many(&moved).await?;
        for i in again {
            out[i] = Some(self.confirm(ids[i], why, goal).await);
        }
        Ok(out
            .into_iter()
            .zip(ids)
            .map(|(r, id)| r.unwrap_or(Err(EngineError::NotFound(*id))))
            .collect())
    }

    /// With external events, the order's work item follows a confirmation
    /// that moved it: due now when its new state has an automatic step, or
    /// when the new state's timeout falls due if it waits again. Without
    /// (or with nothing automatic ahead, or no timeout to wait for), the
    /// item is left as it is: a claim then finds nothing to do. An item a
    /// worker holds is left to that worker: its write loses the race (the
    /// order moved) and gives the item back at once. `now` is when the
    /// confirmation's last step was made.
    async fn follow(&self, stored: &StoredOrder, now: DateTime<Utc>) -> Result<(), EngineError> {
        let Some(work) = self.follow_work(stored, now) else {
            return Ok(());
        };
        let inner = &*self.inner;
        match inner
            .store
            .schedule(&inner.tenant, stored.id, &work, now)
            .await
        {
            Ok(_) | Err(StoreError::Invalid { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// [`Engine::follow`] for many confirmations (order, when its last step
    /// was made): one store call.
    async fn follow_many(
        &self,
        moved: &[(&StoredOrder, DateTime<Utc>)],
    ) -> Result<(), EngineError> {
        let items: Vec<Scheduled> = moved
            .iter()
            .filter_map(|(stored, now)| {
                self.follow_work(stored, *now).map(|work| Scheduled {
                    order_id: stored.id,
                    work,
                    now: *now,
                })
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        for r in inner.store.schedule_many(&inner.tenant, &items).await? {
            match r {
                Ok(_) | Err(StoreError::Invalid { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The work [`Engine::follow`] schedules for the order, if any.
    fn follow_work(&self, stored: &StoredOrder, now: DateTime<Utc>) -> Option<WorkSpec> {
        let inner = &*self.inner;
        let state = stored.order.current_state.as_str();
        if !inner.external_events || inner.next_state(state).is_none() {
            return None;
        }
        let run_at = if inner.waiting(state).is_some() {
            let since = stored.order.state_changed_at.unwrap_or(now);
            match inner.wait_then(state, since, now) {
                AfterStep::Reschedule { run_at, .. } => run_at,
                _ => return None,
            }
        } else {
            now
        };
        Some(WorkSpec {
            run_at,
            ..inner.first_work(stored.order.priority, now)
        })
    }

    /// Takes the automatic steps from the order's state towards `goal`,
    /// starting from `fresh` (the order as just written, after `steps`
    /// steps) or from the store.
    async fn take_steps(
        &self,
        id: OrderId,
        mut fresh: Option<StoredOrder>,
        mut steps: usize,
        why: &str,
        goal: Goal,
    ) -> Result<External, EngineError> {
        let inner = &*self.inner;
        let mut last: Option<StoredOrder> = fresh.clone();
        // After a step the store's answer is the order as it now is: the
        // next step starts from it, without reading it again; after a lost
        // race it is read again.
        for _ in 0..MAX_STEPS {
            inner.forget(id);
            let stored = match fresh.take() {
                Some(s) => s,
                None => self.order(id).await?,
            };
            let write = match self.next_step(stored, steps, why, goal).await? {
                Next::Done(ext) => return Ok(ext),
                Next::Write(t) => t,
            };
            match inner.store.transition(&inner.tenant, &write).await {
                Ok(order) => {
                    steps += 1;
                    fresh = Some(order.clone());
                    last = Some(order);
                }
                // A worker or a person moved the order meanwhile: read it again.
                Err(e) if e.is_conflict() => {}
                Err(e) => return Err(e.into()),
            }
        }
        match last {
            Some(order) => Ok(External::Moved { order, steps }),
            None => Err(EngineError::Config(format!(
                "order {id}: no progress after {MAX_STEPS} attempts"
            ))),
        }
    }

    /// What the order does next towards `goal`, `steps` steps into its
    /// confirmation: nothing more (with what the confirmation did), or the
    /// next step's transition, its actions already run.
    async fn next_step(
        &self,
        stored: StoredOrder,
        steps: usize,
        why: &str,
        goal: Goal,
    ) -> Result<Next, EngineError> {
        let inner = &*self.inner;
        let state = stored.order.current_state.clone();
        let shipped = inner
            .machine
            .state(state.as_str())
            .is_some_and(|s| s.automation_status == AutomationStatus::Shipped);
        if stored.terminal && stored.order.automation_status == AutomationStatus::Delivered {
            return Ok(Next::Done(done(stored, steps)));
        }
        if shipped && goal == Goal::Shipped {
            return Ok(Next::Done(done(stored, steps)));
        }
        if stored.terminal || inner.is_failure(state.as_str()) {
            return Ok(Next::Done(External::Refused {
                reason: format!("order is in `{state}`"),
                order: stored,
            }));
        }
        let Some(next) = inner.next_state(state.as_str()) else {
            return Ok(Next::Done(External::Refused {
                reason: format!("no automatic step leaves `{state}`"),
                order: stored,
            }));
        };
        let now = inner.clock.now();
        let plan = inner.machine.transition(&stored.order, next, now)?;
        let report = inner.run_plan(&stored, &plan).await;
        let write = match report.result {
            StepResult::Succeeded => {
                let mut t = inner.transition(&stored, &plan, inner.clock.now(), report.duration_ms);
                t.reason = Some(format!("{}: {why}", plan.transition));
                t.actions_executed = report.records_json();
                t
            }
            StepResult::Failed { error, .. } => {
                let message = format!("{}: {error}", plan.transition);
                match inner
                    .fail(
                        &inner.tenant,
                        &stored,
                        None,
                        report.records,
                        message,
                        report.duration_ms,
                    )
                    .await?
                {
                    Outcome::Write(_, t) => *t,
                    Outcome::Release(..) | Outcome::Complete(_) | Outcome::Chain(..) => {
                        return Ok(Next::Done(External::Refused {
                            reason: "the step failed".into(),
                            order: stored,
                        }));
                    }
                }
            }
            StepResult::Refused { action, .. } => {
                return Ok(Next::Done(External::Refused {
                    reason: format!("circuit open for `{action}`"),
                    order: stored,
                }));
            }
        };
        Ok(Next::Write(write))
    }
}

/// What a confirmation does next ([`Engine::next_step`]).
enum Next {
    /// Nothing more: what the confirmation did.
    Done(External),
    /// This step's transition, its actions run.
    Write(Transition),
}

fn done(order: StoredOrder, steps: usize) -> External {
    if steps == 0 {
        External::Unchanged(order)
    } else {
        External::Moved { order, steps }
    }
}

impl<S: Store + 'static> Engine<S> {
    /// The stale-event guard: records that an event at `(time, rank)` is
    /// applied to the tenant's TikTok order, unless a newer one already was;
    /// `false` means the event is stale and must be dropped. `rank` orders
    /// events of the same second (a later stage ranks higher).
    pub async fn note_external_event(
        &self,
        tiktok_order_id: &str,
        time: i64,
        rank: u8,
    ) -> Result<bool, EngineError> {
        let inner = &*self.inner;
        Ok(inner
            .store
            .note_order_event(&inner.tenant, tiktok_order_id, time, rank)
            .await?)
    }

    /// [`Engine::note_external_event`] for many events in one store
    /// transaction, in order; one result per event (`false`: stale).
    pub async fn note_external_events(
        &self,
        events: &[OrderEvent],
    ) -> Result<Vec<bool>, EngineError> {
        let inner = &*self.inner;
        Ok(inner.store.note_order_events(&inner.tenant, events).await?)
    }
}
