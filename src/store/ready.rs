//! [`Readiness`]: whether a store can serve now, for readiness probes
//! (`GET /readyz`).

use std::future::Future;

use super::StoreError;

/// Whether the store can serve: the database answers and its schema is
/// exactly the migrations this binary carries (none pending, none newer,
/// none changed). Cheap: a read of the schema-version rows, no write and no
/// lock a worker would wait for. Not part of [`Store`](super::Store): only
/// what probes a store needs it.
pub trait Readiness: Send + Sync {
    /// `Ok` when ready; else why not: the database's error (unreachable,
    /// I/O), [`StoreError::SchemaBehind`], [`StoreError::SchemaTooNew`] or
    /// [`StoreError::MigrationChanged`].
    fn ready(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
