//! Conformance of [`OrderStore::insert_orders`] (a bulk ingest's write):
//! it leaves exactly what [`OrderStore::create_orders`] leaves (orders,
//! decisions, work items), says per order whether it stored it, skips what
//! the tenant has and repeats within the batch, and refuses what
//! `create_orders` refuses; across more rows than one statement holds.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::{Impact, Priority};
use creatorflow::store::{
    AfterStep, BulkOrder, ClaimRequest, JsonText, LaneLimit, NewOrder, Scheduled, Settle,
    StoreError, TenantScope, WorkItem, WorkSpec,
};
use serde_json::json;

use super::suite::Backend;
use super::{at, order, step};

/// Order `k{i}` as a bulk ingest would hand it over: every third with a
/// work item carrying a payload, every fifth viral, all with a decision.
fn new_order(i: usize) -> NewOrder {
    let extra = if i.is_multiple_of(5) {
        r#""priority":"high","impact":"VIRAL""#
    } else {
        ""
    };
    let mut o = order(&format!("k{i}"), (i % 97) as i64, extra);
    if i.is_multiple_of(5) {
        o.priority = Priority::High;
        o.impact = Impact::Viral;
    }
    NewOrder {
        order: o,
        work: (i % 3 != 1).then(|| WorkSpec {
            kind: "advance".into(),
            lane: if i.is_multiple_of(5) {
                Priority::High
            } else {
                Priority::Standard
            },
            run_at: at(100),
            payload: if i.is_multiple_of(3) {
                json!({"rules": ["r1"], "actions": [{"type": "notify", "channel": "ops"}]})
            } else {
                json!(null)
            },
        }),
        decision: Some(JsonText::from(
            json!({"pack_version": "v1", "rules": [format!("r{i}")]}),
        )),
    }
}

/// `orders` as a bulk insert takes them.
fn bulk(orders: impl IntoIterator<Item = NewOrder>) -> Vec<BulkOrder> {
    orders.into_iter().map(BulkOrder::from).collect()
}

/// Claims up to `limit` due items of `tenant` per lane at `minutes`.
async fn claim_due<S: Backend>(s: &S, tenant: &str, limit: usize, minutes: i64) -> Vec<WorkItem> {
    let lanes: Vec<LaneLimit> = Priority::ALL
        .iter()
        .map(|&lane| LaneLimit { lane, limit })
        .collect();
    s.claim(
        TenantScope::Tenant(tenant),
        &ClaimRequest {
            worker: "w",
            lanes: &lanes,
            lease: TimeDelta::minutes(5),
            now: at(minutes),
        },
    )
    .await
    .expect("claim")
}

/// Everything stored for `tenant`'s orders `k0..k{n}`: each order (its
/// tenant-derived id aside), its decision, and the work claimable for it.
async fn contents<S: Backend>(s: &S, tenant: &str, n: usize) -> Vec<String> {
    let items = claim_due(s, tenant, n, 200).await;
    let mut out = Vec::new();
    for i in 0..n {
        let Some(found) = s.find_order(tenant, &format!("k{i}")).await.expect("find") else {
            out.push(format!("k{i}: absent"));
            continue;
        };
        let full = s
            .order_with_history(tenant, found.id)
            .await
            .expect("read")
            .expect("there");
        let mut o = full.order.clone();
        o.order.id = None;
        o.order.user_id = None;
        let work: Vec<String> = items
            .iter()
            .filter(|w| w.order_id == found.id)
            .map(|w| format!("{} {:?} {} {}", w.kind, w.lane, w.viral, w.payload))
            .collect();
        out.push(format!(
            "{:?} v{} t{} history {} decision {:?} work {work:?}",
            o.order,
            o.version,
            o.terminal,
            full.history.len(),
            full.decision.map(|d| d.as_str().to_owned())
        ));
    }
    out
}

