//! Worker heartbeats and the takeover of dead workers' steps
//! ([`HeartbeatStore`]), on every backend.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::model::Priority;
use creatorflow::store::{
    AfterStep, ClaimRequest, Holders, LaneLimit, Settle, StoreError, StoredOrder, TenantScope,
    WorkItem, WorkSpec,
};
use serde_json::json;

use super::suite::Backend;
use super::{at, order, step, t0};

/// `t0` plus `s` seconds.
fn sec(s: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(s)
}

/// A lapse of 15 s, the default.
fn lapse() -> TimeDelta {
    TimeDelta::seconds(15)
}

/// An order of `tenant` with a due `advance` item.
async fn with_work<S: Backend>(s: &S, tenant: &str, id: &str) -> StoredOrder {
    let o = s
        .create_order(tenant, &order(id, 0, ""))
        .await
        .expect("create")
        .order;
    s.enqueue(
        tenant,
        o.id,
        &WorkSpec {
            kind: "advance".into(),
            lane: Priority::Standard,
            run_at: at(0),
            payload: json!(null),
        },
        at(0),
    )
    .await
    .expect("enqueue");
    o
}

/// `worker` claims every due item at `now`, under a 6-minute lease (the
/// long lease steps chain under).
async fn claim<S: Backend>(s: &S, worker: &str, now: DateTime<Utc>) -> Vec<WorkItem> {
    let lanes: Vec<LaneLimit> = Priority::ALL
        .iter()
        .map(|&lane| LaneLimit { lane, limit: 10 })
        .collect();
    s.claim(
        TenantScope::All,
        &ClaimRequest {
            worker,
            lanes: &lanes,
            lease: TimeDelta::minutes(6),
            now,
        },
    )
    .await
    .expect("claim")
}

async fn holders<S: Backend>(s: &S, scope: TenantScope<'_>, now: DateTime<Utc>) -> Holders {
    s.holders(scope, now).await.expect("holders")
}

