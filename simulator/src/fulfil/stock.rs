//! The stockroom: stock per product, reservations, and reorders that arrive
//! after their lead time.
//!
//! It answers `check_inventory`, `reserve_inventory` (`operation: reserve |
//! release`) and `auto_reorder_inventory` as the library's simulated
//! inventory does (a product the scenario gives no stock is unlimited; an
//! order short of stock gets a permanent `out_of_stock` error, which the
//! shipped machine turns into manual review), with one difference: a
//! reorder's units (`reorder_quantity`, else `quantity`, else 100) arrive
//! after the scenario's `reorder_lead_time`, or `expedited_lead_time` with
//! `expedite: true`. A product has at most one reorder on its way: a rule
//! that fires again while it is (the surge rule fires on every order of a
//! busy product) is acknowledged and merged into it, as a buyer would.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::actions::{
    ActionContext, ActionError, ActionHandler, ActionOutcome, ActionType, BoxFuture,
};
use serde::Serialize;
use serde_json::{Value, json};

/// Units a reorder brings when it names no quantity.
const DEFAULT_REORDER: u64 = 100;

/// The stock figures of the report (`fulfilment.stock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct StockStats {
    /// Orders refused for lack of stock (each counted once).
    pub stock_outs: u64,
    /// Products that refused an order for lack of stock.
    pub products_out: u64,
    /// Reorders placed (units on their way).
    pub reorders: u64,
    /// Reorder actions merged into one already on its way.
    pub reorders_merged: u64,
    /// Units reordered.
    pub units_reordered: u64,
    /// Units received by the end of the run.
    pub units_received: u64,
}

#[derive(Debug, Default)]
struct Shelves {
    /// Units on the shelf of each limited product.
    stock: HashMap<String, u64>,
    /// Reservations: order → (product, units).
    reserved: HashMap<String, (String, u64)>,
    /// The reorder on its way per product: (arrives, units).
    incoming: BTreeMap<String, (DateTime<Utc>, u64)>,
    refused: HashSet<String>,
    products_out: BTreeSet<String>,
    stats: StockStats,
}

impl Shelves {
    /// Puts on the shelf the reorders of `product` arrived by `now`.
    fn receive(&mut self, product: &str, now: DateTime<Utc>) {
        if let Some((at, units)) = self.incoming.get(product).copied()
            && at <= now
        {
            self.incoming.remove(product);
            self.stats.units_received += units;
            if let Some(level) = self.stock.get_mut(product) {
                *level += units;
            }
        }
    }

    fn out_of_stock(&mut self, order: &str, product: &str, have: u64, need: u64) -> ActionError {
        if self.refused.insert(order.to_owned()) {
            self.stats.stock_outs += 1;
        }
        if self.products_out.insert(product.to_owned()) {
            self.stats.products_out += 1;
        }
        ActionError::permanent(
            "out_of_stock",
            format!("{product}: {have} available, {need} needed"),
        )
    }
}

/// The stockroom handler (wrap it in the inventory service's faults).
#[derive(Debug)]
pub struct Stockroom {
    shelves: Mutex<Shelves>,
    lead: TimeDelta,
    expedited: TimeDelta,
}

impl Stockroom {
    /// A stockroom with `stock` (product id, units) of its limited products.
    pub fn new(
        stock: impl IntoIterator<Item = (String, u64)>,
        lead: TimeDelta,
        expedited: TimeDelta,
    ) -> Self {
        let shelves = Shelves {
            stock: stock.into_iter().collect(),
            ..Shelves::default()
        };
        Stockroom {
            shelves: Mutex::new(shelves),
            lead,
            expedited,
        }
    }

    /// The figures, with every reorder due by `now` received.
    pub fn stats(&self, now: DateTime<Utc>) -> StockStats {
        let mut s = self.lock();
        let due: Vec<String> = s
            .incoming
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for p in due {
            s.receive(&p, now);
        }
        s.stats.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shelves> {
        self.shelves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<ActionOutcome, ActionError> {
        let product = ctx.order.product_id.as_str();
        let order = ctx.order.tiktok_order_id.as_str();
        let qty = u64::from(ctx.order.quantity);
        let mut s = self.lock();
        s.receive(product, ctx.now);
        match &ctx.action.kind {
            ActionType::CheckInventory => match s.stock.get(product).copied() {
                Some(n) if n < qty => Err(s.out_of_stock(order, product, n, qty)),
                n => Ok(ActionOutcome(
                    json!({ "product_id": product, "available": n, "needed": qty }),
                )),
            },
            ActionType::ReserveInventory => {
                match param_str(ctx, "operation").unwrap_or("reserve") {
                    "release" => {
                        let released = s.reserved.remove(order);
                        if let Some((p, q)) = &released
                            && let Some(level) = s.stock.get_mut(p)
                        {
                            *level += q;
                        }
                        Ok(ActionOutcome(
                            json!({ "operation": "release", "released": released.map_or(0, |r| r.1) }),
                        ))
                    }
                    "reserve" => {
                        if s.reserved.contains_key(order) {
                            return Ok(ActionOutcome(
                                json!({ "operation": "reserve", "units": qty, "already": true }),
                            ));
                        }
                        if let Some(n) = s.stock.get(product).copied() {
                            if n < qty {
                                return Err(s.out_of_stock(order, product, n, qty));
                            }
                            s.stock.insert(product.to_owned(), n - qty);
                        }
                        s.reserved
                            .insert(order.to_owned(), (product.to_owned(), qty));
                        Ok(ActionOutcome(
                            json!({ "operation": "reserve", "units": qty }),
                        ))
                    }
                    other => Err(ActionError::permanent(
                        "bad_parameters",
                        format!("unknown reserve_inventory operation `{other}`"),
                    )),
                }
            }
            _ => {
                let params = &ctx.action.parameters;
                let units = ["reorder_quantity", "quantity"]
                    .iter()
                    .find_map(|k| params.get(*k).and_then(Value::as_u64))
                    .unwrap_or(DEFAULT_REORDER);
                let expedite = params
                    .get("expedite")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                if let Some((at, _)) = s.incoming.get(product) {
                    let at = *at;
                    s.stats.reorders_merged += 1;
                    return Ok(ActionOutcome(
                        json!({ "product_id": product, "merged": true, "arrives": at.to_rfc3339() }),
                    ));
                }
                let at = ctx.now + if expedite { self.expedited } else { self.lead };
                s.incoming.insert(product.to_owned(), (at, units));
                s.stats.reorders += 1;
                s.stats.units_reordered += units;
                Ok(ActionOutcome(
                    json!({ "product_id": product, "reordered": units, "arrives": at.to_rfc3339() }),
                ))
            }
        }
    }
}

fn param_str<'a>(ctx: &'a ActionContext<'_>, key: &str) -> Option<&'a str> {
    ctx.action.parameters.get(key).and_then(Value::as_str)
}

impl ActionHandler for Stockroom {
    fn call<'a>(
        &'a self,
        ctx: ActionContext<'a>,
    ) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(async move { self.run(&ctx) })
    }
}
