//! The `postgres://` store, through sqlx: several processes share one
//! database (and its work queue), and the database itself keeps tenants
//! apart with row-level security.
//!
//! # Connecting
//!
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?schema=NAME&max_connections=N&…]`.
//! `USER` is the **owner**: on open, one connection as `USER` applies the
//! embedded migrations (in one transaction, under an advisory lock, so
//! processes opening together do not race), which create the tables in
//! `schema` (default `creatorflow`, created if missing) and the roles below
//! if missing, and grant `USER` membership of them. The store's pool then
//! also logs in as `USER`, but every connection switches at once to
//! `creatorflow_app` (`SET ROLE`), and every transaction names its role and
//! tenant again (`SET LOCAL ROLE …; SET LOCAL creatorflow.tenant = …`, which
//! is `set_config(…, true)`), so no query of the store runs with the owner's
//! rights. Once the owner has migrated the schema, `USER` may instead be a
//! login that only holds the three roles below (`GRANT creatorflow_app,
//! creatorflow_worker, creatorflow_admin TO …`): it can read the schema
//! version, and nothing else as itself. Other
//! options (`sslmode`, `application_name`, …) go to the driver; the standard
//! `PG*` environment variables fill in what the URL leaves out.
//!
//! The store keeps two pools: up to `max_connections` (default 10) for
//! everything, and [`PostgresStore::INBOX_CONNECTIONS`] more, kept open,
//! for webhook inbox appends only, so that acknowledging a push never waits
//! for a connection held by the workers or the inbox processor.
//!
//! # Tenant isolation (migration 2)
//!
//! | role | can |
//! |---|---|
//! | `creatorflow_app` | everything a tenant does, on the rows whose `user_id` is the transaction's tenant (`creatorflow.tenant`): orders (read, write), history and metrics (read, append), webhooks, its queue items, its connected shops; rule statistics read-only; pending authorization states: issued for the tenant, read and deleted only by the transaction naming one (`shops.rs`) |
//! | `creatorflow_worker` | read every tenant's queue rows and take, renew or hand back leases on them (`UPDATE` of the lease columns only); nothing else: not even orders |
//! | `creatorflow_admin` | write rule statistics (of the tenant in scope) |
//!
//! All three are `NOLOGIN NOSUPERUSER NOBYPASSRLS`, every table has
//! `ENABLE` and `FORCE ROW LEVEL SECURITY`, and [`PostgresStore::open`]
//! refuses to run if a role can bypass the policies. Queue claims and
//! summaries across tenants ([`TenantScope::All`](crate::store::TenantScope::All))
//! run as `creatorflow_worker`: a worker learns which items are due (order
//! id, kind, payload, tenant) but reads and changes each order only through
//! a tenant-scoped transaction as `creatorflow_app`. Rule statistics are
//! saved as `creatorflow_admin`.
//!
//! # Round trips and batches
//!
//! A transaction opens with one simple-protocol round trip (`BEGIN`, role,
//! tenant; the tenant is sent as an escaped literal); a lease operation
//! (renew, complete, release: one statement) is a whole transaction in one
//! round trip, its values sent as literals too; and batches write
//! through one array-bound statement per kind of write (`UNNEST($1::uuid[],
//! …)`), so a batch of any size costs the same handful of round trips. A
//! transition batch locks its orders (`FOR UPDATE`, by id, so concurrent
//! batches cannot deadlock on them), decides with the shared
//! [`logic::resolve`](crate::store::logic), and writes the order updates, the
//! history rows and the settled leases in one statement. Claims lock with
//! `FOR UPDATE SKIP LOCKED`: concurrent claimants, in this process or
//! another, never wait on or take each other's items.

mod cluster;
mod dashboard;
mod heartbeat;
mod inbox;
mod migrate;
mod orders;
mod queue;
mod reads;
#[cfg(test)]
mod reconnect_tests;
mod retry;
mod review;
mod rows;
mod shops;

use crate::store::Result;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use sqlx::{AssertSqlSafe, Connection, Executor};

use super::StoreError;
use super::fault::{Fault, FaultPoint, InjectFault};
use super::url::{PostgresTarget, Target};
use rows::db;

/// The role every tenant-scoped operation runs as.
pub(crate) const APP_ROLE: &str = "creatorflow_app";
/// The role cross-tenant queue claims and summaries run as.
pub(crate) const WORKER_ROLE: &str = "creatorflow_worker";

