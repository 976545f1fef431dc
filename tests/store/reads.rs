//! Conformance of the bounded reads ([`OrderReads`]): after random
//! histories (creates, steps, priority and impact changes, a failed write),
//! the counts the store keeps and its indexed pages equal what a full scan
//! of the tenant's orders computes, on every backend.

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::{Impact, Priority};
use creatorflow::store::{FaultPoint, OrderQuery, StoredOrder, scan};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::suite::Backend;
use super::{at, order, step};

/// The states the random histories visit (`delivered` and `cancelled` are
/// terminal, see `step`).
const STATES: &[&str] = &[
    "received",
    "validated",
    "processing",
    "failed",
    "delivered",
    "cancelled",
];

const PRIORITIES: &[&str] = &["high", "urgent", "standard", "automated"];
const IMPACTS: &[&str] = &["VIRAL", "HIGH", "MED", "AUTO"];

/// Every fast read equals its full-scan reference for `tenant`.
async fn assert_reads_match<S: Backend>(s: &S, tenant: &str) {
    let counts = s.order_counts(tenant).await.expect("counts");
    assert_eq!(
        counts,
        scan::order_counts(s, tenant).await.expect("scan counts"),
        "counts of {tenant}"
    );
    let d = s
        .dashboard(tenant, at(10_000), TimeDelta::hours(1))
        .await
        .expect("dashboard");
    let mut by_state = std::collections::BTreeMap::new();
    for c in &counts {
        *by_state.entry(c.state.clone()).or_insert(0) += c.n;
    }
    assert_eq!(d.orders_by_state, by_state, "dashboard by state");
    let viral: u64 = counts
        .iter()
        .filter(|c| c.viral && !c.terminal)
        .map(|c| c.n)
        .sum();
    assert_eq!(d.viral_orders, viral);
    let ids = |v: Vec<StoredOrder>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let mut queries = vec![OrderQuery::default()];
    for st in STATES {
        queries.push(OrderQuery {
            state: Some((*st).to_owned()),
            priority: None,
        });
    }
    for p in Priority::ALL {
        queries.push(OrderQuery {
            state: None,
            priority: Some(*p),
        });
        queries.push(OrderQuery {
            state: Some("validated".to_owned()),
            priority: Some(*p),
        });
    }
    for q in &queries {
        for limit in [1, 7, 1000] {
            let fast = s.find_orders(tenant, q, limit).await.expect("find");
            let slow = scan::find_orders(s, tenant, q, limit).await.expect("scan");
            assert_eq!(ids(fast), ids(slow), "{q:?} limit {limit}");
        }
        let total = scan::find_orders(s, tenant, q, usize::MAX)
            .await
            .expect("scan")
            .len() as u64;
        assert_eq!(q.total(&counts), total, "total of {q:?}");
    }
}

/// Random histories over two tenants; the counts and pages match the full
/// scans after each round.
pub async fn fast_reads_equal_full_scans<S: Backend>(s: Arc<S>) {
    let mut rng = StdRng::seed_from_u64(14);
    let tenants = ["t1", "t2"];
    let mut orders: Vec<(&str, StoredOrder)> = Vec::new();
    for round in 0..4 {
        for i in 0..25 {
            let tenant = tenants[rng.random_range(0..tenants.len())];
            let extra = format!(
                r#""priority":"{}","impact":"{}""#,
                PRIORITIES[rng.random_range(0..PRIORITIES.len())],
                IMPACTS[rng.random_range(0..IMPACTS.len())]
            );
            // Some minutes repeat: ties on created_at are broken by id.
            let minutes = rng.random_range(0..40);
            let o = s
                .create_order(tenant, &order(&format!("r{round}-{i}"), minutes, &extra))
                .await
                .expect("create")
                .order;
            orders.push((tenant, o));
        }
        let mut batch = Vec::new();
        for _ in 0..60 {
            let (tenant, o) = &orders[rng.random_range(0..orders.len())];
            let cur = s
                .get_order(tenant, o.id)
                .await
                .expect("read")
                .expect("order");
            let to = STATES[rng.random_range(0..STATES.len())];
            let mut t = step(&cur, to, at(100 + i64::from(round)));
            if rng.random_bool(0.3) {
                t.priority = Some(Priority::ALL[rng.random_range(0..Priority::ALL.len())]);
            }
            if rng.random_bool(0.2) {
                t.impact = Some(
                    [Impact::Viral, Impact::High, Impact::Med, Impact::Auto]
                        [rng.random_range(0..4)],
                );
            }
            batch.push((*tenant, t));
        }
        // Batches with repeated orders: later items conflict, earlier win.
        for chunk in batch.chunks(15) {
            let _ = s.transitions(chunk).await.expect("transitions");
        }
        if round == 1 {
            // A write that fails after updating orders changes no count.
            let (tenant, o) = &orders[0];
            let cur = s
                .get_order(tenant, o.id)
                .await
                .expect("read")
                .expect("order");
            s.inject_fault(FaultPoint::AfterOrderUpdate);
            let failed = s
                .transition(tenant, &step(&cur, "cancelled", at(200)))
                .await;
            assert!(failed.is_err(), "the injected fault fails the write");
        }
        for tenant in tenants {
            assert_reads_match(&*s, tenant).await;
        }
    }
    assert!(s.order_counts("nobody").await.expect("counts").is_empty());
}
