//! Conformance of [`QueueStore::queue_due`](creatorflow::store::QueueStore::queue_due):
//! the due items per lane and the next due time equal those of
//! `queue_summary`, with items due, scheduled later, leased, lapsed and of
//! another tenant, in either scope.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::Priority;
use creatorflow::store::{ClaimRequest, LaneLimit, QueueDue, TenantScope, WorkSpec};
use serde_json::json;

use super::suite::Backend;
use super::{at, order};

fn work(kind: &str, lane: Priority, minutes: i64) -> WorkSpec {
    WorkSpec {
        kind: kind.into(),
        lane,
        run_at: at(minutes),
        payload: json!({}),
    }
}

pub async fn queue_due_equals_the_summary<S: Backend>(s: Arc<S>) {
    // t1: urgent and standard due at 0, checks at 30 and 10, one leased at
    // 5 (its lease runs to 10); t2: one due at 20; t3: at 35, 15 and 2.
    let items = [
        ("t1", "a", Priority::Urgent, 0),
        ("t1", "b", Priority::Standard, 0),
        ("t1", "c", Priority::Standard, 30),
        ("t1", "d", Priority::High, 10),
        ("t1", "e", Priority::Automated, 5),
        ("t2", "f", Priority::Standard, 20),
        ("t3", "g", Priority::Standard, 35),
        ("t3", "h", Priority::High, 15),
        ("t3", "i", Priority::Standard, 2),
    ];
    for (tenant, id, lane, minutes) in items {
        let o = s
            .create_order(tenant, &order(id, 0, ""))
            .await
            .unwrap()
            .order;
        s.enqueue(tenant, o.id, &work("advance", lane, minutes), at(0))
            .await
            .unwrap();
    }
    let leased = s
        .claim(
            TenantScope::Tenant("t1"),
            &ClaimRequest {
                worker: "w",
                lanes: &[LaneLimit {
                    lane: Priority::Automated,
                    limit: 1,
                }],
                lease: TimeDelta::minutes(5),
                now: at(5),
            },
        )
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    for minutes in [0, 1, 7, 11, 25, 40] {
        for scope in [
            TenantScope::All,
            TenantScope::Tenant("t1"),
            TenantScope::Tenant("t2"),
            TenantScope::Tenant("t3"),
            TenantScope::Tenant("nobody"),
        ] {
            let summary = s.queue_summary(scope, at(minutes)).await.unwrap();
            let due = s.queue_due(scope, at(minutes)).await.unwrap();
            assert_eq!(due, QueueDue::from(summary), "{scope:?} at {minutes} min");
        }
    }
    // The figures themselves, at 1 minute, for t1: two due, the next due
    // time is the earliest pending one (the two due at 0).
    let due = s.queue_due(TenantScope::Tenant("t1"), at(1)).await.unwrap();
    assert_eq!(
        (
            due.due[&Priority::Urgent],
            due.due[&Priority::Standard],
            due.next_run_at
        ),
        (1, 1, Some(at(0)))
    );
    // At 7 minutes: the leased item's time is its lease expiry (10).
    let later = s.queue_due(TenantScope::Tenant("t2"), at(7)).await.unwrap();
    assert_eq!(later.next_run_at, Some(at(20)));
    // t3 before anything is due, then with one due: the earliest of three.
    for minutes in [0, 3] {
        let t3 = s
            .queue_due(TenantScope::Tenant("t3"), at(minutes))
            .await
            .unwrap();
        assert_eq!(t3.next_run_at, Some(at(2)), "at {minutes} min");
    }
    assert_eq!(
        s.queue_due(TenantScope::Tenant("nobody"), at(7))
            .await
            .unwrap(),
        QueueDue {
            due: Priority::ALL.iter().map(|p| (*p, 0)).collect(),
            next_run_at: None,
        }
    );
}
