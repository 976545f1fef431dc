//! Faults and latencies of the services behind the action handlers.
//!
//! [`FaultyService`] wraps a real handler (the library's simulated inventory
//! and carrier, which keep stock and labels) and, on every call, waits a
//! latency drawn from the service's log-normal distribution in **virtual**
//! time, then fails with a retryable error at the service's error rate or
//! during one of its outage windows. A latency longer than the action's
//! timeout is a `timeout` after the timeout. The draws are keyed by the
//! call's idempotency key (order, step, action), its attempt and the seed, so
//! they do not depend on the order in which concurrent steps are polled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use creatorflow::actions::{
    ActionContext, ActionError, ActionHandler, ActionOutcome, ActionType, BoxFuture,
    DefaultHandlers, HandlerRegistry, SimConfig,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::scenario::{Scenario, ServiceSpec};
use super::traffic::Skewed;
use super::vclock::VirtualTime;

/// The executor's default action timeout (actions in the shipped machine
/// declare none).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of one service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceStats {
    /// Calls made.
    pub calls: u64,
    /// Random errors injected.
    pub errors: u64,
    /// Calls refused by an outage.
    pub outage_errors: u64,
    /// Calls that overran their timeout.
    pub timeouts: u64,
}

/// One service's behaviour, resolved against the scenario's start.
#[derive(Debug, Clone)]
pub struct ServiceModel {
    name: &'static str,
    latency: Skewed,
    error_rate: f64,
    outages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl ServiceModel {
    /// The model of `spec`, outages placed after `start`.
    pub fn new(name: &'static str, spec: &ServiceSpec, start: DateTime<Utc>) -> Self {
        ServiceModel {
            name,
            latency: Skewed::new(spec.latency_ms),
            error_rate: spec.error_rate,
            outages: spec
                .outages
                .iter()
                .map(|(s, d)| (start + *s, start + *s + *d))
                .collect(),
        }
    }

    /// The service's name (`inventory`, `carrier`, `labels`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether the service is down at `t`.
    pub fn down_at(&self, t: DateTime<Utc>) -> bool {
        self.outages.iter().any(|(s, e)| *s <= t && t < *e)
    }

    /// The outage windows.
    pub fn outages(&self) -> &[(DateTime<Utc>, DateTime<Utc>)] {
        &self.outages
    }
}

/// FNV-1a over `seed` and `parts`: a hash that is the same in every build
/// (unlike `std`'s `DefaultHasher`, whose algorithm may change).
pub fn stable_hash(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for b in seed.to_le_bytes() {
        eat(b);
    }
    for p in parts {
        for b in p.bytes() {
            eat(b);
        }
        eat(0xff);
    }
    h
}

/// A handler wrapped with a service's latency and faults.
pub struct FaultyService {
    model: ServiceModel,
    inner: Arc<dyn ActionHandler>,
    vt: Arc<VirtualTime>,
    seed: u64,
    stats: Arc<Mutex<BTreeMap<&'static str, ServiceStats>>>,
    calls: AtomicU64,
}

impl FaultyService {
    /// The draws of one call: a retry (same key, next attempt) draws afresh
    /// (`key:attempt`, as the key read before it stopped naming the attempt).
    fn rng(&self, key: &str, attempt: u32) -> StdRng {
        let call = format!("{key}:{attempt}");
        StdRng::seed_from_u64(stable_hash(self.seed, &[self.model.name, &call]))
    }

    fn count(&self, f: impl FnOnce(&mut ServiceStats)) {
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        f(s.entry(self.model.name).or_default());
    }
}

impl ActionHandler for FaultyService {
    fn call<'a>(
        &'a self,
        ctx: ActionContext<'a>,
    ) -> BoxFuture<'a, Result<ActionOutcome, ActionError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.count(|s| s.calls += 1);
            let mut rng = self.rng(ctx.idempotency_key, ctx.attempt);
            let latency = self.model.latency.sample(&mut rng).max(0.0);
            let timeout = ctx
                .action
                .timeout_ms
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
            if self.model.down_at(ctx.now) {
                // A service that is down refuses quickly (connection refused).
                self.vt
                    .sleep(Duration::from_millis(latency.min(50.0) as u64))
                    .await;
                self.count(|s| s.outage_errors += 1);
                return Err(ActionError::retryable(
                    format!("{}_unavailable", self.model.name),
                    format!("the {} API is down (simulated outage)", self.model.name),
                ));
            }
            let latency = Duration::from_micros((latency * 1000.0) as u64);
            if latency > timeout {
                self.vt.sleep(timeout).await;
                self.count(|s| s.timeouts += 1);
                return Err(ActionError::retryable(
                    "timeout",
                    format!(
                        "the {} API did not answer within {} ms (simulated)",
                        self.model.name,
                        timeout.as_millis()
                    ),
                ));
            }
            self.vt.sleep(latency).await;
            if rng.random::<f64>() < self.model.error_rate {
                self.count(|s| s.errors += 1);
                return Err(ActionError::retryable(
                    format!("{}_error", self.model.name),
                    format!("the {} API answered 503 (simulated)", self.model.name),
                ));
            }
            self.inner.call(ctx).await
        })
    }
}

