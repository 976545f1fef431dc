//! The simulation report: one value, written as the terminal summary
//! ([`terminal`]), the JSON report ([`json`], keys of the spec's `cli.md`)
//! and the self-contained HTML report ([`html`]).

pub mod compare;
pub mod html;
pub mod json;
pub mod terminal;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::faults::ServiceStats;
pub use super::fulfil::report::FulfilmentReport;
use super::score::Score;

/// Everything a simulation found. Maps are `BTreeMap`s: the output is
/// ordered the same on every run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Its description.
    pub description: String,
    /// The seed used.
    pub seed: u64,
    /// `virtual` (simulated time) or `wall` (real time, throughput).
    pub mode: &'static str,
    /// The store kind (`memory`, `sqlite`, `postgres`).
    pub store: String,
    /// Simulated time from the scenario's start to the end of the run.
    pub simulated_seconds: f64,
    /// Wall-clock time of the run (not part of the determinism guarantee).
    pub wall_seconds: f64,
    /// Orders.
    pub orders: Orders,
    /// The largest count of orders placed in any one-hour window (shop-wide).
    pub peak_orders_per_hour: u64,
    /// The largest count of one product's orders in any one-hour window.
    pub peak_product_orders_per_hour: u64,
    /// Per priority lane.
    pub lanes: BTreeMap<String, Lane>,
    /// Per detector (`reference`, `statistical`).
    pub viral_detection: BTreeMap<String, Score>,
    /// Times each rule of the pack fired.
    pub rules: BTreeMap<String, u64>,
    /// Action counters of the executor.
    pub actions: Actions,
    /// Circuit breakers that opened: when, and when they closed again.
    pub breakers: BTreeMap<String, Breaker>,
    /// Calls and injected faults per simulated service.
    pub services: BTreeMap<String, Service>,
    /// The ground-truth spikes.
    pub spikes: Vec<SpikeTruth>,
    /// Engine work: claim rounds and steps.
    pub engine: EngineWork,
    /// Per-minute series for the charts.
    pub series: Series,
    /// Packing, pickups, deadlines, stock (`simulator.md`).
    pub fulfilment: FulfilmentReport,
}

/// The `orders` object.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Orders {
    /// Distinct orders placed.
    pub generated: u64,
    /// Distinct orders stored by the engine.
    pub ingested: u64,
    /// Webhook deliveries the engine recognised as already known.
    pub duplicates_ignored: u64,
    /// Orders neither in a terminal state nor legitimately in flight at the
    /// end (never stored, or stuck in an automatic state with no work
    /// queued). Must be 0.
    pub lost: u64,
    /// Orders by state at the end.
    pub by_final_state: BTreeMap<String, u64>,
    /// Webhook deliveries made (duplicates included).
    pub deliveries: u64,
    /// Deliveries the engine refused (invalid orders).
    pub refused: u64,
    /// Orders still legitimately in flight at the end: shipped and waiting
    /// for the carrier's confirmation, or with a step scheduled.
    pub in_flight: u64,
    /// Orders waiting for a person (manual review) at the end.
    pub manual_review: u64,
    /// Customer cancellation requests made.
    pub cancel_requests: u64,
    /// Of which refused because the order had already shipped (or was gone).
    pub cancel_refused: u64,
}

/// Percentiles of a duration, in milliseconds (none without samples).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Pct {
    /// Median.
    pub p50: Option<u64>,
    /// 95th percentile.
    pub p95: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
}

impl Pct {
    /// Nearest-rank percentiles of `v` (sorted in place).
    pub fn of(v: &mut [u64]) -> Pct {
        v.sort_unstable();
        let at = |q: f64| -> Option<u64> {
            if v.is_empty() {
                return None;
            }
            let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[rank - 1])
        };
        Pct {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: v.last().copied(),
        }
    }
}

/// One lane's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Lane {
    /// Orders in the lane at the end.
    pub orders: u64,
    /// Time each step waited between becoming due and starting (delivery
    /// checks and steps after a failure or a manual action excluded; an
    /// order's first step counts from its webhook's arrival).
    pub queue_wait_ms: Pct,
    /// Placement (`created_at`) to shipped, once per order that shipped:
    /// its first step into a `Shipped` or `Delivered` state, as the
    /// dashboard's time to ship (`store::Dashboard`) counts it.
    pub time_to_ship_ms: Pct,
    /// The most items due at once (sampled every simulated minute and at
    /// every claim round).
    pub max_queue_depth: u64,
}

/// The `actions` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Actions {
    /// Handler calls made.
    pub attempts: u64,
    /// Of which retries.
    pub retries: u64,
    /// Actions that failed for good.
    pub failures: u64,
    /// Times a circuit breaker opened.
    pub circuit_opened: u64,
}

/// One breaker's history.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Breaker {
    /// Periods it was open or half-open: (opened, closed; none if still open).
    pub open_periods: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// `closed` or `open` at the end.
    pub final_state: String,
}

/// One service's counters and outage windows.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Service {
    /// Counters.
    #[serde(flatten)]
    pub stats: ServiceStats,
    /// Outage windows.
    pub outages: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// A ground-truth spike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpikeTruth {
    /// The product.
    pub product_id: String,
    /// Ramp start.
    pub start: DateTime<Utc>,
    /// Decay end.
    pub end: DateTime<Utc>,
}

/// Engine work counters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct EngineWork {
    /// Claim rounds run.
    pub rounds: u64,
    /// Work items claimed.
    pub claimed: u64,
    /// Steps recorded (state changes).
    pub recorded: u64,
    /// Steps that lost a race and were retried.
    pub lost_races: u64,
    /// Orders placed per wall-clock second of the run.
    pub orders_per_wall_second: f64,
}

/// Per-minute series.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Series {
    /// The first minute.
    pub start: Option<DateTime<Utc>>,
    /// Orders placed per minute.
    pub arrivals_per_minute: Vec<u32>,
    /// Items due per lane, sampled each minute.
    pub queue_depth: BTreeMap<String, Vec<u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = Pct::of(&mut v);
        assert_eq!(
            (p.p50, p.p95, p.p99, p.max),
            (Some(50), Some(95), Some(99), Some(100))
        );
        assert_eq!(Pct::of(&mut []), Pct::default());
    }
}
