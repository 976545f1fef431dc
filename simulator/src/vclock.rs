//! Virtual time: a [`ManualClock`] that only the simulator moves, timers on
//! it, and a driver that runs an engine future to completion in virtual time.
//!
//! Handler latencies and retry backoffs are [`VirtualTime::sleep`]s: they
//! register a deadline and wait. [`VirtualTime::drive`] polls the engine's
//! future; whenever it is stuck and timers are pending, it moves the clock to
//! the earliest deadline and wakes every timer due by then. Steps of one
//! claim round therefore overlap in virtual time exactly as concurrent steps
//! overlap in real time (the round lasts as long as its slowest step), and a
//! simulated day takes seconds of wall time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

#[cfg(test)]
use chrono::TimeDelta;
use chrono::{DateTime, Utc};
use creatorflow::actions::{BoxFuture, Sleeper};
use creatorflow::{Clock, ManualClock};

/// The simulator's clock and its timers.
#[derive(Debug)]
pub struct VirtualTime {
    clock: Arc<ManualClock>,
    timers: Mutex<Timers>,
}

#[derive(Debug, Default)]
struct Timers {
    /// (deadline ms, id), earliest first; ids whose waker is gone are stale.
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    wakers: BTreeMap<u64, Waker>,
    next_id: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl VirtualTime {
    /// Virtual time standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(VirtualTime {
            clock: Arc::new(ManualClock::new(start)),
            timers: Mutex::new(Timers::default()),
        })
    }

    /// The clock the engine reads.
    pub fn clock(&self) -> Arc<ManualClock> {
        self.clock.clone()
    }

    /// The current virtual time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock forward to `t` (never back) and wakes the timers due.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        if t > self.clock.now() {
            self.clock.set(t);
        }
        self.wake_due();
    }

    /// A future that completes once the clock has moved `d` past now.
    pub fn sleep(self: &Arc<Self>, d: Duration) -> VirtualSleep {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        VirtualSleep {
            vt: self.clone(),
            deadline: self.clock.now().timestamp_millis().saturating_add(ms),
            id: None,
        }
    }

    /// Whether any timer is waiting.
    pub fn has_timers(&self) -> bool {
        !lock(&self.timers).wakers.is_empty()
    }

    /// Moves the clock to the earliest pending deadline and wakes the timers
    /// due by then; `false` when no timer is pending.
    fn advance_to_next(&self) -> bool {
        let next = {
            let mut t = lock(&self.timers);
            loop {
                match t.heap.peek() {
                    None => break None,
                    Some(Reverse((at, id))) if t.wakers.contains_key(id) => break Some(*at),
                    Some(_) => {
                        t.heap.pop();
                    }
                }
            }
        };
        let Some(at) = next else { return false };
        if at > self.clock.now().timestamp_millis() {
            self.clock
                .set(DateTime::from_timestamp_millis(at).unwrap_or_else(|| self.clock.now()));
        }
        self.wake_due();
        true
    }

    fn wake_due(&self) {
        let now = self.clock.now().timestamp_millis();
        let mut due = Vec::new();
        {
            let mut t = lock(&self.timers);
            while let Some(Reverse((at, id))) = t.heap.peek().copied() {
                if at > now {
                    break;
                }
                t.heap.pop();
                if let Some(w) = t.wakers.remove(&id) {
                    due.push(w);
                }
            }
        }
        for w in due {
            w.wake();
        }
    }

    /// Runs `fut` to completion in virtual time: whenever it cannot make
    /// progress and timers are pending, the clock jumps to the next deadline.
    /// A future waiting on real I/O (an SQLite store) is given a chance to be
    /// woken by it first.
    pub async fn drive<F: Future>(self: &Arc<Self>, fut: F) -> Result<F::Output, Stalled> {
        let mut fut = std::pin::pin!(fut);
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(false),
            outer: Mutex::new(None),
        });
        let waker = Waker::from(flag.clone());
        loop {
            flag.woken.store(false, Ordering::SeqCst);
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return Ok(v);
            }
            if flag.woken.load(Ordering::SeqCst) {
                continue;
            }
            if self.has_timers() {
                // Let pending I/O complete before time moves on.
                tokio::task::yield_now().await;
                if flag.woken.load(Ordering::SeqCst) {
                    continue;
                }
                self.advance_to_next();
                continue;
            }
            // Nothing virtual to wait for: wait for the real wake-up (I/O).
            let woken = std::future::poll_fn(|cx| {
                *lock(&flag.outer) = Some(cx.waker().clone());
                if flag.woken.load(Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            });
            if tokio::time::timeout(STALL, woken).await.is_err() {
                return Err(Stalled);
            }
        }
    }
}

