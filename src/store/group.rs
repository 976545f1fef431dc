//! [`GroupCommit`]: many store calls committed as one (group commit across
//! calls, for a driver that knows when a unit of work ends).

use std::future::Future;

use super::StoreError;

/// Group commit across calls. Between [`begin_group`](Self::begin_group)
/// and [`commit_group`](Self::commit_group), a backend may put every write
/// of this store handle into one database transaction, committed (and, on
/// a durable backend, synced to disk) once at the end instead of once per
/// call. Inside a group:
///
/// - every call keeps its own contract: a call that fails writes nothing
///   (its part of the group is rolled back alone, the group goes on), and
///   the calls see each other's writes, as they would one after another;
/// - a write is **durable only once `commit_group` returns**: a crash, or a
///   store dropped with its group open, loses the whole group (never part
///   of a call).
///
/// So a host groups only work it can redo: the simulator groups each
/// simulated minute. Acknowledgements that promise durability (the webhook
/// inbox) must not be made inside a group. Opening a group that is open,
/// and committing when none is, do nothing.
///
/// Backends: SQLite holds one `BEGIN IMMEDIATE` transaction on its writer
/// connection, each call a savepoint in it, and serves reads from that
/// connection while the group is open (so they see the group's writes).
/// The memory store has nothing to sync, and PostgreSQL commits each call as
/// it comes (its connections are pooled; grouping them is not built): for
/// both, the group is accepted and changes nothing.
pub trait GroupCommit: Send + Sync {
    /// Opens a group (nothing if one is open).
    fn begin_group(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Commits the group's writes as one durable commit and ends the group
    /// (nothing if none is open). On error nothing of the group was written.
    fn commit_group(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}
