//! The fulfilment model: what a viral spike really breaks. Packing stations
//! and shifts, stock with reorder lead times, the carrier's pickup cut-off,
//! ship-by deadlines and the platform's auto-cancellation.
//!
//! | module | what it is |
//! |---|---|
//! | [`spec`] | the scenario's `fulfilment:` section |
//! | [`policy`] | who is packed first: the engine's lanes, or one FIFO lane |
//! | [`floor`] | the packing queue, pickups, deliveries, lateness (in memory) |
//! | [`hook`] | the label handler that puts orders on the floor |
//! | [`stock`] | the stockroom: stock, reservations, reorders with lead time |
//! | [`report`] | the `fulfilment` key of the JSON report |
//!
//! **The hand-off.** The engine runs with external events on: an order's
//! chain of steps stops in `label_generated`, which waits for the carrier
//! (`waits_for: in_transit`). The floor packs waiting orders as capacity
//! allows, in the policy's order; at the pickup the driver confirms each
//! parcel to the engine ([`Engine::confirm_shipped`], the `ship` step with
//! its actions and history row), and the delivery after the transit time
//! ([`Engine::confirm_delivered`]). An order not shipped by its
//! auto-cancel time is cancelled through the engine (its label voided, its
//! stock released). Everything else is bookkeeping in memory: no store
//! read or write beyond those steps.

pub mod floor;
pub mod hook;
pub mod policy;
pub mod report;
pub mod spec;
pub mod stock;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::actions::ActionHandler;
use creatorflow::engine::external::External;
use creatorflow::store::OrderId;
use creatorflow::{AnyStore, Engine, EngineError};

use super::driver::SimError;
use super::faults::stable_hash;
use super::scenario::Scenario;
use super::traffic::Skewed;
use super::vclock::VirtualTime;
use floor::{Floor, Parcel};
pub use policy::Policy;
use stock::Stockroom;

/// Why the platform cancels an order.
pub const AUTO_CANCEL_REASON: &str = "auto-cancelled by TikTok Shop: not shipped in time";

/// The fulfilment model of one run.
pub struct Fulfilment {
    floor: Arc<Mutex<Floor>>,
    stock: Arc<Stockroom>,
    policy: Policy,
    transit: Skewed,
    seed: u64,
    /// Engine calls the engine refused (the order had moved on).
    refused: u64,
}

impl Fulfilment {
    /// The model of `scenario` under `policy`; limited stock applied to
    /// `product_ids` by popularity rank.
    pub fn new(
        scenario: &Scenario,
        policy: Policy,
        product_ids: &[String],
        start: DateTime<Utc>,
        seed: u64,
    ) -> Self {
        let spec = scenario.fulfilment.clone();
        let stock = scenario.stock.iter().filter_map(|(rank, units)| {
            product_ids
                .get(rank.saturating_sub(1) as usize)
                .map(|p| (p.clone(), *units))
        });
        Fulfilment {
            stock: Arc::new(Stockroom::new(
                stock,
                spec.reorder_lead_time,
                spec.expedited_lead_time,
            )),
            floor: Arc::new(Mutex::new(Floor::new(spec, policy, start))),
            policy,
            transit: Skewed::new(scenario.transit),
            seed,
            refused: 0,
        }
    }

    /// The inventory handler (wrap it in the inventory service's faults).
    pub fn stockroom(&self) -> Arc<dyn ActionHandler> {
        self.stock.clone()
    }

    /// `label` (the label service) telling the floor what it prints.
    pub fn label_hook(&self, label: Arc<dyn ActionHandler>) -> Arc<dyn ActionHandler> {
        Arc::new(hook::LabelHook::new(label, self.floor.clone()))
    }

    fn floor(&self) -> MutexGuard<'_, Floor> {
        self.floor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long after the traffic's drain the run may go on for orders
    /// still on the packing floor: until the platform's auto-cancellation
    /// (plus a day), or 14 days without one.
    pub fn patience(&self) -> TimeDelta {
        self.floor()
            .spec()
            .auto_cancel_after
            .map_or(TimeDelta::days(14), |t| t + TimeDelta::days(1))
    }

