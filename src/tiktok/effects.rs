//! Real effects on TikTok Shop, as [`ActionHandler`]s bound with
//! `tiktok: OP` in the service's configuration ([`TikTokOp`]). The shop is
//! the order's `shop_id`, the tenant its `user_id`.
//!
//! - `ship_package` (for `generate_shipping_label`): Get Order Detail; a
//!   cancelled order or one with a pending cancellation fails for good; an
//!   order fulfilled by TikTok (`FULFILLMENT_BY_TIKTOK`) succeeds without
//!   shipping; otherwise the TikTok-label flow: Create Packages (with the
//!   action's `shipping_service_id` parameter when given, from Get Eligible
//!   Shipping Service; not called here) →
//!   `package_id` → Get Shipping Document (`SHIPPING_LABEL`), both recorded
//!   in the outcome. TikTok's "already shipped" answers count as success
//!   (a retry of a step that did ship); `21011041` (cancelled) fails for
//!   good. A rollback (or `operation: void`) succeeds and records that nothing
//!   was undone: these APIs have no way to void a package.
//! - `update_inventory` (for `reserve_inventory` or a rule action): sets
//!   the parameters' `quantity` as the **absolute** stock of `sku_id` in
//!   `warehouse_id` (of `product_id`, default the order's product); a
//!   per-SKU failure in `data.errors[]` fails for good, naming the SKU. A
//!   rollback (or `operation: void | release`) changes nothing on TikTok (the
//!   quantity is absolute; the next update sets it) and says so.
//! - `order_status` (for `update_tiktok_status`): TikTok moves its own
//!   statuses, so this reads the order's status and records it (no write).
//!
//! Errors: HTTP 429 / rate limit, 5xx, timeouts and transport failures are
//! retryable; everything else is permanent.

use std::sync::Arc;

use serde_json::{Value, json};

use super::api::ApiOrder;
use super::client::{ApiError, OrderApi};
use super::event::OrderStatus;
use super::http::{HttpOrderApi, Request, decode};
use super::ops::TikTokOp;
use crate::actions::{ActionContext, ActionError, ActionFuture, ActionHandler, ActionOutcome};

/// TikTok's answers to Create Packages meaning "already shipped".
pub const ALREADY_SHIPPED: [i64; 6] = [21008099, 21011020, 11006021, 21011040, 21011006, 21042056];
/// TikTok's answer to Create Packages for a cancelled order.
pub const ORDER_CANCELLED: i64 = 21011041;

/// One [`TikTokOp`] as an [`ActionHandler`] calling the Open API.
#[derive(Debug, Clone)]
pub struct TikTokEffect {
    op: TikTokOp,
    api: Arc<HttpOrderApi>,
}

impl TikTokEffect {
    /// The effect `op` through `api`.
    pub fn new(op: TikTokOp, api: Arc<HttpOrderApi>) -> Self {
        TikTokEffect { op, api }
    }

    /// Which operation this is.
    pub fn op(&self) -> TikTokOp {
        self.op
    }
}

impl ActionHandler for TikTokEffect {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            let outcome = match self.op {
                TikTokOp::ShipPackage => self.ship_package(&ctx).await?,
                TikTokOp::UpdateInventory => self.update_inventory(&ctx).await?,
                TikTokOp::OrderStatus => {
                    let o = self.detail(&ctx).await?;
                    json!({
                        "operation": "read",
                        "status": o.status,
                        "fulfillment_type": o.fulfillment_type,
                        "written": false,
                        "note": "TikTok moves its own order statuses; recorded, not written",
                    })
                }
            };
            Ok(ActionOutcome(outcome))
        })
    }
}

/// The error of a failed call, retryable when trying later may succeed.
fn action_error(e: &ApiError) -> ActionError {
    let kind = match e {
        _ if e.is_rate_limited() => "rate_limited",
        ApiError::Timeout { .. } => "timeout",
        ApiError::Transport { .. } => "transport",
        ApiError::Status { status, .. } if *status >= 500 => "tiktok_unavailable",
        ApiError::Store { .. } => "store",
        ApiError::UnknownShop { .. } => "shop_not_connected",
        ApiError::NoSuchOrder { .. } => "order_not_found",
        _ => "tiktok_api",
    };
    if e.is_transient() {
        ActionError::retryable(kind, e.to_string())
    } else {
        ActionError::permanent(kind, e.to_string())
    }
}

/// The `operation` parameter, if any.
fn operation<'a>(ctx: &'a ActionContext<'_>) -> Option<&'a str> {
    ctx.action
        .parameters
        .get("operation")
        .and_then(Value::as_str)
}

/// Whether the call undoes an earlier one: a rollback, or `operation` is
/// one of `undo`.
fn undoing(ctx: &ActionContext<'_>, undo: &[&str]) -> bool {
    ctx.rollback || operation(ctx).is_some_and(|op| undo.contains(&op))
}

