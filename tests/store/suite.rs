//! The conformance tests, written once, generic over the backend.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::{Impact, Priority, StateName};
use creatorflow::store::{
    AfterStep, ClaimRequest, FaultPoint, GroupCommit, InboxDone, InboxEntry, InjectFault,
    LaneLimit, NewOrder, OrderEvent, Readiness, Settle, Store, StoreError, StoredOrder,
    TenantScope, WorkItem, WorkSpec,
};
use rust_decimal::Decimal;
use serde_json::json;

use super::{at, order, step};

// The shop tests live in a file of their own; `conformance!` finds every
// test here.
pub use super::bulk::*;
pub use super::cluster::*;
pub use super::created::*;
pub use super::decisions::*;
pub use super::due::*;
pub use super::heartbeat::*;
pub use super::histories::*;

pub use super::known::*;
pub use super::reads::*;
pub use super::review::*;
pub use super::schedule::*;
pub use super::shipping::*;
pub use super::shops::*;

/// What every conformance test needs of a backend.
pub trait Backend: Store + Readiness + InjectFault + GroupCommit + 'static {}
impl<S: Store + Readiness + InjectFault + GroupCommit + 'static> Backend for S {}

async fn create<S: Backend>(
    s: &S,
    tenant: &str,
    id: &str,
    minutes: i64,
    extra: &str,
) -> StoredOrder {
    s.create_order(tenant, &order(id, minutes, extra))
        .await
        .expect("create")
        .order
}

fn work(kind: &str, lane: Priority, minutes: i64) -> WorkSpec {
    WorkSpec {
        kind: kind.into(),
        lane,
        run_at: at(minutes),
        payload: json!({"step": kind}),
    }
}

async fn claim<S: Backend>(
    s: &S,
    scope: TenantScope<'_>,
    worker: &str,
    lanes: &[LaneLimit],
    minutes: i64,
) -> Vec<WorkItem> {
    s.claim(
        scope,
        &ClaimRequest {
            worker,
            lanes,
            lease: TimeDelta::minutes(5),
            now: at(minutes),
        },
    )
    .await
    .expect("claim")
}

fn lanes(limit: usize) -> Vec<LaneLimit> {
    Priority::ALL
        .iter()
        .map(|&lane| LaneLimit { lane, limit })
        .collect()
}

// ---- orders ---------------------------------------------------------------

/// 100 tasks create the same order at once: one row, one `created`, one id.
pub async fn create_is_idempotent_under_concurrency<S: Backend>(s: Arc<S>) {
    let o = order("576461413038785752", 0, "");
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (s, o) = (s.clone(), o.clone());
            tokio::spawn(async move { s.create_order("t1", &o).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut created = 0;
    for t in tasks {
        let c = t.await.expect("task").expect("create");
        ids.insert(c.order.id);
        created += usize::from(c.created);
    }
    assert_eq!(ids.len(), 1, "every caller gets the same id");
    assert_eq!(created, 1, "exactly one caller created it");
    assert_eq!(s.list_orders("t1", None, 1000).await.unwrap().len(), 1);
    let found = s
        .find_order("t1", "576461413038785752")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(found.id), ids.into_iter().next());
    assert_eq!(found.version, 0);
    assert_eq!(found.order.user_id.as_deref(), Some("t1"));
}

/// `get_orders` reads many of one tenant's orders at once and leaves out
/// ids it does not have, another tenant's included.
pub async fn get_orders_reads_one_tenants_orders<S: Backend>(s: Arc<S>) {
    let a = s
        .create_order("t1", &order("ga", 0, ""))
        .await
        .unwrap()
        .order;
    let b = s
        .create_order("t1", &order("gb", 1, ""))
        .await
        .unwrap()
        .order;
    let mut theirs = order("gc", 2, "");
    theirs.user_id = Some("t2".into());
    let c = s.create_order("t2", &theirs).await.unwrap().order;
    let unknown = uuid::Uuid::new_v4();
    let mut got = s
        .get_orders("t1", &[b.id, c.id, unknown, a.id])
        .await
        .unwrap();
    got.sort_by_key(|o| o.order.tiktok_order_id.clone());
    assert_eq!(got, vec![a.clone(), b]);
    assert!(s.get_orders("t1", &[]).await.unwrap().is_empty());
    assert_eq!(s.get_orders("t2", &[a.id, c.id]).await.unwrap(), vec![c]);
}

/// A batch reports per order: new, duplicate, refused; work only for new ones.
pub async fn create_batch_reports_each_order<S: Backend>(s: Arc<S>) {
    let mut bad = order("bad", 0, "");
    bad.quantity = 0;
    let mut foreign = order("foreign", 0, "");
    foreign.user_id = Some("t2".into());
    let batch = vec![
        NewOrder {
            order: order("a", 0, ""),
            work: Some(work("advance", Priority::Standard, 0)),
            decision: None,
        },
        NewOrder {
            order: bad,
            work: None,
            decision: None,
        },
        NewOrder {
            order: order("a", 5, ""),
            work: Some(work("advance", Priority::Standard, 0)),
            decision: None,
        },
        NewOrder {
            order: foreign,
            work: None,
            decision: None,
        },
        NewOrder {
            order: order("b", 1, ""),
            work: Some(work("advance", Priority::High, 0)),
            decision: None,
        },
    ];
    let results = s.create_orders("t1", &batch).await.unwrap();
    assert_eq!(results.len(), 5);
    let a = results[0].as_ref().unwrap();
    assert!(a.created);
    assert!(
        matches!(&results[1], Err(StoreError::Invalid { message }) if message.contains("quantity must be > 0"))
    );
    let dup = results[2].as_ref().unwrap();
    assert!(!dup.created);
    assert_eq!(dup.order.id, a.order.id);
    assert_eq!(
        dup.order.order.created_at,
        at(0),
        "the stored order, not the duplicate's"
    );
    assert!(matches!(&results[3], Err(StoreError::Invalid { .. })));
    assert!(results[4].as_ref().unwrap().created);
    // Again: all duplicates now, and no work is enqueued twice.
    let again = s.create_orders("t1", &batch[..1]).await.unwrap();
    assert!(!again[0].as_ref().unwrap().created);
    let items = claim(&*s, TenantScope::Tenant("t1"), "w", &lanes(10), 0).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].lane, Priority::High);
    // Refused-only batches write nothing and still answer per order.
    let mut bad = order("bad2", 0, "");
    bad.quantity = 0;
    let results = s
        .create_orders(
            "t1",
            &[NewOrder {
                order: bad,
                work: None,
                decision: None,
            }],
        )
        .await
        .unwrap();
    assert!(results[0].is_err());
    assert!(s.find_order("t1", "bad2").await.unwrap().is_none());
}

