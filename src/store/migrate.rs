//! The one migration algorithm every migration set runs (the SQLite main
//! file, the SQLite inbox file, PostgreSQL), after sqlx's `Migrator`: each
//! applied version is recorded with the SHA-256 of its text, and on open
//!
//! - a database at a version newer than the binary knows is refused
//!   ([`StoreError::SchemaTooNew`]) before anything is written;
//! - an applied migration whose text changed since is refused
//!   ([`StoreError::MigrationChanged`]), never silently skipped;
//! - a version recorded without a checksum (by a CreatorFlow older than
//!   checksums, or a SQLite inbox file that only kept `PRAGMA user_version`)
//!   is trusted once and gets the checksum of this binary's text (backfill);
//! - the versions not applied yet are applied, in order.
//!
//! This module decides ([`plan`]); each backend reads the version table and
//! carries the [`Plan`] out in one transaction.

use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use super::StoreError;
use super::error::db;

/// A migration set: its name (for errors) and its texts, `texts[i]`
/// bringing the schema to version `i + 1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migrations {
    /// What the set migrates (`sqlite`, `sqlite inbox`, `postgres`).
    pub name: &'static str,
    /// The migrations, in order.
    pub texts: &'static [&'static str],
}

impl Migrations {
    /// The newest version this binary knows.
    pub fn latest(&self) -> i64 {
        i64::try_from(self.texts.len()).unwrap_or(i64::MAX)
    }
}

/// A version the database records as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    /// The version.
    pub version: i64,
    /// The checksum recorded with it, if any.
    pub checksum: Option<Vec<u8>>,
}

/// A migration to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The version it brings the schema to.
    pub version: i64,
    /// Its text.
    pub sql: &'static str,
    /// The checksum to record.
    pub checksum: Vec<u8>,
}

/// What opening a database must do to its schema.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Applied versions without a checksum, with the one to record.
    pub backfill: Vec<(i64, Vec<u8>)>,
    /// Migrations to apply, in order.
    pub pending: Vec<Pending>,
}

impl Plan {
    /// Whether the database is up to date (nothing to write).
    pub fn is_empty(&self) -> bool {
        self.backfill.is_empty() && self.pending.is_empty()
    }

    /// Carries the plan out on `conn`, within the caller's transaction:
    /// records the backfilled checksums, then applies each pending migration
    /// and records it. `record` writes one version, binding `(version,
    /// binary_version, checksum)`; for a version already recorded it sets
    /// the checksum only.
    pub async fn apply<DB>(&self, conn: &mut DB::Connection, record: &str) -> Result<(), StoreError>
    where
        DB: sqlx::Database,
        DB::Arguments: sqlx::IntoArguments<DB>,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
        for<'t> &'t str: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
        for<'t> &'t Vec<u8>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    {
        let binary_version = env!("CARGO_PKG_VERSION");
        for (version, checksum) in &self.backfill {
            sqlx::query::<DB>(AssertSqlSafe(record))
                .bind(*version)
                .bind(binary_version)
                .bind(checksum)
                .execute(&mut *conn)
                .await
                .map_err(db("recording a migration's checksum"))?;
        }
        for p in &self.pending {
            sqlx::raw_sql(p.sql)
                .execute(&mut *conn)
                .await
                .map_err(db("applying a migration"))?;
            sqlx::query::<DB>(AssertSqlSafe(record))
                .bind(p.version)
                .bind(binary_version)
                .bind(&p.checksum)
                .execute(&mut *conn)
                .await
                .map_err(db("recording the schema version"))?;
        }
        Ok(())
    }
}

/// The versions `table` records, with `checksum` (the checksum column, or a
/// NULL of its type where the table predates checksums) read as each one's
/// checksum.
pub(crate) async fn recorded<DB>(
    conn: &mut DB::Connection,
    table: &str,
    checksum: &str,
) -> Result<Vec<Applied>, StoreError>
where
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'r> (i64, Option<Vec<u8>>): sqlx::FromRow<'r, DB::Row>,
{
    let rows: Vec<(i64, Option<Vec<u8>>)> = sqlx::query_as::<DB, _>(AssertSqlSafe(format!(
        "SELECT version, {checksum} FROM {table} ORDER BY version"
    )))
    .fetch_all(conn)
    .await
    .map_err(db("reading the schema versions"))?;
    Ok(rows
        .into_iter()
        .map(|(version, checksum)| Applied { version, checksum })
        .collect())
}

