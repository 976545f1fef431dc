//! Retention: processed inbox entries are deleted once older than the
//! retention period (longer than TikTok's retries, so that a late retry is
//! still recognised as a duplicate).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;
use crate::tiktok::{OrderApi, Processor};

/// How often retention runs.
const EVERY: Duration = Duration::from_secs(3600);

/// Deletes processed inbox entries older than `keep`, for every tenant, at
/// start and then hourly, until `stop`.
pub(super) async fn prune<S: Store + 'static, A: OrderApi + 'static>(
    processor: Arc<Processor<S, A>>,
    keep: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let keep = chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::days(7));
    loop {
        for tenant in processor.tenants() {
            if let Some(e) = processor.engine(tenant)
                && let Err(err) = e.store().inbox_prune(tenant, e.now() - keep).await
            {
                tracing::warn!(task = "retention", tenant = %tenant, error = %err, "pruning the inbox failed");
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