/// 1,300 orders (three statements' worth on SQL backends) through
/// `insert_orders` leave what `create_orders` leaves; a second run stores
/// nothing and says so; repeats, another tenant's order and an id clash
/// are answered as `create_orders` answers them.
pub async fn insert_orders_equals_create_orders<S: Backend>(s: Arc<S>) {
    const N: usize = 1_300;
    let batch = || (0..N).map(new_order).collect::<Vec<_>>();
    for r in s.create_orders("a", &batch()).await.expect("create") {
        assert!(r.expect("stored").created);
    }
    // The first half first (an interrupted load), then everything.
    let first = s
        .insert_orders("b", bulk(batch().into_iter().take(N / 2)))
        .await
        .expect("insert");
    assert!(first.iter().all(|r| matches!(r, Ok(true))));
    let all = s.insert_orders("b", bulk(batch())).await.expect("insert");
    assert_eq!(all.len(), N);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.as_ref().ok(), Some(&(i >= N / 2)), "k{i}: {r:?}");
    }
    assert_eq!(contents(&*s, "a", N).await, contents(&*s, "b", N).await);
    let again = s.insert_orders("b", bulk(batch())).await.expect("insert");
    assert!(again.iter().all(|r| matches!(r, Ok(false))));

    // A repeat within the batch, another tenant's order, an id clash.
    let clash = s.find_order("b", "k1").await.expect("find").expect("k1");
    let mut stolen = new_order(N + 2);
    stolen.order.id = Some(clash.id);
    let mut foreign = new_order(N + 3);
    foreign.order.user_id = Some("someone-else".into());
    let mixed = vec![
        new_order(N),
        new_order(N),
        new_order(N + 1),
        stolen,
        foreign,
    ];
    let got = s.insert_orders("b", bulk(mixed)).await.expect("insert");
    assert!(matches!(got[0], Ok(true)), "{got:?}");
    assert!(matches!(got[1], Ok(false)), "a repeat: {got:?}");
    assert!(matches!(got[2], Ok(true)), "{got:?}");
    assert!(matches!(got[3], Err(StoreError::Invalid { .. })), "{got:?}");
    assert!(matches!(got[4], Err(StoreError::Invalid { .. })), "{got:?}");
    assert!(
        s.find_order("b", &format!("k{}", N + 2))
            .await
            .unwrap()
            .is_none()
    );
    // Only refusals: nothing written, each refused.
    let mut foreign = new_order(N + 4);
    foreign.order.user_id = Some("someone-else".into());
    let got = s.insert_orders("b", bulk([foreign])).await.expect("insert");
    assert!(
        matches!(got[..], [Err(StoreError::Invalid { .. })]),
        "{got:?}"
    );
    assert!(
        s.insert_orders("b", Vec::new())
            .await
            .expect("empty")
            .is_empty()
    );
}

/// Inside an open group (`GroupCommit`), a batch of new orders and then a
/// batch of known and new ones (a SQL backend's first attempt, which
/// counts the rows inserted, fails and is undone before the batch is told
/// apart order by order) leave what `create_orders` leaves once the group
/// commits: every order and work item once, each answer right.
pub async fn insert_orders_in_a_group_keeps_each_batch_whole<S: Backend>(s: Arc<S>) {
    const N: usize = 1_100;
    let batch = || (0..N).map(new_order).collect::<Vec<_>>();
    for r in s.create_orders("a", &batch()).await.expect("create") {
        assert!(r.expect("stored").created);
    }
    s.begin_group().await.expect("group");
    let first = s
        .insert_orders("b", bulk(batch().into_iter().take(N / 2)))
        .await
        .expect("insert");
    assert!(first.iter().all(|r| matches!(r, Ok(true))), "{first:?}");
    // The second half's orders come before the first half's: the rows a
    // first attempt inserts are the ones it must not keep.
    let mut mixed: Vec<NewOrder> = batch().into_iter().skip(N / 2).collect();
    mixed.extend(batch().into_iter().take(N / 2));
    let got = s.insert_orders("b", bulk(mixed)).await.expect("insert");
    assert_eq!(got.len(), N);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.as_ref().ok(), Some(&(i < N - N / 2)), "#{i}: {r:?}");
    }
    s.commit_group().await.expect("commit");
    assert_eq!(contents(&*s, "a", N).await, contents(&*s, "b", N).await);
}

/// A payload as long as a rule's actions (what a bulk ingest stores once
/// per tenant on SQLite and names from each item), number `n`.
fn long_payload(n: usize) -> serde_json::Value {
    json!({
        "rules": [format!("rule-{n}")],
        "actions": [{"type": "send_customer_notification",
                     "parameters": {"channel": "tiktok_message", "template": format!("t{n}")}}],
    })
}

/// Order `p{i}` with one `advance` item carrying `payload`.
fn with_payload(i: usize, payload: serde_json::Value) -> BulkOrder {
    BulkOrder::from(NewOrder {
        order: order(&format!("p{i}"), i as i64, ""),
        work: Some(WorkSpec {
            kind: "advance".into(),
            lane: Priority::Standard,
            run_at: at(100),
            payload,
        }),
        decision: None,
    })
}

/// Claims every due item of `tenant` at `minutes`, by order `p{i}`.
async fn claim_all<S: Backend>(
    s: &S,
    tenant: &str,
    minutes: i64,
) -> std::collections::BTreeMap<String, WorkItem> {
    let items = claim_due(s, tenant, 100, minutes).await;
    let mut by_order = std::collections::BTreeMap::new();
    for item in items {
        let o = s
            .get_order(tenant, item.order_id)
            .await
            .expect("read")
            .expect("there");
        by_order.insert(o.order.tiktok_order_id.clone(), item);
    }
    by_order
}

