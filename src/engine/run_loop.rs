//! The one worker loop: claim rounds until a shutdown signal, polling when
//! idle, riding out store errors with a capped exponential backoff. Used by
//! [`Engine::run`](super::Engine::run), the `worker` command and the
//! service alike.
//!
//! The error policy: a round that fails (the store is unreachable, a
//! transaction was refused) does not end the loop and is not retried at
//! once. The loop pauses — `backoff_first`, doubled after each further
//! failure, at most `backoff_max` — and tries again; the first failure of a
//! streak is logged (a `tracing` warning), and so is the recovery. A dead store
//! therefore costs one claim attempt per `backoff_max`, not a spinning core.
//!
//! Stopping (SIGTERM): the loop claims nothing more; the round in flight
//! is told to stop chaining (each order's chain ends at its current step
//! and is recorded), and is given `stop_grace` (default: the longest lane
//! timeout, which bounds one step) to finish and be recorded. A round
//! still running then is dropped (its uncommitted write rolls back) and the
//! leases it held are released, due at once: another worker takes those
//! steps now rather than when the lease lapses. Steps are idempotent per
//! action (one idempotency key per action of a step), so a step redone by
//! the next worker repeats no effect a receiver deduplicates, and no step
//! is recorded twice (`(order_id, version)` is unique).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{EngineError, Idle, Round};
use crate::store::Lease;

/// How a worker loop paces its rounds and rides out errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunPolicy {
    /// How long an idle loop (a round that claimed nothing) waits before it
    /// looks for work again.
    pub idle_poll: Duration,
    /// The shortest time between the starts of two rounds: under load a
    /// round then claims more and each store transaction carries more
    /// steps (zero: back to back).
    pub min_round: Duration,
    /// The pause after the first failed round of a streak.
    pub backoff_first: Duration,
    /// The longest pause between two failed rounds.
    pub backoff_max: Duration,
    /// How long a stopping loop waits for the round in flight before it
    /// drops it and releases its leases (`None`: the engine's longest lane
    /// timeout).
    pub stop_grace: Option<Duration>,
}

impl RunPolicy {
    /// Idle polling every `idle_poll`, rounds back to back under load, and
    /// a backoff from 100 ms doubling up to 10 s.
    pub fn polling(idle_poll: Duration) -> Self {
        RunPolicy {
            idle_poll,
            min_round: Duration::ZERO,
            backoff_first: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            stop_grace: None,
        }
    }
}

impl Default for RunPolicy {
    /// [`RunPolicy::polling`] every 250 ms.
    fn default() -> Self {
        RunPolicy::polling(Duration::from_millis(250))
    }
}

/// The state of one streak of failures: how long to pause next.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff from `first`, doubling, capped at `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            failures: 0,
        }
    }

    /// Records a failure; the pause before the next attempt, and whether
    /// this failure starts a streak (the one worth logging).
    pub fn failed(&mut self) -> (Duration, bool) {
        let doublings = self.failures.min(30);
        self.failures = self.failures.saturating_add(1);
        let pause = self
            .first
            .checked_mul(1 << doublings)
            .map_or(self.max, |p| p.min(self.max));
        (pause, self.failures == 1)
    }

    /// Records a success; the length of the streak it ends, if any.
    pub fn succeeded(&mut self) -> Option<u32> {
        let streak = std::mem::take(&mut self.failures);
        (streak > 0).then_some(streak)
    }
}

/// What a loop and its rounds share about stopping: whether the loop is
/// stopping (chains end at their current step), and the leases of the
/// round in flight (released if the round is dropped).
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopping: AtomicBool,
    held: Mutex<Vec<Lease>>,
}

impl Stop {
    /// Whether the loop is stopping: a chain ends at its current step.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The round in flight claimed these leases.
    pub(crate) fn hold(&self, leases: impl IntoIterator<Item = Lease>) {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.clear();
        held.extend(leases);
    }