/// A transition updates every state field and writes one history row.
pub async fn transition_writes_state_and_history<S: Backend>(s: Arc<S>) {
    let o = create(&*s, "t1", "o1", 0, "").await;
    let mut t = step(&o, "validated", at(1));
    t.expected_version = Some(0);
    t.priority = Some(Priority::Urgent);
    t.impact = Some(Impact::High);
    t.actions_executed =
        json!([{"type": "validate_address", "outcome": "ok", "attempts": 1}]).into();
    let after = s.transition("t1", &t).await.unwrap();
    assert_eq!(after.version, 1);
    assert_eq!(after.order.current_state, "validated");
    assert_eq!(
        after.order.previous_state.as_ref().map(StateName::as_str),
        Some("received")
    );
    assert_eq!(after.order.flow_progress, 25);
    assert_eq!(after.order.processing_time_ms, 10);
    assert_eq!(after.order.priority, Priority::Urgent);
    assert_eq!(after.order.impact, Impact::High);
    assert_eq!(after.order.updated_at, Some(at(1)));
    assert_eq!(after.order.state_changed_at, Some(at(1)));
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    assert_eq!(
        read.order, after,
        "what the store returns is what it stored"
    );
    assert_eq!(read.history.len(), 1);
    let h = &read.history[0];
    assert_eq!(
        (h.version, h.from.as_str(), h.to.as_str()),
        (1, "received", "validated")
    );
    assert_eq!(h.reason.as_deref(), Some("received->validated"));
    assert!(h.automated);
    assert_eq!(h.duration_ms, 10);
    assert_eq!(h.actions_executed, t.actions_executed);
    assert_eq!(h.at, at(1));
    // Stale state, stale version, unknown order.
    let err = s
        .transition("t1", &step(&o, "validated", at(2)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict { actual_state, actual_version: 1, .. } if actual_state == "validated"),
        "{err}"
    );
    let mut stale = step(&after, "processing", at(2));
    stale.expected_version = Some(0);
    assert!(s.transition("t1", &stale).await.unwrap_err().is_conflict());
    let mut ghost = step(&after, "processing", at(2));
    ghost.order_id = uuid::Uuid::nil();
    assert!(matches!(
        s.transition("t1", &ghost).await,
        Err(StoreError::NotFound { .. })
    ));
    let mut wild = step(&after, "processing", at(2));
    wild.progress = 101;
    assert!(matches!(
        s.transition("t1", &wild).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(
        s.get_order("t1", o.id).await.unwrap().unwrap(),
        after,
        "failed attempts wrote nothing"
    );
}

/// Two concurrent transitions of one order: exactly one wins.
pub async fn concurrent_transitions_one_wins<S: Backend>(s: Arc<S>) {
    for i in 0..20 {
        let o = create(&*s, "t1", &format!("race-{i}"), 0, "").await;
        let a = step(&o, "validated", at(1));
        let b = step(&o, "failed", at(1));
        let (s1, s2) = (s.clone(), s.clone());
        let ta = tokio::spawn(async move { s1.transition("t1", &a).await });
        let tb = tokio::spawn(async move { s2.transition("t1", &b).await });
        let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
        assert!(ra.is_ok() != rb.is_ok(), "exactly one wins: {ra:?} {rb:?}");
        let loser = if ra.is_ok() { rb } else { ra };
        assert!(loser.unwrap_err().is_conflict());
        let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
        assert_eq!(read.history.len(), 1);
        assert_eq!(read.order.version, 1);
        assert_eq!(read.history[0].to, read.order.order.current_state);
    }
}

/// A failure between the order update and the history insert leaves neither.
pub async fn failure_mid_transition_leaves_nothing<S: Backend>(s: Arc<S>) {
    let o = create(&*s, "t1", "o1", 0, "").await;
    s.enqueue("t1", o.id, &work("advance", Priority::Standard, 0), at(0))
        .await
        .unwrap();
    let item = claim(&*s, TenantScope::All, "w1", &lanes(1), 0)
        .await
        .remove(0);
    let mut t = step(&o, "validated", at(0));
    t.settle = Some(Settle {
        lease: item.lease.clone(),
        then: AfterStep::Complete,
    });
    t.enqueue = Some(work("next", Priority::Standard, 0));
    s.inject_fault(FaultPoint::AfterOrderUpdate);
    let err = s.transition("t1", &t).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Database { message, .. } if message.contains("injected")),
        "{err}"
    );
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    assert_eq!(read.order, o, "the order is untouched");
    assert!(read.history.is_empty(), "no history row");
    let summary = super::summary(&*s, TenantScope::All, at(0)).await.unwrap();
    assert_eq!(
        summary.leased, 1,
        "the lease is still held, nothing enqueued"
    );
    // The same step then succeeds once.
    s.transition("t1", &t).await.unwrap();
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    assert_eq!((read.order.version, read.history.len()), (1, 1));
    let summary = super::summary(&*s, TenantScope::All, at(0)).await.unwrap();
    assert_eq!((summary.leased, summary.due[&Priority::Standard]), (0, 1));
}

/// Inside a group (`GroupCommit`) each call sees the earlier ones, a call
/// that fails writes nothing while the group goes on, and everything the
/// group wrote is there once it commits; opening an open group and
/// committing none do nothing.
pub async fn group_commit_keeps_each_call_atomic<S: Backend>(s: Arc<S>) {
    s.commit_group().await.expect("no group: nothing to do");
    s.begin_group().await.unwrap();
    s.begin_group().await.expect("already open: nothing to do");
    let o = create(&*s, "t1", "o1", 0, "").await;
    assert_eq!(s.get_order("t1", o.id).await.unwrap(), Some(o.clone()));
    s.enqueue("t1", o.id, &work("advance", Priority::Standard, 0), at(0))
        .await
        .unwrap();
    let item = claim(&*s, TenantScope::All, "w1", &lanes(1), 0)
        .await
        .remove(0);
    let mut t = step(&o, "validated", at(0));
    t.settle = Some(Settle {
        lease: item.lease.clone(),
        then: AfterStep::Complete,
    });
    s.inject_fault(FaultPoint::AfterOrderUpdate);
    s.transition("t1", &t).await.unwrap_err();
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    assert_eq!(read.order, o, "the failed call wrote nothing");
    assert!(read.history.is_empty());
    let mut stale = step(&o, "processing", at(0));
    stale.expected_version = Some(7);
    assert!(s.transition("t1", &stale).await.unwrap_err().is_conflict());
    assert_eq!(s.transition("t1", &t).await.unwrap().version, 1);
    s.commit_group().await.unwrap();
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    assert_eq!((read.order.version, read.history.len()), (1, 1));
    assert_eq!(read.order.order.current_state.as_str(), "validated");
    let summary = super::summary(&*s, TenantScope::All, at(0)).await.unwrap();
    assert_eq!(summary.leased + summary.scheduled, 0, "the item completed");
    assert_eq!(summary.due.values().sum::<u64>(), 0);
}

