//! Conformance of [`QueueStore::schedule`](creatorflow::store::QueueStore::schedule)
//! beyond `release_and_schedule`: the new item takes its order's `viral`
//! flag and age, a lapsed lease no longer holds the item back, another
//! tenant's order is not found; `schedule_many` answers as `schedule`
//! called once per item.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::Priority;
use creatorflow::store::{
    ClaimRequest, LaneLimit, OrderId, Scheduled, StoreError, TenantScope, WorkItem, WorkSpec,
};
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

/// `schedule_many` answers item by item as `schedule` called once per item
/// would (new items, moved ones, a live lease, another tenant's order, no
/// order, an invalid spec, an order named twice), inside a group commit
/// after a committed call as outside one.
pub async fn schedule_many_answers_as_schedule_one_by_one<S: Backend>(s: Arc<S>) {
    let mut made = Vec::new();
    for (tenant, id) in [
        ("t1", "m-new"),
        ("t1", "m-moved"),
        ("t1", "m-leased"),
        ("t2", "m-other"),
    ] {
        made.push(
            s.create_order(tenant, &order(id, 0, ""))
                .await
                .expect("create")
                .order
                .id,
        );
    }
    let [new, moved, leased, other] = made[..] else {
        panic!("four orders")
    };
    let moved_item = s
        .schedule("t1", moved, &check(50), at(1))
        .await
        .expect("moved");
    s.schedule("t1", leased, &check(2), at(1))
        .await
        .expect("leased");
    let held = claim_one(&*s, 2).await.remove(0);
    assert_eq!(held.order_id, leased, "leased until 7");
    let mut nameless = check(20);
    nameless.kind = String::new();
    let item = |order_id, work, minutes| Scheduled {
        order_id,
        work,
        now: at(minutes),
    };
    let items = [
        item(new, check(20), 3),
        item(moved, check(30), 3),
        item(leased, check(20), 4),
        item(other, check(20), 4),
        item(OrderId::nil(), check(20), 4),
        item(new, nameless, 4),
        item(moved, check(25), 5),
    ];
    // In a group, right after a committed call, as the engine's
    // confirmations run it.
    s.begin_group().await.expect("group");
    s.schedule("t1", new, &check(60), at(3))
        .await
        .expect("first");
    let out = s.schedule_many("t1", &items).await.expect("batch");
    s.commit_group().await.expect("commit");
    assert_eq!(out.len(), items.len());
    let new_item = *out[0].as_ref().expect("new");
    assert_eq!(out[1].as_ref().expect("moved"), &moved_item);
    assert!(
        matches!(out[2], Err(StoreError::Invalid { .. })),
        "{:?}",
        out[2]
    );
    assert!(
        matches!(out[3], Err(StoreError::NotFound { .. })),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(out[4], Err(StoreError::NotFound { .. })),
        "{:?}",
        out[4]
    );
    assert!(
        matches!(out[5], Err(StoreError::Invalid { .. })),
        "{:?}",
        out[5]
    );
    assert_eq!(
        out[6].as_ref().expect("moved again"),
        &moved_item,
        "named twice: one item"
    );
    assert!(
        s.schedule_many("t1", &[])
            .await
            .expect("nothing")
            .is_empty()
    );
    // Due as scheduled: the new item at 20, the moved one at 25 (the later
    // of its two), the leased one left alone.
    s.complete(&held.lease, at(6)).await.expect("done");
    assert!(claim_one(&*s, 19).await.is_empty());
    let first = claim_one(&*s, 20).await.remove(0);
    assert_eq!((first.order_id, &first.payload), (new, &json!({"at": 20})));
    assert!(claim_one(&*s, 24).await.is_empty());
    let second = claim_one(&*s, 25).await.remove(0);
    assert_eq!(
        (second.order_id, &second.payload),
        (moved, &json!({"at": 25}))
    );
    assert_ne!(new_item, moved_item);
    s.complete(&first.lease, at(24)).await.expect("done");
    s.complete(&second.lease, at(26)).await.expect("done");
    // Outside a group, the same again: a new item for the completed one.
    let again = s
        .schedule_many("t1", &[item(new, check(40), 30)])
        .await
        .expect("again");
    assert!(again[0].is_ok());
    assert_eq!(claim_one(&*s, 40).await.remove(0).order_id, new);
}
