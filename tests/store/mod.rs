//! The storage conformance suite: fixtures and helpers. The tests
//! themselves are in `suite.rs`, generic over any [`Store`]; each backend
//! runs them through `conformance!` in `tests/store_conformance.rs`.

pub mod bulk;
pub mod cluster;
pub mod created;
pub mod decisions;
pub mod due;
pub mod heartbeat;
pub mod histories;

pub mod known;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod reads;
pub mod review;
pub mod schedule;
pub mod shipping;
pub mod shops;
pub mod suite;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::model::{AutomationStatus, StateName};
use creatorflow::store::{StoredOrder, Transition};

/// 2025-06-12T10:00:00Z, the fixtures' base time.
pub fn t0() -> DateTime<Utc> {
    "2025-06-12T10:00:00Z".parse().expect("a valid time")
}

/// `t0` plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(minutes)
}

/// An order with this TikTok id, created `minutes` after `t0`, with
/// extra JSON fields (`"priority":"high"`, …) spliced in.
pub fn order(tiktok_order_id: &str, minutes: i64, extra: &str) -> Order {
    let created = at(minutes).to_rfc3339();
    let sep = if extra.is_empty() { "" } else { "," };
    let price = if extra.contains(r#""price""#) {
        ""
    } else {
        r#""price":"49.90","#
    };
    let json = format!(
        r#"{{"tiktok_order_id":"{tiktok_order_id}","customer_handle":"@ana",
            "product_name":"Lamp","product_id":"p1","quantity":1,{price}
            "created_at":"{created}"{sep}{extra}}}"#
    );
    Order::from_json(&json).unwrap_or_else(|e| panic!("fixture order: {e}"))
}

/// A transition of `o` from its current state to `to`, at `when`.
pub fn step(o: &StoredOrder, to: &str, when: DateTime<Utc>) -> Transition {
    Transition {
        order_id: o.id,
        expected_state: o.order.current_state.clone(),
        expected_version: None,
        to: StateName::new(to),
        terminal: matches!(to, "delivered" | "cancelled"),
        progress: match to {
            "validated" => 25,
            "processing" => 40,
            "shipped" => 90,
            "delivered" => 100,
            _ => 0,
        },
        automation_status: match to {
            "failed" => AutomationStatus::ManualReview,
            "shipped" => AutomationStatus::Shipped,
            "delivered" => AutomationStatus::Delivered,
            _ => AutomationStatus::Processing,
        },
        processing_time_ms: o.order.processing_time_ms + 10,
        priority: None,
        impact: None,
        reason: Some(format!("{}->{to}", o.order.current_state)),
        automated: true,
        duration_ms: 10,
        actions_executed: creatorflow::store::JsonText::empty_array(),
        error_message: None,
        actor: None,
        pack_version: None,
        at: when,
        settle: None,
        enqueue: None,
    }
}

/// [`QueueStore::queue_summary`](creatorflow::store::QueueStore::queue_summary),
/// checked against [`QueueStore::queue_due`](creatorflow::store::QueueStore::queue_due):
/// every summary the suite reads is also asked of the cheaper call, which
/// must give the same due items per lane and the same next due time.
pub async fn summary<S: suite::Backend>(
    s: &S,
    scope: creatorflow::store::TenantScope<'_>,
    now: DateTime<Utc>,
) -> Result<creatorflow::store::QueueSummary, creatorflow::store::StoreError> {
    let full = s.queue_summary(scope, now).await?;
    let due = s.queue_due(scope, now).await?;
    assert_eq!(
        due,
        full.clone().into(),
        "queue_due agrees with queue_summary"
    );
    Ok(full)
}
