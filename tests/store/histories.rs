//! Conformance of [`OrderStore::histories`](creatorflow::store::OrderStore::histories):
//! many orders' histories in one call, each equal to what
//! `order_with_history` reads, in the order asked, never another tenant's.

use std::sync::Arc;

use creatorflow::store::{NewOrder, OrderId};

use super::suite::Backend;
use super::{at, order, step};

/// 1,203 orders (more than one statement's worth of ids), some moved one
/// or two steps, some not at all; asked in an order of our own with an
/// unknown id and another tenant's order among them.
pub async fn histories_read_many_orders_at_once<S: Backend>(s: Arc<S>) {
    let batch: Vec<NewOrder> = (0..1_203)
        .map(|i| NewOrder {
            order: order(&format!("h{i}"), i, ""),
            work: None,
            decision: None,
        })
        .collect();
    let mut orders = Vec::new();
    for r in s.create_orders("t1", &batch).await.expect("create") {
        orders.push(r.expect("stored").order);
    }
    let other = s
        .create_order("t2", &order("h0", 0, ""))
        .await
        .expect("create")
        .order;
    s.transition("t2", &step(&other, "validated", at(1)))
        .await
        .expect("t2 step");
    for (i, o) in orders.iter().enumerate() {
        if i % 3 == 0 {
            continue;
        }
        let moved = s
            .transition("t1", &step(o, "validated", at(1)))
            .await
            .expect("step");
        if i % 3 == 2 {
            s.transition("t1", &step(&moved, "processing", at(2)))
                .await
                .expect("second step");
        }
    }
    // Newest first, then an id nobody has, then t2's order.
    let mut ids: Vec<OrderId> = orders.iter().rev().map(|o| o.id).collect();
    ids.push(OrderId::nil());
    ids.push(other.id);
    let got = s.histories("t1", &ids).await.expect("read");
    assert_eq!(got.len(), ids.len(), "one history per id asked");
    for (id, history) in ids.iter().zip(&got).take(orders.len()) {
        let one = s
            .order_with_history("t1", *id)
            .await
            .expect("read one")
            .expect("t1's order");
        assert_eq!(history, &one.history, "the same as order_with_history");
    }
    let steps: usize = got.iter().map(Vec::len).sum();
    assert_eq!(steps, 401 + 401 * 2, "none, one or two steps each");
    assert!(got[orders.len()].is_empty(), "an unknown id has none");
    assert!(
        got[orders.len() + 1].is_empty(),
        "another tenant's has none"
    );
    assert_eq!(
        s.histories("t2", &[other.id]).await.expect("read")[0].len(),
        1
    );
    assert!(s.histories("t1", &[]).await.expect("read").is_empty());
}
