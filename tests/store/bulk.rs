//! Conformance of [`OrderStore::insert_orders`] (a bulk ingest's write):
//! it leaves exactly what [`OrderStore::create_orders`] leaves (orders,
//! decisions, work items), says per order whether it stored it, skips what
//! the tenant has and repeats within the batch, and refuses what
//! `create_orders` refuses; across more rows than one statement holds.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::{Impact, Priority};
use creatorflow::store::{
    BulkOrder, ClaimRequest, JsonText, LaneLimit, NewOrder, StoreError, TenantScope, WorkSpec,
};
use serde_json::json;

use super::suite::Backend;
use super::{at, order};

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

/// Everything stored for `tenant`'s orders `k0..k{n}`: each order (its
/// tenant-derived id aside), its decision, and the work claimable for it.
async fn contents<S: Backend>(s: &S, tenant: &str, n: usize) -> Vec<String> {
    let lanes: Vec<LaneLimit> = Priority::ALL
        .iter()
        .map(|&lane| LaneLimit { lane, limit: n })
        .collect();
    let items = s
        .claim(
            TenantScope::Tenant(tenant),
            &ClaimRequest {
                worker: "w",
                lanes: &lanes,
                lease: TimeDelta::minutes(5),
                now: at(200),
            },
        )
        .await
        .expect("claim");
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
