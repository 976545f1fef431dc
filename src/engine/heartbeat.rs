//! Worker heartbeats: a worker loop says it is alive every few seconds,
//! from a task of its own, and takes over the steps of workers that
//! stopped saying so (see [`HeartbeatStore`](crate::store::HeartbeatStore)).
//!
//! Why: a claim's lease is long (twice the longest lane timeout, so that
//! an order's steps chain under one claim), so a worker killed mid-round
//! would otherwise leave its steps locked for the whole lease. With
//! heartbeats, a killed worker's steps are back in the queue `lapse` (plus
//! at most one beat) after its last beat, whatever the lease.
//!
//! The beat runs on a spawned task, not between steps: a slow step, or a
//! round waiting on its handlers, does not stop it, so a worker that is
//! alive is never robbed. Only a worker that cannot beat for `lapse` (dead,
//! stopped by a signal, cut off from the store) is taken over; if it comes
//! back, its leases are gone and every write under them is refused
//! (`StoreError::LeaseLost`): its steps are recorded once, by the worker
//! that took them over.
//!
//! The first beat is written before the loop's first claim, so a worker
//! never holds a step without a heartbeat that can lapse; a worker stopping
//! gracefully retires its heartbeat (it lapses at once).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::TimeDelta;

use super::run_loop::{self, RunPolicy};
use super::{Engine, EngineError, Idle};
use crate::store::{Holders, Store};

/// How a worker keeps its heartbeat ([`EngineBuilder::heartbeat`](super::EngineBuilder::heartbeat)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatPolicy {
    /// How often the worker beats (and looks for lapsed workers to take
    /// over).
    pub every: Duration,
    /// How long a beat keeps the worker alive: a worker silent for longer
    /// is taken to be dead. Several beats long, so that a slow store or a
    /// short pause does not make a live worker look dead.
    pub lapse: Duration,
}

impl Default for HeartbeatPolicy {
    /// A beat every 5 s, lapsing after 15 s: a dead worker's steps are
    /// taken over at most about 20 s after its last beat.
    fn default() -> Self {
        HeartbeatPolicy {
            every: Duration::from_secs(5),
            lapse: Duration::from_secs(15),
        }
    }
}

impl HeartbeatPolicy {
    fn lapse_delta(&self) -> TimeDelta {
        TimeDelta::from_std(self.lapse).unwrap_or(TimeDelta::seconds(15))
    }
}

/// The spawned task that keeps beating; stopped when dropped.
pub(crate) struct Beating(tokio::task::JoinHandle<()>);

impl Drop for Beating {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<S: Store + 'static> Engine<S> {
    /// Beats once for this worker (alive for the policy's lapse from the
    /// engine clock's now), then gives back the steps, in the tenants this
    /// engine serves, of workers whose heartbeat lapsed; how many. Without
    /// a heartbeat policy: nothing, 0.
    pub async fn heartbeat(&self) -> Result<u64, EngineError> {
        let inner = &self.inner;
        let Some(policy) = inner.heartbeat else {
            return Ok(0);
        };
        let now = inner.clock.now();
        inner
            .store
            .beat(&inner.worker, policy.lapse_delta(), now)
            .await?;
        self.take_over().await
    }

    /// Gives back the steps, in the tenants this engine serves, of workers
    /// whose heartbeat lapsed (without beating); how many.
    async fn take_over(&self) -> Result<u64, EngineError> {
        if self.inner.heartbeat.is_none() {
            return Ok(0);
        }
        let now = self.inner.clock.now();
        let taken = self.inner.store.take_over(self.scope(), now).await?;
        if taken > 0 {
            tracing::warn!(
                taken_over = taken,
                "took over the steps of workers whose heartbeat lapsed"
            );
        }
        Ok(taken)
    }

    /// Who holds the steps in flight in the tenants this engine serves.
    pub async fn holders(&self) -> Result<Holders, EngineError> {
        Ok(self
            .inner
            .store
            .holders(self.scope(), self.inner.clock.now())
            .await?)
    }

