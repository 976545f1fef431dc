//! The storage conformance suite, run against every backend.
//!
//! The tests are written once in `store/suite.rs`, generic over
//! [`Store`]; `conformance!` instantiates all of them for one backend from a
//! setup function. Adding a backend (PostgreSQL) is one more setup function
//! and one more `conformance!` line.

#[path = "store/mod.rs"]
mod conformance;

use std::sync::Arc;

use conformance::suite::{self, Backend};
use creatorflow::store::{self, MemoryStore, StoreError};

/// A backend under test and whatever must live as long as it (a temp dir).
struct Fixture<S> {
    store: Arc<S>,
    _dir: Option<tempfile::TempDir>,
}

async fn memory() -> Fixture<MemoryStore> {
    Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
    }
}

async fn sqlite() -> Fixture<store::AnyStore> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let store = store::open(&url).await.expect("open sqlite");
    assert_eq!(store.backend(), "sqlite");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

/// Instantiates every conformance test for one backend.
macro_rules! conformance {
    ($backend:ident, $setup:path, [$($test:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let fixture = $setup().await;
                    suite::$test(fixture.store.clone()).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($backend:ident => $setup:path),* $(,)?) => {
        $(
            conformance!($backend, $setup, [
                create_is_idempotent_under_concurrency,
                create_batch_reports_each_order,
                transition_writes_state_and_history,
                concurrent_transitions_one_wins,
                failure_mid_transition_leaves_nothing,
                batch_transitions_check_each_item,
                tenants_are_isolated,
                lease_expiry_hands_work_over,
                claims_are_exclusive,
                claims_serve_viral_then_oldest,
                release_and_schedule,
                transition_settles_its_lease,
                active_orders_most_urgent_first,
                dashboard_matches_hand_computed_figures,
                decimals_times_and_json_round_trip,
                metrics_record_and_query,
                rule_stats_round_trip,
                webhooks_are_deduplicated,
            ]);
        )*
    };
}

all_backends! {
    memory => memory,
    sqlite => sqlite,
}

// ---- durable backends only --------------------------------------------------

/// Drop the store, open the same file again: everything is there.
#[tokio::test]
async fn sqlite_reopened_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let first = store::open(&url).await.unwrap();
    let before = suite::fill(&first).await;
    drop(first);
    let second = store::open(&url).await.unwrap();
    suite::reopened_has_everything(before, &second).await;
}

/// A database written by a newer binary is refused, and left untouched.
#[tokio::test]
async fn sqlite_schema_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    let s = store::SqliteStore::open(&url).await.unwrap();
    s.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("INSERT INTO creatorflow_schema (version, binary_version) VALUES (999, 'future')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store::open(&url).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 999,
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade creatorflow"), "{err}");
    // The row is still there: nothing was rolled back or rewritten.
    let again = store::open(&url).await.unwrap_err();
    assert!(matches!(again, StoreError::SchemaTooNew { .. }));
}

/// Opening fails with typed errors naming the (redacted) URL.
#[tokio::test]
async fn open_errors_are_typed() {
    let err = store::open("sqlite:///nonexistent-dir/for/sure/cf.db")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { url, .. } if url == "sqlite:///nonexistent-dir/for/sure/cf.db"),
        "{err}"
    );
    let err = store::open("postgres://app:hunter2@127.0.0.1:1/cf")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotBuilt {
                scheme: "postgres",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("postgres://app:***@127.0.0.1:1/cf"),
        "{err}"
    );
    let err = store::open("mysql://x").await.unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }));
    // A file that is not a database.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(
        &path,
        b"this is not an SQLite file, it is plain text that goes on long enough",
    )
    .unwrap();
    let err = store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Open { .. } | StoreError::Database { .. }),
        "{err}"
    );
}

/// The memory store is what `memory:` opens.
#[tokio::test]
async fn memory_url_opens_the_memory_store() {
    let s = store::open("memory:").await.unwrap();
    assert_eq!(s.backend(), "memory");
    fn assert_backend<S: Backend>(_: &S) {}
    assert_backend(&s);
}