/// A batch group-commits, each item checked on its own, later items seeing earlier ones.
pub async fn batch_transitions_check_each_item<S: Backend>(s: Arc<S>) {
    let a = create(&*s, "t1", "a", 0, "").await;
    let b = create(&*s, "t1", "b", 0, "").await;
    let c = create(&*s, "t2", "c", 0, "").await;
    let a1 = step(&a, "validated", at(1));
    let mut a2 = step(&a, "processing", at(2));
    a2.expected_state = StateName::new("validated");
    let a_stale = step(&a, "failed", at(2));
    let b1 = step(&b, "validated", at(1));
    let c_wrong_tenant = step(&c, "validated", at(1));
    let c1 = step(&c, "validated", at(1));
    let batch = vec![
        ("t1", a1),
        ("t1", a2),
        ("t1", a_stale),
        ("t1", b1),
        ("t1", c_wrong_tenant),
        ("t2", c1),
    ];
    let results = s.transitions(&batch).await.unwrap();
    assert_eq!(results[0].as_ref().unwrap().version, 1);
    assert_eq!(results[1].as_ref().unwrap().version, 2);
    assert!(results[2].as_ref().unwrap_err().is_conflict());
    assert_eq!(
        results[3].as_ref().unwrap().order.current_state,
        "validated"
    );
    assert!(matches!(results[4], Err(StoreError::NotFound { .. })));
    assert!(results[5].is_ok());
    let a = s.order_with_history("t1", a.id).await.unwrap().unwrap();
    assert_eq!(a.order.order.current_state, "processing");
    let versions: Vec<u64> = a.history.iter().map(|h| h.version).collect();
    assert_eq!(versions, [1, 2]);
    assert!(s.transitions(&[]).await.unwrap().is_empty());
}

// ---- tenants --------------------------------------------------------------

