//! PostgreSQL test support: the server from `CREATORFLOW_TEST_PG`, a fresh
//! schema per test (so tests run in parallel on one database), and plain
//! SQL connections as the owner.

use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// The variable naming the test server.
pub const VAR: &str = "CREATORFLOW_TEST_PG";

/// The test server's URL; `None` when [`VAR`] is not set, after a loud
/// notice. Under CI (`CI=true`) a missing server is a failure, not a skip.
pub fn url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{VAR} is not set but CI=true: the PostgreSQL tests must run under CI \
                 (.ci/run starts a server with scripts/pg-test-cluster.sh)"
            );
            // Once per test binary, straight to stderr: the test harness
            // captures `eprintln!` of passing tests, and this must be seen.
            static BANNER: Once = Once::new();
            BANNER.call_once(|| {
                let banner = format!(
                    "\n********************************************************************\n\
                     SKIPPED: {VAR} not set; the PostgreSQL tests did not run.\n\
                     Run `scripts/pg-test-cluster.sh run cargo test` (see README.md).\n\
                     ********************************************************************\n"
                );
                let _ = std::io::stderr().write_all(banner.as_bytes());
            });
            None
        }
    }
}

/// A schema name no other test (in this or another process) uses.
pub fn fresh_schema(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "cf_{tag}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with `?schema=` (or `&schema=`) added.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// A plain connection as the URL's user (the owner), with `search_path`
/// set to `schema`.
pub async fn owner(url: &str, schema: &str) -> PgConnection {
    let options: PgConnectOptions = url.parse().expect("a valid test URL");
    PgConnection::connect_with(&options.options([("search_path", schema)]))
        .await
        .expect("connect to the test server")
}

/// Drops a test's schema (best effort: a failed test may leave one behind
/// in a throwaway cluster).
pub async fn drop_schema(url: &str, schema: &str) {
    let mut conn = owner(url, schema).await;
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(&mut conn)
    .await;
    let _ = conn.close().await;
}
