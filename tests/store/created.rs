//! Conformance of [`OrderReads::orders_by_created`]: a tenant's orders in
//! creation order (ties by id), within a `created_at` range, paged by a
//! `(created_at, id)` cursor, each with its ingest decision; equal to the
//! full-scan reference and to what was written, on every backend.

use std::sync::Arc;

use creatorflow::model::JsonText;
use creatorflow::store::{CreatedRange, DecidedOrder, NewOrder, scan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::suite::Backend;
use super::{at, order};

/// Every order of `range`, read `page` at a time.
async fn pages<S: Backend>(
    s: &S,
    tenant: &str,
    range: CreatedRange,
    page: usize,
) -> Vec<DecidedOrder> {
    let mut out: Vec<DecidedOrder> = Vec::new();
    let mut r = range;
    loop {
        let got = s.orders_by_created(tenant, &r, page).await.expect("page");
        assert!(got.len() <= page, "a page holds at most its limit");
        let Some(last) = got.last() else { break };
        r = r.after_order(&last.order);
        out.extend(got);
    }
    out
}

/// Orders of two tenants, created at random minutes (some equal), some
/// with a decision; every range and page size reads them in creation order.
pub async fn orders_by_created_pages_in_creation_order<S: Backend>(s: Arc<S>) {
    let mut rng = StdRng::seed_from_u64(15);
    let mut written: Vec<(&str, DecidedOrder)> = Vec::new();
    for i in 0..60 {
        let tenant = if rng.random_bool(0.7) { "t1" } else { "t2" };
        let decision: Option<JsonText> = rng.random_bool(0.5).then(|| {
            json!({"pack_version": format!("v{i}"), "rules": ["r"], "priority": "high",
                   "impact": "MED"})
            .into()
        });
        let created = s
            .create_orders(
                tenant,
                &[NewOrder {
                    order: order(&format!("c{i}"), rng.random_range(0..20), ""),
                    work: None,
                    decision: decision.clone(),
                }],
            )
            .await
            .expect("create");
        let stored = created.into_iter().next().expect("one").expect("created");
        written.push((
            tenant,
            DecidedOrder {
                order: stored.order,
                decision,
            },
        ));
    }
    let ranges = [
        CreatedRange::default(),
        CreatedRange {
            since: Some(at(5)),
            ..CreatedRange::default()
        },
        CreatedRange {
            until: Some(at(12)),
            ..CreatedRange::default()
        },
        CreatedRange {
            since: Some(at(3)),
            until: Some(at(4)),
            after: None,
        },
    ];
    for tenant in ["t1", "t2"] {
        for range in &ranges {
            let mut expected: Vec<DecidedOrder> = written
                .iter()
                .filter(|(t, o)| *t == tenant && range.contains(&o.order))
                .map(|(_, o)| o.clone())
                .collect();
            expected.sort_by_key(|o| (o.order.order.created_at, o.order.id));
            let key = |v: &[DecidedOrder]| {
                v.iter()
                    .map(|o| (o.order.id, o.order.order.created_at, o.decision.clone()))
                    .collect::<Vec<_>>()
            };
            for page in [1, 7, 1000] {
                let got = pages(&*s, tenant, *range, page).await;
                assert_eq!(key(&got), key(&expected), "{tenant} {range:?} page {page}");
                let reference = scan::orders_by_created(&*s, tenant, range, page)
                    .await
                    .expect("scan");
                let first = s
                    .orders_by_created(tenant, range, page)
                    .await
                    .expect("read");
                assert_eq!(key(&first), key(&reference), "{tenant} {range:?} vs scan");
            }
        }
    }
    assert!(
        s.orders_by_created("nobody", &CreatedRange::default(), 10)
            .await
            .expect("read")
            .is_empty()
    );
}
