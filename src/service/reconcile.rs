//! Reconciliation: the Order API is polled for changes no webhook
//! announced (see [`crate::tiktok::poll_shop`]), each shop by the one
//! replica holding its lease `reconcile:TENANT:SHOP` (`singleton.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::singleton::{Elector, TICK};
use crate::engine::Backoff;
use crate::store::Store;
use crate::tiktok::{OrderApi, PollConfig, Processor, poll_shop};

/// The lease of a shop's reconciliation.
pub(crate) fn lease_name(tenant: &str, shop: &str) -> String {
    format!("reconcile:{tenant}:{shop}")
}

/// Polls the Order API for missed changes of each shop this replica holds
/// the lease of, every `every`, until `stop`. Leases are renewed every
/// [`TICK`] (or `every`, if shorter); a shop taken over is polled at once.
/// A poll that fails for a reason that may pass (the store away, the API
/// unreachable) is tried again on the next tick rather than a whole period
/// later (the first failure of a run is logged).
pub(super) async fn run<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    elector: Arc<Elector<S>>,
    every: Duration,
    mut backoff: Backoff,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let config = PollConfig::default();
    let tick = TICK.min(every);
    let mut last: HashMap<(String, String), Instant> = HashMap::new();
    loop {
        let tenants: Vec<String> = processor.tenants().map(str::to_owned).collect();
        for tenant in tenants {
            let Some(now) = processor.engine(&tenant).map(|e| e.now()) else {
                continue;
            };
            for shop in processor.shops_of(&tenant) {
                let key = (tenant.clone(), shop.clone());
                if elector
                    .hold(&lease_name(&tenant, &shop), now)
                    .await
                    .is_none()
                {
                    last.remove(&key);
                    continue;
                }
                if last.get(&key).is_some_and(|t| t.elapsed() < every) {
                    continue;
                }
                let polled = tokio::select! {
                    _ = &mut stop => return,
                    r = poll_shop(&processor, &tenant, &shop, &config) => r,
                };
                match polled {
                    Ok(_) => {
                        backoff.succeeded();
                        last.insert(key, Instant::now());
                    }
                    Err(e) if e.is_transient() => {
                        let (_, first) = backoff.failed();
                        if first {
                            tracing::warn!(task = "reconciliation", shop = %shop, error = %e, "poll failed; retrying on the next tick");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(task = "reconciliation", shop = %shop, error = %e, "poll failed");
                        last.insert(key, Instant::now());
                    }
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}
