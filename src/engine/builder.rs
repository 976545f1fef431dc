//! [`EngineBuilder`]: how a host assembles an [`Engine`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use super::error::BuildError;
use super::lanes::{LaneConfig, Lanes};
use super::rule_actions;
use super::{DeliveryCheck, Engine, Inner};
use crate::actions::{ActionType, Executor, ExecutorConfig, HandlerRegistry, Sleeper};
use crate::clock::{Clock, SystemClock};
use crate::machine::Machine;
use crate::model::{Order, Priority};
use crate::rules::{RuleEngine, RulePack};
use crate::store::Store;
use crate::viral::Enricher;

/// Builds an [`Engine`]. Everything but the store and the action handlers
/// has a default: the shipped order workflow and rule pack, the system
/// clock, `model.md`'s lanes, no enricher, tenant `default`. The handlers
/// are the host's ([`handlers`](Self::handlers)), or the simulated ones on
/// request ([`simulated_handlers`](Self::simulated_handlers)); without,
/// [`build`](Self::build) names every action type left without one.
pub struct EngineBuilder<S> {
    store: S,
    machine: Machine,
    pack: Arc<RulePack>,
    clock: Arc<dyn Clock>,
    handlers: Option<HandlerRegistry>,
    lanes: Lanes,
    enricher: Option<Box<dyn Enricher>>,
    tenant: String,
    worker: String,
    executor: ExecutorConfig,
    sleeper: Option<Arc<dyn Sleeper>>,
    delivery_check_every: TimeDelta,
    max_chain: usize,
    delivery: DeliveryCheck,
    serve_all_tenants: bool,
    external_events: bool,
    sole_ingester: bool,
    heartbeat: Option<super::HeartbeatPolicy>,
}

impl<S: Store + 'static> EngineBuilder<S> {
    /// A builder over `store`.
    pub fn new(store: S) -> Self {
        let delivery_after = TimeDelta::hours(48);
        EngineBuilder {
            store,
            machine: Machine::default_order_workflow(),
            pack: Arc::new(RulePack::shipped()),
            clock: Arc::new(SystemClock),
            handlers: None,
            lanes: Lanes::default(),
            enricher: None,
            tenant: "default".to_owned(),
            worker: format!("worker-{}", uuid::Uuid::new_v4().simple()),
            executor: ExecutorConfig::default(),
            sleeper: None,
            delivery_check_every: TimeDelta::hours(1),
            max_chain: super::worker::MAX_CHAIN,
            delivery: Arc::new(move |order: &Order, now: DateTime<Utc>| {
                now - order.state_changed_at.unwrap_or(order.created_at) >= delivery_after
            }),
            serve_all_tenants: true,
            external_events: false,
            sole_ingester: false,
            heartbeat: Some(super::HeartbeatPolicy::default()),
        }
    }

    /// The state machine (default: [`Machine::default_order_workflow`]).
    pub fn machine(mut self, machine: Machine) -> Self {
        self.machine = machine;
        self
    }

    /// The rule pack (default: [`RulePack::shipped`]).
    pub fn rules(mut self, pack: RulePack) -> Self {
        self.pack = Arc::new(pack);
        self
    }

    /// The clock (default: the system clock); a `ManualClock` for tests
    /// and virtual time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The action handlers: one for every action type the machine and the
    /// rule pack use.
    pub fn handlers(mut self, registry: HandlerRegistry) -> Self {
        self.handlers = Some(registry);
        self
    }

    /// The simulated handlers ([`HandlerRegistry::simulated`]): effects
    /// logged, inventory and carrier simulated. An explicit opt-in for the
    /// simulator, the command line and tests.
    pub fn simulated_handlers(self) -> Self {
        self.handlers(HandlerRegistry::simulated())
    }

    /// Replaces one lane's settings.
    pub fn lane(mut self, lane: Priority, config: LaneConfig) -> Self {
        self.lanes.set(lane, config);
        self
    }

    /// Replaces every lane's settings.
    pub fn lanes(mut self, lanes: Lanes) -> Self {
        self.lanes = lanes;
        self
    }

    /// The viral enricher run on each order before the rules (default: none).
    pub fn enricher(mut self, enricher: Box<dyn Enricher>) -> Self {
        self.enricher = Some(enricher);
        self
    }

    /// The tenant `ingest`, `cancel` and `retry` act for (default `default`).
    pub fn tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Whether workers serve every tenant's work (default) or only the
    /// engine's tenant.
    pub fn serve_all_tenants(mut self, all: bool) -> Self {
        self.serve_all_tenants = all;
        self
    }

    /// The worker name stored with leases (default: random).
    pub fn worker_name(mut self, name: impl Into<String>) -> Self {
        self.worker = name.into();
        self
    }

    /// Executor settings (default timeouts, breaker cool-down, seed).
    pub fn executor_config(mut self, config: ExecutorConfig) -> Self {
        self.executor = config;
        self
    }

    /// How the executor waits between retries (default: real time).
    pub fn sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = Some(sleeper);
        self
    }

    /// The most steps of one order a claim runs back to back (default 16).
    /// An order's next step, when due at once, runs under the same lease
    /// and is written with the others in one batch; `1` makes every step a
    /// claim of its own (each one waits its turn in its lane). Values below
    /// 1 count as 1.
    pub fn max_chain(mut self, steps: usize) -> Self {
        self.max_chain = steps.max(1);
        self
    }

    /// How the worker loops ([`Engine::run_with`], [`Engine::run_until_drained`])
    /// keep this worker's heartbeat and take over the steps of workers whose
    /// heartbeat lapsed (default: [`HeartbeatPolicy::default`](super::HeartbeatPolicy),
    /// every 5 s, lapsing after 15 s); `None`: no heartbeat (this worker's
    /// claims then return only when their leases lapse, and it takes over
    /// nothing). See `engine/heartbeat.rs`.
    pub fn heartbeat(mut self, policy: Option<super::HeartbeatPolicy>) -> Self {
        self.heartbeat = policy;
        self
    }

    /// How often a shipped order's delivery is checked (default 1 h).
    pub fn delivery_check_every(mut self, every: TimeDelta) -> Self {
        self.delivery_check_every = every;
        self
    }

    /// Whether the carrier confirmed delivery of a shipped order at `now`
    /// (default: 48 h after shipment).
    pub fn delivery_confirmation(
        mut self,
        check: impl Fn(&Order, DateTime<Utc>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.delivery = Arc::new(check);
        self
    }

    /// Whether confirmations from the world drive the orders in states that
    /// wait for them (`waits_for:` in the machine; default `false`).
    ///
    /// When `true`, a worker does not move an order out of a waiting state:
    /// its work item is due again when the state's timeout falls due (a
    /// `transition:` timeout then takes its transition, e.g. to manual
    /// review; an `escalate:` timeout raises the order's priority and the
    /// order keeps waiting), and only [`Engine::confirm_shipped`] /
    /// [`Engine::confirm_delivered`] (TikTok's `IN_TRANSIT` / `DELIVERED`)
    /// move it on, through the machine. A state that waits for `delivered`
    /// no longer asks the [`delivery_confirmation`](Self::delivery_confirmation)
    /// check. When `false` (the simulator, the command line without a
    /// configuration) `waits_for` is ignored: orders move on as from any
    /// other state.
    pub fn external_events(mut self, on: bool) -> Self {
        self.external_events = on;
        self
    }

    /// Declares this engine the only one ingesting its tenant's orders into
    /// a store that held none of them when it was built (the simulator,
    /// which checks that its store is fresh): every order the store has,
    /// this engine stored, so [`Engine::ingest_many`] takes the ids it
    /// remembers as the store's and asks the store nothing, as long as it
    /// has forgotten none of them. A wrong declaration never stores an
    /// order twice (the store's create is idempotent), but a duplicate the
    /// engine does not remember is then enriched and evaluated again. Off
    /// by default.
    pub fn sole_ingester(mut self, on: bool) -> Self {
        self.sole_ingester = on;
        self
    }

    /// Builds the engine; refuses when an action type the machine or the
    /// rule pack uses has no handler.
    pub fn build(mut self) -> Result<Engine<S>, BuildError> {
        let registry = self.handlers.take().unwrap_or_default();
        let missing = registry.missing(used_action_types(&self.machine, &self.pack));
        if !missing.is_empty() {
            return Err(BuildError::MissingHandlers { missing });
        }
        let mut executor = Executor::new(registry, self.clock.clone(), self.executor);
        if let Some(s) = self.sleeper {
            executor = executor.with_sleeper(s);
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                store: self.store,
                machine: self.machine,
                rules: Mutex::new(RuleEngine::new(self.pack.clone())),
                pack: Mutex::new(self.pack),
                gate: Arc::new(tokio::sync::RwLock::new(())),
                clock: self.clock,
                executor,
                lanes: self.lanes,
                enricher: self.enricher.map(Mutex::new),
                tenant: self.tenant,
                worker: self.worker,
                delivery_check_every: self.delivery_check_every,
                max_chain: self.max_chain,
                delivery: self.delivery,
                serve_all_tenants: self.serve_all_tenants,
                external_events: self.external_events,
                sole_ingester: self.sole_ingester,
                heartbeat: self.heartbeat,
                cache: Mutex::new(super::cache::OrderCache::default()),
                known: Mutex::new(Default::default()),
                restored: tokio::sync::OnceCell::new(),
                stranded: Mutex::new(Vec::new()),
            }),
        })
    }
}