/// A string parameter (strings or numbers accepted: TikTok ids are digits).
fn param(ctx: &ActionContext<'_>, name: &str) -> Option<String> {
    match ctx.action.parameters.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn missing(name: &str) -> ActionError {
    ActionError::permanent(
        "bad_parameters",
        format!("update_inventory needs the parameter `{name}`"),
    )
}

/// Nothing to undo on TikTok: the outcome of a rollback.
fn nothing_undone(op: &str, why: &str) -> Value {
    json!({ "operation": op, "undone_on_tiktok": false, "note": why })
}

impl TikTokEffect {
    /// The tenant and shop of the order.
    fn shop<'c>(ctx: &'c ActionContext<'_>) -> Result<(&'c str, &'c str), ActionError> {
        let o = ctx.order;
        match (o.user_id.as_deref(), o.shop_id.as_deref()) {
            (Some(t), Some(s)) => Ok((t, s)),
            _ => Err(ActionError::permanent(
                "no_shop",
                format!(
                    "order {} has no tenant or TikTok shop: it did not come from TikTok",
                    o.tiktok_order_id
                ),
            )),
        }
    }

    async fn detail(&self, ctx: &ActionContext<'_>) -> Result<ApiOrder, ActionError> {
        let (tenant, shop) = Self::shop(ctx)?;
        let id = &ctx.order.tiktok_order_id;
        self.api
            .order_details(tenant, shop, std::slice::from_ref(id))
            .await
            .map_err(|e| action_error(&e))?
            .into_iter()
            .find(|o| &o.id == id)
            .ok_or_else(|| {
                action_error(&ApiError::NoSuchOrder {
                    order_id: id.clone(),
                })
            })
    }

    async fn ship_package(&self, ctx: &ActionContext<'_>) -> Result<Value, ActionError> {
        if undoing(ctx, &["void"]) {
            return Ok(nothing_undone(
                "void",
                "TikTok Shop has no way to void a package: nothing was undone on TikTok",
            ));
        }
        let order = self.detail(ctx).await?;
        if OrderStatus::parse(&order.status) == OrderStatus::Cancelled {
            return Err(ActionError::permanent(
                "order_cancelled",
                format!("order {} is cancelled on TikTok Shop", order.id),
            ));
        }
        if order.is_buyer_request_cancel {
            return Err(ActionError::permanent(
                "cancellation_pending",
                format!("order {} has a pending cancellation request", order.id),
            ));
        }
        if order.fulfillment_type.as_deref() == Some("FULFILLMENT_BY_TIKTOK") {
            return Ok(json!({ "operation": "create", "shipped_by": "tiktok" }));
        }
        let (tenant, shop) = Self::shop(ctx)?;
        let mut body = json!({ "order_id": order.id });
        if let Some(s) = param(ctx, "shipping_service_id") {
            body["shipping_service_id"] = Value::String(s);
        }
        let req = Request::post("/fulfillment/202309/packages", Vec::new(), &body);
        let package_id = match self.api.shop_call(tenant, shop, &req).await {
            Ok(data) => match data.get("package_id") {
                Some(Value::String(p)) => p.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(ActionError::permanent(
                        "tiktok_api",
                        "Create Packages answered without a package_id",
                    ));
                }
            },
            Err(ApiError::Api { code, .. }) if ALREADY_SHIPPED.contains(&code) => {
                return Ok(json!({ "operation": "create", "already_shipped": true, "code": code }));
            }
            Err(ApiError::Api { code, .. }) if code == ORDER_CANCELLED => {
                return Err(ActionError::permanent(
                    "order_cancelled",
                    format!("order {} is cancelled on TikTok Shop ({code})", order.id),
                ));
            }
            Err(e) => return Err(action_error(&e)),
        };
        let req = Request::get(
            format!("/fulfillment/202309/packages/{package_id}/shipping_documents"),
            vec![("document_type", "SHIPPING_LABEL".to_owned())],
        );
        #[derive(serde::Deserialize)]
        struct Document {
            #[serde(default)]
            doc_url: String,
        }
        let doc: Document = self
            .api
            .shop_call(tenant, shop, &req)
            .await
            .and_then(decode)
            .map_err(|e| action_error(&e))?;
        Ok(json!({ "operation": "create", "package_id": package_id, "doc_url": doc.doc_url }))
    }

    async fn update_inventory(&self, ctx: &ActionContext<'_>) -> Result<Value, ActionError> {
        if undoing(ctx, &["void", "release"]) {
            return Ok(nothing_undone(
                "release",
                "TikTok stock is set as an absolute quantity: nothing was undone on TikTok",
            ));
        }
        let (tenant, shop) = Self::shop(ctx)?;
        let product = param(ctx, "product_id").unwrap_or_else(|| ctx.order.product_id.clone());
        let sku = param(ctx, "sku_id").ok_or_else(|| missing("sku_id"))?;
        let warehouse = param(ctx, "warehouse_id").ok_or_else(|| missing("warehouse_id"))?;
        let quantity = ctx
            .action
            .parameters
            .get("quantity")
            .and_then(Value::as_u64)
            .ok_or_else(|| missing("quantity"))?;
        let body = json!({ "skus": [{
            "id": sku,
            "inventory": [{ "warehouse_id": warehouse, "quantity": quantity }],
        }]});
        let req = Request::post(
            format!("/product/202309/products/{product}/inventory/update"),
            Vec::new(),
            &body,
        );
        let data = self
            .api
            .shop_call(tenant, shop, &req)
            .await
            .map_err(|e| action_error(&e))?;
        if let Some(err) = data
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            let failed = err
                .pointer("/detail/sku_id")
                .or_else(|| err.get("sku_id"))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_else(|| sku.clone());
            let message = err.get("message").and_then(Value::as_str).unwrap_or("");
            return Err(ActionError::permanent(
                "inventory_rejected",
                format!("TikTok refused the stock of SKU {failed}: {message}"),
            ));
        }
        Ok(json!({
            "operation": "set",
            "product_id": product,
            "sku_id": sku,
            "warehouse_id": warehouse,
            "quantity": quantity,
        }))
    }
}