    /// Beats now, then every `every` from a spawned task until the result
    /// is dropped; `None` without a heartbeat policy. A failed beat is
    /// logged (once per streak) and tried again at the next one. The
    /// steps taken over are added to `taken`.
    pub(crate) async fn start_beating(&self, taken: Arc<AtomicU64>) -> Option<Beating> {
        let policy = self.inner.heartbeat?;
        let mut failing = false;
        self.beat_noted(&taken, &mut failing).await;
        let engine = self.clone();
        Some(Beating(tokio::spawn(async move {
            loop {
                tokio::time::sleep(policy.every).await;
                engine.beat_noted(&taken, &mut failing).await;
            }
        })))
    }

    /// [`Engine::heartbeat`], its takeovers added to `taken`, its failure
    /// logged once per streak (`failing`).
    async fn beat_noted(&self, taken: &AtomicU64, failing: &mut bool) {
        match self.heartbeat().await {
            Ok(n) => {
                taken.fetch_add(n, Ordering::Relaxed);
                if std::mem::take(failing) {
                    tracing::info!(task = "heartbeat", "beating again");
                }
            }
            Err(e) => {
                if !std::mem::replace(failing, true) {
                    tracing::warn!(task = "heartbeat", error = %e, "a heartbeat failed; trying again");
                }
            }
        }
    }

    /// This worker stops for good: its heartbeat lapses now (anything it
    /// still holds is taken over at once). Logged, not returned, on failure.
    pub(crate) async fn retire(&self) {
        let inner = &self.inner;
        if inner.heartbeat.is_none() {
            return;
        }
        if let Err(e) = inner.store.retire(&inner.worker, inner.clock.now()).await {
            tracing::warn!(task = "heartbeat", error = %e, "retiring the heartbeat failed; it lapses instead");
        }
    }

    /// Runs claim rounds, with a heartbeat, until nothing is due **or
    /// held**: when a round finds nothing due, it waits (polling every
    /// `policy.idle_poll`) while steps are held by workers, live or dead,
    /// and takes over those of a worker whose heartbeat lapsed as soon as
    /// it has (what `creatorflow worker --exit-when-idle` runs). A step
    /// held by a worker that keeps no heartbeat is waited for until its
    /// lease lapses. Work scheduled for later (delivery checks) does not
    /// count. The store being away is waited for, as by
    /// [`Engine::run_until_idle`].
    pub async fn run_until_drained(&self, policy: RunPolicy) -> Result<Idle, EngineError> {
        let taken = Arc::new(AtomicU64::new(0));
        let beating = self.start_beating(taken.clone()).await;
        let result = self.drain(policy, &taken).await;
        drop(beating);
        self.retire().await;
        let mut idle = result?;
        idle.taken_over = taken.load(Ordering::Relaxed);
        Ok(idle)
    }

    async fn drain(&self, policy: RunPolicy, taken: &AtomicU64) -> Result<Idle, EngineError> {
        let mut idle = Idle::default();
        let mut waiting_for = None;
        loop {
            let round = run_loop::through_outages(policy, "workers", || self.run_once()).await?;
            if !round.claimed.is_empty() {
                idle.claimed += round.claimed.len();
                idle.recorded += round.recorded;
                continue;
            }
            // The beating task beats; this only looks for lapsed workers now.
            let n = run_loop::through_outages(policy, "workers", || self.take_over()).await?;
            taken.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                continue;
            }
            let held = run_loop::through_outages(policy, "workers", || self.holders()).await?;
            if held.steps == 0 {
                break;
            }
            let now = (held.held_by_live, held.held_by_dead);
            if waiting_for != Some(now) {
                tracing::info!(
                    held_by_live = held.held_by_live,
                    held_by_dead = held.held_by_dead,
                    "nothing due; waiting for the steps other workers hold"
                );
                waiting_for = Some(now);
            }
            tokio::time::sleep(policy.idle_poll).await;
        }
        idle.next_due = self.next_due(policy).await?;
        Ok(idle)
    }
}
