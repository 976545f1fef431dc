//! The SQLite files' migrations, run by the shared algorithm
//! (`store::migrate`): the main file's set and the inbox file's set.

use crate::store::Result;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqlitePool};

use super::rows::db;
use crate::store::migrate::{self, Applied, Migrations};

/// The main file's migrations.
pub(super) const MAIN: Migrations = Migrations {
    name: "sqlite",
    texts: &[
        include_str!("migrations/0001_initial.sql"),
        include_str!("migrations/0002_tiktok_inbox.sql"),
        include_str!("migrations/0003_ready_queue.sql"),
        include_str!("migrations/0004_summary_index.sql"),
        include_str!("migrations/0005_inbox_sidecar.sql"),
        include_str!("migrations/0006_drop_unused_tables.sql"),
        include_str!("migrations/0007_shops.sql"),
        include_str!("migrations/0008_pack_versions.sql"),
        include_str!("migrations/0009_order_counts.sql"),
        include_str!("migrations/0010_review_queue.sql"),
        include_str!("migrations/0011_orders_created.sql"),
        include_str!("migrations/0012_shipped_at.sql"),
        include_str!("migrations/0013_worker_heartbeats.sql"),
        include_str!("migrations/0014_cluster.sql"),
        include_str!("migrations/0015_work_payloads.sql"),
    ],
};

/// The inbox file's migrations (`migrations/inbox/`).
pub(super) const INBOX: Migrations = Migrations {
    name: "sqlite inbox",
    texts: &[include_str!("migrations/inbox/0001_inbox.sql")],
};

/// Brings the file behind `pool` to the newest version of `set`, in one
/// transaction (see `store::migrate`). Each file records its versions in
/// its own `creatorflow_schema` table; one without rows there is read at
/// its `PRAGMA user_version` (how inbox files recorded their version before
/// the table), whose versions are then backfilled with checksums. The file's
/// `user_version` follows, so that an older binary still refuses a newer
/// file.
pub(super) async fn run(pool: &SqlitePool, set: &Migrations) -> Result<()> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db("starting the migration"))?;
    let applied = applied(&mut tx, set.latest()).await?;
    let plan = migrate::plan(set, &applied)?;
    if plan.is_empty() {
        return Ok(());
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS creatorflow_schema (
            version INTEGER NOT NULL PRIMARY KEY,
            binary_version TEXT NOT NULL,
            checksum BLOB
        ) STRICT",
    )
    .execute(&mut *tx)
    .await
    .map_err(db("creating the schema-version table"))?;
    if !has_checksums(&mut tx).await? {
        sqlx::raw_sql("ALTER TABLE creatorflow_schema ADD COLUMN checksum BLOB")
            .execute(&mut *tx)
            .await
            .map_err(db("adding checksums to the schema-version table"))?;
    }
    let record = "INSERT INTO creatorflow_schema (version, binary_version, checksum) \
                  VALUES (?, ?, ?) ON CONFLICT (version) DO UPDATE SET checksum = excluded.checksum";
    plan.apply::<Sqlite>(&mut tx, record).await?;
    // A PRAGMA takes no parameters; the value is this binary's constant.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "PRAGMA user_version = {}",
        set.latest()
    )))
    .execute(&mut *tx)
    .await
    .map_err(db("recording the schema version"))?;
    tx.commit().await.map_err(db("committing the migration"))
}

/// The versions the file records (see [`run`]).
async fn applied(conn: &mut SqliteConnection, latest: i64) -> Result<Vec<Applied>> {
    let table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master \
                        WHERE type = 'table' AND name = 'creatorflow_schema')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("looking for the schema-version table"))?;
    let mut applied = Vec::new();
    if table {
        let checksum = if has_checksums(conn).await? {
            "checksum"
        } else {
            "NULL"
        };
        applied = migrate::recorded::<Sqlite>(conn, "creatorflow_schema", checksum).await?;
    }
    if applied.is_empty() {
        let found: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(db("reading the schema version"))?;
        // Versions up to the binary's, and the one found if it is newer
        // (then refused): never a list as long as a corrupt number.
        applied = (1..=found.min(latest))
            .chain((found > latest).then_some(found))
            .map(|version| Applied {
                version,
                checksum: None,
            })
            .collect();
    }
    Ok(applied)
}

/// Whether `creatorflow_schema` has its `checksum` column (tables created
/// before checksums do not).
async fn has_checksums(conn: &mut SqliteConnection) -> Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('creatorflow_schema') \
                        WHERE name = 'checksum')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db("reading the schema-version table"))
}

/// Whether the file behind `pool` (a reader) is at exactly `set`'s newest
/// version (see [`migrate::current`]): one read, no lock.
pub(super) async fn check(pool: &SqlitePool, set: &Migrations) -> Result<()> {
    let mut conn = pool.acquire().await.map_err(db("acquiring a connection"))?;
    let applied = applied(&mut conn, set.latest()).await?;
    migrate::current(set, &applied)
}

impl crate::store::Readiness for super::SqliteStore {
    /// Both files answer and are at this binary's versions.
    async fn ready(&self) -> Result<()> {
        check(&self.main.reader, &MAIN).await?;
        check(&self.inbox.reader, &INBOX).await
    }
}
