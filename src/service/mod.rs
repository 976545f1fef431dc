//! The service runtime: what runs an engine around the clock for a host or
//! the `creatorflow serve` command. Started in a few lines, stopped
//! gracefully:
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use creatorflow::service::Service;
//! use creatorflow::store::MemoryStore;
//!
//! let running = Service::builder(MemoryStore::new())
//!     .tenants(["creator-42"])
//!     .engines_with(|b| b.simulated_handlers())
//!     .start()
//!     .await
//!     .unwrap();
//! let engine = running.engine("creator-42").unwrap();
//! assert_eq!(engine.tenant(), "creator-42");
//! running.stop().await;
//! # });
//! ```
//!
//! | part | what |
//! |---|---|
//! | [`InboxAppender`] | the group-committing inbox appender a webhook receiver appends to ([`Running::inbox`]) |
//! | `inbox` | the inbox processor loop: claims entries, applies them to the tenants' engines |
//! | workers | [`Engine::run_with`](crate::Engine::run_with): the one worker loop and its error policy |
//! | `retention` | deletes processed inbox entries past the retention period, hourly (one replica: lease `retention`) |
//! | `reconcile` | polls the Order API for changes no webhook announced (opt-in; each shop by one replica: lease `reconcile:TENANT:SHOP`) |
//! | `singleton` | the leases that let several replicas on one database run each of those jobs once |
//!
//! The HTTP layer (signature check, routes, dashboard) is not here: it
//! stays thin over [`Running`] in the command line.

mod appender;
mod builder;
mod inbox;
mod reconcile;
mod retention;
mod running;
mod singleton;

pub use appender::{AppendError, InboxAppender};
pub use builder::ServiceBuilder;
pub use running::Running;
pub use singleton::{LEASE_TTL, Singletons, TICK, default_replica_name};

use tokio::sync::watch;

use crate::engine::BuildError;
use crate::store::Store;

/// The entry point: [`Service::builder`].
#[derive(Debug, Clone, Copy)]
pub struct Service;

impl Service {
    /// A builder over `store` (shared by every tenant's engine: an
    /// `AnyStore` or any store: stores are cheap to clone).
    pub fn builder<S: Store + Clone + 'static>(store: S) -> ServiceBuilder<S> {
        ServiceBuilder::new(store)
    }
}

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Neither a tenant, nor a shop, nor an engine was given.
    #[error("no tenant configured")]
    NoTenant,
    /// A tenant's engine could not be built.
    #[error(transparent)]
    Engine(#[from] BuildError),
}

/// Completes once `rx` says stop (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