/// A worker whose heartbeat lapsed has its steps taken over long before
/// its lease lapses: given back due at once (in the scope asked only), then
/// claimed by a live worker under a new attempt; every write under the dead
/// worker's lease is refused from then on.
pub async fn heartbeat_lapse_hands_work_over<S: Backend>(s: Arc<S>) {
    let o1 = with_work(&*s, "t1", "o1").await;
    let o2 = with_work(&*s, "t2", "o2").await;
    s.beat("w1", lapse(), sec(0)).await.expect("beat");
    let held = claim(&*s, "w1", sec(0)).await;
    assert_eq!(held.len(), 2);
    let h = holders(&*s, TenantScope::All, sec(1)).await;
    assert_eq!(
        (h.steps, h.held_by_live, h.held_by_dead, h.live_workers),
        (2, 2, 0, 1)
    );
    // Alive: nothing to take over; another worker gets nothing.
    assert_eq!(s.take_over(TenantScope::All, sec(10)).await.unwrap(), 0);
    s.beat("w1", lapse(), sec(10)).await.expect("beat");
    assert_eq!(s.take_over(TenantScope::All, sec(24)).await.unwrap(), 0);
    assert!(claim(&*s, "w2", sec(24)).await.is_empty());
    // Silent since 10 s: lapsed at 25 s (exclusive, like a lease).
    let h = holders(&*s, TenantScope::Tenant("t1"), sec(25)).await;
    assert_eq!(
        (h.steps, h.held_by_live, h.held_by_dead, h.live_workers),
        (1, 0, 1, 0)
    );
    // A tenant's takeover touches that tenant's items only.
    assert_eq!(
        s.take_over(TenantScope::Tenant("t1"), sec(25))
            .await
            .unwrap(),
        1
    );
    let h = holders(&*s, TenantScope::All, sec(25)).await;
    assert_eq!((h.steps, h.held_by_dead), (1, 1), "t2's item still held");
    assert_eq!(s.take_over(TenantScope::All, sec(26)).await.unwrap(), 1);
    assert_eq!(holders(&*s, TenantScope::All, sec(26)).await.steps, 0);
    s.beat("w2", lapse(), sec(26)).await.expect("beat");
    let taken = claim(&*s, "w2", sec(26)).await;
    assert_eq!(taken.len(), 2, "due at once, not after the 6-minute lease");
    assert!(taken.iter().all(|i| i.lease.attempt == 2));
    // The dead worker comes back: nothing it does under its leases holds.
    s.beat("w1", lapse(), sec(27)).await.expect("beat");
    let old = |id| {
        held.iter()
            .find(|i| i.order_id == id)
            .map(|i| i.lease.clone())
            .expect("held")
    };
    assert!(
        s.complete(&old(o1.id), sec(27))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        s.renew(&old(o2.id), TimeDelta::minutes(6), sec(27))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    let mut t = step(&o1, "validated", sec(27));
    t.settle = Some(Settle {
        lease: old(o1.id),
        then: AfterStep::Complete,
    });
    let e = s.transition("t1", &t).await.unwrap_err();
    assert!(matches!(e, StoreError::LeaseLost { .. }), "{e}");
    assert_eq!(
        s.get_order("t1", o1.id).await.unwrap().unwrap().version,
        0,
        "nothing recorded under the lost lease"
    );
    // The live worker's leases hold.
    for item in &taken {
        let mut t = step(
            if item.order_id == o1.id { &o1 } else { &o2 },
            "validated",
            sec(28),
        );
        t.settle = Some(Settle {
            lease: item.lease.clone(),
            then: AfterStep::Complete,
        });
        s.transition(&item.lease.tenant, &t)
            .await
            .expect("recorded");
    }
    let h = holders(&*s, TenantScope::All, sec(28)).await;
    assert_eq!((h.steps, h.live_workers), (0, 2));
}

/// A worker that keeps beating keeps its steps however long they run; one
/// that keeps no heartbeat at all is never taken over (its steps return
/// when the lease lapses) and counts as holding them dead; a bad beat is
/// refused.
pub async fn live_or_silent_workers_keep_their_work<S: Backend>(s: Arc<S>) {
    with_work(&*s, "t1", "o1").await;
    with_work(&*s, "t1", "o2").await;
    s.beat("busy", lapse(), sec(0)).await.expect("beat");
    let busy = claim(&*s, "busy", sec(0)).await;
    assert_eq!(busy.len(), 2);
    // A slow step: five minutes of beats every 5 s, a takeover after each.
    for n in 1..=60 {
        s.beat("busy", lapse(), sec(5 * n)).await.expect("beat");
        assert_eq!(
            s.take_over(TenantScope::All, sec(5 * n + 4)).await.unwrap(),
            0
        );
    }
    s.complete(&busy[0].lease, sec(301))
        .await
        .expect("never robbed");
    s.release(&busy[1].lease, None, sec(301))
        .await
        .expect("never robbed");
    // No heartbeat: held until the lease lapses, counted as held by the dead.
    let silent = claim(&*s, "silent", sec(302)).await;
    assert_eq!(silent.len(), 1);
    assert_eq!(s.take_over(TenantScope::All, sec(600)).await.unwrap(), 0);
    let h = holders(&*s, TenantScope::All, sec(600)).await;
    assert_eq!((h.steps, h.held_by_live, h.held_by_dead), (1, 0, 1));
    s.complete(&silent[0].lease, sec(600))
        .await
        .expect("still its own");
    for (worker, lapse) in [("", lapse()), ("w", TimeDelta::zero())] {
        let e = s.beat(worker, lapse, sec(0)).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid { .. }), "{e}");
    }
}

/// A worker retiring (a graceful stop) lapses at once: what it still holds
/// is taken over by the next takeover, and its heartbeat is forgotten once
/// it holds nothing.
pub async fn a_retired_worker_is_taken_over_at_once<S: Backend>(s: Arc<S>) {
    with_work(&*s, "t1", "o1").await;
    s.beat("w1", lapse(), sec(0)).await.expect("beat");
    assert_eq!(claim(&*s, "w1", sec(0)).await.len(), 1);
    s.retire("w1", sec(1)).await.expect("retire");
    s.retire("nobody", sec(1))
        .await
        .expect("retiring an unknown worker");
    assert_eq!(holders(&*s, TenantScope::All, sec(1)).await.held_by_dead, 1);
    assert_eq!(s.take_over(TenantScope::All, sec(1)).await.unwrap(), 1);
    let h = holders(&*s, TenantScope::All, sec(1)).await;
    assert_eq!((h.steps, h.live_workers), (0, 0));
    assert_eq!(claim(&*s, "w2", sec(1)).await.len(), 1);
    assert_eq!(s.take_over(TenantScope::All, sec(2)).await.unwrap(), 0);
}
