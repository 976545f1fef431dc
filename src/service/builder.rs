//! [`ServiceBuilder`]: what a host says before the service starts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};

use super::singleton::{Elector, default_replica_name};
use super::{Running, ServiceError, appender, inbox, reconcile, retention, stopped};
use crate::engine::{Backoff, Engine, EngineBuilder, RunPolicy};
use crate::store::Store;
use crate::tiktok::{FakeOrderApi, OrderApi, Processor};

/// How long a stopping inbox processor waits for its round in flight when
/// the policy sets no `stop_grace`.
const INBOX_STOP_GRACE: Duration = Duration::from_secs(10);

/// Adjusts each tenant's [`EngineBuilder`] before it is built.
type Configure<S> = Box<dyn Fn(EngineBuilder<S>) -> EngineBuilder<S> + Send>;

/// Builds and starts the service; from [`Service::builder`](super::Service::builder).
pub struct ServiceBuilder<S, A = FakeOrderApi> {
    store: S,
    api: Arc<A>,
    tenants: Vec<String>,
    shops: Vec<(String, String)>,
    engines: Vec<Engine<S>>,
    configure: Option<Configure<S>>,
    policy: RunPolicy,
    inbox_retention: Duration,
    reconcile_every: Option<Duration>,
    runtime: Option<Handle>,
    inbox_runtime: Option<Handle>,
    replica: Option<String>,
}

impl<S, A> std::fmt::Debug for ServiceBuilder<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("tenants", &self.tenants)
            .field("shops", &self.shops)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S: Store + Clone + 'static> ServiceBuilder<S> {
    /// A builder over `store`: no tenant yet, an Order API that knows no
    /// orders, reconciliation off, 100 ms idle polling, rounds at most
    /// every 25 ms, processed inbox entries kept 7 days.
    pub(super) fn new(store: S) -> Self {
        ServiceBuilder {
            store,
            api: Arc::new(FakeOrderApi::new()),
            tenants: Vec::new(),
            shops: Vec::new(),
            engines: Vec::new(),
            configure: None,
            policy: RunPolicy {
                min_round: Duration::from_millis(25),
                ..RunPolicy::polling(Duration::from_millis(100))
            },
            inbox_retention: Duration::from_secs(7 * 24 * 3600),
            reconcile_every: None,
            runtime: None,
            inbox_runtime: None,
            replica: None,
        }
    }
}

