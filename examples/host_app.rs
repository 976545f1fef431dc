//! A host application embedding the CreatorFlow engine: its own inventory
//! service and carrier as action handlers, its own rule file, the SQLite
//! store in a temp dir. It ingests a batch of orders, runs them to
//! completion and prints the metrics.
//!
//! ```sh
//! cargo run --example host_app
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::TimeDelta;
use creatorflow::actions::{
    ActionContext, ActionError, ActionHandler, ActionOutcome, ActionType, BoxFuture,
    DefaultHandlers,
};
use creatorflow::engine::EngineBuilder;
use creatorflow::rules::RulePack;
use creatorflow::{Order, SystemClock, store};
use serde_json::json;

/// The host's rules: big orders go to the urgent lane, a flash-sale product
/// to the high (viral) lane.
const RULES: &str = r#"
rules:
  - id: big-basket
    name: Orders of $100 or more are urgent
    category: priority_classification
    priority: 80
    conditions:
      - { field: price, operator: greater_than_or_equal, value: 100 }
    actions:
      - type: escalate_priority
        parameters: { new_priority: urgent, new_impact: HIGH }
  - id: flash-sale-product
    name: The flash-sale lamp is viral today
    category: viral_detection
    priority: 90
    conditions:
      - { field: product_id, operator: equals, value: lamp-flash }
    actions:
      - type: escalate_priority
        parameters: { new_priority: high, new_impact: VIRAL }
"#;

/// The host's warehouse: stock per product, reservations per order.
#[derive(Default)]
struct Warehouse {
    stock: Mutex<HashMap<String, u32>>,
    reserved: Mutex<HashMap<String, (String, u32)>>,
}

impl ActionHandler for Warehouse {
    fn call<'a>(
        &'a self,
        ctx: ActionContext<'a>,
    ) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(async move {
            let product = ctx.order.product_id.clone();
            let qty = ctx.order.quantity;
            let key = ctx.order.tiktok_order_id.clone();
            let op = ctx
                .action
                .parameters
                .get("operation")
                .and_then(|v| v.as_str());
            let mut stock = self.stock.lock().map_err(|_| poisoned())?;
            let mut reserved = self.reserved.lock().map_err(|_| poisoned())?;
            let have = stock.get(&product).copied().unwrap_or(0);
            match (&ctx.action.kind, op) {
                (ActionType::CheckInventory, _) if have < qty => Err(ActionError::permanent(
                    "out_of_stock",
                    format!("{product}: {have} left, {qty} wanted"),
                )),
                (ActionType::CheckInventory, _) => Ok(ActionOutcome(json!({ "left": have }))),
                (ActionType::ReserveInventory, Some("release")) => {
                    if let Some((p, q)) = reserved.remove(&key) {
                        *stock.entry(p).or_default() += q;
                    }
                    Ok(ActionOutcome(json!({ "released": true })))
                }
                (ActionType::ReserveInventory, _) => {
                    // Idempotent per order: a resumed step does not reserve twice.
                    if let std::collections::hash_map::Entry::Vacant(slot) = reserved.entry(key) {
                        if have < qty {
                            return Err(ActionError::permanent("out_of_stock", product));
                        }
                        stock.insert(product.clone(), have - qty);
                        slot.insert((product, qty));
                    }
                    Ok(ActionOutcome(json!({ "reserved": qty })))
                }
                _ => Ok(ActionOutcome::default()),
            }
        })
    }
}

fn poisoned() -> ActionError {
    ActionError::retryable("internal", "warehouse lock poisoned")
}

/// The host's carrier: buys labels and reports deliveries.
#[derive(Default)]
struct Carrier {
    labels: Mutex<HashSet<String>>,
}

impl ActionHandler for Carrier {
    fn call<'a>(
        &'a self,
        ctx: ActionContext<'a>,
    ) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(async move {
            let key = ctx.order.tiktok_order_id.clone();
            let zone = ctx.order.shipping_zone.as_deref().unwrap_or("US");
            let carrier = if zone.starts_with("US") { "ups" } else { "dhl" };
            let op = ctx
                .action
                .parameters
                .get("operation")
                .and_then(|v| v.as_str());
            let mut labels = self.labels.lock().map_err(|_| poisoned())?;
            match (&ctx.action.kind, op) {
                (ActionType::GenerateShippingLabel, Some("void")) => {
                    labels.remove(&key);
                    Ok(ActionOutcome(json!({ "voided": key })))
                }
                (ActionType::GenerateShippingLabel, _) => {
                    labels.insert(key.clone());
                    Ok(ActionOutcome(
                        json!({ "label": format!("{carrier}-{key}") }),
                    ))
                }
                _ => Ok(ActionOutcome(json!({ "carrier": carrier }))),
            }
        })
    }
}

