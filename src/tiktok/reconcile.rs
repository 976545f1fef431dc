//! Reconciliation: TikTok says webhooks cannot be fully relied on, so a
//! scheduled poll asks Search Orders for every order updated since the last
//! poll and applies the same commands as the webhooks would have, through
//! the same [`Processor`] (stale-event guard included, so a poll and a
//! webhook reporting the same change apply it once).
//!
//! The high-water mark is kept durably per tenant and shop (the store's
//! cursor `tiktok-poll:<shop id>`): each poll reads the window
//! `[mark − overlap, now − settle)`, and the mark advances to the window's
//! end only once every page was applied. The overlap re-reads the edge of
//! the previous window (an order updated in the same second as the last
//! poll); re-applying is harmless.

use std::sync::Arc;

use serde::Serialize;

use super::client::{OrderApi, SearchQuery};
use super::processor::{ProcessError, Processor, command_for_api_order};
use crate::engine::EngineError;
use crate::store::Store;

/// How a reconciliation poll reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollConfig {
    /// Seconds re-read before the high-water mark.
    pub overlap_s: i64,
    /// Where a shop never polled starts: this many seconds before now.
    pub first_lookback_s: i64,
    /// Orders per page.
    pub page_size: u32,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            overlap_s: 60,
            first_lookback_s: 24 * 3600,
            page_size: 50,
        }
    }
}

/// What one poll of one shop did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// The tenant.
    pub tenant: String,
    /// The shop.
    pub shop_id: String,
    /// The window read, Unix seconds `[from, to)`.
    pub window: (i64, i64),
    /// Orders returned by the API.
    pub orders: usize,
    /// Commands that changed something (not stale, not unchanged).
    pub applied: usize,
}

/// The cursor name of a shop's poll.
pub fn cursor_name(shop_id: &str) -> String {
    format!("tiktok-poll:{shop_id}")
}

/// Polls every configured shop once (see the docs of `src/tiktok/reconcile.rs`).
pub async fn poll_all<S: Store + 'static, A: OrderApi + 'static>(
    processor: &Arc<Processor<S, A>>,
    config: &PollConfig,
) -> Result<Vec<PollReport>, ProcessError> {
    let mut reports = Vec::new();
    let tenants: Vec<String> = processor.tenants().map(str::to_owned).collect();
    for tenant in tenants {
        for shop in processor.shops_of(&tenant) {
            reports.push(poll_shop(processor, &tenant, &shop, config).await?);
        }
    }
    Ok(reports)
}

/// Polls one shop of a tenant once.
pub async fn poll_shop<S: Store + 'static, A: OrderApi + 'static>(
    processor: &Arc<Processor<S, A>>,
    tenant: &str,
    shop_id: &str,
    config: &PollConfig,
) -> Result<PollReport, ProcessError> {
    let engine = processor
        .engine(tenant)
        .ok_or_else(|| ProcessError::UnknownTenant {
            tenant: tenant.to_owned(),
        })?;
    let store = engine.store();
    let name = cursor_name(shop_id);
    let now = engine.now().timestamp();
    let mark = store
        .cursor(tenant, &name)
        .await
        .map_err(EngineError::from)?;
    let from = match mark {
        Some(m) => m.saturating_sub(config.overlap_s),
        None => now.saturating_sub(config.first_lookback_s),
    };
    let to = now.max(from);
    let mut report = PollReport {
        tenant: tenant.to_owned(),
        shop_id: shop_id.to_owned(),
        window: (from, to),
        ..PollReport::default()
    };
    let mut token = None;
    loop {
        let page = processor
            .api()
            .search_orders(
                tenant,
                shop_id,
                &SearchQuery {
                    update_time_ge: from,
                    update_time_lt: to,
                    page_size: config.page_size,
                    page_token: token.take(),
                },
            )
            .await?;
        for order in &page.orders {
            report.orders += 1;
            let cmd = command_for_api_order(order);
            let applied = processor.apply(tenant, shop_id, &cmd, Some(order)).await?;
            use super::processor::Applied;
            if !matches!(
                applied,
                Applied::Stale | Applied::Unchanged | Applied::Known | Applied::Acknowledged
            ) {
                report.applied += 1;
            }
        }
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    store
        .set_cursor(tenant, &name, to)
        .await
        .map_err(EngineError::from)?;
    Ok(report)
}