/// Tenant B can neither read nor change anything of tenant A's.
pub async fn tenants_are_isolated<S: Backend>(s: Arc<S>) {
    let a = create(&*s, "A", "o1", 0, r#""impact":"VIRAL""#).await;
    s.transition("A", &step(&a, "validated", at(1)))
        .await
        .unwrap();
    s.enqueue("A", a.id, &work("advance", Priority::Standard, 0), at(0))
        .await
        .unwrap();

    // Reads.
    assert!(s.get_order("B", a.id).await.unwrap().is_none());
    assert!(s.find_order("B", "o1").await.unwrap().is_none());
    assert!(s.order_with_history("B", a.id).await.unwrap().is_none());
    assert!(s.list_orders("B", None, 100).await.unwrap().is_empty());
    assert!(s.active_orders("B", 100).await.unwrap().is_empty());
    let d = s.dashboard("B", at(60), TimeDelta::hours(1)).await.unwrap();
    assert!(d.orders_by_state.is_empty() && d.most_urgent.is_empty() && d.viral_orders == 0);
    assert_eq!(d.automation_health_pct, None);
    let q = super::summary(&*s, TenantScope::Tenant("B"), at(0))
        .await
        .unwrap();
    assert_eq!((q.due.values().sum::<u64>(), q.next_run_at), (0, None));
    assert!(
        claim(&*s, TenantScope::Tenant("B"), "wb", &lanes(10), 0)
            .await
            .is_empty()
    );

    // Writes.
    let read = s.get_order("A", a.id).await.unwrap().unwrap();
    let err = s
        .transition("B", &step(&read, "processing", at(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(matches!(
        s.enqueue("B", a.id, &work("x", Priority::High, 0), at(0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.schedule("B", a.id, &work("advance", Priority::High, 0), at(0))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // Creating "the same" order as B makes B's own order.
    let b = s.create_order("B", &order("o1", 0, "")).await.unwrap();
    assert!(b.created);
    assert_ne!(b.order.id, a.id);
    // A lease of A's item presented as B's (or with B's tenant) does nothing.
    let item = claim(&*s, TenantScope::Tenant("A"), "wa", &lanes(10), 0)
        .await
        .remove(0);
    let mut forged = item.lease.clone();
    forged.tenant = "B".into();
    assert!(
        s.complete(&forged, at(0))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        s.renew(&forged, TimeDelta::seconds(30), at(0))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    assert!(
        s.release(&forged, None, at(0))
            .await
            .unwrap_err()
            .is_lease_lost()
    );
    let mut t = step(&read, "processing", at(2));
    t.settle = Some(Settle {
        lease: forged,
        then: AfterStep::Complete,
    });
    assert!(s.transition("B", &t).await.is_err());
    // A's data is intact.
    let read = s.order_with_history("A", a.id).await.unwrap().unwrap();
    assert_eq!((read.order.version, read.history.len()), (1, 1));
    s.complete(&item.lease, at(0)).await.unwrap();
}

// ---- queue ----------------------------------------------------------------

/// An expired lease hands the item to another claimant; the old holder is refused.
pub async fn lease_expiry_hands_work_over<S: Backend>(s: Arc<S>) {
    let o = create(&*s, "t1", "o1", 0, "").await;
    let (id, new) = s
        .enqueue("t1", o.id, &work("advance", Priority::Urgent, 0), at(0))
        .await
        .unwrap();
    assert!(new);
    assert_eq!(
        s.enqueue("t1", o.id, &work("advance", Priority::Urgent, 9), at(0))
            .await
            .unwrap(),
        (id, false)
    );
    let first = s
        .claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w1",
                lanes: &lanes(5),
                lease: TimeDelta::seconds(30),
                now: at(0),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let l1 = first[0].lease.clone();
    assert_eq!(
        (l1.id, l1.attempt, l1.worker.as_str(), l1.tenant.as_str()),
        (id, 1, "w1", "t1")
    );
    assert_eq!(l1.expires_at, at(0) + TimeDelta::seconds(30));
    assert_eq!(first[0].payload, json!({"step": "advance"}));
    // Still leased 29 s later.
    let t29 = at(0) + TimeDelta::seconds(29);
    let none = s
        .claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w2",
                lanes: &lanes(5),
                lease: TimeDelta::seconds(30),
                now: t29,
            },
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    let l1 = s.renew(&l1, TimeDelta::seconds(30), t29).await.unwrap();
    assert_eq!(l1.expires_at, t29 + TimeDelta::seconds(30));
    // Lapsed: another worker gets it, attempt 2.
    let t60 = t29 + TimeDelta::seconds(30);
    let summary = super::summary(&*s, TenantScope::All, t60).await.unwrap();
    assert_eq!(
        (summary.expired_leases, summary.due[&Priority::Urgent]),
        (1, 1)
    );
    let second = s
        .claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w2",
                lanes: &lanes(5),
                lease: TimeDelta::seconds(30),
                now: t60,
            },
        )
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let l2 = second[0].lease.clone();
    assert_eq!((l2.id, l2.attempt, l2.worker.as_str()), (id, 2, "w2"));
    for err in [
        s.complete(&l1, t60).await.unwrap_err(),
        s.renew(&l1, TimeDelta::seconds(5), t60).await.unwrap_err(),
        s.release(&l1, None, t60).await.unwrap_err(),
    ] {
        assert!(err.is_lease_lost(), "{err}");
    }
    // A lease that lapsed, even if nobody took the item, is lost too.
    let t91 = t60 + TimeDelta::seconds(31);
    assert!(s.complete(&l2, t91).await.unwrap_err().is_lease_lost());
    // The same worker claiming again gets a new attempt; its old lease stays lost.
    let third = s
        .claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w2",
                lanes: &lanes(5),
                lease: TimeDelta::seconds(30),
                now: t91,
            },
        )
        .await
        .unwrap();
    let l3 = third[0].lease.clone();
    assert_eq!(l3.attempt, 3);
    assert!(s.complete(&l2, t91).await.unwrap_err().is_lease_lost());
    s.complete(&l3, t91).await.unwrap();
    assert!(
        s.complete(&l3, t91).await.unwrap_err().is_lease_lost(),
        "settled once"
    );
    let summary = super::summary(&*s, TenantScope::All, t91).await.unwrap();
    assert_eq!(
        summary,
        creatorflow::store::QueueSummary {
            due: summary.due.clone(),
            ..Default::default()
        }
    );
    assert_eq!(summary.due.values().sum::<u64>(), 0);
}

/// Concurrent claimants never get the same item.
pub async fn claims_are_exclusive<S: Backend>(s: Arc<S>) {
    let n = 200;
    let batch: Vec<NewOrder> = (0..n)
        .map(|i| NewOrder {
            order: order(&format!("q{i}"), i, ""),
            work: Some(work("advance", Priority::ALL[(i % 4) as usize], 0)),
            decision: None,
        })
        .collect();
    for r in s.create_orders("t1", &batch).await.unwrap() {
        assert!(r.unwrap().created);
    }
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move {
                let worker = format!("w{w}");
                let mut got = Vec::new();
                loop {
                    let items = s
                        .claim(
                            TenantScope::All,
                            &ClaimRequest {
                                worker: &worker,
                                lanes: &lanes(3),
                                lease: TimeDelta::minutes(5),
                                now: at(0),
                            },
                        )
                        .await
                        .unwrap();
                    if items.is_empty() {
                        break got;
                    }
                    got.extend(items.into_iter().map(|i| i.lease.id));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), n as usize, "every item claimed once");
    assert_eq!(distinct.len(), n as usize, "no item claimed twice");
    let summary = super::summary(&*s, TenantScope::All, at(0)).await.unwrap();
    assert_eq!(summary.leased, n as u64);
}

/// Within a lane: VIRAL first, then oldest order; lanes in the order asked, each with its limit.
pub async fn claims_serve_viral_then_oldest<S: Backend>(s: Arc<S>) {
    let specs = [
        ("h-old", 0, "", Priority::High),
        ("h-viral-new", 30, r#""impact":"VIRAL""#, Priority::High),
        ("h-mid", 10, "", Priority::High),
        ("h-viral-old", 20, r#""impact":"VIRAL""#, Priority::High),
        ("s-old", -50, "", Priority::Standard),
        ("s-new", 50, "", Priority::Standard),
        ("s-future", -60, "", Priority::Standard),
    ];
    for (id, minutes, extra, lane) in specs {
        let o = create(&*s, "t1", id, minutes, extra).await;
        let run = if id == "s-future" { 500 } else { 0 };
        s.enqueue("t1", o.id, &work("advance", lane, run), at(0))
            .await
            .unwrap();
    }
    let ask = [
        LaneLimit {
            lane: Priority::Standard,
            limit: 5,
        },
        LaneLimit {
            lane: Priority::High,
            limit: 3,
        },
    ];
    // Claims at `minutes`, completes what it got, and names the orders.
    let take = async |minutes: i64| -> Vec<String> {
        let mut out = Vec::new();
        for i in claim(&*s, TenantScope::Tenant("t1"), "w", &ask, minutes).await {
            s.complete(&i.lease, at(minutes)).await.unwrap();
            out.push(
                s.get_order("t1", i.order_id)
                    .await
                    .unwrap()
                    .unwrap()
                    .order
                    .tiktok_order_id,
            );
        }
        out
    };
    assert_eq!(
        take(100).await,
        ["s-old", "s-new", "h-viral-old", "h-viral-new", "h-old"]
    );
    assert_eq!(take(100).await, ["h-mid"], "the future item is not due");
    assert_eq!(take(500).await, ["s-future"]);
}

/// Release, schedule and the queue summary.
pub async fn release_and_schedule<S: Backend>(s: Arc<S>) {
    let o = create(&*s, "t1", "o1", 0, "").await;
    let id = s
        .schedule("t1", o.id, &work("check", Priority::Automated, 60), at(0))
        .await
        .unwrap();
    let summary = super::summary(&*s, TenantScope::Tenant("t1"), at(0))
        .await
        .unwrap();
    assert_eq!((summary.scheduled, summary.next_run_at), (1, Some(at(60))));
    assert!(
        claim(&*s, TenantScope::All, "w", &lanes(5), 59)
            .await
            .is_empty()
    );
    // Schedule moves an unleased item (lane, time, payload).
    let mut sooner = work("check", Priority::Urgent, 10);
    sooner.payload = json!({"try": 2});
    assert_eq!(s.schedule("t1", o.id, &sooner, at(0)).await.unwrap(), id);
    let item = claim(&*s, TenantScope::All, "w", &lanes(5), 10)
        .await
        .remove(0);
    assert_eq!(
        (item.lane, item.payload.clone()),
        (Priority::Urgent, json!({"try": 2}))
    );
    // Leased: schedule is refused, release hands it back for later.
    assert!(matches!(
        s.schedule("t1", o.id, &sooner, at(10)).await,
        Err(StoreError::Invalid { .. })
    ));
    s.release(&item.lease, Some(at(20)), at(10)).await.unwrap();
    assert!(
        claim(&*s, TenantScope::All, "w", &lanes(5), 19)
            .await
            .is_empty()
    );
    let again = claim(&*s, TenantScope::All, "w", &lanes(5), 20)
        .await
        .remove(0);
    assert_eq!(again.lease.attempt, 2);
    s.release(&again.lease, None, at(21)).await.unwrap();
    let summary = super::summary(&*s, TenantScope::All, at(21)).await.unwrap();
    assert_eq!(
        (
            summary.due[&Priority::Urgent],
            summary.leased,
            summary.scheduled
        ),
        (1, 0, 0)
    );
    // Bad leases and bad kinds are typed errors.
    assert!(matches!(
        s.claim(
            TenantScope::All,
            &ClaimRequest {
                worker: "w",
                lanes: &lanes(1),
                lease: TimeDelta::zero(),
                now: at(0)
            }
        )
        .await,
        Err(StoreError::Invalid { .. })
    ));
    assert!(matches!(
        s.enqueue("t1", o.id, &work("", Priority::High, 0), at(0))
            .await,
        Err(StoreError::Invalid { .. })
    ));
}

/// A transition settles its lease and enqueues follow-up work atomically.
pub async fn transition_settles_its_lease<S: Backend>(s: Arc<S>) {
    let o = s
        .create_orders(
            "t1",
            &[NewOrder {
                order: order("o1", 0, ""),
                work: Some(work("advance", Priority::Standard, 0)),
                decision: None,
            }],
        )
        .await
        .unwrap()
        .remove(0)
        .unwrap()
        .order;
    let item = claim(&*s, TenantScope::All, "w1", &lanes(5), 0)
        .await
        .remove(0);
    // Reschedule for the next step, escalating to high / VIRAL (the item moves lanes).
    let mut t = step(&o, "validated", at(1));
    t.priority = Some(Priority::High);
    t.impact = Some(Impact::Viral);
    t.settle = Some(Settle {
        lease: item.lease.clone(),
        then: AfterStep::Reschedule {
            run_at: at(2),
            payload: Some(json!({"n": 2})),
        },
    });
    let o = s.transition("t1", &t).await.unwrap();
    assert!(
        s.complete(&item.lease, at(1))
            .await
            .unwrap_err()
            .is_lease_lost(),
        "the lease is settled"
    );
    assert!(
        claim(&*s, TenantScope::All, "w2", &lanes(5), 1)
            .await
            .is_empty()
    );
    let item = claim(&*s, TenantScope::All, "w2", &lanes(5), 2)
        .await
        .remove(0);
    assert_eq!(
        (
            item.lane,
            item.viral,
            item.payload.clone(),
            item.lease.attempt
        ),
        (Priority::High, true, json!({"n": 2}), 2)
    );
    // A stale lease fails the whole transition.
    let stale = Settle {
        lease: creatorflow::store::Lease {
            attempt: 1,
            ..item.lease.clone()
        },
        then: AfterStep::Complete,
    };
    let mut t = step(&o, "processing", at(3));
    t.settle = Some(stale);
    assert!(s.transition("t1", &t).await.unwrap_err().is_lease_lost());
    assert_eq!(s.get_order("t1", o.id).await.unwrap().unwrap().version, 1);
    // Complete and enqueue the next kind.
    t.settle = Some(Settle {
        lease: item.lease.clone(),
        then: AfterStep::Complete,
    });
    t.enqueue = Some(work("delivery_check", Priority::Automated, 100));
    s.transition("t1", &t).await.unwrap();
    let summary = super::summary(&*s, TenantScope::All, at(3)).await.unwrap();
    assert_eq!(
        (summary.leased, summary.scheduled, summary.next_run_at),
        (0, 1, Some(at(100)))
    );
    let next = claim(&*s, TenantScope::All, "w3", &lanes(5), 100)
        .await
        .remove(0);
    assert_eq!(
        (next.kind.as_str(), next.lane, next.viral),
        ("delivery_check", Priority::Automated, true)
    );
}

// ---- reads for the dashboard ----------------------------------------------

/// Active orders: priority, then VIRAL, then oldest; terminal orders excluded.
pub async fn active_orders_most_urgent_first<S: Backend>(s: Arc<S>) {
    let fixtures = [
        ("auto", 0, r#""priority":"automated""#),
        ("std-old", 1, ""),
        ("high-new", 9, r#""priority":"high""#),
        ("urgent-viral", 8, r#""priority":"urgent","impact":"VIRAL""#),
        ("high-viral-new", 7, r#""priority":"high","impact":"VIRAL""#),
        ("high-old", 2, r#""priority":"high""#),
        ("std-viral", 6, r#""impact":"VIRAL""#),
        ("high-done", 0, r#""priority":"high","impact":"VIRAL""#),
    ];
    for (id, minutes, extra) in fixtures {
        let o = create(&*s, "t1", id, minutes, extra).await;
        if id == "high-done" {
            s.transition("t1", &step(&o, "delivered", at(10)))
                .await
                .unwrap();
        }
    }
    let active: Vec<String> = s
        .active_orders("t1", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.order.tiktok_order_id)
        .collect();
    assert_eq!(
        active,
        [
            "high-viral-new",
            "high-old",
            "high-new",
            "urgent-viral",
            "std-viral",
            "std-old",
            "auto"
        ]
    );
    assert_eq!(s.active_orders("t1", 2).await.unwrap().len(), 2);
    // Paging through every order, terminal included.
    let page1 = s.list_orders("t1", None, 5).await.unwrap();
    let page2 = s.list_orders("t1", Some(page1[4].id), 5).await.unwrap();
    assert_eq!(page1.len() + page2.len(), 8);
    assert!(page1.windows(2).all(|w| w[0].id < w[1].id) && page1[4].id < page2[0].id);
}

/// The dashboard figures against a hand-computed fixture (see the comments).
pub async fn dashboard_matches_hand_computed_figures<S: Backend>(s: Arc<S>) {
    // Orders (t1): A high/VIRAL, B high, C urgent/VIRAL, D standard, E automated, F standard/VIRAL.
    let a = create(&*s, "t1", "A", -60, r#""priority":"high","impact":"VIRAL""#).await;
    let b = create(&*s, "t1", "B", -120, r#""priority":"high""#).await;
    let c = create(
        &*s,
        "t1",
        "C",
        -30,
        r#""priority":"urgent","impact":"VIRAL""#,
    )
    .await;
    let d = create(&*s, "t1", "D", -180, "").await;
    let e = create(
        &*s,
        "t1",
        "E",
        -240,
        r#""priority":"automated","impact":"AUTO""#,
    )
    .await;
    let f = create(&*s, "t1", "F", -50, r#""impact":"VIRAL""#).await;
    let g = create(&*s, "t2", "G", -50, "").await;
    let go = async |tenant: &str,
                    o: &StoredOrder,
                    to: &str,
                    minutes: i64,
                    dur: u64,
                    automated: bool,
                    error: Option<&str>| {
        let cur = s.get_order(tenant, o.id).await.unwrap().unwrap();
        let mut t = step(&cur, to, at(minutes));
        t.duration_ms = dur;
        t.automated = automated;
        t.error_message = error.map(str::to_owned);
        s.transition(tenant, &t).await.unwrap();
    };
    // now = t0 + 120 min; window (60, 120]; previous window (0, 60].
    go("t1", &d, "validated", 0, 99_999, true, None).await; // at the previous window's open end: in neither
    go("t1", &a, "validated", 30, 1_000, true, None).await; // previous
    go("t1", &b, "validated", 60, 3_000, true, None).await; // previous (closed end)
    go("t1", &a, "processing", 75, 2_000, true, None).await; // window: healthy
    go("t1", &a, "failed", 90, 4_000, true, Some("out of stock")).await; // window: failed step
    go("t1", &c, "validated", 105, 3_000, false, None).await; // window: manual
    go("t1", &f, "delivered", 120, 3_000, true, None).await; // window (closed end): healthy, terminal
    go("t2", &g, "validated", 100, 50_000, false, Some("x")).await; // another tenant
    let _ = e;
    let d = s
        .dashboard("t1", at(120), TimeDelta::hours(1))
        .await
        .unwrap();
    // Window: A(2000) A(4000, error) C(3000, manual) F(3000): 4 rows, 2 automated and
    // succeeded, 3 distinct orders with a succeeded step; previous: 1000, 3000.
    assert_eq!(d.window_ms, 3_600_000);
    assert!((d.orders_processed_per_minute - 3.0 / 60.0).abs() < 1e-12);
    assert_eq!(d.automation_health_pct, Some(50.0));
    assert_eq!(d.avg_step_time_s, Some(3.0));
    assert_eq!(d.avg_step_time_change_pct, Some(50.0));
    let by_state: BTreeMap<String, u64> = [
        ("delivered", 1),
        ("failed", 1),
        ("received", 1),
        ("validated", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(d.orders_by_state, by_state);
    let by_priority: BTreeMap<Priority, u64> = [
        (Priority::High, 2),
        (Priority::Urgent, 1),
        (Priority::Standard, 1),
        (Priority::Automated, 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(d.orders_by_priority, by_priority);
    assert_eq!(d.viral_orders, 2);
    let urgent: Vec<&str> = d
        .most_urgent
        .iter()
        .map(|o| o.order.tiktok_order_id.as_str())
        .collect();
    assert_eq!(urgent, ["A", "B", "C", "D", "E"]);
    // An empty window: no health, no average, no change.
    let later = s
        .dashboard("t1", at(1000), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (
            later.orders_processed_per_minute,
            later.automation_health_pct,
            later.avg_step_time_s,
            later.avg_step_time_change_pct
        ),
        (0.0, None, None, None)
    );
    assert!(matches!(
        s.dashboard("t1", at(0), TimeDelta::zero()).await,
        Err(StoreError::Invalid { .. })
    ));
}

// ---- exact values ---------------------------------------------------------

/// Prices, decimals, times and JSON come back exactly as stored.
pub async fn decimals_times_and_json_round_trip<S: Backend>(s: Arc<S>) {
    let mut o = order(
        "exact",
        0,
        r##""price":12345678901234567.89,"orders_per_hour_current":"41.50","velocity_multiplier":"2.25",
           "deadline":"2025-06-13T10:00:00.123Z","shipping_zone":"EU-2","customer_id":"c-9",
           "user":{"id":"u1","email":"ana@example.com","creator_tier":"gold"},
           "viral_indicators":[{"type":"content_spike","source":"reference","confidence":0.8125,
             "impact_multiplier":2.5,"detected_at":"2025-06-12T09:59:59.999Z",
             "metadata":{"window":{"minutes":60,"counts":[41,0.1,1e-7,123456789012345678901234567890]},
                         "tags":["#lamp",null,true],"ratio":1.10}}]"##,
    );
    o.created_at = "2025-06-12T10:00:00.123456789Z".parse().unwrap();
    let stored = s.create_order("t1", &o).await.unwrap().order;
    assert_eq!(stored.order.price.to_string(), "12345678901234567.89");
    assert_eq!(
        stored.order.created_at.to_rfc3339(),
        "2025-06-12T10:00:00.123+00:00",
        "millisecond precision"
    );
    let read = s.get_order("t1", stored.id).await.unwrap().unwrap();
    assert_eq!(read, stored);
    assert_eq!(
        read.order.price,
        Decimal::from_str("12345678901234567.89").unwrap()
    );
    assert_eq!(
        read.order.orders_per_hour_current.to_string(),
        "41.50",
        "scale kept"
    );
    assert_eq!(
        read.order.viral_indicators,
        o.viral_indicators
            .iter()
            .cloned()
            .map(|mut v| {
                v.detected_at = "2025-06-12T09:59:59.999Z".parse().unwrap();
                v
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(read.order.user, o.user);
    let actions = json!([{"type": "reserve_inventory", "outcome": {"ok": true, "reserved": 2,
        "price": 12345678901234567.89, "nested": [[1, 2], {"a": null}]}}]);
    let mut t = step(
        &read,
        "validated",
        "2025-06-12T10:05:00.987654Z".parse().unwrap(),
    );
    t.actions_executed = (&actions).into();
    t.error_message = Some("ünïcödé ✓ 'quotes' \"double\"".into());
    s.transition("t1", &t).await.unwrap();
    let h = s
        .order_with_history("t1", read.id)
        .await
        .unwrap()
        .unwrap()
        .history
        .remove(0);
    assert_eq!(h.actions_executed, actions);
    assert_eq!(h.actions_executed.to_string(), actions.to_string());
    assert_eq!(h.error_message, t.error_message);
    assert_eq!(h.at.to_rfc3339(), "2025-06-12T10:05:00.987+00:00");
}

/// An order's `shop_id` is stored with it (created alone or in a batch,
/// and kept through a transition); an order without one reads back `None`.
pub async fn order_shop_id_round_trips<S: Backend>(s: Arc<S>) {
    let with = create(
        s.as_ref(),
        "t1",
        "in-shop",
        0,
        r#""shop_id":"7494049642642441621""#,
    )
    .await;
    let without = create(s.as_ref(), "t1", "no-shop", 0, "").await;
    let mut batched = order("batched", 1, "");
    batched.shop_id = Some("shop-2".into());
    let created = s
        .create_orders(
            "t1",
            &[NewOrder {
                order: batched,
                work: None,
                decision: None,
            }],
        )
        .await
        .unwrap();
    let batched = created.into_iter().next().unwrap().unwrap().order;
    for (o, want) in [
        (&with, Some("7494049642642441621")),
        (&without, None),
        (&batched, Some("shop-2")),
    ] {
        assert_eq!(o.order.shop_id.as_deref(), want);
        let read = s.get_order("t1", o.id).await.unwrap().unwrap();
        assert_eq!(read.order.shop_id.as_deref(), want);
        let found = s
            .find_order("t1", &o.order.tiktok_order_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.order.shop_id.as_deref(), want);
    }
    s.transition("t1", &step(&with, "validated", at(1)))
        .await
        .unwrap();
    let listed = s.list_orders("t1", None, 10).await.unwrap();
    let moved = listed.iter().find(|o| o.id == with.id).unwrap();
    assert_eq!(moved.order.current_state.as_str(), "validated");
    assert_eq!(moved.order.shop_id.as_deref(), Some("7494049642642441621"));
}

// ---- the webhook inbox ------------------------------------------------------

fn entry(key: &str, minutes: i64, body: &[u8]) -> InboxEntry {
    InboxEntry {
        dedup_key: key.into(),
        topic: 1,
        body: body.to_vec(),
        received_at: at(minutes),
    }
}

fn done(id: i64, attempt: u32) -> InboxDone {
    InboxDone {
        id,
        attempt,
        outcome: format!("done {id}/{attempt}"),
    }
}

/// Appends de-duplicate; claims go oldest first under a lease; an entry is
/// marked processed once, only under its latest claim; a lapsed lease hands
/// the entry over with the next attempt; bodies come back byte for byte.
pub async fn inbox_appends_claims_and_marks_processed<S: Backend>(s: Arc<S>) {
    let raw = [0u8, 159, 146, 150, b'{', b'}'];
    let r = s
        .inbox_append(
            "t1",
            &[
                entry("n:1", 0, b"one"),
                entry("n:2", 0, &raw),
                entry("n:1", 0, b"again"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r, vec![true, true, false]);
    assert_eq!(
        s.inbox_append("t1", &[entry("n:2", 1, b"x"), entry("n:3", 1, b"three")])
            .await
            .unwrap(),
        vec![false, true]
    );
    assert!(matches!(
        s.inbox_append("t1", &[entry("", 1, b"x")]).await,
        Err(StoreError::Invalid { .. })
    ));

    let lease = TimeDelta::minutes(5);
    let first = s.inbox_claim("t1", 2, lease, at(2)).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|i| i.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["n:1", "n:2"]
    );
    assert!(
        first
            .iter()
            .all(|i| i.attempt == 1 && i.tenant == "t1" && i.topic == 1)
    );
    assert_eq!(first[0].body, b"one");
    assert_eq!(first[1].body, raw);
    assert_eq!(first[0].received_at, at(0));
    let rest = s.inbox_claim("t1", 10, lease, at(2)).await.unwrap();
    assert_eq!(
        rest.iter()
            .map(|i| i.dedup_key.as_str())
            .collect::<Vec<_>>(),
        ["n:3"]
    );
    assert!(
        s.inbox_claim("t1", 10, lease, at(3))
            .await
            .unwrap()
            .is_empty(),
        "leased entries are not claimable"
    );

    let marked = s
        .inbox_done(
            "t1",
            &[
                done(first[0].id, 1),
                done(first[1].id, 1),
                done(first[0].id, 1),
            ],
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(marked, vec![true, true, false], "processed once");
    let stats = s.inbox_stats("t1").await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.pending,
            stats.processed,
            stats.reclaimed
        ),
        (3, 1, 2, 0)
    );

    // n:3's lease lapses at 7: claimed again, attempt 2; the old claim can no longer finish it.
    assert!(
        s.inbox_claim("t1", 10, lease, at(6))
            .await
            .unwrap()
            .is_empty()
    );
    let again = s.inbox_claim("t1", 10, lease, at(7)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempt), (rest[0].id, 2));
    assert_eq!(
        s.inbox_done("t1", &[done(rest[0].id, 1)], at(8))
            .await
            .unwrap(),
        vec![false]
    );
    assert_eq!(
        s.inbox_done("t1", &[done(rest[0].id, 2)], at(8))
            .await
            .unwrap(),
        vec![true]
    );
    assert!(
        s.inbox_claim("t1", 10, lease, at(60))
            .await
            .unwrap()
            .is_empty(),
        "processed entries never come back"
    );
    let stats = s.inbox_stats("t1").await.unwrap();
    assert_eq!(
        (
            stats.received,
            stats.pending,
            stats.processed,
            stats.reclaimed
        ),
        (3, 0, 3, 1)
    );

    // Retention: entries processed before the cut are deleted (n:1 and n:2
    // at 3, n:3 at 8); another tenant's are not; a pruned key is new again.
    assert_eq!(s.inbox_prune("t2", at(100)).await.unwrap(), 0);
    assert_eq!(s.inbox_prune("t1", at(5)).await.unwrap(), 2);
    let stats = s.inbox_stats("t1").await.unwrap();
    assert_eq!((stats.received, stats.processed), (1, 1));
    assert_eq!(
        s.inbox_append("t1", &[entry("n:1", 9, b"again"), entry("n:3", 9, b"x")])
            .await
            .unwrap(),
        vec![true, false]
    );
    let back = s.inbox_claim("t1", 10, lease, at(10)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].dedup_key.as_str(), back[0].body.as_slice()),
        ("n:1", &b"again"[..])
    );
}

/// A batch of completions reports each entry: a wrong attempt or an entry
/// named twice is refused (the first naming counts), the rest marked, over
/// many entries at once.
pub async fn inbox_done_batch_reports_each_entry<S: Backend>(s: Arc<S>) {
    let lease = TimeDelta::minutes(5);
    let entries: Vec<InboxEntry> = (0..700)
        .map(|i| entry(&format!("n:{i}"), 0, format!("body {i}").as_bytes()))
        .collect();
    let appended = s.inbox_append("t1", &entries).await.unwrap();
    assert!(appended.iter().all(|n| *n));
    let items = s.inbox_claim("t1", 1000, lease, at(1)).await.unwrap();
    assert_eq!(items.len(), 700);
    // Mixed: right attempt, wrong attempt, an id twice.
    let mixed = [
        done(items[0].id, 1),
        done(items[1].id, 2),
        done(items[2].id, 1),
        done(items[0].id, 1),
    ];
    assert_eq!(
        s.inbox_done("t1", &mixed, at(2)).await.unwrap(),
        vec![true, false, true, false]
    );
    // The rest in one call (more than one statement's worth), plus one
    // already processed: marked once each.
    let rest: Vec<InboxDone> = items[1..]
        .iter()
        .filter(|i| i.id != items[2].id)
        .map(|i| done(i.id, i.attempt))
        .chain([done(items[2].id, 1)])
        .collect();
    let results = s.inbox_done("t1", &rest, at(3)).await.unwrap();
    assert_eq!(results.len(), rest.len());
    assert!(results[..results.len() - 1].iter().all(|r| *r));
    assert!(!results[results.len() - 1], "already processed");
    // Another tenant marks nothing.
    assert_eq!(
        s.inbox_done("t2", &[done(items[0].id, 1)], at(3))
            .await
            .unwrap(),
        vec![false]
    );
    let stats = s.inbox_stats("t1").await.unwrap();
    assert_eq!(
        (stats.received, stats.pending, stats.processed),
        (700, 0, 700)
    );
    assert_eq!(stats.reclaimed, 0);
}

/// One tenant's inbox is invisible to another.
pub async fn inbox_is_tenant_scoped<S: Backend>(s: Arc<S>) {
    assert_eq!(
        s.inbox_append("t1", &[entry("n:1", 0, b"a")])
            .await
            .unwrap(),
        vec![true]
    );
    assert_eq!(
        s.inbox_append("t2", &[entry("n:1", 0, b"b")])
            .await
            .unwrap(),
        vec![true],
        "same key, other tenant"
    );
    let t1 = s
        .inbox_claim("t1", 10, TimeDelta::minutes(5), at(1))
        .await
        .unwrap();
    assert_eq!(t1.len(), 1);
    assert_eq!(t1[0].body, b"a");
    // t2 cannot finish t1's entry.
    assert_eq!(
        s.inbox_done("t2", &[done(t1[0].id, 1)], at(1))
            .await
            .unwrap(),
        vec![false]
    );
    let t2 = s
        .inbox_claim("t2", 10, TimeDelta::minutes(5), at(1))
        .await
        .unwrap();
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0].body, b"b");
    assert_eq!(s.inbox_stats("t3").await.unwrap().received, 0);
    assert_eq!(s.inbox_stats("t1").await.unwrap().pending, 1);
}

/// Concurrent claimants never get the same entry.
pub async fn inbox_claims_are_exclusive<S: Backend>(s: Arc<S>) {
    let entries: Vec<_> = (0..60)
        .map(|i| entry(&format!("n:{i}"), 0, b"{}"))
        .collect();
    assert!(
        s.inbox_append("t1", &entries)
            .await
            .unwrap()
            .iter()
            .all(|n| *n)
    );
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let items = s
                        .inbox_claim("t1", 7, TimeDelta::minutes(5), at(1))
                        .await
                        .unwrap();
                    if items.is_empty() {
                        return got;
                    }
                    got.extend(items.into_iter().map(|i| i.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!((all.len(), unique.len()), (60, 60));
}

/// The event-time guard: a stale `(time, rank)` is refused, an equal or
/// newer one accepted; per tenant and order.
pub async fn order_events_refuse_stale_ones<S: Backend>(s: Arc<S>) {
    assert!(s.note_order_event("t1", "o1", 10, 1).await.unwrap());
    assert!(
        !s.note_order_event("t1", "o1", 9, 4).await.unwrap(),
        "older time"
    );
    assert!(
        !s.note_order_event("t1", "o1", 10, 0).await.unwrap(),
        "same time, lower rank"
    );
    assert!(
        s.note_order_event("t1", "o1", 10, 1).await.unwrap(),
        "a repeat is not stale"
    );
    assert!(s.note_order_event("t1", "o1", 10, 4).await.unwrap());
    assert!(!s.note_order_event("t1", "o1", 10, 1).await.unwrap());
    assert!(s.note_order_event("t1", "o1", 11, 0).await.unwrap());
    assert!(
        s.note_order_event("t1", "o2", 1, 0).await.unwrap(),
        "another order"
    );
    assert!(
        s.note_order_event("t2", "o1", 1, 0).await.unwrap(),
        "another tenant"
    );
}

/// The guard in a batch: events of one order are compared in batch order.
pub async fn order_events_batch_in_order<S: Backend>(s: Arc<S>) {
    let ev = |id: &str, time, rank| OrderEvent {
        tiktok_order_id: id.into(),
        time,
        rank,
    };
    let r = s
        .note_order_events(
            "t1",
            &[
                ev("o1", 10, 1),
                ev("o1", 9, 0),
                ev("o1", 12, 0),
                ev("o2", 1, 0),
                ev("o1", 11, 4),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r, vec![true, false, true, true, false]);
    assert!(!s.note_order_event("t1", "o1", 11, 9).await.unwrap());
    assert!(s.note_order_event("t1", "o1", 12, 0).await.unwrap());
    assert!(s.note_order_events("t1", &[]).await.unwrap().is_empty());
}

/// Cursors: unset, set, overwritten; per tenant.
pub async fn cursors_round_trip<S: Backend>(s: Arc<S>) {
    assert_eq!(s.cursor("t1", "poll").await.unwrap(), None);
    s.set_cursor("t1", "poll", 1_718_305_585).await.unwrap();
    assert_eq!(s.cursor("t1", "poll").await.unwrap(), Some(1_718_305_585));
    s.set_cursor("t1", "poll", 1_718_305_600).await.unwrap();
    assert_eq!(s.cursor("t1", "poll").await.unwrap(), Some(1_718_305_600));
    assert_eq!(s.cursor("t2", "poll").await.unwrap(), None);
    assert_eq!(s.cursor("t1", "other").await.unwrap(), None);
}

/// Writes everything a reopened store must still have (an order with
/// history, queued work, a connected shop); returns what to compare.
pub async fn fill<S: Backend>(s: &S) -> Snapshot {
    let o = create(s, "t1", "keep", 0, r#""price":"12345678901234567.89""#).await;
    let mut t = step(&o, "validated", at(1));
    t.actions_executed = json!([{"type": "validate_address", "outcome": "ok"}]).into();
    s.transition("t1", &t).await.unwrap();
    s.enqueue("t1", o.id, &work("advance", Priority::High, 2), at(1))
        .await
        .unwrap();
    s.put_shops(
        "t1",
        &[super::shops::shop("s1", super::shops::tokens("keep"))],
    )
    .await
    .unwrap();
    snapshot(s, o.id).await
}

/// What [`fill`] wrote, read back.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    order: creatorflow::store::OrderWithHistory,
    queue: creatorflow::store::QueueSummary,
    shops: Vec<creatorflow::store::ShopAuth>,
}

/// Reads back what [`fill`] wrote.
pub async fn snapshot<S: Backend>(s: &S, id: uuid::Uuid) -> Snapshot {
    Snapshot {
        order: s.order_with_history("t1", id).await.unwrap().unwrap(),
        queue: super::summary(s, TenantScope::All, at(1)).await.unwrap(),
        shops: s.shops("t1").await.unwrap(),
    }
}

/// After reopening, the store has everything.
pub async fn reopened_has_everything<S: Backend>(before: Snapshot, s: &S) {
    let after = snapshot(s, before.order.order.id).await;
    assert_eq!(after, before);
    let items = claim(s, TenantScope::All, "w", &lanes(5), 2).await;
    assert_eq!(items.len(), 1);
}

/// A freshly opened store is ready (it answers, its migrations are
/// current), and stays ready while it is used.
pub async fn a_fresh_store_is_ready<S: Backend>(s: Arc<S>) {
    s.ready().await.expect("ready after open");
    create(&*s, "t1", "r1", 0, "").await;
    s.ready().await.expect("ready while in use");
}