impl<S: Store + Clone + 'static, A: OrderApi + 'static> ServiceBuilder<S, A> {
    /// The TikTok Shop Order API the inbox processor fetches orders from
    /// and reconciliation polls.
    pub fn order_api<B: OrderApi + 'static>(self, api: Arc<B>) -> ServiceBuilder<S, B> {
        ServiceBuilder {
            store: self.store,
            api,
            tenants: self.tenants,
            shops: self.shops,
            engines: self.engines,
            configure: self.configure,
            policy: self.policy,
            inbox_retention: self.inbox_retention,
            reconcile_every: self.reconcile_every,
            runtime: self.runtime,
            inbox_runtime: self.inbox_runtime,
            replica: self.replica,
        }
    }

    /// Serves these tenants (one engine each, built by
    /// [`engines_with`](Self::engines_with)'s closure).
    pub fn tenants<T: Into<String>>(mut self, tenants: impl IntoIterator<Item = T>) -> Self {
        self.tenants.extend(tenants.into_iter().map(Into::into));
        self
    }

    /// Routes the TikTok shop `shop_id` to `tenant` (served too).
    pub fn shop(mut self, shop_id: impl Into<String>, tenant: impl Into<String>) -> Self {
        self.shops.push((shop_id.into(), tenant.into()));
        self
    }

    /// How each tenant's engine is built: `configure` gets a builder over
    /// the store, for the tenant, and sets the handlers, clock, rules, …
    pub fn engines_with(
        mut self,
        configure: impl Fn(EngineBuilder<S>) -> EngineBuilder<S> + Send + 'static,
    ) -> Self {
        self.configure = Some(Box::new(configure));
        self
    }

    /// Serves with engines the host built (one per tenant; these tenants
    /// need no [`tenants`](Self::tenants) entry).
    pub fn engine(mut self, engine: Engine<S>) -> Self {
        self.engines.push(engine);
        self
    }

    /// How often idle workers and the idle inbox processor look for work.
    pub fn idle_poll(mut self, every: Duration) -> Self {
        self.policy.idle_poll = every;
        self
    }

    /// The shortest time between two rounds of the workers and of the inbox
    /// processor: what arrives meanwhile is handled together (fewer,
    /// larger store transactions).
    pub fn min_round(mut self, every: Duration) -> Self {
        self.policy.min_round = every;
        self
    }

    /// How long, on [`Running::stop`], the workers' and the inbox
    /// processor's rounds in flight may take to finish before they are
    /// dropped and their claims given back (default: the workers' longest
    /// lane timeout; the inbox processor's 10 s).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.policy.stop_grace = Some(grace);
        self
    }

    /// The workers' error backoff: the first pause and the cap.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.policy.backoff_first = first;
        self.policy.backoff_max = max;
        self
    }

    /// How long processed inbox entries are kept (checked hourly).
    pub fn inbox_retention(mut self, keep: Duration) -> Self {
        self.inbox_retention = keep;
        self
    }

    /// Polls the Order API for missed changes every `every` (`None`: off,
    /// the default).
    pub fn reconcile_every(mut self, every: Option<Duration>) -> Self {
        self.reconcile_every = every;
        self
    }

    /// Where the workers, the inbox processor, retention and
    /// reconciliation run (default: the runtime `start` is called on).
    pub fn runtime(mut self, rt: Handle) -> Self {
        self.runtime = Some(rt);
        self
    }

    /// Where the inbox appender runs (default: the runtime `start` is
    /// called on); a runtime of its own keeps acknowledgements from
    /// queueing behind processing.
    pub fn inbox_runtime(mut self, rt: Handle) -> Self {
        self.inbox_runtime = Some(rt);
        self
    }

    /// This replica's name among several processes on one database (what
    /// holds its singleton leases, and what logs and metrics call it);
    /// default `HOST-PID`.
    pub fn replica(mut self, name: impl Into<String>) -> Self {
        self.replica = Some(name.into());
        self
    }

    /// The engines: those given, then one per other tenant (configured
    /// ones and those of the shops), built by the closure.
    fn build_engines(&mut self) -> Result<Vec<Engine<S>>, ServiceError> {
        let mut engines = std::mem::take(&mut self.engines);
        let have: BTreeSet<String> = engines.iter().map(|e| e.tenant().to_owned()).collect();
        let wanted: BTreeSet<&str> = self
            .tenants
            .iter()
            .chain(self.shops.iter().map(|(_, t)| t))
            .map(String::as_str)
            .filter(|t| !have.contains(*t))
            .collect();
        for tenant in wanted {
            let b = EngineBuilder::new(self.store.clone()).tenant(tenant);
            let b = match &self.configure {
                Some(f) => f(b),
                None => b,
            };
            engines.push(b.build()?);
        }
        Ok(engines)
    }

    /// Starts the service: the inbox appender, the inbox processor, the
    /// workers (the first engine's, serving every tenant), retention and,
    /// if enabled, reconciliation.
    pub async fn start(mut self) -> Result<Running<S, A>, ServiceError> {
        let engines = self.build_engines()?;
        let worker = engines.first().cloned().ok_or(ServiceError::NoTenant)?;
        let mut processor = Processor::new(self.api.clone());
        for e in engines {
            processor.add_engine(e);
        }
        for (shop, tenant) in &self.shops {
            processor.add_shop(shop, tenant);
        }
        let processor = Arc::new(processor);
        let (stop, stop_rx) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let rt = self.runtime.take().unwrap_or_else(Handle::current);
        let inbox_rt = self.inbox_runtime.take().unwrap_or_else(Handle::current);
        let (appender, append_task) =
            appender::spawn(&inbox_rt, self.store.clone(), wake.clone(), stop_rx.clone());
        let policy = self.policy;
        let backoff = Backoff::new(policy.backoff_first, policy.backoff_max);
        let mut tasks = Vec::new();
        let (p, rx) = (processor.clone(), stop_rx.clone());
        let pace = (
            policy.idle_poll,
            policy.min_round,
            policy.stop_grace.unwrap_or(INBOX_STOP_GRACE),
        );
        tasks.push(rt.spawn(async move {
            inbox::process(p, wake, pace, backoff, stopped(rx)).await;
        }));
        let rx = stop_rx.clone();
        tasks.push(rt.spawn(async move {
            if let Err(e) = worker.run_with(policy, stopped(rx)).await {
                tracing::error!(task = "workers", error = %e, "the workers' closing read failed");
            }
        }));
        let replica: Arc<str> = self
            .replica
            .take()
            .unwrap_or_else(default_replica_name)
            .into();
        let elector = Arc::new(Elector::new(self.store.clone(), replica));
        let (p, rx, keep) = (processor.clone(), stop_rx.clone(), self.inbox_retention);
        let e = elector.clone();
        tasks.push(rt.spawn(async move {
            retention::prune(p, e, keep, stopped(rx)).await;
        }));
        if let Some(every) = self.reconcile_every {
            let (p, rx, e) = (processor.clone(), stop_rx.clone(), elector.clone());
            let backoff = Backoff::new(policy.backoff_first, policy.backoff_max);
            tasks.push(rt.spawn(async move {
                reconcile::run(p, e, every, backoff, stopped(rx)).await;
            }));
        }
        Ok(Running {
            processor,
            elector,
            appender,
            stop,
            tasks,
            append_task: Some(append_task),
        })
    }
}
