//! Reconciliation: the Order API is polled for changes no webhook
//! announced (see [`crate::tiktok::poll_all`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use crate::tiktok::{OrderApi, PollConfig, Processor, poll_all};

/// Polls the Order API for missed changes every `every` until `stop`.
pub(super) async fn run<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    every: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let config = PollConfig::default();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            r = poll_all(&processor, &config) => {
                if let Err(e) = r {
                    tracing::warn!(task = "reconciliation", error = %e, "poll failed");
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