    /// The leases of the round in flight, forgotten.
    pub(crate) fn take_held(&self) -> Vec<Lease> {
        std::mem::take(
            &mut *self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// How a loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every round it started finished.
    Stopped,
    /// The round in flight outlived the grace period and was dropped: the
    /// leases in [`Stop`] are still held and must be released.
    Abandoned,
}

/// Runs `round` until `shutdown` completes, with `policy`'s pacing and
/// error policy; `what` names the loop in the log. On shutdown the round in
/// flight is told to stop (`stop`) and given `grace` to finish and be
/// recorded; one still running then is dropped ([`Ended::Abandoned`]).
/// The totals are returned; `next_due` is left for the caller to fill.
pub(crate) async fn drive<F, Fut>(
    policy: RunPolicy,
    shutdown: impl Future<Output = ()>,
    (stop, grace): (&Stop, Duration),
    what: &str,
    mut round: F,
) -> (Idle, Ended)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Round, EngineError>>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let mut total = Idle::default();
    let mut backoff = Backoff::new(policy.backoff_first, policy.backoff_max);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            _ = std::future::ready(()) => {}
        }
        let started = tokio::time::Instant::now();
        let in_flight = round();
        let mut in_flight = std::pin::pin!(in_flight);
        let result = tokio::select! {
            r = &mut in_flight => r,
            _ = &mut shutdown => {
                stop.stopping.store(true, Ordering::Relaxed);
                match tokio::time::timeout(grace, &mut in_flight).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(
                            task = what,
                            grace_ms = grace.as_millis() as u64,
                            "the round in flight outlived the grace period; its steps are given back"
                        );
                        return (total, Ended::Abandoned);
                    }
                }
            }
        };
        stop.take_held();
        let pause = match result {
            Ok(r) => {
                if let Some(n) = backoff.succeeded() {
                    tracing::info!(task = what, failed_rounds = n, "recovered");
                }
                total.claimed += r.claimed.len();
                total.recorded += r.recorded;
                if r.claimed.is_empty() {
                    policy.idle_poll
                } else {
                    Duration::ZERO
                }
            }
            Err(e) => {
                let (pause, first) = backoff.failed();
                if first {
                    tracing::warn!(task = what, error = %e, pause_ms = pause.as_millis() as u64, "round failed; retrying with backoff");
                }
                pause
            }
        };
        if stop.stopping() {
            break;
        }
        let wait = policy.min_round.max(pause);
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(started + wait) => {}
        }
    }
    (total, Ended::Stopped)
}

/// How long a stopping loop waits for its closing read of the queue.
pub(crate) const CLOSING_READ_LIMIT: Duration = Duration::from_secs(5);

/// Whether `e` says the store is away for now (PostgreSQL restarting, a
/// failover, no connection in time): the same call may succeed later.
pub(crate) fn store_away(e: &EngineError) -> bool {
    matches!(e, EngineError::Store(s) if s.is_transient())
}

