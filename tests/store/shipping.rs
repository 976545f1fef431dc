//! The dashboard's time to ship, on every backend: an order is *received*
//! at its `created_at` and *shipped* at its first step into a state whose
//! automation status is `Shipped` or `Delivered` (see `store::Dashboard`).

use std::sync::Arc;

use chrono::TimeDelta;
use creatorflow::model::{AutomationStatus, StateName};
use creatorflow::store::{FaultPoint, StoreError, StoredOrder};

use super::suite::Backend;
use super::{at, order, step};

/// Hand-computed: now = t0 + 120 min, window (60, 120], previous window
/// (0, 60]; times to ship in minutes in the comments.
pub async fn dashboard_time_to_ship<S: Backend>(s: Arc<S>) {
    let create = async |tenant: &str, id: &str, minutes: i64, extra: &str| -> StoredOrder {
        s.create_order(tenant, &order(id, minutes, extra))
            .await
            .expect("create")
            .order
    };
    // One step of the order as stored now to `to` at `minutes`.
    let go = async |tenant: &str, o: &StoredOrder, to: &str, minutes: i64| {
        let cur = s.get_order(tenant, o.id).await.unwrap().unwrap();
        s.transition(tenant, &step(&cur, to, at(minutes)))
            .await
            .unwrap_or_else(|e| panic!("{} -> {to}: {e}", o.order.tiktok_order_id));
    };

    // The window: six orders shipped, mean 50 min (3,000 s).
    let a = create("t1", "A", -154, "").await;
    go("t1", &a, "validated", 10).await;
    go("t1", &a, "shipped", 60 + 30).await; // 244 min
    go("t1", &a, "delivered", 110).await; // delivered later: still shipped at 90
    // B: shipped and delivered in one batch (a chain of steps in one write):
    // shipped at the shipped step's time, not the batch's last.
    let b = create("t1", "B", 75, "").await;
    let to_shipped = step(&b, "shipped", at(80)); // 5 min
    let mut to_delivered = step(&b, "delivered", at(100));
    to_delivered.expected_state = StateName::new("shipped");
    for r in s
        .transitions(&[("t1", to_shipped), ("t1", to_delivered)])
        .await
        .unwrap()
    {
        r.unwrap();
    }
    // C: delivered without a shipped state on the way: shipped when delivered.
    let c = create("t1", "C", 75, "").await;
    go("t1", &c, "delivered", 105).await; // 30 min
    // D: at the window's closed end.
    let d = create("t1", "D", 100, "").await;
    go("t1", &d, "shipped", 120).await; // 20 min
    // E: the shop's clock ahead of ours: shipped "before" it was placed, 0.
    let e = create("t1", "E", 115, "").await;
    go("t1", &e, "shipped", 110).await; // 0 min
    // F: shipped, returned (a state that has not shipped), shipped again:
    // the first shipment counts.
    let f = create("t1", "F", 61, "").await;
    go("t1", &f, "shipped", 62).await; // 1 min
    go("t1", &f, "returned", 70).await;
    go("t1", &f, "shipped", 119).await;

    // The previous window: two orders, mean 37.5 min (2,250 s).
    let g = create("t1", "G", 30, "").await;
    go("t1", &g, "shipped", 60).await; // 30 min, the previous window's closed end
    let h = create("t1", "H", 0, "").await;
    go("t1", &h, "shipped", 45).await; // 45 min
    go("t1", &h, "shipped", 100).await; // an escalation row in `shipped`: not a shipment

    // In neither window, or not a shipment at all.
    let i = create("t1", "I", -10, "").await;
    go("t1", &i, "shipped", 0).await; // the previous window's open end
    let j = create("t2", "J", 90, "").await;
    go("t2", &j, "shipped", 100).await; // another tenant
    // Created as shipped: it never stepped into a shipped status.
    let k = create("t1", "K", 90, r#""automation_status":"Shipped""#).await;
    go("t1", &k, "delivered", 100).await;
    // A shipment whose write failed is no shipment.
    let l = create("t1", "L", 90, "").await;
    s.inject_fault(FaultPoint::AfterOrderUpdate);
    assert!(matches!(
        s.transition("t1", &step(&l, "shipped", at(95))).await,
        Err(StoreError::Database { .. })
    ));
    // Still processing, never shipped.
    let _ = create("t1", "M", 90, "").await;

    let dash = s
        .dashboard("t1", at(120), TimeDelta::hours(1))
        .await
        .unwrap();
    // Window: A 244, B 5, C 30, D 20, E 0, F 1 → 300 min / 6 = 50 min.
    assert_eq!(dash.orders_shipped, 6);
    assert_eq!(dash.avg_time_to_ship_s, Some(3_000.0));
    // Previous: G 30, H 45 → 37.5 min; (50 - 37.5) / 37.5 = +33.3…%.
    let change = dash.avg_time_to_ship_change_pct.expect("a change");
    assert!((change - 100.0 / 3.0).abs() < 1e-9, "{change}");
    // The previous window alone (now = t0 + 60): G and H.
    let prev = s
        .dashboard("t1", at(60), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (prev.orders_shipped, prev.avg_time_to_ship_s),
        (2, Some(2_250.0))
    );
    // Its previous window (-60, 0] holds I (10 min): +275%.
    assert_eq!(prev.avg_time_to_ship_change_pct, Some(275.0));
    // The other tenant sees its own shipment only.
    let other = s
        .dashboard("t2", at(120), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (other.orders_shipped, other.avg_time_to_ship_s),
        (1, Some(600.0))
    );
    // Windows with no shipment: no figure, no change.
    let later = s
        .dashboard("t1", at(1000), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (
            later.orders_shipped,
            later.avg_time_to_ship_s,
            later.avg_time_to_ship_change_pct
        ),
        (0, None, None)
    );
    // The order whose write failed ships later, once.
    let l = s.get_order("t1", l.id).await.unwrap().unwrap();
    assert_eq!(l.order.automation_status, AutomationStatus::Processing);
    go("t1", &l, "shipped", 200).await; // 110 min
    let after = s
        .dashboard("t1", at(200), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (after.orders_shipped, after.avg_time_to_ship_s),
        (1, Some(6_600.0))
    );
}
