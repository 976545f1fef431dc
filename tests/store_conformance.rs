//! The storage conformance suite, run against every backend.
//!
//! The tests are written once in `store/suite.rs`, generic over
//! [`Store`]; `conformance!` instantiates all of them for one backend from a
//! setup function. The PostgreSQL backend runs against the server named by
//! `CREATORFLOW_TEST_PG`, each test in a schema of its own; without it the
//! PostgreSQL tests print a loud SKIPPED locally, and fail under CI
//! (`CI=true`). The PostgreSQL-only tests at the end prove the isolation
//! the database itself enforces, by plain SQL under the application role.

#[path = "store/mod.rs"]
mod conformance;

use std::sync::Arc;

use conformance::suite::{self, Backend};
use creatorflow::store::{self, MemoryStore, StoreError};

/// A backend under test and whatever must live as long as it (a temp dir,
/// a PostgreSQL schema to drop afterwards).
struct Fixture<S> {
    store: Arc<S>,
    _dir: Option<tempfile::TempDir>,
    /// The server URL and the test's schema.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    schema: Option<(String, String)>,
}

impl<S> Fixture<S> {
    /// Cleans up after a test that passed.
    async fn finish(self) {
        drop(self.store);
        #[cfg(feature = "postgres")]
        if let Some((url, schema)) = &self.schema {
            conformance::pg::drop_schema(url, schema).await;
        }
    }
}

async fn memory() -> Option<Fixture<MemoryStore>> {
    Some(Fixture {
        store: Arc::new(MemoryStore::new()),
        _dir: None,
        schema: None,
    })
}

async fn sqlite() -> Option<Fixture<store::AnyStore>> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let store = store::open(&url).await.expect("open sqlite");
    assert_eq!(store.backend(), "sqlite");
    Some(Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
        schema: None,
    })
}

/// The PostgreSQL store in a fresh schema of the test server; `None` (a
/// loud skip, or a failure under CI) without `CREATORFLOW_TEST_PG`.
#[cfg(feature = "postgres")]
async fn postgres() -> Option<Fixture<store::AnyStore>> {
    let url = conformance::pg::url()?;
    let schema = conformance::pg::fresh_schema("suite");
    let store = store::open(&conformance::pg::with_schema(&url, &schema))
        .await
        .unwrap_or_else(|e| panic!("open postgres: {e}"));
    assert_eq!(store.backend(), "postgres");
    Some(Fixture {
        store: Arc::new(store),
        _dir: None,
        schema: Some((url, schema)),
    })
}

/// Instantiates every conformance test for one backend.
macro_rules! conformance {
    ($backend:ident, $setup:path, [$($test:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some(fixture) = $setup().await else {
                        return;
                    };
                    suite::$test(fixture.store.clone()).await;
                    fixture.finish().await;
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
                get_orders_reads_one_tenants_orders,
                transition_writes_state_and_history,
                concurrent_transitions_one_wins,
                failure_mid_transition_leaves_nothing,
                group_commit_keeps_each_call_atomic,
                batch_transitions_check_each_item,
                tenants_are_isolated,
                lease_expiry_hands_work_over,
                claims_are_exclusive,
                claims_serve_viral_then_oldest,
                release_and_schedule,
                transition_settles_its_lease,
                active_orders_most_urgent_first,
                dashboard_matches_hand_computed_figures,
                dashboard_time_to_ship,
                decimals_times_and_json_round_trip,
                inbox_appends_claims_and_marks_processed,
                inbox_is_tenant_scoped,
                inbox_done_batch_reports_each_entry,
                inbox_claims_are_exclusive,
                order_events_refuse_stale_ones,
                order_events_batch_in_order,
                cursors_round_trip,
                order_shop_id_round_trips,
                history_records_actor_and_pack_version,
                decision_is_stored_with_a_new_order,
                shops_put_get_list_replace,
                shops_are_tenant_scoped,
                rotate_tokens_is_compare_and_set,
                auth_states_are_single_use,
                tokens_are_never_printed,
                review_queue_oldest_first_paged_and_scoped,
                a_fresh_store_is_ready,
                fast_reads_equal_full_scans,
                orders_by_created_pages_in_creation_order,
                heartbeat_lapse_hands_work_over,
                live_or_silent_workers_keep_their_work,
                a_retired_worker_is_taken_over_at_once,
                leases_have_one_holder_and_fence_handovers,
                lease_acquires_race_to_one_winner,
                shared_values_count_revisions,
                crossing_inbox_appends_never_fail,

                known_orders_names_the_tenants_ids_once,
                histories_read_many_orders_at_once,
                schedule_moves_or_refuses_as_the_lease_says,
                schedule_many_answers_as_schedule_one_by_one,
                queue_due_equals_the_summary,
                insert_orders_equals_create_orders,
                insert_orders_in_a_group_keeps_each_batch_whole,
                bulk_payloads_read_back_and_are_replaced_like_any_other,
            ]);
        )*
    };
}

all_backends! {
    memory => memory,
    sqlite => sqlite,
}

