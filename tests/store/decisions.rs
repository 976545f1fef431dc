//! Conformance tests of who and which rule pack decided what: a history
//! row's `actor` and `pack_version`, an order's ingest `decision`, generic
//! over the backend (run for each by `conformance!` through `suite`'s
//! re-export).

use std::sync::Arc;

use creatorflow::model::Priority;
use creatorflow::store::{JsonText, NewOrder, WorkSpec};
use serde_json::json;

use super::suite::Backend;
use super::{at, order, step};

/// `actor` and `pack_version` are written with the history row and read
/// back, absent ones as `None`, in a batch too.
pub async fn history_records_actor_and_pack_version<S: Backend>(s: Arc<S>) {
    let o = s
        .create_order("t1", &order("o1", 0, ""))
        .await
        .unwrap()
        .order;
    let mut t = step(&o, "validated", at(1));
    t.pack_version = Some("0123456789ab".into());
    let after = s.transition("t1", &t).await.unwrap();
    let mut by_hand = step(&after, "cancelled", at(2));
    by_hand.automated = false;
    by_hand.actor = Some("ops-alice".into());
    by_hand.pack_version = Some("ba9876543210".into());
    let other = s
        .create_order("t1", &order("o2", 0, ""))
        .await
        .unwrap()
        .order;
    let plain = step(&other, "validated", at(2));
    let results = s
        .transitions(&[("t1", by_hand), ("t1", plain)])
        .await
        .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let read = s.order_with_history("t1", o.id).await.unwrap().unwrap();
    let who: Vec<_> = read
        .history
        .iter()
        .map(|h| (h.actor.as_deref(), h.pack_version.as_deref()))
        .collect();
    assert_eq!(
        who,
        [
            (None, Some("0123456789ab")),
            (Some("ops-alice"), Some("ba9876543210"))
        ]
    );
    let read = s.order_with_history("t1", other.id).await.unwrap().unwrap();
    assert_eq!(read.history[0].actor, None);
    assert_eq!(read.history[0].pack_version, None);
}

/// An ingest decision is stored with a new order only (a duplicate's is
/// dropped), read back unchanged with the history, and scoped to the tenant.
pub async fn decision_is_stored_with_a_new_order<S: Backend>(s: Arc<S>) {
    let decision = |v: &str| -> JsonText {
        json!({"pack_version": v, "rules": ["viral-spike", "vip"], "priority": "high",
               "impact": "VIRAL"})
        .into()
    };
    let new = |id: &str, d: Option<JsonText>| NewOrder {
        order: order(id, 0, ""),
        work: Some(WorkSpec {
            kind: "advance".into(),
            lane: Priority::High,
            run_at: at(0),
            payload: json!(null),
        }),
        decision: d,
    };
    let first = s
        .create_orders("t1", &[new("o1", Some(decision("aaa"))), new("o2", None)])
        .await
        .unwrap();
    let ids: Vec<_> = first
        .iter()
        .map(|r| r.as_ref().expect("created").order.id)
        .collect();
    let again = s
        .create_orders("t1", &[new("o1", Some(decision("bbb")))])
        .await
        .unwrap();
    assert!(!again[0].as_ref().unwrap().created);
    let read = s.order_with_history("t1", ids[0]).await.unwrap().unwrap();
    assert_eq!(read.decision, Some(decision("aaa")), "the first one stays");
    assert_eq!(
        read.decision.map(|d| d.to_value()["rules"].clone()),
        Some(json!(["viral-spike", "vip"]))
    );
    let none = s.order_with_history("t1", ids[1]).await.unwrap().unwrap();
    assert_eq!(none.decision, None);
    assert!(s.order_with_history("t2", ids[0]).await.unwrap().is_none());
}
