//! TikTok effects (`tiktok: OP` bindings) against the testkit's mock of
//! TikTok: ship_package (TikTok label flow, fulfilled by TikTok, cancelled,
//! pending cancellation, "already shipped" answers, a rollback), the
//! inventory update (its body, a per-SKU failure, missing parameters),
//! order_status (read only), and the error classes.

#[path = "tiktok_common/mod.rs"]
mod common;

use chrono::Utc;
use common::*;
use creatorflow::Order;
use creatorflow::actions::{
    ActionContext, ActionError, ActionHandler, ActionOutcome, ActionSpec, ActionType, ErrorClass,
};
use creatorflow::tiktok::{ApiOrder, TikTokEffect, TikTokOp};
use serde_json::{Value, json};

/// The engine's order for the mock's order JSON (tenant and shop set as
/// the processor sets them).
fn engine_order(json: &Value) -> Order {
    let api: ApiOrder = serde_json::from_value(json.clone()).expect("api order");
    api.to_order(TENANT, SHOP).expect("maps")
}

fn spec(kind: ActionType, params: Value) -> ActionSpec {
    ActionSpec::new(kind, params.as_object().cloned().unwrap_or_default())
}

/// Asserts the class and kind of `e`.
fn failed_with(e: &ActionError, class: ErrorClass, kind: &str) {
    assert_eq!((e.kind, e.error_kind.as_str()), (class, kind), "{e}");
}

async fn run(
    w: &World,
    op: TikTokOp,
    order: &Order,
    action: &ActionSpec,
) -> Result<ActionOutcome, ActionError> {
    call(w, op, order, action, false).await
}

/// Calls the effect `op`; `rollback` as the executor says.
async fn call(
    w: &World,
    op: TikTokOp,
    order: &Order,
    action: &ActionSpec,
    rollback: bool,
) -> Result<ActionOutcome, ActionError> {
    let effect = TikTokEffect::new(op, w.api.clone());
    effect
        .call(ActionContext {
            order,
            action,
            transition: "t",
            idempotency_key: "k",
            attempt: 1,
            rollback,
            now: Utc::now(),
        })
        .await
}

async fn ship(w: &World, order_json: Value) -> Result<ActionOutcome, ActionError> {
    w.mock.put_order(CIPHER, order_json.clone());
    let order = engine_order(&order_json);
    let action = spec(ActionType::GenerateShippingLabel, json!({}));
    run(w, TikTokOp::ShipPackage, &order, &action).await
}

#[test]
fn ops_parse_and_print() {
    for op in TikTokOp::ALL {
        assert_eq!(TikTokOp::parse(op.as_str()), Some(op));
    }
    assert_eq!(TikTokOp::parse("ship"), None);
    assert_eq!(
        TikTokOp::ALL.map(|o| o.as_str()),
        ["ship_package", "update_inventory", "order_status"]
    );
}

#[tokio::test]
async fn ship_package_creates_a_package_and_gets_its_label() {
    let w = World::start(None).await;
    w.connect().await;
    let out = ship(&w, order("576", "AWAITING_SHIPMENT"))
        .await
        .expect("shipped");
    assert_eq!(out.0["package_id"], "pkg-576");
    assert_eq!(out.0["doc_url"], "https://labels.mock/pkg-576.pdf");
    assert_eq!(w.mock.packages(), vec![json!({"order_id": "576"})]);
    assert_eq!(w.mock.count("shipping_document"), 1);
    // A retry after the package was created: "already shipped" is success.
    let again = ship(&w, order("576", "AWAITING_SHIPMENT"))
        .await
        .expect("already");
    assert_eq!(again.0["already_shipped"], true);
    assert_eq!(again.0["code"], 21011020);
    assert_eq!(w.mock.packages().len(), 1);
    assert_eq!(w.mock.count("bad_sign") + w.mock.count("no_cipher"), 0);
}

#[tokio::test]
async fn every_already_shipped_code_is_success_and_cancelled_is_permanent() {
    let w = World::start(None).await;
    w.connect().await;
    for code in [21008099, 21011020, 11006021, 21011040, 21011006, 21042056] {
        w.mock.set_package_error(Some(code));
        let out = ship(&w, order("577", "AWAITING_SHIPMENT"))
            .await
            .expect("success");
        assert_eq!(out.0["already_shipped"], true, "{code}");
    }
    w.mock.set_package_error(Some(21011041));
    let e = ship(&w, order("577", "AWAITING_SHIPMENT"))
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "order_cancelled");
    // Another code: a permanent API error naming it.
    w.mock.set_package_error(Some(21000001));
    let e = ship(&w, order("577", "AWAITING_SHIPMENT"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorClass::Permanent);
    assert!(e.message.contains("21000001"), "{e}");
}

