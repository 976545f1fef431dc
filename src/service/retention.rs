//! Retention: processed inbox entries are deleted once older than the
//! retention period (longer than TikTok's retries, so that a late retry is
//! still recognised as a duplicate), by the one replica holding the lease
//! `retention` (`singleton.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::singleton::{Elector, TICK};
use crate::store::Store;
use crate::tiktok::{OrderApi, Processor};

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

/// The lease of retention.
pub(crate) const LEASE: &str = "retention";

/// Deletes processed inbox entries older than `keep`, for every tenant,
/// when this replica takes the lease and then hourly while it holds it,
/// until `stop`.
pub(super) async fn prune<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    elector: Arc<Elector<S>>,
    keep: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let keep = chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::days(7));
    let mut last: Option<Instant> = None;
    loop {
        let now = processor
            .tenants()
            .next()
            .and_then(|t| processor.engine(t))
            .map(|e| e.now());
        let held = match now {
            Some(now) => elector.hold(LEASE, now).await.is_some(),
            None => false,
        };
        if !held {
            last = None;
        } else if last.is_none_or(|t| t.elapsed() >= EVERY) {
            last = Some(Instant::now());
            for tenant in processor.tenants() {
                if let Some(e) = processor.engine(tenant)
                    && let Err(err) = e.store().inbox_prune(tenant, e.now() - keep).await
                {
                    tracing::warn!(task = "retention", tenant = %tenant, error = %err, "pruning the inbox failed");
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
