//! The review queue ([`ReviewStore`]), on every backend.

use std::sync::Arc;

use creatorflow::store::{ReviewCursor, ReviewStore, StoredOrder};

use super::suite::Backend;
use super::{at, order, step};

async fn ids<S: ReviewStore>(
    s: &S,
    tenant: &str,
    after: Option<ReviewCursor>,
    n: usize,
) -> Vec<String> {
    s.review_queue(tenant, after, n)
        .await
        .expect("review queue")
        .into_iter()
        .map(|o| o.order.tiktok_order_id)
        .collect()
}

/// Orders in manual review, longest waiting first (by when they entered
/// review, not when they were created), paged by cursor, one tenant only;
/// an order leaves the queue when it leaves review.
pub async fn review_queue_oldest_first_paged_and_scoped<S: Backend>(s: Arc<S>) {
    let mut held: Vec<StoredOrder> = Vec::new();
    // (id, created minute, minute it entered review)
    for (id, created, failed) in [("b", 0, 30), ("a", 1, 10), ("c", 2, 20), ("d", 3, 20)] {
        let o = s
            .create_order("t1", &order(id, created, ""))
            .await
            .expect("create")
            .order;
        held.push(
            s.transition("t1", &step(&o, "failed", at(failed)))
                .await
                .expect("fail"),
        );
    }
    // Not in review: an active order, a cancelled one, another tenant's.
    let active = s
        .create_order("t1", &order("active", 0, ""))
        .await
        .expect("create")
        .order;
    let gone = s
        .create_order("t1", &order("gone", 0, ""))
        .await
        .expect("create")
        .order;
    s.transition("t1", &step(&gone, "cancelled", at(5)))
        .await
        .expect("cancel");
    let other = s
        .create_order("t2", &order("other", 0, ""))
        .await
        .expect("create")
        .order;
    s.transition("t2", &step(&other, "failed", at(1)))
        .await
        .expect("fail");

    // `c` and `d` entered review at the same time: by id.
    let (c, d) = (&held[2], &held[3]);
    let same_time: Vec<&str> = if c.id < d.id {
        vec!["c", "d"]
    } else {
        vec!["d", "c"]
    };
    let mut expected = vec!["a"];
    expected.extend(&same_time);
    expected.push("b");
    assert_eq!(ids(&*s, "t1", None, 10).await, expected);
    assert_eq!(ids(&*s, "t2", None, 10).await, ["other"]);
    assert!(ids(&*s, "t3", None, 10).await.is_empty());

    // Pages of two follow the cursor, without gaps or repeats.
    let first = s.review_queue("t1", None, 2).await.expect("page 1");
    assert_eq!(first.len(), 2);
    let cursor = ReviewCursor::after(first.last().expect("a last order"));
    assert_eq!(ids(&*s, "t1", Some(cursor), 2).await, expected[2..]);
    let last = held
        .iter()
        .find(|o| o.order.tiktok_order_id == "b")
        .expect("b");
    assert!(
        ids(&*s, "t1", Some(ReviewCursor::after(last)), 2)
            .await
            .is_empty()
    );

    // Leaving review (a retry back to processing) leaves the queue.
    let a = held
        .iter()
        .find(|o| o.order.tiktok_order_id == "a")
        .expect("a");
    s.transition("t1", &step(a, "processing", at(40)))
        .await
        .expect("retry");
    assert_eq!(ids(&*s, "t1", None, 1).await, [same_time[0]]);
    assert!(
        !ids(&*s, "t1", None, 10)
            .await
            .contains(&active.order.tiktok_order_id)
    );
}
