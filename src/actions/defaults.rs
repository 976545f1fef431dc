//! Default handlers for the 14 built-in action types, so the engine and
//! the CLI are useful without a host: effects are logged in the outcome
//! JSON, and inventory and carriers are simulated with configurable
//! latency, failure rates (seeded RNG) and stock levels.

use crate::FastMap as HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::handler::{
    ActionContext, ActionError, ActionFuture, ActionHandler, ActionOutcome, HandlerRegistry,
};
use super::recent::Recent;
use super::spec::ActionType;

/// How a simulated service behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimConfig {
    /// Time each call takes (real time; zero by default).
    pub latency: Duration,
    /// Probability in `0..=1` that a call fails with a retryable error.
    pub failure_rate: f64,
    /// The RNG seed (failures are reproducible).
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            latency: Duration::ZERO,
            failure_rate: 0.0,
            seed: 0,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Common part of the simulated services: latency and random failures.
#[derive(Debug)]
struct Sim {
    config: SimConfig,
    rng: Mutex<StdRng>,
}

impl Sim {
    fn new(config: SimConfig) -> Self {
        Sim {
            config,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
        }
    }

    async fn call(&self, service: &str) -> Result<(), ActionError> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let p = self.config.failure_rate.clamp(0.0, 1.0);
        if p > 0.0 && lock(&self.rng).random::<f64>() < p {
            return Err(ActionError::retryable(
                format!("{service}_unavailable"),
                format!("simulated {service} failure"),
            ));
        }
        Ok(())
    }
}

fn order_key(ctx: &ActionContext<'_>) -> String {
    ctx.order
        .id
        .map(|id| id.to_string())
        .unwrap_or_else(|| ctx.order.tiktok_order_id.clone())
}

fn operation<'a>(ctx: &'a ActionContext<'_>, default: &'a str) -> &'a str {
    ctx.action
        .parameters
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or(default)
}

/// A simulated inventory service for `check_inventory`,
/// `reserve_inventory` (`operation: reserve | release`) and
/// `auto_reorder_inventory`. Stock is per product; a product without a set
/// level has the default level (unlimited unless configured). Reservations
/// are idempotent per order (for the newest 20,000 orders: an
/// older order's reservation is forgotten, so a long-running process with
/// simulated effects stays in bounded memory).
#[derive(Debug)]
pub struct SimulatedInventory {
    sim: Sim,
    default_stock: Option<u64>,
    stock: Mutex<HashMap<String, u64>>,
    /// Reservations by order, the newest [`Recent::CAPACITY`] orders'.
    reserved: Mutex<Recent<(String, u64)>>,
}

impl SimulatedInventory {
    /// An inventory with `default_stock` units of every product (`None`:
    /// unlimited).
    pub fn new(config: SimConfig, default_stock: Option<u64>) -> Self {
        SimulatedInventory {
            sim: Sim::new(config),
            default_stock,
            stock: Mutex::new(HashMap::default()),
            reserved: Mutex::new(Recent::default()),
        }
    }

    /// Sets the units available of `product_id`.
    pub fn set_stock(&self, product_id: &str, units: u64) {
        lock(&self.stock).insert(product_id.to_owned(), units);
    }

    /// The units available of `product_id` (`None`: unlimited).
    pub fn available(&self, product_id: &str) -> Option<u64> {
        lock(&self.stock)
            .get(product_id)
            .copied()
            .or(self.default_stock)
    }

    /// How many orders hold a reservation.
    pub fn reservations(&self) -> usize {
        lock(&self.reserved).len()
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<ActionOutcome, ActionError> {
        let product = ctx.order.product_id.as_str();
        let qty = u64::from(ctx.order.quantity);
        match &ctx.action.kind {
            ActionType::CheckInventory => match self.available(product) {
                Some(n) if n < qty => Err(ActionError::permanent(
                    "out_of_stock",
                    format!("{product}: {n} available, {qty} needed"),
                )),
                n => Ok(ActionOutcome(
                    json!({ "product_id": product, "available": n, "needed": qty }),
                )),
            },
            ActionType::ReserveInventory => {
                let key = order_key(ctx);
                let op = operation(ctx, "reserve");
                let mut reserved = lock(&self.reserved);
                let mut stock = lock(&self.stock);
                match op {
                    "release" => {
                        let released = reserved.remove(&key);
                        if let Some((p, q)) = &released
                            && let Some(level) = stock.get_mut(p)
                        {
                            *level += q;
                        }
                        Ok(ActionOutcome(
                            json!({ "operation": "release", "released": released.map(|r| r.1).unwrap_or(0) }),
                        ))
                    }
                    "reserve" => {
                        if reserved.contains_key(&key) {
                            return Ok(ActionOutcome(
                                json!({ "operation": "reserve", "units": qty, "already": true }),
                            ));
                        }
                        let level = match stock.get(product).copied().or(self.default_stock) {
                            None => None,
                            Some(n) if n < qty => {
                                return Err(ActionError::permanent(
                                    "out_of_stock",
                                    format!("{product}: {n} available, {qty} needed"),
                                ));
                            }
                            Some(n) => Some(n - qty),
                        };
                        if let Some(l) = level {
                            stock.insert(product.to_owned(), l);
                        }
                        reserved.insert(key, (product.to_owned(), qty));
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
                let units = ctx
                    .action
                    .parameters
                    .get("quantity")
                    .and_then(Value::as_u64)
                    .unwrap_or(100);
                let mut stock = lock(&self.stock);
                if let Some(l) = stock.get(product).copied().or(self.default_stock) {
                    stock.insert(product.to_owned(), l + units);
                }
                Ok(ActionOutcome(
                    json!({ "reordered": units, "product_id": product }),
                ))
            }
        }
    }
}

impl ActionHandler for SimulatedInventory {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            self.sim.call("inventory").await?;
            self.run(&ctx)
        })
    }
}