    /// Orders waiting for packing or pickup: the run goes on for them.
    pub fn busy(&self) -> bool {
        self.floor().busy()
    }

    /// Orders waiting for packing now.
    pub fn backlog(&self) -> usize {
        self.floor().backlog()
    }

    /// When the floor next needs the driver after `now`.
    pub fn next_event(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.floor().next_event(now)
    }

    /// The carrier's transit time of an order (a draw keyed by its id).
    fn transit_of(&self, tiktok_id: &str) -> TimeDelta {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(stable_hash(
            self.seed,
            &["transit", tiktok_id],
        ));
        TimeDelta::seconds((self.transit.sample(&mut rng) * 3600.0) as i64)
    }

    /// Does what is due on the floor by the virtual clock's `now`: packs,
    /// hands the picked-up parcels to the carrier (the `ship` step),
    /// confirms deliveries, and lets the platform cancel what did not ship
    /// in time. The floor is never locked across an engine call (the label
    /// hook needs it).
    pub async fn work(
        &mut self,
        engine: &Engine<AnyStore>,
        vt: &Arc<VirtualTime>,
    ) -> Result<(), SimError> {
        let now = vt.now();
        let (pickups, deliveries, cancels) = {
            let mut f = self.floor();
            f.pack_until(now);
            (f.pickups(now), f.deliveries(now), f.cancellations(now))
        };
        // A minute's pickups (then deliveries) in one engine call each: the
        // steps are planned one after another and written at once.
        if !pickups.is_empty() {
            let ids: Vec<OrderId> = pickups.iter().map(|p| p.id).collect();
            let shipped = vt
                .drive(engine.confirm_shipped_many(&ids, "picked up by the carrier"))
                .await??;
            for (p, r) in pickups.iter().zip(shipped) {
                // When it shipped: its step's time (the clock then).
                let at = match &r {
                    Ok(External::Moved { order, .. }) => order.order.state_changed_at,
                    _ => None,
                }
                .unwrap_or_else(|| vt.now());
                if self.moved(r)? {
                    let transit = self.transit_of(&p.tiktok_id);
                    self.floor().shipped(p, at, transit);
                }
            }
        }
        if !deliveries.is_empty() {
            let delivered = vt
                .drive(engine.confirm_delivered_many(&deliveries, "delivered by the carrier"))
                .await??;
            for r in delivered {
                self.moved(r)?;
            }
        }
        for p in cancels {
            self.auto_cancel(engine, vt, &p).await?;
        }
        Ok(())
    }

    async fn auto_cancel(
        &mut self,
        engine: &Engine<AnyStore>,
        vt: &Arc<VirtualTime>,
        p: &Parcel,
    ) -> Result<(), SimError> {
        match vt.drive(engine.cancel(p.id, AUTO_CANCEL_REASON)).await? {
            Ok(_) => self.floor().auto_cancelled(p),
            Err(EngineError::Store(e)) if !e.is_conflict() => return Err(e.into()),
            Err(_) => self.refused += 1,
        }
        Ok(())
    }

    /// Whether a confirmation moved the order (or found it there already).
    fn moved(&mut self, r: Result<External, EngineError>) -> Result<bool, SimError> {
        match r {
            Ok(External::Moved { .. } | External::Unchanged(_)) => Ok(true),
            Ok(_) => {
                self.refused += 1;
                Ok(false)
            }
            Err(EngineError::Store(e)) if !e.is_conflict() => Err(e.into()),
            Err(_) => {
                self.refused += 1;
                Ok(false)
            }
        }
    }

    /// The `fulfilment` report at the end of the run (`now`).
    pub fn report(&self, now: DateTime<Utc>) -> report::FulfilmentReport {
        let mut f = self.floor();
        f.pack_until(now);
        let unshipped = f.unshipped();
        let stats = f.finish();
        report::FulfilmentReport::new(
            self.policy,
            f.spec(),
            stats,
            self.stock.stats(now),
            unshipped,
            self.refused,
        )
    }
}