#[cfg(feature = "postgres")]
all_backends! {
    postgres => postgres,
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

/// A group is durable once committed, and only then: a store dropped with
/// its group open loses that group (never part of a call), and the file is
/// sound for the next open.
#[tokio::test]
async fn sqlite_group_is_durable_once_committed() {
    use creatorflow::store::{GroupCommit, OrderStore};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cf.db").display());
    let first = store::open(&url).await.unwrap();
    first.begin_group().await.unwrap();
    let kept = first
        .create_order("t1", &conformance::order("kept", 0, ""))
        .await
        .unwrap()
        .order;
    first.commit_group().await.unwrap();
    first.begin_group().await.unwrap();
    let lost = first
        .create_order("t1", &conformance::order("lost", 1, ""))
        .await
        .unwrap()
        .order;
    assert!(first.get_order("t1", lost.id).await.unwrap().is_some());
    if let store::AnyStore::Sqlite(s) = &first {
        s.close().await;
    }
    drop(first);
    let second = store::open(&url).await.unwrap();
    assert_eq!(second.get_order("t1", kept.id).await.unwrap(), Some(kept));
    assert_eq!(second.get_order("t1", lost.id).await.unwrap(), None);
}

/// Readiness follows the schema: a version recorded by a newer binary, or
/// a migration missing (an older file put under a running process), makes
/// the store not ready (a newer version: in either file); the same store is
/// ready again once the file is back.
/// Several processes opening one new SQLite file at the same moment (a
/// `status` polled while `ingest` starts) each migrate it or find it
/// migrated; none fails half-way (the inbox move of migration 0005 is
/// done by one of them, the others find it done).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_opened_by_many_at_once_opens_for_all() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cf.db").display());
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { store::open(&url).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            let opened = o.await.unwrap();
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}

#[tokio::test]
async fn sqlite_readiness_follows_the_schema() {
    use creatorflow::store::Readiness;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let s = store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    s.ready().await.expect("ready");
    let inbox = creatorflow::store::SqliteStore::inbox_path(&path);
    for file in [path.clone(), inbox] {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let run = |sql: &'static str| {
            let pool = pool.clone();
            async move { sqlx::raw_sql(sql).execute(&pool).await.unwrap() }
        };
        run("INSERT INTO creatorflow_schema (version, binary_version) VALUES (999, '9.9.9')").await;
        let e = s.ready().await.expect_err("a newer schema");
        assert!(
            matches!(e, StoreError::SchemaTooNew { found: 999, .. }),
            "{e}"
        );
        run("DELETE FROM creatorflow_schema WHERE version = 999").await;
        s.ready().await.expect("ready again");
        if file != path {
            // The inbox file has one migration: without its row, the file's
            // `user_version` stands for it (files from before the table).
            pool.close().await;
            continue;
        }
        run(
            "CREATE TABLE saved AS SELECT * FROM creatorflow_schema WHERE version = 1; \
             DELETE FROM creatorflow_schema WHERE version = 1",
        )
        .await;
        let e = s.ready().await.expect_err("a migration missing");
        assert!(
            matches!(e, StoreError::SchemaBehind { pending: 1, .. }),
            "{e}"
        );
        run("INSERT INTO creatorflow_schema SELECT * FROM saved; DROP TABLE saved").await;
        s.ready().await.expect("ready again");
        pool.close().await;
    }
}

/// A database at schema version 1 (before the `ready` queue column) is
/// upgraded on open, and the work queued under version 1 is still claimed.
#[tokio::test]
async fn sqlite_version_1_database_is_upgraded() {
    use creatorflow::store::{ClaimRequest, LaneLimit, QueueStore, TenantScope};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(include_str!(
        "../src/store/sqlite/migrations/0001_initial.sql"
    ))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE creatorflow_schema (version INTEGER NOT NULL PRIMARY KEY, \
         binary_version TEXT NOT NULL) STRICT;
         INSERT INTO creatorflow_schema VALUES (1, '0.1.0');
         INSERT INTO orders (id, user_id, tiktok_order_id, current_state, priority, priority_rank, \
           impact, viral, automation_status, customer_handle, customer_tier, product_name, \
           product_id, quantity, price, created_at, updated_at, state_changed_at) VALUES \
           ('0197639b-a000-7000-8000-000000000001', 't1', 'o1', 'received', 'standard', 2, \
            'MED', 0, 'Processing', '@a', 'regular', 'Lamp', 'p1', 1, '25.00', 1000, 1000, 1000);
         INSERT INTO work_queue (user_id, order_id, kind, lane, viral, order_created_at, run_at, \
           created_at, updated_at) VALUES \
           ('t1', '0197639b-a000-7000-8000-000000000001', 'advance', 'standard', 0, 1000, 1000, \
            1000, 1000);",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let s = store::open(&url).await.unwrap();
    let lanes = [LaneLimit {
        lane: creatorflow::model::Priority::Standard,
        limit: 10,
    }];
    let items = s
        .claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w",
                lanes: &lanes,
                lease: chrono::TimeDelta::seconds(30),
                now: "2025-06-12T10:00:00Z".parse().unwrap(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        items.len(),
        1,
        "the version-1 item is claimed after the upgrade"
    );
    assert_eq!(
        items[0].order_id.to_string(),
        "0197639b-a000-7000-8000-000000000001"
    );
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
                supported
            } if supported < 999
        ),
        "{err}"
    );
    assert!(err.to_string().contains("upgrade creatorflow"), "{err}");
    // The row is still there: nothing was rolled back or rewritten.
    let again = store::open(&url).await.unwrap_err();
    assert!(matches!(again, StoreError::SchemaTooNew { .. }));
}

/// Sets the checksum recorded for `version` in the SQLite file at `path`,
/// as if the migration's text had been different when it was applied.
async fn sqlite_tamper_checksum(path: &std::path::Path, version: i64) {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let changed = sqlx::query("UPDATE creatorflow_schema SET checksum = x'00' WHERE version = ?")
        .bind(version)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;
}