/// A simulated carrier for `select_carrier` and `generate_shipping_label`
/// (`operation: create | void`). [`set_outage`](Self::set_outage) makes
/// every call fail with the retryable `carrier_unavailable`.
#[derive(Debug)]
pub struct SimulatedCarrier {
    sim: Sim,
    outage: AtomicBool,
    /// Labels by order, the newest [`Recent::CAPACITY`] orders'.
    labels: Mutex<Recent<String>>,
}

impl SimulatedCarrier {
    /// A carrier behaving as `config` says.
    pub fn new(config: SimConfig) -> Self {
        SimulatedCarrier {
            sim: Sim::new(config),
            outage: AtomicBool::new(false),
            labels: Mutex::new(Recent::default()),
        }
    }

    /// Starts or ends an outage.
    pub fn set_outage(&self, down: bool) {
        self.outage.store(down, Ordering::SeqCst);
    }

    /// How many labels exist (created, not voided).
    pub fn labels(&self) -> usize {
        lock(&self.labels).len()
    }

    fn run(&self, ctx: &ActionContext<'_>) -> Result<ActionOutcome, ActionError> {
        let carrier = ctx
            .order
            .carrier_preference
            .clone()
            .unwrap_or_else(|| "usps".to_owned());
        match &ctx.action.kind {
            ActionType::GenerateShippingLabel => {
                let key = order_key(ctx);
                let mut labels = lock(&self.labels);
                match operation(ctx, "create") {
                    "void" => {
                        let label = labels.remove(&key);
                        Ok(ActionOutcome(
                            json!({ "operation": "void", "label": label }),
                        ))
                    }
                    "create" => {
                        let label = match labels.get(&key) {
                            Some(label) => label.clone(),
                            None => {
                                let label = format!("{carrier}-{key}");
                                labels.insert(key, label.clone());
                                label
                            }
                        };
                        Ok(ActionOutcome(
                            json!({ "operation": "create", "label": label, "carrier": carrier }),
                        ))
                    }
                    other => Err(ActionError::permanent(
                        "bad_parameters",
                        format!("unknown generate_shipping_label operation `{other}`"),
                    )),
                }
            }
            _ => Ok(ActionOutcome(json!({ "carrier": carrier }))),
        }
    }
}

impl ActionHandler for SimulatedCarrier {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        Box::pin(async move {
            if self.outage.load(Ordering::SeqCst) {
                return Err(ActionError::retryable(
                    "carrier_unavailable",
                    "the carrier is down (simulated outage)",
                ));
            }
            self.sim.call("carrier").await?;
            self.run(&ctx)
        })
    }
}

/// Logs the action: succeeds with `{"logged": true, "idempotency_key"}`
/// (the history record names the type and operation). The default for notifications, TikTok status
/// updates, analytics, webhooks, follow-ups, escalations, fast track and
/// address validation.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogHandler;

impl ActionHandler for LogHandler {
    fn call<'a>(&'a self, ctx: ActionContext<'a>) -> ActionFuture<'a> {
        let out = json!({ "logged": true, "idempotency_key": ctx.idempotency_key });
        Box::pin(std::future::ready(Ok(ActionOutcome(out))))
    }
}

/// The default handlers, with handles on the simulated services so a test
/// or the simulator can change stock or start an outage.
#[derive(Debug, Clone)]
pub struct DefaultHandlers {
    /// The simulated inventory.
    pub inventory: Arc<SimulatedInventory>,
    /// The simulated carrier.
    pub carrier: Arc<SimulatedCarrier>,
}

impl Default for DefaultHandlers {
    fn default() -> Self {
        DefaultHandlers::new(SimConfig::default(), SimConfig::default(), None)
    }
}

impl DefaultHandlers {
    /// Defaults with the given inventory and carrier behaviour, and
    /// `default_stock` units of every product (`None`: unlimited).
    pub fn new(inventory: SimConfig, carrier: SimConfig, default_stock: Option<u64>) -> Self {
        DefaultHandlers {
            inventory: Arc::new(SimulatedInventory::new(inventory, default_stock)),
            carrier: Arc::new(SimulatedCarrier::new(carrier)),
        }
    }

    /// A registry with a handler for each of the 14 built-in types.
    pub fn registry(&self) -> HandlerRegistry {
        let mut r = HandlerRegistry::empty();
        let log: Arc<dyn ActionHandler> = Arc::new(LogHandler);
        for kind in ActionType::BUILTIN {
            let h: Arc<dyn ActionHandler> = match kind {
                ActionType::CheckInventory
                | ActionType::ReserveInventory
                | ActionType::AutoReorderInventory => self.inventory.clone(),
                ActionType::SelectCarrier | ActionType::GenerateShippingLabel => {
                    self.carrier.clone()
                }
                _ => log.clone(),
            };
            r.register(kind.clone(), h);
        }
        r
    }
}

impl HandlerRegistry {
    /// The simulated handlers ([`DefaultHandlers::default`]): effects
    /// logged, inventory and carrier simulated. An explicit opt-in, for the
    /// simulator, the command line and tests.
    pub fn simulated() -> Self {
        DefaultHandlers::default().registry()
    }
}
