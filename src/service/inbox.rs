//! The inbox processor loop: claims the inbox's pending entries, applies
//! them to the tenants' engines, marks them processed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::engine::Backoff;
use crate::store::Store;
use crate::tiktok::{OrderApi, Processor};

/// The most entries one round claims.
const ROUND: usize = 512;

/// Drains the inbox until `stop`; each round is woken by an append or the
/// idle poll (`idle`), and rounds start at most every `round_every`. A
/// failed round pauses with the worker loop's backoff (the entries stay
/// pending and are claimed again after their lease). On `stop`, the round
/// in flight is given `grace` to finish (its entries applied and marked
/// processed); one still running then is dropped (its entries are claimed
/// again after their lease: every command is idempotent).
pub(super) async fn process<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    wake: Arc<Notify>,
    (idle, round_every, grace): (Duration, Duration, Duration),
    mut backoff: Backoff,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        let started = tokio::time::Instant::now();
        let drain = processor.drain_once(ROUND);
        let mut drain = std::pin::pin!(drain);
        let round = tokio::select! {
            r = &mut drain => r,
            _ = &mut stop => {
                if tokio::time::timeout(grace, drain).await.is_err() {
                    tracing::warn!(
                        task = "inbox",
                        grace_ms = grace.as_millis() as u64,
                        "the inbox round outlived the grace period; its entries are retried after their lease"
                    );
                }
                return;
            }
        };
        match round {
            Ok(n) => {
                backoff.succeeded();
                if n == 0 {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(idle) => {}
                    }
                }
            }
            Err(e) => {
                let (pause, first) = backoff.failed();
                if first {
                    tracing::warn!(task = "inbox", error = %e, pause_ms = pause.as_millis() as u64, "round failed; retrying with backoff");
                }
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(started + round_every) => {}
        }
    }
}
