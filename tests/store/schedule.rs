//! Conformance of [`QueueStore::schedule`](creatorflow::store::QueueStore::schedule)
//! beyond `release_and_schedule`: the new item takes its order's `viral`
//! flag and age, a lapsed lease no longer holds the item back, another
//! tenant's order is not found.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::Priority;
use creatorflow::store::{ClaimRequest, LaneLimit, StoreError, TenantScope, WorkItem, WorkSpec};
use serde_json::json;

use super::suite::Backend;
use super::{at, order};

fn check(minutes: i64) -> WorkSpec {
    WorkSpec {
        kind: "check".into(),
        lane: Priority::Standard,
        run_at: at(minutes),
        payload: json!({"at": minutes}),
    }
}

async fn claim_one<S: Backend>(s: &S, minutes: i64) -> Vec<WorkItem> {
    s.claim(
        TenantScope::Tenant("t1"),
        &ClaimRequest {
            worker: "w",
            lanes: &[LaneLimit {
                lane: Priority::Standard,
                limit: 1,
            }],
            lease: TimeDelta::minutes(5),
            now: at(minutes),
        },
    )
    .await
    .expect("claim")
}

pub async fn schedule_moves_or_refuses_as_the_lease_says<S: Backend>(s: Arc<S>) {
    let old = s
        .create_order("t1", &order("s-old", 0, ""))
        .await
        .expect("create")
        .order;
    let viral = s
        .create_order("t1", &order("s-viral", 5, r#""impact":"VIRAL""#))
        .await
        .expect("create")
        .order;
    let old_item = s
        .schedule("t1", old.id, &check(10), at(6))
        .await
        .expect("old");
    let viral_item = s
        .schedule("t1", viral.id, &check(10), at(6))
        .await
        .expect("viral");
    assert_ne!(old_item, viral_item);
    // Viral first although younger: the item carries its order's flag.
    let first = claim_one(&*s, 10).await.remove(0);
    assert_eq!((first.order_id, first.viral), (viral.id, true));
    // Leased: refused, and the item is left as it was.
    assert!(matches!(
        s.schedule("t1", viral.id, &check(30), at(11)).await,
        Err(StoreError::Invalid { .. })
    ));
    // Once the lease lapsed (claimed at 10 for 5 minutes), the item moves.
    assert_eq!(
        s.schedule("t1", viral.id, &check(30), at(16))
            .await
            .expect("moved"),
        viral_item
    );
    let second = claim_one(&*s, 16).await.remove(0);
    assert_eq!((second.order_id, second.viral), (old.id, false));
    s.complete(&second.lease, at(17)).await.expect("done");
    assert!(claim_one(&*s, 29).await.is_empty(), "moved to 30");
    let again = claim_one(&*s, 30).await.remove(0);
    assert_eq!(
        (again.order_id, again.lease.attempt, again.payload),
        (viral.id, 2, json!({"at": 30}))
    );
    // Another tenant's order, or none: not found, nothing created.
    for tenant in ["t2", "t1"] {
        let id = if tenant == "t2" {
            old.id
        } else {
            creatorflow::store::OrderId::nil()
        };
        assert!(matches!(
            s.schedule(tenant, id, &check(40), at(40)).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    let summary = super::summary(&*s, TenantScope::All, at(40))
        .await
        .expect("summary");
    assert_eq!(
        (summary.leased, summary.expired_leases, summary.scheduled),
        (0, 1, 0),
        "only the viral item is left, its lease lapsed"
    );
}