/// Every applied migration is recorded with a checksum; one whose text
/// changed since (here: whose recorded checksum differs) is refused with
/// an error naming the version, in the main file and in the inbox file,
/// and nothing is rewritten.
#[tokio::test]
async fn sqlite_changed_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    store::SqliteStore::open(&url).await.unwrap().close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let missing: i64 =
        sqlx::query_scalar("SELECT count(*) FROM creatorflow_schema WHERE length(checksum) <> 32")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(missing, 0, "every version has its SHA-256");
    pool.close().await;

    sqlite_tamper_checksum(&path, 2).await;
    for _ in 0..2 {
        let err = store::open(&url).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::MigrationChanged {
                    migrations: "sqlite",
                    version: 2
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("migration 2"), "{err}");
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    store::SqliteStore::open(&url).await.unwrap().close().await;
    sqlite_tamper_checksum(&store::SqliteStore::inbox_path(&path), 1).await;
    let err = store::open(&url).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::MigrationChanged {
                migrations: "sqlite inbox",
                version: 1
            }
        ),
        "{err}"
    );
}

/// Files written before checksums (versions without one; an inbox file
/// that only kept `PRAGMA user_version`) get them filled in on first open
/// and open normally after.
#[tokio::test]
async fn sqlite_versions_without_checksums_are_backfilled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let inbox = store::SqliteStore::inbox_path(&path);
    let url = format!("sqlite://{}", path.display());
    store::SqliteStore::open(&url).await.unwrap().close().await;
    // Back to how the previous version left the files.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("ALTER TABLE creatorflow_schema DROP COLUMN checksum")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", inbox.display()))
        .await
        .unwrap();
    sqlx::raw_sql("DROP TABLE creatorflow_schema")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    for _ in 0..2 {
        let s = store::SqliteStore::open(&url).await.unwrap();
        s.close().await;
    }
    for file in [&path, &inbox] {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
            .await
            .unwrap();
        let (rows, with_sum): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE length(checksum) = 32) \
             FROM creatorflow_schema",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(
            rows > 0 && rows == with_sum,
            "{}: {rows} {with_sum}",
            file.display()
        );
        pool.close().await;
    }
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
    // An unreachable PostgreSQL: `Open`, naming the URL, password redacted.
    let err = store::open("postgres://app:hunter2@127.0.0.1:1/cf")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Open { url, .. } if url == "postgres://app:***@127.0.0.1:1/cf"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    // Bad PostgreSQL URLs: `BadUrl`, password redacted.
    for url in [
        "postgres://app:hunter2@127.0.0.1:notaport/cf",
        "postgres://app:hunter2@127.0.0.1/cf?schema=Robert'); DROP",
        "postgres://app:hunter2@127.0.0.1/cf?max_connections=0",
        "postgres://app:hunter2@127.0.0.1/cf?sslmode=sometimes",
    ] {
        let err = store::open(url).await.unwrap_err();
        assert!(matches!(err, StoreError::BadUrl { .. }), "{url}: {err}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }
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

/// The SQLite inbox is a file of its own (`PATH-inbox`): appends complete
/// while another connection holds the main file's write lock (an order
/// writer busy for as long as it likes), and entries, leases and attempts
/// survive closing and reopening.
#[tokio::test]
async fn sqlite_inbox_has_a_file_of_its_own_and_survives_reopen() {
    use std::time::Duration;

    use chrono::TimeDelta;
    use conformance::at;
    use creatorflow::store::{Inbox, InboxDone, InboxEntry};
    use sqlx::Connection;

    let entry = |key: &str| InboxEntry {
        dedup_key: key.into(),
        topic: 1,
        body: format!("{{\"key\":\"{key}\"}}").into_bytes(),
        received_at: at(0),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}?busy_timeout_ms=200", path.display());
    let s = store::open(&url).await.unwrap();
    let inbox_file = store::SqliteStore::inbox_path(&path);
    assert_eq!(inbox_file, dir.path().join("cf.db-inbox"));
    assert!(inbox_file.exists());

    // Hold the main file's write lock from another connection.
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let appended = tokio::time::timeout(
        Duration::from_secs(5),
        s.inbox_append("t1", &[entry("n:1"), entry("n:2"), entry("n:3")]),
    )
    .await
    .expect("an append does not wait for the main file's writer")
    .unwrap();
    assert_eq!(appended, vec![true, true, true]);
    let claimed = s
        .inbox_claim("t1", 2, TimeDelta::minutes(1), at(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    let marked = s
        .inbox_done(
            "t1",
            &[InboxDone {
                id: claimed[0].id,
                attempt: 1,
                outcome: "ingested".into(),
            }],
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(marked, vec![true]);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker.close().await.unwrap();
    // The main file holds no inbox table.
    let tables: Vec<String> = {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let t =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name LIKE 'tiktok_inbox%'")
                .fetch_all(&mut c)
                .await
                .unwrap();
        c.close().await.unwrap();
        t
    };
    assert!(tables.is_empty(), "{tables:?}");
    if let store::AnyStore::Sqlite(inner) = &s {
        inner.close().await;
    }
    drop(s);

    let s = store::open(&url).await.unwrap();
    let stats = s.inbox_stats("t1").await.unwrap();
    assert_eq!((stats.received, stats.pending, stats.processed), (3, 2, 1));
    assert_eq!(
        s.inbox_append("t1", &[entry("n:1")]).await.unwrap(),
        vec![false],
        "a processed entry still de-duplicates"
    );
    // The unclaimed entry now; the leased one once its lease lapsed, as
    // its second attempt.
    let now = s
        .inbox_claim("t1", 10, TimeDelta::minutes(1), at(1))
        .await
        .unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].dedup_key.as_str(), now[0].attempt), ("n:3", 1));
    let later = s
        .inbox_claim("t1", 10, TimeDelta::minutes(1), at(3))
        .await
        .unwrap();
    // Both leases lapsed by now: n:2 (claimed before the reopen) and n:3.
    let got: Vec<(i64, u32)> = later.iter().map(|i| (i.id, i.attempt)).collect();
    assert_eq!(got, vec![(claimed[1].id, 2), (now[0].id, 2)]);
    assert_eq!(later[0].body, claimed[1].body);
}

/// A database whose inbox is still in the main file (schema version 3) is
/// upgraded on open: its entries, processed or not, move to the inbox file
/// with their ids and attempts, and the main file's table is dropped.
#[tokio::test]
async fn sqlite_inbox_of_an_older_database_moves_to_its_file() {
    use chrono::TimeDelta;
    use conformance::at;
    use creatorflow::store::{Inbox, InboxEntry};
    use sqlx::Connection;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cf.db");
    let url = format!("sqlite://{}", path.display());
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    for sql in [
        include_str!("../src/store/sqlite/migrations/0001_initial.sql"),
        include_str!("../src/store/sqlite/migrations/0002_tiktok_inbox.sql"),
        include_str!("../src/store/sqlite/migrations/0003_ready_queue.sql"),
        "CREATE TABLE creatorflow_schema (version INTEGER NOT NULL PRIMARY KEY, \
           binary_version TEXT NOT NULL) STRICT;
         INSERT INTO creatorflow_schema VALUES (1, '0.1.0'), (2, '0.1.0'), (3, '0.1.0');
         INSERT INTO tiktok_inbox (id, user_id, dedup_key, topic, body, received_at, \
           claimable_at, attempts, processed_at, outcome) VALUES \
           (7, 't1', 'n:done', 1, X'7B7D', 0, NULL, 1, 1000, 'ingested'), \
           (8, 't1', 'n:leased', 1, X'7B7D', 0, 60000, 1, NULL, NULL), \
           (9, 't1', 'n:new', 1, X'7B7D', 0, 0, 0, NULL, NULL);",
    ] {
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();

    for _ in 0..2 {
        // Twice: a second open finds nothing more to move.
        let s = store::open(&url).await.unwrap();
        let stats = s.inbox_stats("t1").await.unwrap();
        assert_eq!((stats.received, stats.pending, stats.processed), (3, 2, 1));
        drop(s);
    }
    let s = store::open(&url).await.unwrap();
    let entry = |key: &str| InboxEntry {
        dedup_key: key.into(),
        topic: 1,
        body: b"{}".to_vec(),
        received_at: at(0),
    };
    assert_eq!(
        s.inbox_append("t1", &[entry("n:done"), entry("n:after")])
            .await
            .unwrap(),
        vec![false, true]
    );
    let items = s
        .inbox_claim("t1", 10, TimeDelta::minutes(1), at(2))
        .await
        .unwrap();
    let got: Vec<(i64, u32)> = items.iter().map(|i| (i.id, i.attempt)).collect();
    assert_eq!(got[..2], [(8, 2), (9, 1)], "{got:?}");
    assert!(
        got.len() == 3 && got[2].0 > 9 && got[2].1 == 1,
        "ids go on after the moved ones: {got:?}"
    );
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'tiktok_inbox%'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(left, 0, "the main file's inbox is gone");
    c.close().await.unwrap();
}

/// The memory store is what `memory:` opens.
#[tokio::test]
async fn memory_url_opens_the_memory_store() {
    let s = store::open("memory:").await.unwrap();
    assert_eq!(s.backend(), "memory");
    fn assert_backend<S: Backend>(_: &S) {}
    assert_backend(&s);
}

// ---- PostgreSQL only --------------------------------------------------------

#[cfg(feature = "postgres")]
mod postgres_only {
    use std::collections::HashSet;

    use chrono::TimeDelta;
    use creatorflow::model::Priority;
    use creatorflow::store::{
        self, ClaimRequest, Inbox, LaneLimit, NewOrder, OrderStore, QueueStore, StoreError,
        TenantScope, WorkSpec,
    };
    use serde_json::json;
    use sqlx::postgres::PgConnection;
    use sqlx::{AssertSqlSafe, Connection};

    use super::conformance::{at, order, pg, shops, step, suite};

    /// Opens the store on a fresh schema; `None` when there is no test server.
    async fn open(tag: &str) -> Option<(String, String, store::AnyStore)> {
        let url = pg::url()?;
        let schema = pg::fresh_schema(tag);
        let s = store::open(&pg::with_schema(&url, &schema))
            .await
            .unwrap_or_else(|e| panic!("open postgres: {e}"));
        Some((url, schema, s))
    }

    fn work(kind: &str, lane: Priority) -> WorkSpec {
        WorkSpec {
            kind: kind.into(),
            lane,
            run_at: at(0),
            payload: json!({"kind": kind}),
        }
    }

    async fn exec(conn: &mut PgConnection, sql: &str) -> u64 {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }

    async fn scalar(conn: &mut PgConnection, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs `sql` expecting PostgreSQL to refuse it with
    /// `insufficient_privilege` (42501: a policy's WITH CHECK, or no
    /// privilege), inside a savepoint so the transaction goes on.
    async fn refused(conn: &mut PgConnection, sql: &str) {
        exec(conn, "SAVEPOINT probe").await;
        let err = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut *conn)
            .await
            .expect_err(sql);
        let code = err
            .as_database_error()
            .and_then(|e| e.code())
            .map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {err}");
        exec(conn, "ROLLBACK TO SAVEPOINT probe").await;
    }

    /// Tenant A, connected under the application role, cannot read, change,
    /// delete or create tenant B's rows by plain SQL (no `WHERE user_id`
    /// needed): row-level security, enforced by the database.
    #[tokio::test]
    async fn postgres_rls_refuses_other_tenants_in_plain_sql() {
        let Some((url, schema, s)) = open("rls").await else {
            return;
        };
        // B's data, and a little of A's, through the store.
        let mk = |id: &str| NewOrder {
            order: order(id, 0, ""),
            work: Some(work("advance", Priority::Standard)),
            decision: None,
        };
        let b = s.create_orders("B", &[mk("b1")]).await.unwrap()[0]
            .clone()
            .unwrap()
            .order;
        s.transition("B", &step(&b, "validated", at(1)))
            .await
            .unwrap();
        s.inbox_append(
            "B",
            &[creatorflow::store::InboxEntry {
                dedup_key: "n:1".into(),
                topic: 1,
                body: b"{}".to_vec(),
                received_at: at(1),
            }],
        )
        .await
        .unwrap();
        s.note_order_event("B", "b1", 1, 0).await.unwrap();
        s.set_cursor("B", "poll", 1).await.unwrap();
        let a = s.create_orders("A", &[mk("a1")]).await.unwrap()[0]
            .clone()
            .unwrap()
            .order;

        let mut conn = pg::owner(&url, &schema).await;
        let tables = [
            "orders",
            "order_transitions",
            "work_queue",
            "tiktok_inbox",
            "tiktok_order_events",
            "tiktok_cursors",
            "tiktok_shops",
        ];
        // The application role, tenant A.
        exec(
            &mut conn,
            "BEGIN; SET LOCAL ROLE creatorflow_app; \
             SELECT set_config('creatorflow.tenant', 'A', true)",
        )
        .await;
        let who: (String, bool, bool) = sqlx::query_as(
            "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles \
             WHERE rolname = current_user",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(who, ("creatorflow_app".to_owned(), false, false));
        for table in tables {
            // No WHERE: only A's rows are there at all.
            let others = scalar(
                &mut conn,
                &format!("SELECT count(*) FROM {table} WHERE user_id <> 'A'"),
            )
            .await;
            assert_eq!(others, 0, "{table}: another tenant's rows are visible");
        }
        assert_eq!(scalar(&mut conn, "SELECT count(*) FROM orders").await, 1);
        let b_id = b.id;
        assert_eq!(
            scalar(
                &mut conn,
                &format!("SELECT count(*) FROM orders WHERE id = '{b_id}'")
            )
            .await,
            0
        );
        // Updates and deletes of B's rows touch nothing.
        for sql in [
            format!("UPDATE orders SET current_state = 'hacked' WHERE id = '{b_id}'"),
            "UPDATE orders SET current_state = 'hacked' WHERE user_id = 'B'".to_owned(),
            "DELETE FROM orders WHERE user_id = 'B'".to_owned(),
            "UPDATE work_queue SET payload = '{}' WHERE user_id = 'B'".to_owned(),
            "DELETE FROM work_queue".to_owned() + " WHERE user_id = 'B'",
            "UPDATE tiktok_inbox SET attempts = 9 WHERE user_id = 'B'".to_owned(),
            "UPDATE tiktok_order_events SET event_time = 0 WHERE user_id = 'B'".to_owned(),
            "UPDATE tiktok_cursors SET value = 0 WHERE user_id = 'B'".to_owned(),
        ] {
            assert_eq!(exec(&mut conn, &sql).await, 0, "{sql}");
        }
        // Rows for B are refused by the policies' WITH CHECK ...
        let a_id = a.id;
        refused(
            &mut conn,
            "INSERT INTO tiktok_inbox (user_id, dedup_key, topic, body, received_at, claimable_at) \
             VALUES ('B', 'forged', 1, '', now(), now())",
        )
        .await;
        refused(
            &mut conn,
            "INSERT INTO tiktok_cursors VALUES ('B', 'forged', 1)",
        )
        .await;
        refused(
            &mut conn,
            &format!(
                "INSERT INTO order_transitions (order_id, user_id, version, from_state, \
                 to_state, automated, duration_ms, created_at) \
                 VALUES ('{b_id}', 'B', 9, 'x', 'y', true, 0, now())"
            ),
        )
        .await;
        refused(
            &mut conn,
            "INSERT INTO orders (id, user_id, tiktok_order_id, current_state, priority, \
             priority_rank, impact, viral, automation_status, customer_handle, customer_tier, \
             product_name, product_id, quantity, price, created_at, updated_at, \
             state_changed_at) VALUES (gen_random_uuid(), 'B', 'forged', 'received', \
             'standard', 2, 'MED', false, 'pending', '@x', 'regular', 'p', 'p', 1, 1, now(), \
             now(), now())",
        )
        .await;
        // ... and A cannot hand its own order to B.
        refused(
            &mut conn,
            &format!("UPDATE orders SET user_id = 'B' WHERE id = '{a_id}'"),
        )
        .await;
        // History is append-only.
        refused(&mut conn, "UPDATE order_transitions SET to_state = 'x'").await;
        // The version table is the owner's (readable, not writable).
        refused(
            &mut conn,
            "INSERT INTO creatorflow_schema (version, binary_version) VALUES (99, 'x')",
        )
        .await;
        exec(&mut conn, "ROLLBACK").await;

        // No tenant set: nothing at all.
        exec(&mut conn, "BEGIN; SET LOCAL ROLE creatorflow_app").await;
        for table in tables {
            let n = scalar(&mut conn, &format!("SELECT count(*) FROM {table}")).await;
            assert_eq!(n, 0, "{table} without a tenant");
        }
        exec(&mut conn, "ROLLBACK").await;

        // The worker role: every tenant's queue, and only lease columns.
        exec(&mut conn, "BEGIN; SET LOCAL ROLE creatorflow_worker").await;
        assert_eq!(
            scalar(&mut conn, "SELECT count(DISTINCT user_id) FROM work_queue").await,
            2
        );
        assert_eq!(
            exec(
                &mut conn,
                "UPDATE work_queue SET lease_owner = 'w', lease_expires_at = now()"
            )
            .await,
            2
        );
        refused(&mut conn, "SELECT count(*) FROM orders").await;
        refused(&mut conn, "UPDATE work_queue SET payload = '{}'").await;
        refused(&mut conn, "DELETE FROM work_queue").await;
        exec(&mut conn, "ROLLBACK").await;

        let _ = conn.close().await;

        // B's data is intact.
        let read = s.order_with_history("B", b.id).await.unwrap().unwrap();
        assert_eq!(
            (read.order.order.current_state.as_str(), read.history.len()),
            ("validated", 1)
        );
        drop(s);
        pg::drop_schema(&url, &schema).await;
    }

    /// Shops and authorization states under row-level security, by plain
    /// SQL as the application role: another tenant's shops are invisible
    /// and untouchable; no tenant lists the pending states (not even its
    /// own), and naming a state (`creatorflow.auth_state`) reaches that one
    /// row only; the worker role reaches neither table.
    #[tokio::test]
    async fn postgres_shops_and_auth_states_under_rls() {
        use creatorflow::store::{ShopAuth, ShopStore, TokenSet};

        let Some((url, schema, s)) = open("shops").await else {
            return;
        };
        let tokens = TokenSet {
            access_token: "access-b".into(),
            access_expires_at: at(60),
            refresh_token: "refresh-b".into(),
            refresh_expires_at: at(600),
        };
        let shop = ShopAuth {
            shop_id: "s1".into(),
            cipher: "c1".into(),
            name: "B's shop".into(),
            region: "US".into(),
            tokens,
            updated_at: at(0),
        };
        s.put_shops("B", std::slice::from_ref(&shop)).await.unwrap();
        s.put_auth_state("B", "state-b", at(10)).await.unwrap();
        s.put_auth_state("A", "state-a", at(10)).await.unwrap();

        let mut conn = pg::owner(&url, &schema).await;
        exec(
            &mut conn,
            "BEGIN; SET LOCAL ROLE creatorflow_app; \
             SELECT set_config('creatorflow.tenant', 'A', true)",
        )
        .await;
        assert_eq!(
            scalar(&mut conn, "SELECT count(*) FROM tiktok_shops").await,
            0
        );
        assert_eq!(
            exec(&mut conn, "UPDATE tiktok_shops SET access_token = 'x'").await,
            0
        );
        refused(
            &mut conn,
            "INSERT INTO tiktok_shops VALUES ('B', 's2', 'c', 'n', 'US', 'a', now(), 'r', now(), now())",
        )
        .await;
        assert_eq!(
            scalar(&mut conn, "SELECT count(*) FROM tiktok_auth_states").await,
            0,
            "no one lists the states"
        );
        assert_eq!(exec(&mut conn, "DELETE FROM tiktok_auth_states").await, 0);
        refused(
            &mut conn,
            "INSERT INTO tiktok_auth_states VALUES ('forged', 'B', now())",
        )
        .await;
        exec(
            &mut conn,
            "SELECT set_config('creatorflow.auth_state', 'state-b', true)",
        )
        .await;
        assert_eq!(
            scalar(&mut conn, "SELECT count(*) FROM tiktok_auth_states").await,
            1,
            "the named state, and only it"
        );
        assert_eq!(
            scalar(
                &mut conn,
                "SELECT count(*) FROM tiktok_auth_states WHERE user_id = 'B'"
            )
            .await,
            1
        );
        exec(&mut conn, "ROLLBACK").await;
        // The worker role reaches neither table.
        exec(&mut conn, "BEGIN; SET LOCAL ROLE creatorflow_worker").await;
        for table in ["tiktok_shops", "tiktok_auth_states"] {
            refused(&mut conn, &format!("SELECT count(*) FROM {table}")).await;
        }
        exec(&mut conn, "ROLLBACK").await;
        let _ = conn.close().await;
        // Nothing changed: B's shop and both states are as stored.
        assert_eq!(s.shop("B", "s1").await.unwrap(), Some(shop));
        assert_eq!(
            shops::taken(&s, "state-b", at(1)).await.as_deref(),
            Some("B")
        );
        assert_eq!(
            shops::taken(&s, "state-a", at(1)).await.as_deref(),
            Some("A")
        );
        drop(s);
        pg::drop_schema(&url, &schema).await;
    }

    /// `url` with its user (and password) replaced.
    fn as_user(url: &str, user: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{user}@{host}")
    }

    /// The hardened deployment: once the owner has migrated the schema, the
    /// store runs under a login that only holds the three roles. It works,
    /// and that login, connected directly, is itself subject to the policies
    /// and can change no table definition.
    #[tokio::test]
    async fn postgres_store_runs_under_a_login_that_only_holds_the_roles() {
        let Some((url, schema, owner_store)) = open("login").await else {
            return;
        };
        let mut conn = pg::owner(&url, &schema).await;
        let can_create_roles: bool = sqlx::query_scalar(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if !can_create_roles {
            eprintln!("skipped: the test server's user cannot create a login role");
            return;
        }
        let login = format!("cf_login_{}", std::process::id());
        exec(
            &mut conn,
            &format!(
                "DROP ROLE IF EXISTS {login}; CREATE ROLE {login} LOGIN PASSWORD 'cf-test'; \
                 GRANT creatorflow_app, creatorflow_worker, creatorflow_admin TO {login}"
            ),
        )
        .await;
        let o = owner_store
            .create_order("t1", &order("o1", 0, ""))
            .await
            .unwrap()
            .order;
        drop(owner_store);
        let login_url = as_user(&url, &format!("{login}:cf-test"));
        let s = store::open(&pg::with_schema(&login_url, &schema))
            .await
            .unwrap_or_else(|e| panic!("open as {login}: {e}"));
        let read = s.get_order("t1", o.id).await.unwrap().unwrap();
        s.transition("t1", &step(&read, "validated", at(1)))
            .await
            .unwrap();
        s.enqueue("t1", o.id, &work("advance", Priority::High), at(1))
            .await
            .unwrap();
        let items = s
            .claim(
                TenantScope::All,
                &ClaimRequest {
                    worker: "w",
                    lanes: &[LaneLimit {
                        lane: Priority::High,
                        limit: 5,
                    }],
                    lease: TimeDelta::minutes(1),
                    now: at(1),
                },
            )
            .await
            .unwrap();
        assert_eq!(items.len(), 1);
        drop(s);
        // Directly, as that login: no tenant, no rows; no DDL.
        let mut direct = pg::owner(&login_url, &schema).await;
        assert_eq!(scalar(&mut direct, "SELECT count(*) FROM orders").await, 0);
        exec(&mut direct, "BEGIN").await;
        refused(&mut direct, "CREATE TABLE sneaky (x int)").await;
        refused(
            &mut direct,
            "ALTER TABLE orders NO FORCE ROW LEVEL SECURITY",
        )
        .await;
        refused(&mut direct, "DROP POLICY tenant_orders ON orders").await;
        exec(&mut direct, "ROLLBACK").await;
        let _ = direct.close().await;
        // It cannot create a schema of its own: opening a new one fails, typed.
        let err = store::open(&pg::with_schema(&login_url, &pg::fresh_schema("nope")))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Database { .. }), "{err}");
        assert!(!err.to_string().contains("cf-test"), "{err}");
        exec(&mut conn, &format!("DROP ROLE {login}")).await;
        let _ = conn.close().await;
        pg::drop_schema(&url, &schema).await;
    }

    /// Tenants whose names need quoting are stored and isolated like any other.
    #[tokio::test]
    async fn postgres_tenant_names_are_quoted() {
        let Some((url, schema, s)) = open("quote").await else {
            return;
        };
        let odd = r"o'brien\'); SET ROLE postgres; --";
        let o = s.create_order(odd, &order("q1", 0, "")).await.unwrap();
        assert!(o.created);
        assert_eq!(o.order.order.user_id.as_deref(), Some(odd));
        assert!(s.get_order(odd, o.order.id).await.unwrap().is_some());
        assert!(s.get_order("o'brien", o.order.id).await.unwrap().is_none());
        assert_eq!(s.list_orders(odd, None, 10).await.unwrap().len(), 1);
        assert!(matches!(
            s.get_order("nul\0tenant", o.order.id).await,
            Err(StoreError::Invalid { .. })
        ));
        drop(s);
        pg::drop_schema(&url, &schema).await;
    }

    /// Two stores on one database (two processes, as far as PostgreSQL
    /// can tell: separate pools and connections) claim from one queue at
    /// once: every item is claimed exactly once, and each can settle its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_two_processes_never_claim_the_same_item() {
        let Some((url, schema, first)) = open("share").await else {
            return;
        };
        let second = store::open(&pg::with_schema(&url, &schema)).await.unwrap();
        let n = 400;
        for tenant in ["t1", "t2"] {
            let batch: Vec<NewOrder> = (0..n / 2)
                .map(|i| NewOrder {
                    order: order(&format!("{tenant}-{i}"), i, ""),
                    work: Some(work("advance", Priority::ALL[(i % 4) as usize])),
                    decision: None,
                })
                .collect();
            for r in first.create_orders(tenant, &batch).await.unwrap() {
                assert!(r.unwrap().created);
            }
        }
        let stores = [std::sync::Arc::new(first), std::sync::Arc::new(second)];
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let s = stores[w % 2].clone();
                tokio::spawn(async move {
                    let worker = format!("w{w}");
                    let lanes: Vec<LaneLimit> = Priority::ALL
                        .iter()
                        .map(|&lane| LaneLimit { lane, limit: 7 })
                        .collect();
                    let mut got = Vec::new();
                    loop {
                        let items = s
                            .claim(
                                TenantScope::All,
                                &ClaimRequest {
                                    worker: &worker,
                                    lanes: &lanes,
                                    lease: TimeDelta::minutes(5),
                                    now: at(0),
                                },
                            )
                            .await
                            .unwrap();
                        if items.is_empty() {
                            break got;
                        }
                        for item in &items {
                            if item.lease.id % 2 == 0 {
                                s.complete(&item.lease, at(0)).await.unwrap();
                            }
                        }
                        got.extend(items.into_iter().map(|i| (i.lease.id, i.lease.tenant)));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let distinct: HashSet<_> = all.iter().map(|(id, _)| *id).collect();
        assert_eq!(all.len(), n as usize, "every item claimed");
        assert_eq!(distinct.len(), n as usize, "no item claimed twice");
        assert_eq!(
            all.iter().filter(|(_, t)| t == "t2").count(),
            n as usize / 2,
            "both tenants served"
        );
        let summary = stores[1]
            .queue_summary(TenantScope::All, at(0))
            .await
            .unwrap();
        assert_eq!(
            summary.leased as usize,
            all.iter().filter(|(id, _)| id % 2 != 0).count()
        );
        drop(stores);
        pg::drop_schema(&url, &schema).await;
    }

    /// Inbox appends have connections of their own: with the store's one
    /// pool connection stuck behind a lock, an append still completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_inbox_appends_do_not_wait_for_the_pool() {
        use std::time::Duration;

        use creatorflow::store::InboxEntry;

        let Some(url) = pg::url() else {
            return;
        };
        let schema = pg::fresh_schema("ackpool");
        let target = format!("{}&max_connections=1", pg::with_schema(&url, &schema));
        let s = std::sync::Arc::new(store::open(&target).await.unwrap());
        let mut owner = pg::owner(&url, &schema).await;
        exec(
            &mut owner,
            "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE",
        )
        .await;
        // Takes the pool's only connection and waits for the lock.
        let stuck = {
            let s = s.clone();
            tokio::spawn(async move {
                let new = NewOrder {
                    order: order("o1", 0, ""),
                    work: None,
                    decision: None,
                };
                s.create_orders("t1", &[new]).await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!stuck.is_finished(), "the order write waits for the lock");
        let entry = InboxEntry {
            dedup_key: "n:1".into(),
            topic: 1,
            body: b"{}".to_vec(),
            received_at: at(0),
        };
        let appended = tokio::time::timeout(
            Duration::from_secs(5),
            s.inbox_append("t1", std::slice::from_ref(&entry)),
        )
        .await
        .expect("the append does not wait for the pool")
        .unwrap();
        assert_eq!(appended, vec![true]);
        exec(&mut owner, "ROLLBACK").await;
        let created = stuck.await.unwrap().unwrap();
        assert!(created[0].is_ok());
        let _ = owner.close().await;
        drop(s);
        pg::drop_schema(&url, &schema).await;
    }

    /// Close the store, open the same database again: everything is there.
    #[tokio::test]
    async fn postgres_reopened_has_everything() {
        let Some((url, schema, first)) = open("reopen").await else {
            return;
        };
        let before = suite::fill(&first).await;
        drop(first);
        let second = store::open(&pg::with_schema(&url, &schema)).await.unwrap();
        suite::reopened_has_everything(before, &second).await;
        drop(second);
        pg::drop_schema(&url, &schema).await;
    }

    /// A schema written by a newer binary is refused, and left untouched.
    #[tokio::test]
    async fn postgres_schema_newer_than_the_binary_is_refused() {
        let Some((url, schema, s)) = open("future").await else {
            return;
        };
        drop(s);
        let mut conn = pg::owner(&url, &schema).await;
        exec(
            &mut conn,
            "INSERT INTO creatorflow_schema (version, binary_version) VALUES (999, 'future')",
        )
        .await;
        let _ = conn.close().await;
        let target = pg::with_schema(&url, &schema);
        let err = store::open(&target).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 999,
                    supported
                } if supported < 999
            ),
            "{err}"
        );
        let again = store::open(&target).await.unwrap_err();
        assert!(matches!(again, StoreError::SchemaTooNew { .. }));
        pg::drop_schema(&url, &schema).await;
    }

    /// Stores opening one new schema at once migrate it once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres_concurrent_opens_migrate_once() {
        let Some(url) = pg::url() else {
            return;
        };
        let schema = pg::fresh_schema("race");
        let target = pg::with_schema(&url, &schema);
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let target = target.clone();
                tokio::spawn(async move { store::open(&target).await })
            })
            .collect();
        for o in opens {
            let s = o.await.unwrap().unwrap();
            assert_eq!(s.backend(), "postgres");
        }
        let mut conn = pg::owner(&url, &schema).await;
        // One row per migration: each ran once.
        let rows = scalar(&mut conn, "SELECT count(*) FROM creatorflow_schema").await;
        let distinct = scalar(
            &mut conn,
            "SELECT count(DISTINCT version) FROM creatorflow_schema",
        )
        .await;
        assert_eq!(rows, distinct);
        assert!(rows >= 4, "{rows} migrations recorded");
        let _ = conn.close().await;
        pg::drop_schema(&url, &schema).await;
    }

    /// A migration whose text changed after it was applied is refused,
    /// naming the version; versions recorded before checksums (no
    /// `checksum` column) are backfilled on open.
    #[tokio::test]
    async fn postgres_changed_migration_is_refused_and_old_versions_backfilled() {
        let Some((url, schema, s)) = open("checksum").await else {
            return;
        };
        drop(s);
        let target = pg::with_schema(&url, &schema);
        let mut conn = pg::owner(&url, &schema).await;
        exec(
            &mut conn,
            "ALTER TABLE creatorflow_schema DROP COLUMN checksum",
        )
        .await;
        let _ = conn.close().await;
        drop(store::open(&target).await.unwrap());
        let mut conn = pg::owner(&url, &schema).await;
        let missing = scalar(
            &mut conn,
            "SELECT count(*) FROM creatorflow_schema WHERE length(checksum) IS DISTINCT FROM 32",
        )
        .await;
        assert_eq!(missing, 0, "every version got its SHA-256");
        exec(
            &mut conn,
            "UPDATE creatorflow_schema SET checksum = '\\x00' WHERE version = 3",
        )
        .await;
        let _ = conn.close().await;
        let err = store::open(&target).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::MigrationChanged {
                    migrations: "postgres",
                    version: 3
                }
            ),
            "{err}"
        );
        pg::drop_schema(&url, &schema).await;
    }
}