/// Bulk-loaded work items read back with their payloads, long or short,
/// shared by many orders or not, across tenants and across loads; and a
/// payload set afterwards (by `schedule`, `schedule_many`, a step's
/// reschedule) replaces the loaded one, while a reschedule without one
/// keeps it.
pub async fn bulk_payloads_read_back_and_are_replaced_like_any_other<S: Backend>(s: Arc<S>) {
    // Three long payloads over twelve orders, and a short one.
    let first: Vec<BulkOrder> = (0..12)
        .map(|i| {
            with_payload(
                i,
                if i == 11 {
                    json!({"n": 1})
                } else {
                    long_payload(i % 3)
                },
            )
        })
        .collect();
    let got = s.insert_orders("a", first).await.expect("insert");
    assert!(got.iter().all(|r| matches!(r, Ok(true))), "{got:?}");
    // Another tenant with the same texts, and a second load of "a" with
    // one text it already has and one new.
    let other: Vec<BulkOrder> = (0..3).map(|i| with_payload(i, long_payload(i))).collect();
    s.insert_orders("b", other).await.expect("insert");
    let second: Vec<BulkOrder> = (12..16)
        .map(|i| with_payload(i, long_payload(if i < 14 { 0 } else { 7 })))
        .collect();
    s.insert_orders("a", second).await.expect("insert");

    // Replace four payloads before anything is claimed.
    let id = |k: &str| {
        let s = s.clone();
        let k = k.to_owned();
        async move {
            s.find_order("a", &k)
                .await
                .expect("find")
                .expect("there")
                .id
        }
    };
    let replaced = WorkSpec {
        kind: "advance".into(),
        lane: Priority::Standard,
        run_at: at(100),
        payload: json!({"replaced": "by schedule"}),
    };
    s.schedule("a", id("p0").await, &replaced, at(50))
        .await
        .expect("schedule");
    let many = [
        Scheduled {
            order_id: id("p1").await,
            work: WorkSpec {
                payload: json!({"replaced": "by schedule_many"}),
                ..replaced.clone()
            },
            now: at(50),
        },
        Scheduled {
            order_id: id("p2").await,
            work: WorkSpec {
                payload: long_payload(9),
                ..replaced.clone()
            },
            now: at(50),
        },
    ];
    for r in s.schedule_many("a", &many).await.expect("schedule_many") {
        r.expect("scheduled");
    }

    let claimed = claim_all(&*s, "a", 100).await;
    assert_eq!(claimed.len(), 16);
    let payload = |k: &str| claimed[k].payload.clone();
    assert_eq!(payload("p0"), json!({"replaced": "by schedule"}));
    assert_eq!(payload("p1"), json!({"replaced": "by schedule_many"}));
    assert_eq!(payload("p2"), long_payload(9));
    for i in 3..11 {
        assert_eq!(payload(&format!("p{i}")), long_payload(i % 3), "p{i}");
    }
    assert_eq!(payload("p11"), json!({"n": 1}));
    assert_eq!(payload("p12"), long_payload(0));
    assert_eq!(payload("p15"), long_payload(7));
    let theirs = claim_all(&*s, "b", 100).await;
    for i in 0..3 {
        assert_eq!(
            theirs[&format!("p{i}")].payload,
            long_payload(i),
            "b's p{i}"
        );
    }

    // A step's reschedule: with a payload it replaces the loaded one,
    // without one it keeps it.
    for (k, payload) in [("p3", Some(json!({"next": "step"}))), ("p4", None)] {
        let o = s.find_order("a", k).await.expect("find").expect("there");
        let mut t = step(&o, "validated", at(101));
        t.settle = Some(Settle {
            lease: claimed[k].lease.clone(),
            then: AfterStep::Reschedule {
                run_at: at(102),
                payload,
            },
        });
        s.transition("a", &t).await.expect("transition");
    }
    // The rest are done; a later load may then drop the texts nobody uses.
    for (k, item) in &claimed {
        if k != "p3" && k != "p4" {
            s.complete(&item.lease, at(101)).await.expect("complete");
        }
    }
    s.insert_orders("a", vec![with_payload(20, long_payload(3))])
        .await
        .expect("insert");
    let again = claim_all(&*s, "a", 200).await;
    let payloads: Vec<(&str, serde_json::Value)> = again
        .iter()
        .map(|(k, w)| (k.as_str(), w.payload.clone()))
        .collect();
    assert_eq!(
        payloads,
        [
            ("p20", long_payload(3)),
            ("p3", json!({"next": "step"})),
            ("p4", long_payload(1)),
        ]
    );
}
