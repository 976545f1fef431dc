//! Reconciliation: the Order API is polled for changes no webhook
//! announced (see [`crate::tiktok::poll_all`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Backoff;
use crate::store::Store;
use crate::tiktok::{OrderApi, PollConfig, Processor, poll_all};

/// Polls the Order API for missed changes every `every` until `stop`. A
/// poll that fails for a reason that may pass (the store away, the API
/// unreachable) is tried again after `backoff`'s pause (at most `every`)
/// rather than a whole period later.
pub(super) async fn run<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    every: Duration,
    mut backoff: Backoff,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let config = PollConfig::default();
    loop {
        let pause = tokio::select! {
            _ = &mut stop => return,
            r = poll_all(&processor, &config) => match r {
                Ok(_) => {
                    backoff.succeeded();
                    every
                }
                Err(e) if e.is_transient() => {
                    let (pause, first) = backoff.failed();
                    if first {
                        tracing::warn!(task = "reconciliation", error = %e, "poll failed; retrying with backoff");
                    }
                    pause.min(every)
                }
                Err(e) => {
                    tracing::warn!(task = "reconciliation", error = %e, "poll failed");
                    every
                }
            },
        };
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