/// How long opening waits for the first connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long any other call waits for a connection (connecting included)
/// before it fails as `StoreError::Unavailable`: while the database is away
/// an API read answers 503 in seconds, and workers pause with their
/// backoff, rather than each waiting out the open's 30 s.
const POOL_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an inbox append waits for a reserved connection: within the
/// webhook's acknowledgement budget (2.5 s, TikTok allows 3 s), so that
/// while the database is away each push is answered 503 in time (TikTok
/// retries) rather than queueing behind a connection that cannot come.
const INBOX_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The pool settings of both pools: at most `max` connections, `min` kept
/// open, `acquire` the longest wait for one (connecting included), every
/// connection switched to the application role.
fn pool_options(max: u32, min: u32, acquire: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .min_connections(min)
        .acquire_timeout(acquire)
        // Each transaction's first statement fails on a dead connection
        // anyway; a test query per acquire would cost a round trip.
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // Nothing on this connection runs with the owner's rights.
                conn.execute("SET ROLE creatorflow_app").await?;
                Ok(())
            })
        })
}

/// The PostgreSQL store (`postgres://…`); cheap to clone (clones share the
/// pools). See the module docs (`src/store/postgres/mod.rs`) for
/// how it connects and what the database enforces.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// [`PostgresStore::INBOX_CONNECTIONS`] connections for inbox appends only.
    inbox_pool: PgPool,
    schema: String,
    fault: Fault,
}

/// A role a transaction runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `creatorflow_app`.
    App,
    /// `creatorflow_worker`.
    Worker,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::App => APP_ROLE,
            Role::Worker => WORKER_ROLE,
        }
    }
}

/// How a transaction reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Read committed, read-write (every write; row locks where needed).
    Write,
    /// Repeatable read, read-only: several queries see one snapshot.
    Read,
}

