//! The `fulfilment` key of the JSON report (`simulator.md`): late shipments
//! and auto-cancellations overall, per lane and per impact, the late
//! dispatch rate, the packing backlog over time, stock-outs and the packing
//! utilisation.

use std::collections::BTreeMap;

use serde::Serialize;

use super::floor::{FloorStats, Tally, rate};
use super::policy::Policy;
use super::spec::{FulfilmentSpec, clock};
use super::stock::StockStats;

/// The shop's fulfilment settings, as the report states them.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Capacity {
    /// The shifts, e.g. `08:00-20:00 3 stations x 40/h`; empty: unlimited.
    pub shifts: Vec<String>,
    /// Orders the shifts pack in a day (null: unlimited).
    pub orders_per_day: Option<f64>,
    /// The carrier's daily pickup (null: a packed parcel leaves at once).
    pub pickup_cutoff: Option<String>,
    /// The ship-by SLA of orders without a deadline, in hours.
    pub ship_by_hours: f64,
    /// The platform's auto-cancellation, hours after placement (null: never).
    pub auto_cancel_after_hours: Option<f64>,
}

/// Packing figures.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Packing {
    /// Orders packed.
    pub packed: u64,
    /// Orders the stations could have packed over the run (null: unlimited).
    pub capacity: Option<u64>,
    /// `packed / capacity` (null: unlimited).
    pub utilisation: Option<f64>,
    /// The longest packing queue.
    pub max_backlog: u64,
}

/// Series for the charts.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct FulfilmentSeries {
    /// Orders waiting for packing at the end of each simulated minute.
    pub backlog_per_minute: Vec<u64>,
    /// Orders handed to the carrier per simulated hour.
    pub shipped_per_hour: Vec<u64>,
    /// Of which late.
    pub late_per_hour: Vec<u64>,
}

/// The `fulfilment` object.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct FulfilmentReport {
    /// Who was packed first: `lanes` or `fifo`.
    pub policy: String,
    /// The settings.
    pub capacity: Capacity,
    /// Orders handed to the carrier.
    pub shipped: u64,
    /// Of which after their ship-by deadline.
    pub late: u64,
    /// `late / shipped`: the figure TikTok Shop judges sellers by.
    pub late_dispatch_rate: f64,
    /// Orders the platform cancelled because they had not shipped in time.
    pub auto_cancelled: u64,
    /// Orders still waiting for packing or pickup when the run ended.
    pub unshipped_at_end: u64,
    /// Orders that left the packing queue unshipped (manual review after
    /// the machine's timeout, or a customer's cancellation).
    pub left_packing_unshipped: u64,
    /// Engine confirmations refused (the order had moved on).
    pub refused_confirmations: u64,
    /// Per lane (`high`, `urgent`, `standard`, `automated`).
    pub by_lane: BTreeMap<String, Tally>,
    /// Per impact (`VIRAL`, `HIGH`, `MED`, `AUTO`).
    pub by_impact: BTreeMap<String, Tally>,
    /// Packing.
    pub packing: Packing,
    /// Stock.
    pub stock: StockStats,
    /// Series for the charts.
    pub series: FulfilmentSeries,
}

impl FulfilmentReport {
    /// The report of a finished floor.
    pub fn new(
        policy: Policy,
        spec: &FulfilmentSpec,
        stats: FloorStats,
        stock: StockStats,
        unshipped: u64,
        refused: u64,
    ) -> Self {
        let by_lane: BTreeMap<String, Tally> = stats
            .by_lane
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        let by_impact: BTreeMap<String, Tally> = stats
            .by_impact
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), *v))
            .collect();
        let shipped = by_lane.values().map(|t| t.shipped).sum();
        let late = by_lane.values().map(|t| t.late).sum();
        let auto_cancelled = by_lane.values().map(|t| t.auto_cancelled).sum();
        let limited = spec.limited();
        let capacity = limited.then(|| stats.capacity.floor() as u64);
        FulfilmentReport {
            policy: policy.as_str().to_owned(),
            capacity: Capacity {
                shifts: spec
                    .shifts
                    .iter()
                    .map(|s| {
                        format!(
                            "{}-{} {} stations x {}/h",
                            clock(s.start),
                            clock(s.end),
                            s.stations,
                            s.orders_per_station_hour
                        )
                    })
                    .collect(),
                orders_per_day: limited.then(|| spec.per_day().round()),
                pickup_cutoff: spec.pickup_cutoff.map(clock),
                ship_by_hours: spec.ship_by.num_minutes() as f64 / 60.0,
                auto_cancel_after_hours: spec
                    .auto_cancel_after
                    .map(|t| t.num_minutes() as f64 / 60.0),
            },
            shipped,
            late,
            late_dispatch_rate: rate(late, shipped),
            auto_cancelled,
            unshipped_at_end: unshipped,
            left_packing_unshipped: stats.left_unshipped,
            refused_confirmations: refused,
            by_lane,
            by_impact,
            packing: Packing {
                packed: stats.packed,
                capacity,
                utilisation: capacity.map(|c| rate(stats.packed, c)),
                max_backlog: stats.max_backlog,
            },
            stock,
            series: FulfilmentSeries {
                backlog_per_minute: stats.backlog,
                shipped_per_hour: stats.shipped_per_hour,
                late_per_hour: stats.late_per_hour,
            },
        }
    }
}