/// How long [`VirtualTime::drive`] waits for a future that waits on nothing
/// virtual (real I/O) before giving up.
pub const STALL: Duration = Duration::from_secs(60);

/// A driven future waited [`STALL`] for something that never came: neither
/// a virtual timer nor I/O (a bug, or a store that stopped answering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the simulation stalled: the engine waited {}s for something other than virtual time", STALL.as_secs())]
pub struct Stalled;

/// The waker `drive` polls with: remembers that it was woken and passes the
/// wake-up on to the task awaiting `drive`.
struct Flag {
    woken: AtomicBool,
    outer: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if let Some(w) = lock(&self.outer).take() {
            w.wake();
        }
    }
}

/// A virtual-time sleep (see [`VirtualTime::sleep`]).
#[derive(Debug)]
pub struct VirtualSleep {
    vt: Arc<VirtualTime>,
    deadline: i64,
    id: Option<u64>,
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.vt.clock.now().timestamp_millis() >= self.deadline {
            if let Some(id) = self.id.take() {
                lock(&self.vt.timers).wakers.remove(&id);
            }
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let mut t = lock(&self.vt.timers);
        let id = match self.id {
            Some(id) => id,
            None => {
                let id = t.next_id;
                t.next_id += 1;
                t.heap.push(Reverse((deadline, id)));
                id
            }
        };
        t.wakers.insert(id, cx.waker().clone());
        drop(t);
        self.id = Some(id);
        Poll::Pending
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.vt.timers).wakers.remove(&id);
        }
    }
}

/// The executor's [`Sleeper`] in virtual time: retry backoffs wait on the
/// virtual clock.
#[derive(Debug, Clone)]
pub struct VirtualSleeper(pub Arc<VirtualTime>);

impl Sleeper for VirtualSleeper {
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        Box::pin(self.0.sleep(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: i64) -> TimeDelta {
        TimeDelta::milliseconds(n)
    }

    fn t0() -> DateTime<Utc> {
        "2025-06-12T00:00:00Z".parse().expect("time")
    }

    #[tokio::test]
    async fn concurrent_sleeps_overlap() {
        let vt = VirtualTime::new(t0());
        let a = vt.sleep(Duration::from_millis(300));
        let b = vt.sleep(Duration::from_millis(100));
        let vt2 = vt.clone();
        let both = async move {
            let s1 = async {
                a.await;
                vt2.now()
            };
            let s2 = async {
                b.await;
                vt2.now()
            };
            let (x, y) = tokio::join!(s1, s2);
            (x, y)
        };
        let (x, y) = vt.drive(both).await.expect("not stalled");
        assert_eq!(x - t0(), ms(300));
        assert_eq!(y - t0(), ms(100));
        // The round lasted as long as its slowest sleep, not their sum.
        assert_eq!(vt.now() - t0(), ms(300));
        assert!(!vt.has_timers());
    }

    #[tokio::test]
    async fn sequential_sleeps_add_up() {
        let vt = VirtualTime::new(t0());
        let s = VirtualSleeper(vt.clone());
        vt.drive(async {
            s.sleep(Duration::from_millis(50)).await;
            s.sleep(Duration::from_millis(70)).await;
        })
        .await
        .expect("not stalled");
        assert_eq!(vt.now() - t0(), ms(120));
    }
}