/// The simulated services: the action handlers the engine runs with, and
/// their counters.
pub struct Services {
    /// The registry to give the engine.
    pub registry: HandlerRegistry,
    /// Calls and injected faults, by service.
    pub stats: Arc<Mutex<BTreeMap<&'static str, ServiceStats>>>,
    /// The service models (outage windows for the report).
    pub models: Vec<ServiceModel>,
}

impl Services {
    /// The handlers of `scenario`: the library's default handlers (labels),
    /// `inventory` for the stock actions (the fulfilment model's stockroom),
    /// with the inventory, carrier and label actions behind their
    /// service's latency and faults. With `virtual_time: false` there is no
    /// latency (a wall-clock run measures the engine and the store).
    pub fn new(
        scenario: &Scenario,
        vt: &Arc<VirtualTime>,
        seed: u64,
        virtual_time: bool,
        inventory: Arc<dyn ActionHandler>,
    ) -> Services {
        let defaults = DefaultHandlers::new(SimConfig::default(), SimConfig::default(), None);
        let stats = Arc::new(Mutex::new(BTreeMap::new()));
        let mut models = vec![
            ServiceModel::new("inventory", &scenario.services.inventory, scenario.start),
            ServiceModel::new("carrier", &scenario.services.carrier, scenario.start),
            ServiceModel::new("labels", &scenario.services.labels, scenario.start),
        ];
        if !virtual_time {
            for m in &mut models {
                m.latency = Skewed::new(super::scenario::LatencySpec {
                    median: 0.0,
                    p99: 0.0,
                });
                m.outages.clear();
            }
        }
        let mut registry = defaults.registry();
        let wrap =
            |model: &ServiceModel, inner: Arc<dyn ActionHandler>| -> Arc<dyn ActionHandler> {
                Arc::new(FaultyService {
                    model: model.clone(),
                    inner,
                    vt: vt.clone(),
                    seed,
                    stats: stats.clone(),
                    calls: AtomicU64::new(0),
                })
            };
        let carrier: Arc<dyn ActionHandler> = defaults.carrier.clone();
        let inv = wrap(&models[0], inventory);
        let car = wrap(&models[1], carrier.clone());
        let lab = wrap(&models[2], carrier);
        registry.register(ActionType::CheckInventory, inv.clone());
        registry.register(ActionType::ReserveInventory, inv.clone());
        registry.register(ActionType::AutoReorderInventory, inv);
        registry.register(ActionType::SelectCarrier, car);
        registry.register(ActionType::GenerateShippingLabel, lab);
        Services {
            registry,
            stats,
            models,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outage_window_is_half_open() {
        let start: DateTime<Utc> = "2025-06-12T00:00:00Z".parse().expect("time");
        let spec = ServiceSpec {
            outages: vec![(chrono::TimeDelta::hours(1), chrono::TimeDelta::minutes(30))],
            ..ServiceSpec::default()
        };
        let m = ServiceModel::new("carrier", &spec, start);
        assert!(!m.down_at(start + chrono::TimeDelta::minutes(59)));
        assert!(m.down_at(start + chrono::TimeDelta::minutes(60)));
        assert!(!m.down_at(start + chrono::TimeDelta::minutes(90)));
    }

    #[test]
    fn draws_depend_on_the_key_not_the_call_order() {
        let vt = VirtualTime::new("2025-06-12T00:00:00Z".parse().expect("time"));
        let svc = FaultyService {
            model: ServiceModel::new("carrier", &ServiceSpec::default(), vt.now()),
            inner: Arc::new(creatorflow::actions::LogHandler),
            vt: vt.clone(),
            seed: 1,
            stats: Arc::default(),
            calls: AtomicU64::new(0),
        };
        let a1: f64 = svc.rng("k1", 1).random();
        let _: f64 = svc.rng("k2", 1).random();
        let a2: f64 = svc.rng("k1", 1).random();
        assert_eq!(a1, a2);
        // A retry of the same call (same key) draws afresh.
        let retry: f64 = svc.rng("k1", 2).random();
        assert_ne!(a1, retry);
    }
}