impl PostgresStore {
    /// Opens the store a `postgres://` URL names: connects as the URL's user,
    /// applies the embedded migrations, checks that the roles cannot bypass
    /// row-level security, and opens the pool. See [`open`](super::open) for
    /// the errors.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        match super::url::parse(url)? {
            Target::Postgres(target) => Self::open_target(&target, &super::url::redact(url)).await,
            _ => Err(super::url::expected(url, "postgres")),
        }
    }

    pub(super) async fn open_target(
        target: &PostgresTarget,
        shown_url: &str,
    ) -> Result<PostgresStore> {
        let secret = super::url::password(&target.url);
        let scrub = |message: String| match &secret {
            Some(p) if !p.is_empty() => message.replace(p.as_str(), "***"),
            _ => message,
        };
        let open_error = |message: String| StoreError::Open {
            url: shown_url.to_owned(),
            message: scrub(message),
        };
        let mut options =
            PgConnectOptions::from_str(&target.url).map_err(|e| StoreError::BadUrl {
                url: shown_url.to_owned(),
                reason: scrub(e.to_string()),
            })?;
        options = options.options([("search_path", target.schema.as_str())]);
        if options.get_application_name().is_none() {
            options = options.application_name("creatorflow");
        }
        let mut owner =
            match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(open_error(e.to_string())),
                Err(_) => {
                    return Err(open_error(format!(
                        "no connection within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
            };
        let migrated = migrate::run(&mut owner, &target.schema).await;
        let checked = match migrated {
            Ok(()) => migrate::check_isolation(&mut owner, &target.schema)
                .await
                .map_err(|problem| match problem {
                    migrate::Problem::Unsafe(message) => open_error(message),
                    migrate::Problem::Store(e) => e,
                }),
            Err(e) => Err(e),
        };
        // The owner's connection is not needed any more, whatever happened.
        let _ = owner.close().await;
        checked?;
        let pool = pool_options(target.max_connections, 0, POOL_ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| open_error(e.to_string()))?;
        // Reserved for inbox appends (acknowledgements), kept open: an
        // acknowledgement never waits for a connection the workers hold.
        let inbox_pool = pool_options(
            Self::INBOX_CONNECTIONS,
            Self::INBOX_CONNECTIONS,
            INBOX_ACQUIRE_TIMEOUT,
        )
        .connect_with(options)
        .await
        .map_err(|e| open_error(e.to_string()))?;
        Ok(PostgresStore {
            pool,
            inbox_pool,
            schema: target.schema.clone(),
            fault: Fault::default(),
        })
    }

    /// Connections reserved for inbox appends, on top of the pool's
    /// `max_connections`, and kept open: an acknowledgement never waits for
    /// a connection the workers hold. Appends are group-committed (one
    /// transaction per batch of pushes: `serve` has one appender), so few
    /// are needed; the second serves a host appending from another task
    /// while the first commits.
    pub const INBOX_CONNECTIONS: u32 = 2;

    /// The database answers on a pooled connection and the schema is at
    /// this binary's version (readiness; [`Readiness`](crate::store::Readiness)).
    async fn check_ready(&self) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(db("acquiring a connection"))?;
        let checked = migrate::check(&mut conn, &self.schema).await;
        if matches!(checked, Err(StoreError::Database { .. })) {
            // A dead connection is not handed to the next caller.
            conn.close_on_drop();
        }
        checked
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Closes the pools (waiting for in-flight statements). Dropping the
    /// store closes them too, in the background.
    pub async fn close(&self) {
        self.inbox_pool.close().await;
        self.pool.close().await;
    }

    /// Starts a transaction as `role` for `tenant` (none: the tenant setting
    /// stays empty, which no policy matches), in one round trip.
    async fn begin(&self, role: Role, tenant: Option<&str>, mode: Mode) -> Result<Tx> {
        self.begin_on(&self.pool, role, tenant, mode).await
    }

    /// Runs `work` in a transaction as the application role for `tenant`,
    /// committing if it succeeds and rolling back if not.
    async fn for_tenant<T>(
        &self,
        tenant: &str,
        mode: Mode,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let mut tx = self.begin(Role::App, Some(tenant), mode).await?;
        let result = work(tx.conn()).await;
        tx.end(result).await
    }

    /// [`PostgresStore::begin`] on a connection of `pool`.
    async fn begin_on(
        &self,
        pool: &PgPool,
        role: Role,
        tenant: Option<&str>,
        mode: Mode,
    ) -> Result<Tx> {
        let sql = begin_sql(role, tenant, mode)?;
        let (conn, _) = on_live_connection(pool, sql, "starting a transaction").await?;
        Ok(Tx { conn, done: false })
    }

    /// Runs one data-changing `statement` (with `RETURNING`, values as
    /// literals) as a whole transaction in **one round trip**: `BEGIN`, role,
    /// tenant, the statement, `COMMIT`, sent as one simple-protocol message.
    /// Returns how many rows the statement returned. Used for the lease
    /// operations, a worker's most frequent writes.
    async fn one_shot(
        &self,
        role: Role,
        tenant: &str,
        statement: &str,
        context: &'static str,
    ) -> Result<usize> {
        Ok(one_shot_rows(&self.pool, role, tenant, statement, context)
            .await?
            .len())
    }
}

/// [`PostgresStore::one_shot`] on `pool`, returning the statement's rows.
async fn one_shot_rows(
    pool: &PgPool,
    role: Role,
    tenant: &str,
    statement: &str,
    context: &'static str,
) -> Result<Vec<sqlx::postgres::PgRow>> {
    let sql = format!(
        "{}; {statement}; COMMIT",
        begin_sql(role, Some(tenant), Mode::Write)?
    );
    let (_, rows) = on_live_connection(pool, sql, context).await?;
    Ok(rows)
}

/// Runs `sql`, a connection's first message (a transaction's start, or a
/// whole one-message transaction), on a connection of `pool`, and returns
/// the connection with the rows it returned.
///
/// A pooled connection may have been closed by the server while it sat
/// idle: PostgreSQL restarted (`pg_ctl -m fast` ends every session with
/// "terminating connection due to administrator command"), a failover, a
/// proxy's idle timeout. Its first message then fails ([`went_away`]), in
/// practice without having run (the server's message was waiting on the
/// socket), and `sql` is sent again on another connection, until the
/// pool has handed out each connection it held (each dead one is closed, so
/// the pool opens fresh ones): after a restart the first call succeeds
/// instead of one failure per stale connection. If the server itself is
/// down, acquiring fails ([`StoreError::Unavailable`]). A connection whose
/// statement failed is never handed back to the pool (its transaction
/// state is unknown).
async fn on_live_connection(
    pool: &PgPool,
    sql: String,
    context: &'static str,
) -> Result<(PoolConnection<Postgres>, Vec<sqlx::postgres::PgRow>)> {
    let sql = std::sync::Arc::new(sql);
    let tries = pool.options().get_max_connections() + 1;
    let mut tried = 0;
    loop {
        let mut conn = pool.acquire().await.map_err(db("acquiring a connection"))?;
        match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .fetch_all(&mut *conn)
            .await
        {
            Ok(out) => return Ok((conn, out)),
            Err(e) => {
                conn.close_on_drop();
                tried += 1;
                if !(went_away(&e) && tried < tries) {
                    return Err(db(context)(e));
                }
            }
        }
    }
}

/// Whether the server ended the session: it reported the session
/// terminated (`57P01` admin shutdown, `57P02` crash shutdown, `57P03`
/// cannot connect now, class `08`), which rolls back whatever it was
/// running, or the socket was closed under us. Only in the last case, and
/// only if the server died between committing and answering, can the
/// statement have taken effect; the statements run first on a connection
/// are a transaction's start (nothing to repeat) or a one-message
/// transaction of an inbox append (idempotent: `ON CONFLICT DO NOTHING`) or
/// a lease operation (checked against the lease: never applied twice).
fn went_away(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(d) => d
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The statement that opens a transaction: `BEGIN`, the role, the tenant.
fn begin_sql(role: Role, tenant: Option<&str>, mode: Mode) -> Result<String> {
    let begin = match mode {
        Mode::Write => "BEGIN ISOLATION LEVEL READ COMMITTED",
        Mode::Read => "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    };
    let mut sql = format!("{begin}; SET LOCAL ROLE {}", role.name());
    if let Some(tenant) = tenant {
        // `SET LOCAL` is `set_config(…, true)`: it ends with the transaction.
        sql.push_str("; SET LOCAL creatorflow.tenant = ");
        sql.push_str(&literal(tenant)?);
    }
    Ok(sql)
}

/// A time as an SQL literal: `'…'::timestamptz` (RFC 3339, milliseconds,
/// UTC; digits and `-:.TZ+` only).
fn time_literal(t: DateTime<Utc>) -> String {
    format!(
        "'{}'::timestamptz",
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

/// `text` as an SQL string literal: `E'…'` with `\` and `'` escaped, which
/// means the same whatever `standard_conforming_strings` is. Text with a NUL
/// cannot be stored by PostgreSQL and is refused.
fn literal(text: &str) -> Result<String> {
    if text.contains('\0') {
        return Err(StoreError::invalid("a tenant must not contain NUL"));
    }
    let mut out = String::with_capacity(text.len() + 3);
    out.push_str("E'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// An open transaction on a pooled connection. [`Tx::end`] commits or rolls
/// back; dropped without it (a database error, a cancelled future), the
/// connection is closed instead of returned, which ends the transaction.
struct Tx {
    conn: PoolConnection<Postgres>,
    done: bool,
}

impl Tx {
    /// The connection, for running statements.
    fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Commits if `result` is `Ok`, rolls back otherwise, and returns `result`
    /// (or the commit's failure).
    async fn end<T>(mut self, result: Result<T>) -> Result<T> {
        let sql = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        match sqlx::raw_sql(sql).execute(&mut *self.conn).await {
            Ok(_) => {
                self.done = true;
                result
            }
            Err(e) => result.and(Err(db("committing")(e))),
        }
    }

    /// Changes the transaction's tenant (a batch spanning tenants).
    async fn set_tenant(&mut self, tenant: &str) -> Result<()> {
        if tenant.contains('\0') {
            return Err(StoreError::invalid("a tenant must not contain NUL"));
        }
        sqlx::query("SELECT set_config('creatorflow.tenant', $1, true)")
            .bind(tenant)
            .execute(self.conn())
            .await
            .map_err(db("setting the tenant"))?;
        Ok(())
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

/// Groups are accepted; each call commits on its own (see `GroupCommit`): a group changes nothing.
impl super::GroupCommit for PostgresStore {
    async fn begin_group(&self) -> Result<(), super::StoreError> {
        Ok(())
    }

    async fn commit_group(&self) -> Result<(), super::StoreError> {
        Ok(())
    }
}

impl InjectFault for PostgresStore {
    fn inject_fault(&self, point: FaultPoint) {
        self.fault.arm(point);
    }
}

impl crate::store::Readiness for PostgresStore {
    async fn ready(&self) -> Result<()> {
        self.check_ready().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_quoted_as_literals() {
        assert_eq!(literal("creator-1").unwrap(), "E'creator-1'");
        assert_eq!(
            literal(r"o'brien\'); DROP TABLE orders; --").unwrap(),
            r"E'o''brien\\''); DROP TABLE orders; --'"
        );
        assert_eq!(literal("ünï ✓").unwrap(), "E'ünï ✓'");
        assert!(matches!(literal("a\0b"), Err(StoreError::Invalid { .. })));
        assert_eq!(
            begin_sql(Role::App, Some("t"), Mode::Write).unwrap(),
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL ROLE creatorflow_app; \
             SET LOCAL creatorflow.tenant = E't'"
        );
        let t: DateTime<Utc> = "2025-06-12T10:00:00.123456Z".parse().unwrap();
        assert_eq!(time_literal(t), "'2025-06-12T10:00:00.123Z'::timestamptz");
        assert_eq!(
            begin_sql(Role::Worker, None, Mode::Read).unwrap(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL ROLE creatorflow_worker"
        );
    }
}
