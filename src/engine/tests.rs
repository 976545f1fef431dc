//! Unit tests of the engine's private state (its caches).

use std::sync::Arc;

use chrono::TimeDelta;

use super::EngineBuilder;
use crate::store::{MemoryStore, OrderStore};
use crate::{Clock, ManualClock, Order};

fn order(n: u32) -> Order {
    Order::from_json(&format!(
        r#"{{"tiktok_order_id":"{n}","customer_handle":"@ana","product_name":"Lamp",
        "product_id":"p1","quantity":1,"price":"25.00","created_at":"2025-06-12T10:00:00Z"}}"#
    ))
    .unwrap()
}

/// Orders parked until a far-off step (here the hourly delivery check of
/// `shipped`) are not kept in the engine's order cache: a long-running
/// worker's memory does not grow with the orders it has shipped.
#[tokio::test]
async fn orders_parked_for_a_far_step_leave_the_cache() {
    let clock = Arc::new(ManualClock::new("2025-06-12T10:00:00Z".parse().unwrap()));
    let engine = EngineBuilder::new(MemoryStore::new())
        .clock(clock.clone())
        .simulated_handlers()
        .build()
        .unwrap();
    for n in 0..20 {
        engine.ingest(order(n)).await.unwrap();
    }
    // New orders are cached for their first step, due now.
    assert_eq!(super::lock(&engine.inner.cache).len(), 20);
    let idle = engine.run_until_idle().await.unwrap();
    let next = idle.next_due.expect("a delivery check is scheduled");
    assert!(next - clock.now() > TimeDelta::minutes(1));
    assert_eq!(super::lock(&engine.inner.cache).len(), 0);
    // They still move on from the store when the check falls due.
    clock.set(next + TimeDelta::days(2));
    engine.run_until_idle().await.unwrap();
    let orders = engine
        .store()
        .list_orders(engine.tenant(), None, 100)
        .await
        .unwrap();
    assert_eq!(orders.len(), 20);
    assert!(
        orders.iter().all(|o| o.order.current_state == "delivered"),
        "{:?}",
        orders
            .iter()
            .map(|o| &o.order.current_state)
            .collect::<Vec<_>>()
    );
}

/// Orders another worker moved on (a separate `worker` process sharing the
/// queue) do not stay in this engine's cache: copies older than the horizon
/// are swept out as new ones are kept.
#[tokio::test]
async fn copies_of_orders_another_worker_ran_are_swept_out() {
    let clock = Arc::new(ManualClock::new("2025-06-12T10:00:00Z".parse().unwrap()));
    let store = MemoryStore::new();
    let build = || {
        EngineBuilder::new(store.clone())
            .clock(clock.clone())
            .simulated_handlers()
            .build()
            .unwrap()
    };
    let (front, worker) = (build(), build());
    for n in 0..20 {
        front.ingest(order(n)).await.unwrap();
    }
    worker.run_until_idle().await.unwrap();
    // `front` never ran those orders: its copies are of their first state.
    assert_eq!(super::lock(&front.inner.cache).len(), 20);
    clock.set(clock.now() + super::cache::OrderCache::HORIZON);
    front.ingest(order(20)).await.unwrap();
    assert_eq!(super::lock(&front.inner.cache).len(), 1);
}

/// A duplicate of an order this engine does not remember (another process
/// stored it, or the bounded set forgot it) is found in the store and not
/// evaluated again: it does not count twice in the rules' window facts.
#[tokio::test]
async fn a_duplicate_this_engine_does_not_remember_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("repeat.yaml"),
        "rules:
  - id: third-order-in-a-month
    name: Third order in a month
    category: customer_segmentation
    priority: 10
    conditions:
      - field: customer_orders
        operator: greater_than
        value: 2
        time_window: 30d
    actions:
      - type: escalate_priority
        parameters: { new_priority: urgent }
",
    )
    .unwrap();
    let pack = crate::rules::RulePack::load_dir(dir.path()).unwrap();
    let clock = Arc::new(ManualClock::new("2025-06-12T10:00:00Z".parse().unwrap()));
    let store = MemoryStore::new();
    let build = || {
        EngineBuilder::new(store.clone())
            .clock(clock.clone())
            .rules(pack.clone())
            .simulated_handlers()
            .build()
            .unwrap()
    };
    let (a, b) = (build(), build());
    assert!(a.ingest(order(1)).await.unwrap().created);
    // `b` never saw order 1 stored; TikTok delivers it to `b` again.
    assert!(!b.ingest(order(1)).await.unwrap().created);
    // The customer's second order: two in the month, not three.
    let second = b.ingest(order(2)).await.unwrap();
    assert!(second.created);
    assert_ne!(second.order.order.priority, crate::model::Priority::Urgent);
}
