//! Embedded migrations and the schema-version check.

use sqlx::SqlitePool;

use super::rows::db;
use crate::store::StoreError;

/// The migrations, in order; `MIGRATIONS[i]` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_tiktok_inbox.sql"),
    include_str!("migrations/0003_ready_queue.sql"),
    include_str!("migrations/0004_summary_index.sql"),
    include_str!("migrations/0005_inbox_sidecar.sql"),
];

/// The newest schema version this binary knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`]: the pending migrations and
/// their version rows in one transaction. A database at a newer version is
/// refused with [`StoreError::SchemaTooNew`] and left untouched.
pub(super) async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS creatorflow_schema (
            version INTEGER NOT NULL PRIMARY KEY,
            binary_version TEXT NOT NULL
        ) STRICT",
    )
    .execute(pool)
    .await
    .map_err(db("creating the schema-version table"))?;
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db("starting the migration"))?;
    let found: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM creatorflow_schema")
        .fetch_one(&mut *tx)
        .await
        .map_err(db("reading the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS.iter())
        .skip(usize::try_from(found).unwrap_or(0))
    {
        sqlx::raw_sql(*sql)
            .execute(&mut *tx)
            .await
            .map_err(db("applying a migration"))?;
        sqlx::query("INSERT INTO creatorflow_schema (version, binary_version) VALUES (?, ?)")
            .bind(version)
            .bind(env!("CARGO_PKG_VERSION"))
            .execute(&mut *tx)
            .await
            .map_err(db("recording the schema version"))?;
    }
    tx.commit().await.map_err(db("committing the migration"))
}
