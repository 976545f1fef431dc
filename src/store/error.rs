//! The one error type of the storage layer.

use std::sync::Arc;

use super::{OrderId, WorkId};

/// Why a store operation failed. Every failure is typed; a store never
/// panics on bad input and never leaves a partial write behind: when a
/// method returns an error, nothing it would have written is visible.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL could not be understood (unknown scheme, missing path,
    /// unknown option). `url` has any password redacted.
    #[error("bad store URL `{url}`: {reason}")]
    BadUrl {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL names a backend this binary does not contain (not built yet,
    /// or its cargo feature is off).
    #[error("store URL `{url}`: the {scheme}:// backend is not available in this build ({detail})")]
    NotBuilt {
        /// The URL, password redacted.
        url: String,
        /// The URL's scheme.
        scheme: &'static str,
        /// What to do about it.
        detail: &'static str,
    },
    /// The database could not be opened or reached. `url` has any password redacted.
    #[error("cannot open store `{url}`: {message}")]
    Open {
        /// The URL, password redacted.
        url: String,
        /// The underlying error.
        message: String,
    },
    /// The database was written by a newer CreatorFlow: its schema version
    /// is higher than the newest this binary knows. Nothing was changed.
    #[error(
        "store schema version {found} is newer than this binary supports ({supported}); upgrade creatorflow"
    )]
    SchemaTooNew {
        /// The version recorded in the database.
        found: i64,
        /// The newest version this binary knows.
        supported: i64,
    },
    /// The database lacks migrations this binary carries (it was restored
    /// from an older copy, or replaced, under a running process): the store
    /// is not ready; opening it again applies them.
    #[error(
        "the {migrations} schema lacks {pending} migration(s) this binary needs (newest: {latest}); restart to apply them"
    )]
    SchemaBehind {
        /// The migration set (`sqlite`, `sqlite inbox`, `postgres`).
        migrations: &'static str,
        /// How many migrations are not applied.
        pending: usize,
        /// The newest version this binary knows.
        latest: i64,
    },
    /// A migration the database records as applied has a different text
    /// (checksum) in this binary: the embedded migration was edited after it
    /// was applied. Nothing was changed; restore the migration's text.
    #[error(
        "migration {version} of the {migrations} schema was changed after this database applied it (checksum mismatch); restore its original text"
    )]
    MigrationChanged {
        /// The migration set (`sqlite`, `sqlite inbox`, `postgres`).
        migrations: &'static str,
        /// The version whose text changed.
        version: i64,
    },
    /// Optimistic concurrency: the order is no longer in the state (or at the
    /// version) the caller read. Nothing was written; re-read and decide again.
    #[error(
        "conflict on order {order_id}: expected state `{expected_state}`{}, found `{actual_state}` (version {actual_version})",
        expected_version.map(|v| format!(" (version {v})")).unwrap_or_default()
    )]
    Conflict {
        /// The order.
        order_id: OrderId,
        /// The state the caller expected.
        expected_state: String,
        /// The version the caller expected, if it named one.
        expected_version: Option<u64>,
        /// The state the order is in.
        actual_state: String,
        /// The order's version.
        actual_version: u64,
    },
    /// No such record for this tenant. Records of other tenants are reported
    /// exactly like absent ones, so their existence is not revealed.
    #[error("{what} `{id}` not found")]
    NotFound {
        /// What was looked for (`order`, `work item`).
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The caller's lease on a work item is no longer valid: it expired, was
    /// taken over by another worker, or the item was settled already.
    #[error(
        "lease on work item {work_id} (worker `{worker}`, attempt {attempt}) is lost: expired, taken over or settled"
    )]
    LeaseLost {
        /// The work item.
        work_id: WorkId,
        /// The worker that held the lease.
        worker: String,
        /// The attempt the lease was for.
        attempt: u32,
    },
    /// The input cannot be stored as given (out of range, an order whose
    /// `user_id` is another tenant, a number too large for the database).
    #[error("invalid input: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// The database could not be reached, or went away during the call:
    /// the connection was refused, reset or closed, the server is shutting
    /// down or starting up (PostgreSQL restarted, a failover), or no
    /// connection came free in time. Transient ([`StoreError::is_transient`]):
    /// pause and try again; nothing is lost by doing so. A write that failed
    /// this way while committing may nevertheless have taken effect; every
    /// write of the store is idempotent, version-checked or leased, so
    /// trying it again never records anything twice.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The database failed (I/O, corruption, a broken constraint). The
    /// transaction was rolled back.
    #[error("database error: {message}")]
    Database {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// An [`StoreError::Invalid`] error.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        StoreError::Invalid {
            message: message.into(),
        }
    }

    /// A [`StoreError::Database`] error without an underlying source.
    pub(crate) fn database(message: impl Into<String>) -> Self {
        StoreError::Database {
            message: message.into(),
            source: None,
        }
    }

    /// A [`StoreError::NotFound`] error for an order.
    pub(crate) fn order_not_found(id: OrderId) -> Self {
        StoreError::NotFound {
            what: "order",
            id: id.to_string(),
        }
    }

    /// Whether this is a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }

    /// Whether this is a [`StoreError::LeaseLost`].
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, StoreError::LeaseLost { .. })
    }

    /// Whether the store is away for now ([`StoreError::Unavailable`]): the
    /// same call may succeed later, once it is back. Every loop of the
    /// service pauses and retries on these rather than giving up.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Whether `e` says the database is out of reach rather than that the
/// statement failed: no connection (refused, reset, closed, TLS), no free
/// connection in time, or the server ending sessions or refusing them —
/// SQLSTATE class `08` (connection exception), `57P01` (admin shutdown,
/// as `pg_ctl -m fast stop` does), `57P02` (crash shutdown), `57P03`
/// (cannot connect now: starting up, shutting down), `53300` (too many
/// connections).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// Maps an sqlx error to [`StoreError::Unavailable`] when the database is
/// out of reach ([`is_unreachable`]), else to [`StoreError::Database`],
/// naming what was being done.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn db(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        let message = format!("{context}: {e}");
        if is_unreachable(&e) {
            StoreError::Unavailable {
                message,
                source: Some(Arc::new(e)),
            }
        } else {
            StoreError::Database {
                message,
                source: Some(Arc::new(e)),
            }
        }
    }
}

/// Like [`db`], for statements that carry secrets (tokens): the database's
/// message only, without the underlying error, whose `Debug` would show the
/// server's detail (a failing row, with its values).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn db_secret(context: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        let message = format!("{context}: {e}");
        if is_unreachable(&e) {
            StoreError::Unavailable {
                message,
                source: None,
            }
        } else {
            StoreError::database(message)
        }
    }
}
