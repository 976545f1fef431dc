//! Embedded migrations, the schema-version check, and the check that the
//! roles the store runs as cannot bypass row-level security.

use crate::store::Result;
use sqlx::postgres::{PgConnection, Postgres};
use sqlx::{AssertSqlSafe, Connection};

use super::rows::db;
use super::{APP_ROLE, WORKER_ROLE};
use crate::store::StoreError;
use crate::store::migrate::{self, Applied, Migrations};

/// The PostgreSQL migrations.
const MIGRATIONS: Migrations = Migrations {
    name: "postgres",
    texts: &[
        include_str!("migrations/0001_initial.sql"),
        include_str!("migrations/0002_tenant_isolation.sql"),
        include_str!("migrations/0003_tiktok_inbox.sql"),
        include_str!("migrations/0004_ready_queue.sql"),
        include_str!("migrations/0005_drop_unused_tables.sql"),
        include_str!("migrations/0006_shops.sql"),
        include_str!("migrations/0007_pack_versions.sql"),
        include_str!("migrations/0008_order_counts.sql"),
        include_str!("migrations/0009_review_queue.sql"),
        include_str!("migrations/0010_orders_created.sql"),
        include_str!("migrations/0011_shipped_at.sql"),
        include_str!("migrations/0012_worker_heartbeats.sql"),
        include_str!("migrations/0013_cluster.sql"),
    ],
};

/// The tables row-level security must cover.
const TABLES: &[&str] = &[
    "orders",
    "order_counts",
    "order_transitions",
    "work_queue",
    "tiktok_inbox",
    "tiktok_order_events",
    "tiktok_cursors",
    "tiktok_shops",
    "tiktok_auth_states",
];

/// Brings `schema` (the connection's `search_path`) to the newest version
/// by the shared algorithm (`store::migrate`: checksums recorded, a changed
/// migration or a newer schema refused, versions recorded before checksums
/// backfilled): creates the schema and the version table if missing, then
/// applies the pending migrations and records them, all in one transaction
/// under an advisory lock (processes opening the same schema at once take
/// turns).
pub(super) async fn run(conn: &mut PgConnection, schema: &str) -> Result<()> {
    let mut tx = conn.begin().await.map_err(db("starting the migration"))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("creatorflow.migrate:{schema}"))
        .execute(&mut *tx)
        .await
        .map_err(db("locking the schema for migration"))?;
    let table = format!("{schema}.creatorflow_schema");
    let applied = applied(&mut tx, schema, &table).await?;
    let plan = migrate::plan(&MIGRATIONS, &applied)?;
    if plan.is_empty() {
        return tx.commit().await.map_err(db("ending the migration"));
    }
    // `schema` is a checked identifier (see `url::is_identifier`).
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}; \
         CREATE TABLE IF NOT EXISTS {table} ( \
             version        BIGINT      NOT NULL PRIMARY KEY, \
             binary_version TEXT        NOT NULL, \
             applied_at     TIMESTAMPTZ NOT NULL DEFAULT now()); \
         ALTER TABLE {table} ADD COLUMN IF NOT EXISTS checksum BYTEA"
    )))
    .execute(&mut *tx)
    .await
    .map_err(db("creating the schema"))?;
    let record = format!(
        "INSERT INTO {table} (version, binary_version, checksum) VALUES ($1, $2, $3) \
         ON CONFLICT (version) DO UPDATE SET checksum = excluded.checksum"
    );
    plan.apply::<Postgres>(&mut tx, &record).await?;
    tx.commit().await.map_err(db("committing the migration"))
}

/// The versions `table` records (none if it does not exist; without
/// checksums if it predates them).
async fn applied(conn: &mut PgConnection, schema: &str, table: &str) -> Result<Vec<Applied>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .map_err(db("looking for the schema-version table"))?;
    if !exists {
        return Ok(Vec::new());
    }
    let has_checksums: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
                        WHERE table_schema = $1 AND table_name = 'creatorflow_schema' \
                          AND column_name = 'checksum')",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading the schema-version table"))?;
    let checksum = if has_checksums {
        "checksum"
    } else {
        "NULL::bytea"
    };
    migrate::recorded::<Postgres>(conn, table, checksum).await
}

/// Whether `schema` is at exactly this binary's newest version (see
/// `store::migrate::current`), read on `conn` (the application role may
/// read the version table).
pub(super) async fn check(conn: &mut PgConnection, schema: &str) -> Result<()> {
    let table = format!("{schema}.creatorflow_schema");
    let applied = applied(conn, schema, &table).await?;
    migrate::current(&MIGRATIONS, &applied)
}

/// Why the database is not safe to run on.
pub(super) enum Problem {
    /// Row-level security would not hold (the message says why and what to do).
    Unsafe(String),
    /// The check itself failed.
    Store(StoreError),
}

/// Checks that the store's roles exist, that the login can switch to them,
/// that none of them can bypass row-level security, and that every table
/// has it enabled and forced.
pub(super) async fn check_isolation(conn: &mut PgConnection, schema: &str) -> Result<(), Problem> {
    let roles = [APP_ROLE, WORKER_ROLE];
    let rows: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT rolname::text, rolsuper OR rolbypassrls, pg_has_role(session_user, oid, 'MEMBER') \
         FROM pg_roles WHERE rolname = ANY($1)",
    )
    .bind(roles)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| Problem::Store(db("checking the store's roles")(e)))?;
    for role in roles {
        match rows.iter().find(|(name, ..)| name == role) {
            None => {
                return Err(Problem::Unsafe(format!(
                    "role {role} is missing (the schema migration creates it; it was dropped?)"
                )));
            }
            Some((_, true, _)) => {
                return Err(Problem::Unsafe(format!(
                    "role {role} is a superuser or has BYPASSRLS, so row-level security would \
                     not apply to it; run ALTER ROLE {role} NOSUPERUSER NOBYPASSRLS"
                )));
            }
            Some((_, _, false)) => {
                return Err(Problem::Unsafe(format!(
                    "the URL's user cannot SET ROLE {role}; run GRANT {role} TO <that user>"
                )));
            }
            Some(_) => {}
        }
    }
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relname = ANY($2) \
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity) ORDER BY 1",
    )
    .bind(schema)
    .bind(TABLES)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| Problem::Store(db("checking row-level security")(e)))?;
    if !unprotected.is_empty() {
        return Err(Problem::Unsafe(format!(
            "row-level security is not enabled and forced on {} in schema {schema}",
            unprotected.join(", ")
        )));
    }
    Ok(())
}
