//! [`DashboardStore`]: the command center's figures, computed by the store.

use std::future::Future;

use chrono::{DateTime, TimeDelta, Utc};

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
