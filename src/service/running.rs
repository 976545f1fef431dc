//! [`Running`]: a started service, and how it stops.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::singleton::Elector;
use super::{InboxAppender, stopped};
use crate::engine::Engine;
use crate::store::Store;
use crate::tiktok::{OrderApi, Processor};

/// A started service: its inbox, its engines (one per tenant), and the
/// graceful [`stop`](Running::stop). Dropping it tells every task to stop
/// without waiting for them.
pub struct Running<S, A> {
    pub(super) processor: Arc<Processor<S, A>>,
    pub(super) elector: Arc<Elector<S>>,
    pub(super) appender: InboxAppender,
    pub(super) stop: watch::Sender<bool>,
    pub(super) tasks: Vec<JoinHandle<()>>,
    pub(super) append_task: Option<JoinHandle<()>>,
}

impl<S, A> std::fmt::Debug for Running<S, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("processor", &self.processor)
            .finish_non_exhaustive()
    }
}

impl<S, A> Drop for Running<S, A> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl<S: Store + 'static, A: OrderApi + 'static> Running<S, A> {
    /// The inbox: what a webhook receiver appends verified notifications to.
    pub fn inbox(&self) -> &InboxAppender {
        &self.appender
    }

    /// The processor: the engines per tenant, the shop routing, counters.
    pub fn processor(&self) -> &Arc<Processor<S, A>> {
        &self.processor
    }

    /// The engine serving `tenant`, for reads and commands.
    pub fn engine(&self, tenant: &str) -> Option<&Engine<S>> {
        self.processor.engine(tenant)
    }

    /// The tenant the TikTok shop `shop_id` is routed to.
    pub fn tenant_of(&self, shop_id: &str) -> Option<std::sync::Arc<str>> {
        self.processor.tenant_of(shop_id)
    }

    /// This replica's name ([`ServiceBuilder::replica`](super::ServiceBuilder::replica)).
    pub fn replica(&self) -> &str {
        self.elector.holder()
    }

    /// The singleton jobs this replica runs (the leases it holds, by
    /// name, with their fencing token; see `service/singleton.rs`).
    pub fn singletons(&self) -> super::Singletons<S> {
        super::Singletons(self.elector.clone())
    }

    /// Completes once the service is told to stop.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        stopped(self.stop.subscribe())
    }

    /// Stops gracefully: the inbox refuses new appends and writes those
    /// queued; the workers claim nothing more, and their round in flight
    /// stops chaining and finishes and is recorded within the stop grace
    /// ([`ServiceBuilder::stop_grace`](super::ServiceBuilder::stop_grace)),
    /// else is dropped and its steps given back at once; the inbox
    /// processor's round likewise; then it returns.
    pub async fn stop(mut self) {
        let started = std::time::Instant::now();
        tracing::info!("service stopping");
        let _ = self.stop.send(true);
        for t in std::mem::take(&mut self.tasks) {
            let _ = t.await;
        }
        if let Some(t) = self.append_task.take() {
            let _ = t.await;
        }
        // The jobs stopped: another replica takes them over on its next tick.
        if let Some(now) = self
            .processor
            .tenants()
            .next()
            .and_then(|t| self.processor.engine(t))
            .map(|e| e.now())
        {
            self.elector.release_all(now).await;
        }
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "service stopped"
        );
    }
}
