//! Conformance of [`OrderStore::known_orders`]: which of many TikTok order
//! ids a tenant already has, each once, whatever the number of ids (more
//! than one statement's worth), never another tenant's.

use std::collections::BTreeSet;
use std::sync::Arc;

use creatorflow::store::NewOrder;

use super::order;
use super::suite::Backend;

/// Orders `k0..k{n}` for `tenant`, stored in one batch.
async fn store_many<S: Backend>(s: &S, tenant: &str, ids: impl Iterator<Item = String>) {
    let batch: Vec<NewOrder> = ids
        .map(|id| NewOrder {
            order: order(&id, 0, ""),
            work: None,
            decision: None,
        })
        .collect();
    for r in s.create_orders(tenant, &batch).await.expect("create") {
        assert!(r.expect("stored").created);
    }
}

/// 6,000 stored for t1 (every third of 0..18,000), some for t2; asked about
/// 0..18,000 plus duplicates, t1 gets exactly its own ids, each once.
pub async fn known_orders_names_the_tenants_ids_once<S: Backend>(s: Arc<S>) {
    store_many(&*s, "t1", (0..18_000).step_by(3).map(|i| format!("k{i}"))).await;
    store_many(&*s, "t2", (1..300).step_by(3).map(|i| format!("k{i}"))).await;
    let asked: Vec<String> = (0..18_000)
        .map(|i| format!("k{i}"))
        .chain(["k0", "k3", "k1", "absent"].map(String::from))
        .collect();
    let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
    let got = s.known_orders("t1", &refs).await.expect("read");
    let unique: BTreeSet<&str> = got.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), got.len(), "each id once");
    let expected: BTreeSet<String> = (0..18_000).step_by(3).map(|i| format!("k{i}")).collect();
    assert_eq!(
        got.iter().cloned().collect::<BTreeSet<String>>(),
        expected,
        "exactly the tenant's"
    );
    let t2 = s
        .known_orders("t2", &["k1", "k0", "k4"])
        .await
        .expect("read");
    assert_eq!(
        t2.into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["k1".to_owned(), "k4".to_owned()])
    );
    assert!(s.known_orders("t1", &[]).await.expect("read").is_empty());
    assert!(
        s.known_orders("nobody", &refs)
            .await
            .expect("read")
            .is_empty()
    );
}
