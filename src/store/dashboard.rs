//! [`DashboardStore`]: the command center's figures, computed by the store.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};

use super::logic::{self, Aggregates, window_bounds};
use super::{Dashboard, StoreError};

/// The dashboard's aggregate queries (see the [module docs](super) for the
/// contract). The arithmetic on the aggregates is shared by every backend
/// (`logic::dashboard`).
pub trait DashboardStore: Send + Sync {
    /// The dashboard figures of `model.md` for `tenant` over the window
    /// `(now - window, now]`, defined in [`Dashboard`], computed with
    /// aggregate queries.
    fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> impl Future<Output = Result<Dashboard, StoreError>> + Send;
}

/// Every backend: the window's bounds checked, the backend's aggregates read,
/// the arithmetic shared.
impl<S: Aggregates> DashboardStore for S {
    async fn dashboard(
        &self,
        tenant: &str,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Result<Dashboard, StoreError> {
        let w = window_bounds(now, window)?;
        let (figures, most_urgent) = self.aggregates(tenant, &w).await?;
        Ok(logic::dashboard(now, &w, figures, most_urgent))
    }
}