/// The action types `machine`'s transitions (actions, rollbacks and their
/// compensations) and `pack`'s rules run through handlers.
pub(super) fn used_action_types<'a>(
    machine: &'a Machine,
    pack: &'a RulePack,
) -> Vec<&'a ActionType> {
    let transitions = machine
        .transitions()
        .iter()
        .flat_map(|t| t.actions.iter().chain(&t.rollback));
    let rules = pack.rules().iter().flat_map(|r| &r.actions);
    transitions
        .chain(rules)
        .flat_map(|a| std::iter::once(a).chain(a.rollback.as_deref()))
        .map(|a| &a.kind)
        .filter(|k| !rule_actions::applied_by_engine(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ActionOutcome;
    use crate::store::MemoryStore;

    #[test]
    fn without_handlers_build_names_every_action_type_left_without_one() {
        let Err(BuildError::MissingHandlers { missing }) =
            EngineBuilder::new(MemoryStore::new()).build()
        else {
            panic!("an engine without handlers must not build");
        };
        let names: Vec<&str> = missing.iter().map(ActionType::as_str).collect();
        for used in [
            "check_inventory",
            "reserve_inventory",
            "generate_shipping_label",
        ] {
            assert!(names.contains(&used), "{used} in {names:?}");
        }
        assert!(
            !names.contains(&"escalate_priority"),
            "applied by the engine"
        );
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        // Async closures for exactly those types make it build.
        let registry = HandlerRegistry::empty().with_fn(missing, |call| async move {
            Ok(ActionOutcome(
                serde_json::json!({ "order": call.order.tiktok_order_id }),
            ))
        });
        assert!(
            EngineBuilder::new(MemoryStore::new())
                .handlers(registry)
                .build()
                .is_ok()
        );
        assert!(
            EngineBuilder::new(MemoryStore::new())
                .simulated_handlers()
                .build()
                .is_ok()
        );
    }
}