/// The SHA-256 of a migration's text.
pub(crate) fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// Whether a database recording `applied` is at exactly `set`'s newest
/// version, for readiness: `Ok`, or why not ([`StoreError::SchemaBehind`],
/// [`StoreError::SchemaTooNew`], [`StoreError::MigrationChanged`]).
/// Checksums still to backfill do not count: the schema is the same.
pub(crate) fn current(set: &Migrations, applied: &[Applied]) -> Result<(), StoreError> {
    let plan = plan(set, applied)?;
    if plan.pending.is_empty() {
        Ok(())
    } else {
        Err(StoreError::SchemaBehind {
            migrations: set.name,
            pending: plan.pending.len(),
            latest: set.latest(),
        })
    }
}

/// Decides what to do with a database recording `applied` (see the module
/// docs). Errors: [`StoreError::SchemaTooNew`], [`StoreError::MigrationChanged`].
pub(crate) fn plan(set: &Migrations, applied: &[Applied]) -> Result<Plan, StoreError> {
    let latest = set.latest();
    if let Some(found) = applied.iter().map(|a| a.version).max()
        && found > latest
    {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest,
        });
    }
    let mut plan = Plan::default();
    for (version, sql) in (1..).zip(set.texts) {
        let sum = checksum(sql);
        match applied.iter().find(|a| a.version == version) {
            None => plan.pending.push(Pending {
                version,
                sql,
                checksum: sum,
            }),
            Some(Applied { checksum: None, .. }) => plan.backfill.push((version, sum)),
            Some(Applied {
                checksum: Some(recorded),
                ..
            }) if *recorded != sum => {
                return Err(StoreError::MigrationChanged {
                    migrations: set.name,
                    version,
                });
            }
            Some(_) => {}
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: Migrations = Migrations {
        name: "test",
        texts: &["CREATE TABLE a (x);", "CREATE TABLE b (x);"],
    };

    fn applied(version: i64, checksum: Option<Vec<u8>>) -> Applied {
        Applied { version, checksum }
    }

    #[test]
    fn a_fresh_database_gets_every_migration() {
        let plan = plan(&SET, &[]).unwrap();
        assert!(plan.backfill.is_empty());
        let versions: Vec<i64> = plan.pending.iter().map(|p| p.version).collect();
        assert_eq!(versions, [1, 2]);
        assert_eq!(plan.pending[1].checksum, checksum(SET.texts[1]));
    }

    #[test]
    fn old_versions_get_checksums_and_the_rest_is_applied() {
        let plan = plan(&SET, &[applied(1, None)]).unwrap();
        assert_eq!(plan.backfill, [(1, checksum(SET.texts[0]))]);
        assert_eq!(plan.pending.len(), 1);
        let current = [
            applied(1, Some(checksum(SET.texts[0]))),
            applied(2, Some(checksum(SET.texts[1]))),
        ];
        assert!(super::plan(&SET, &current).unwrap().is_empty());
    }

    #[test]
    fn current_means_nothing_pending() {
        let both = [applied(1, Some(checksum(SET.texts[0]))), applied(2, None)];
        assert!(
            current(&SET, &both).is_ok(),
            "a checksum to backfill is no change"
        );
        assert!(matches!(
            current(&SET, &both[..1]),
            Err(StoreError::SchemaBehind {
                pending: 1,
                latest: 2,
                ..
            })
        ));
        assert!(matches!(
            current(&SET, &[applied(3, None)]),
            Err(StoreError::SchemaTooNew { found: 3, .. })
        ));
    }

    #[test]
    fn a_changed_migration_and_a_newer_database_are_refused() {
        let changed = [applied(1, Some(vec![0; 32]))];
        assert!(matches!(
            plan(&SET, &changed),
            Err(StoreError::MigrationChanged {
                migrations: "test",
                version: 1
            })
        ));
        assert!(matches!(
            plan(&SET, &[applied(3, None)]),
            Err(StoreError::SchemaTooNew {
                found: 3,
                supported: 2
            })
        ));
    }
}