impl Carrier {
    /// The carrier's tracking API: a parcel with a label is delivered (at once, in this demo).
    fn delivered(&self, tiktok_order_id: &str) -> bool {
        self.labels
            .lock()
            .map(|l| l.contains(tiktok_order_id))
            .unwrap_or(false)
    }
}

fn orders(n: usize) -> Vec<Order> {
    let products = [
        ("lamp-flash", 2),
        ("mug", 1),
        ("poster", 3),
        ("sold-out", 1),
    ];
    (0..n)
        .filter_map(|i| {
            let (product, qty) = products[i % products.len()];
            let price = 15 + (i * 37) % 150;
            Order::from_json(&format!(
                r#"{{"tiktok_order_id":"host-{i}","customer_handle":"@fan{i}",
                "product_name":"{product}","product_id":"{product}","quantity":{qty},
                "price":"{price}.00","shipping_zone":"{}","created_at":"2025-06-12T10:{:02}:00Z"}}"#,
                if i % 3 == 0 { "EU" } else { "US-WEST" },
                i % 60
            ))
            .ok()
        })
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Its own rule file, written where a host keeps its configuration.
    let dir = tempfile::tempdir()?;
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    std::fs::write(rules_dir.join("host.yaml"), RULES)?;
    let pack = RulePack::load_dir(&rules_dir)?;

    // Its own services, plugged in over the defaults (notifications etc. are logged).
    let warehouse = Arc::new(Warehouse::default());
    {
        let mut stock = warehouse.stock.lock().map_err(|_| "poisoned")?;
        stock.insert("lamp-flash".into(), 10_000);
        stock.insert("mug".into(), 10_000);
        stock.insert("poster".into(), 10_000);
    }
    let carrier = Arc::new(Carrier::default());
    let handlers = DefaultHandlers::default()
        .registry()
        .with(ActionType::CheckInventory, warehouse.clone())
        .with(ActionType::ReserveInventory, warehouse.clone())
        .with(ActionType::SelectCarrier, carrier.clone())
        .with(ActionType::GenerateShippingLabel, carrier.clone());

    let url = format!("sqlite://{}", dir.path().join("host.db").display());
    let tracking = carrier.clone();
    let engine = EngineBuilder::new(store::open(&url).await?)
        .clock(Arc::new(SystemClock))
        .rules(pack)
        .handlers(handlers)
        .tenant("creator-42")
        .delivery_check_every(TimeDelta::milliseconds(20))
        .delivery_confirmation(move |order, _now| tracking.delivered(&order.tiktok_order_id))
        .build()?;

    let batch = orders(400);
    let started = Instant::now();
    let report = engine.ingest_many(batch).await?;
    println!(
        "ingested: {} new, {} known, {} refused",
        report.new,
        report.known,
        report.refused.len()
    );
    // Run to completion: until no work is due, then wait for the next
    // scheduled check (delivery confirmations), until the queue is empty.
    loop {
        let idle = engine.run_until_idle().await?;
        let Some(next) = idle.next_due else { break };
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
    let elapsed = started.elapsed();

    let m = engine.metrics().await?;
    let status = engine.status().await?;
    println!("finished in {:.2?}", elapsed);
    println!("orders by state: {:?}", m.dashboard.orders_by_state);
    println!(
        "orders processed per minute: {:.0}",
        m.dashboard.orders_processed_per_minute
    );
    println!(
        "automation health: {:?} %",
        m.dashboard.automation_health_pct.map(|p| p.round())
    );
    println!("actions: {:?}", m.actions);
    println!("integrity ok: {}", status.integrity.ok);
    if !status.integrity.ok {
        return Err(status.integrity.problems.join("; ").into());
    }
    Ok(())
}