#[tokio::test]
async fn fulfilled_by_tiktok_is_not_shipped_and_cancelled_orders_are_refused() {
    let w = World::start(None).await;
    w.connect().await;
    let mut fbt = order("600", "AWAITING_SHIPMENT");
    fbt["fulfillment_type"] = json!("FULFILLMENT_BY_TIKTOK");
    let out = ship(&w, fbt).await.expect("success");
    assert_eq!(out.0["shipped_by"], "tiktok");

    let e = ship(&w, order("601", "CANCELLED")).await.unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "order_cancelled");

    let mut pending = order("602", "AWAITING_SHIPMENT");
    pending["is_buyer_request_cancel"] = json!(true);
    let e = ship(&w, pending).await.unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "cancellation_pending");
    assert_eq!(w.mock.count("create_package"), 0, "nothing shipped");
}

#[tokio::test]
async fn a_void_rollback_succeeds_and_says_nothing_was_undone() {
    let w = World::start(None).await;
    w.connect().await;
    let order = engine_order(&order("700", "AWAITING_SHIPMENT"));
    let void = spec(
        ActionType::GenerateShippingLabel,
        json!({"operation": "void"}),
    );
    let plain = spec(ActionType::GenerateShippingLabel, json!({}));
    let release = spec(ActionType::ReserveInventory, json!({}));
    for (op, action, rollback) in [
        (TikTokOp::ShipPackage, &void, false),
        (TikTokOp::ShipPackage, &plain, true),
        (TikTokOp::UpdateInventory, &release, true),
    ] {
        let out = call(&w, op, &order, action, rollback).await.expect("ok");
        assert_eq!(out.0["undone_on_tiktok"], false, "{op:?}");
    }
    let calls = ["order_detail", "create_package", "inventory_update"].map(|c| w.mock.count(c));
    assert_eq!(calls, [0, 0, 0], "nothing sent to TikTok");
}

#[tokio::test]
async fn transient_failures_are_retryable() {
    let w = World::start(None).await;
    w.connect().await;
    w.mock.rate_limit_next(100);
    let e = ship(&w, order("800", "AWAITING_SHIPMENT"))
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Retryable, "rate_limited");
    w.mock.rate_limit_next(0);
    // An order of no connected shop is a permanent error.
    let mut o = engine_order(&order("801", "AWAITING_SHIPMENT"));
    o.shop_id = Some("404".into());
    let action = spec(ActionType::GenerateShippingLabel, json!({}));
    let e = run(&w, TikTokOp::ShipPackage, &o, &action)
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "shop_not_connected");
    o.shop_id = None;
    let e = run(&w, TikTokOp::ShipPackage, &o, &action)
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "no_shop");
}

#[tokio::test]
async fn update_inventory_sets_absolute_stock_and_reports_sku_failures() {
    let w = World::start(None).await;
    w.connect().await;
    let order = engine_order(&order("900", "AWAITING_SHIPMENT"));
    let action = spec(
        ActionType::ReserveInventory,
        json!({"sku_id": "sku-1", "warehouse_id": "wh-1", "quantity": 42}),
    );
    let out = run(&w, TikTokOp::UpdateInventory, &order, &action)
        .await
        .expect("ok");
    assert_eq!(out.0["quantity"], 42);
    assert_eq!(
        w.mock.inventory_updates(),
        vec![(
            "1729587769570529000".to_owned(),
            json!({"skus": [{"id": "sku-1", "inventory": [{"warehouse_id": "wh-1", "quantity": 42}]}]})
        )]
    );
    w.mock.fail_sku("sku-2");
    let action = spec(
        ActionType::ReserveInventory,
        json!({"product_id": "p9", "sku_id": "sku-2", "warehouse_id": "wh-1", "quantity": 1}),
    );
    let e = run(&w, TikTokOp::UpdateInventory, &order, &action)
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "inventory_rejected");
    assert!(e.message.contains("sku-2"), "{e}");
    let action = spec(
        ActionType::ReserveInventory,
        json!({"sku_id": "sku-1", "quantity": 1}),
    );
    let e = run(&w, TikTokOp::UpdateInventory, &order, &action)
        .await
        .unwrap_err();
    failed_with(&e, ErrorClass::Permanent, "bad_parameters");
    assert!(e.message.contains("warehouse_id"), "{e}");
    assert_eq!(w.mock.inventory_updates().len(), 2);
}

#[tokio::test]
async fn order_status_reads_and_records_without_writing() {
    let w = World::start(None).await;
    w.connect().await;
    w.mock.put_order(CIPHER, order("950", "IN_TRANSIT"));
    let o = engine_order(&order("950", "IN_TRANSIT"));
    let action = spec(ActionType::UpdateTiktokStatus, json!({}));
    let out = run(&w, TikTokOp::OrderStatus, &o, &action)
        .await
        .expect("ok");
    assert_eq!(out.0["status"], "IN_TRANSIT");
    assert_eq!(out.0["written"], false);
    assert_eq!(w.mock.count("order_detail"), 1);
}