/// Runs `op` until it succeeds or fails for a reason other than the store
/// being away ([`store_away`]): while the store is away it pauses with
/// `policy`'s backoff and tries again, logging the first failure of the
/// streak and the recovery; `what` names the caller in the log. For the
/// calls of a loop that must not end on an outage but has no round to
/// skip (`run_until_idle`).
pub(crate) async fn through_outages<T, F, Fut>(
    policy: RunPolicy,
    what: &str,
    mut op: F,
) -> Result<T, EngineError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut backoff = Backoff::new(policy.backoff_first, policy.backoff_max);
    loop {
        match op().await {
            Ok(v) => {
                if let Some(n) = backoff.succeeded() {
                    tracing::info!(task = what, failed_attempts = n, "the store is back");
                }
                return Ok(v);
            }
            Err(e) if store_away(&e) => {
                let (pause, first) = backoff.failed();
                if first {
                    tracing::warn!(task = what, error = %e, "waiting for the store");
                }
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::store::{OrderId, StoreError};

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let pauses: Vec<_> = (0..5).map(|_| b.failed()).collect();
        assert_eq!(pauses[0], (Duration::from_millis(100), true));
        assert_eq!(pauses[1], (Duration::from_millis(200), false));
        assert_eq!(pauses[2].0, Duration::from_millis(400));
        assert_eq!(pauses[3].0, Duration::from_millis(500));
        assert_eq!(pauses[4].0, Duration::from_millis(500));
        assert_eq!(b.succeeded(), Some(5));
        assert_eq!(b.succeeded(), None);
        assert_eq!(b.failed(), (Duration::from_millis(100), true));
    }

    /// A store that fails `failures` rounds then recovers: the loop keeps
    /// going, completes the work, and paused with backoff (no spin).
    #[tokio::test(start_paused = true)]
    async fn store_errors_pause_with_backoff_and_the_loop_recovers() {
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut tx = Some(tx);
        let policy = RunPolicy {
            idle_poll: Duration::from_millis(50),
            min_round: Duration::ZERO,
            backoff_first: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            stop_grace: None,
        };
        let started = tokio::time::Instant::now();
        let c = calls.clone();
        let stop = Stop::default();
        let (total, _) = drive(
            policy,
            async {
                let _ = rx.await;
            },
            (&stop, Duration::from_secs(1)),
            "test",
            move || {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let r = match n {
                    0..6 => Err(EngineError::Store(StoreError::database("down"))),
                    6..9 => Ok(Round {
                        claimed: vec![(OrderId::nil(), crate::model::Priority::Standard, false)],
                        recorded: 1,
                        ..Round::default()
                    }),
                    _ => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                        Ok(Round::default())
                    }
                };
                std::future::ready(r)
            },
        )
        .await;
        assert_eq!(total.claimed, 3, "the work after the outage is done");
        assert_eq!(total.recorded, 3);
        // 6 failures: 100 + 200 + 400 + 800 + 1000 + 1000 ms of backoff.
        assert!(started.elapsed() >= Duration::from_millis(3500));
        assert_eq!(calls.load(Ordering::SeqCst), 10, "no spinning");
    }

    /// An outage (the store away) is waited out; any other error ends it.
    #[tokio::test(start_paused = true)]
    async fn through_outages_waits_for_the_store_and_no_more() {
        let calls = Arc::new(AtomicUsize::new(0));
        let away = || {
            EngineError::Store(StoreError::Unavailable {
                message: "terminating connection due to administrator command".into(),
                source: None,
            })
        };
        let c = calls.clone();
        let started = tokio::time::Instant::now();
        let v = through_outages(RunPolicy::default(), "test", move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            std::future::ready(if n < 4 { Err(away()) } else { Ok(n) })
        })
        .await;
        assert_eq!(v.ok(), Some(4));
        // 100 + 200 + 400 + 800 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(1500));
        let c = calls.clone();
        let e = through_outages(RunPolicy::default(), "test", move || {
            c.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<(), _>(EngineError::Store(StoreError::database(
                "broken",
            ))))
        })
        .await;
        assert!(matches!(
            e,
            Err(EngineError::Store(StoreError::Database { .. }))
        ));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            6,
            "a real failure is not retried"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_loop_polls_and_stops_on_shutdown() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let stop = Stop::default();
        let (total, ended) = drive(
            RunPolicy::polling(Duration::from_millis(100)),
            tokio::time::sleep(Duration::from_millis(1050)),
            (&stop, Duration::from_secs(1)),
            "test",
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok(Round::default()))
            },
        )
        .await;
        assert_eq!(total, Idle::default());
        assert_eq!(ended, Ended::Stopped);
        assert_eq!(calls.load(Ordering::SeqCst), 11);
    }

    /// Ingests `n` orders `{prefix}0`, `{prefix}1`, …
    #[cfg(feature = "sqlite")]
    async fn ingest(engine: &crate::Engine<crate::AnyStore>, prefix: &str, n: usize) {
        for i in 0..n {
            let order = crate::Order::from_json(&format!(
                r#"{{"tiktok_order_id":"{prefix}{i}","customer_handle":"@a","product_name":"Lamp",
                "product_id":"p1","quantity":1,"price":"25.00","created_at":"2025-06-12T10:00:00Z"}}"#
            ))
            .expect("order");
            engine.ingest(order).await.expect("ingest");
        }
    }

    /// A real store whose transition write fails once (injected fault):
    /// the loop rides it out and every order still ships.
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_engine_rides_out_a_failed_write_and_finishes_the_work() {
        use crate::engine::{EngineBuilder, Lanes};
        use crate::store::{FaultPoint, InjectFault};

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/fault.db", dir.path().display());
        let store = crate::store::open(&url).await.expect("store");
        // A short lease: the failed round's claims lapse quickly.
        let lanes = Lanes::default().with_timeout(chrono::TimeDelta::milliseconds(300));
        let engine = EngineBuilder::new(store)
            .simulated_handlers()
            .lanes(lanes)
            .build()
            .expect("engine");
        ingest(&engine, "f", 5).await;
        engine.store().inject_fault(FaultPoint::AfterOrderUpdate);
        let policy = RunPolicy {
            idle_poll: Duration::from_millis(10),
            min_round: Duration::ZERO,
            backoff_first: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
            stop_grace: None,
        };
        let shipped = || async {
            let s = engine.status().await.expect("status");
            s.by_state.get("shipped").copied().unwrap_or(0)
        };
        let all_shipped = async {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while shipped().await < 5 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let total = engine.run_with(policy, all_shipped).await.expect("run");
        assert_eq!(shipped().await, 5, "every order shipped after the fault");
        assert!(total.recorded >= 5);
        let status = engine.status().await.expect("status");
        assert!(status.integrity.ok, "{:?}", status.integrity.problems);
    }

    /// A round that outlives the grace period (a handler hanging, well
    /// within its lane's timeout) is dropped at once on shutdown, and its
    /// steps are given back: another worker claims them immediately, not
    /// after the 2-minute lease, and finishes them; nothing is recorded
    /// twice.
    #[cfg(feature = "sqlite")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_outliving_the_grace_is_dropped_and_its_steps_given_back() {
        use crate::actions::{ActionOutcome, ActionType, HandlerRegistry, handler_fn};
        use crate::engine::{EngineBuilder, Lanes};

        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/grace.db", dir.path().display());
        let store = crate::store::open(&url).await.expect("store");
        let entered = Arc::new(tokio::sync::Notify::new());
        let e = entered.clone();
        let hang = handler_fn(move |_| {
            let e = e.clone();
            async move {
                e.notify_one();
                std::future::pending::<()>().await;
                Ok(ActionOutcome::default())
            }
        });
        let handlers =
            HandlerRegistry::simulated().with(ActionType::ValidateAddress, Arc::new(hang));
        let lanes = Lanes::default().with_timeout(chrono::TimeDelta::seconds(60));
        let stuck = EngineBuilder::new(store.clone())
            .worker_name("stuck")
            .handlers(handlers)
            .lanes(lanes.clone())
            .build()
            .expect("engine");
        ingest(&stuck, "g", 3).await;
        let policy = RunPolicy {
            stop_grace: Some(Duration::from_millis(200)),
            ..RunPolicy::polling(Duration::from_millis(10))
        };
        let started = std::time::Instant::now();
        let total = stuck
            .run_with(policy, entered.notified())
            .await
            .expect("run");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "bounded by the grace"
        );
        assert_eq!(total.recorded, 0, "the dropped round recorded nothing");
        let other = EngineBuilder::new(store)
            .worker_name("other")
            .simulated_handlers()
            .lanes(lanes)
            .build()
            .expect("engine");
        let round = other.run_once().await.expect("round");
        assert_eq!(round.claimed.len(), 3, "given back, due at once");
        other.run_until_idle().await.expect("run");
        let status = other.status().await.expect("status");
        assert_eq!(status.by_state.get("shipped").copied(), Some(3));
        assert!(status.integrity.ok, "{:?}", status.integrity.problems);
    }

    /// A stopping loop finishes the round in flight within the grace: the
    /// loop ends `Stopped` and claims nothing more.
    #[tokio::test(start_paused = true)]
    async fn a_stopping_loop_lets_the_round_finish() {
        let stop = Stop::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let (total, ended) = drive(
            RunPolicy::polling(Duration::ZERO),
            tokio::time::sleep(Duration::from_millis(50)),
            (&stop, Duration::from_secs(1)),
            "test",
            move || {
                c.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(Round {
                        claimed: vec![(OrderId::nil(), crate::model::Priority::Standard, false)],
                        recorded: 1,
                        ..Round::default()
                    })
                }
            },
        )
        .await;
        assert_eq!(ended, Ended::Stopped);
        assert_eq!(total.recorded, 1, "the round in flight was recorded");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "no claim after the signal");
        assert!(stop.stopping());
    }
}
