//! A host application embedding the CreatorFlow service: its own inventory
//! service and carrier as async-closure action handlers, its own rule file,
//! the SQLite store in a temp dir. It starts the full service (workers,
//! inbox processor, retention; no webhooks, reconciliation off), ingests a
//! batch of orders, waits until every one is done, prints the metrics and
//! stops the service gracefully.
//!
//! ```sh
//! cargo run --example host_app
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use creatorflow::actions::ActionType::{self, *};
use creatorflow::actions::{ActionCall, ActionError, ActionOutcome, HandlerRegistry};
use creatorflow::rules::RulePack;
use creatorflow::service::Service;
use creatorflow::{Order, store};
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

impl Warehouse {
    fn stocked(products: &[&str], units: u32) -> Self {
        let w = Warehouse::default();
        if let Ok(mut stock) = w.stock.lock() {
            stock.extend(products.iter().map(|p| (p.to_string(), units)));
        }
        w
    }

    fn handle(&self, call: &ActionCall) -> Result<ActionOutcome, ActionError> {
        let product = call.order.product_id.clone();
        let qty = call.order.quantity;
        let key = call.order.tiktok_order_id.clone();
        let mut stock = self.stock.lock().map_err(|_| poisoned())?;
        let mut reserved = self.reserved.lock().map_err(|_| poisoned())?;
        let have = stock.get(&product).copied().unwrap_or(0);
        match (&call.action.kind, call.operation()) {
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
    }
}

fn poisoned() -> ActionError {
    ActionError::retryable("internal", "lock poisoned")
}

/// The host's carrier: buys labels and reports deliveries.
#[derive(Default)]
struct Carrier {
    labels: Mutex<HashSet<String>>,
}

impl Carrier {
    fn handle(&self, call: &ActionCall) -> Result<ActionOutcome, ActionError> {
        let key = call.order.tiktok_order_id.clone();
        let zone = call.order.shipping_zone.as_deref().unwrap_or("US");
        let carrier = if zone.starts_with("US") { "ups" } else { "dhl" };
        let mut labels = self.labels.lock().map_err(|_| poisoned())?;
        match (&call.action.kind, call.operation()) {
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
    }

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
    // Its own rule file and store, where a host keeps them.
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("host.yaml"), RULES)?;
    let pack = RulePack::load_dir(dir.path())?;
    let store = store::open(&format!("sqlite://{}/host.db", dir.path().display())).await?;

    // Its own services as async handlers, over the simulated ones (notifications etc. are logged).
    let warehouse = Arc::new(Warehouse::stocked(&["lamp-flash", "mug", "poster"], 10_000));
    let carrier = Arc::new(Carrier::default());
    let tracking = carrier.clone();
    let handlers = HandlerRegistry::simulated()
        .with_fn([CheckInventory, ReserveInventory], move |call| {
            let w = warehouse.clone();
            async move { w.handle(&call) }
        })
        .with_fn([SelectCarrier, GenerateShippingLabel], move |call| {
            let c = carrier.clone();
            async move { c.handle(&call) }
        });

    // The full service (webhooks aside): workers, inbox processor, retention.
    let running = Service::builder(store)
        .tenants(["creator-42"])
        .engines_with(move |b| {
            let t = tracking.clone();
            b.rules(pack.clone())
                .handlers(handlers.clone())
                .delivery_check_every(TimeDelta::milliseconds(20))
                .delivery_confirmation(move |order, _| t.delivered(&order.tiktok_order_id))
        })
        .start()
        .await?;

    let engine = running.engine("creator-42").ok_or("no engine")?.clone();
    let started = Instant::now();
    let report = engine.ingest_many(orders(400)).await?;
    println!(
        "ingested: {} new, {} known, {} refused",
        report.new,
        report.known,
        report.refused.len()
    );
    // The service works in the background: wait until the queue is empty
    // (every order delivered, cancelled or sent to manual review).
    while engine.metrics().await?.queue.next_run_at.is_some() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the orders did not finish within a minute".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    running.stop().await;

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
