//! The scenario's `fulfilment:` section: packing shifts, the carrier's
//! pickup cut-off, the ship-by SLA, the platform's auto-cancellation and the
//! reorder lead times, read strictly with located errors.
//!
//! ```yaml
//! fulfilment:
//!   shifts:                       # packing shifts, every day (UTC); none: packing never waits
//!     - { start: "08:00", end: "20:00", stations: 3, orders_per_station_hour: 40 }
//!   pickup_cutoff: "17:00"        # the carrier's daily pickup; none: a packed order leaves at once
//!   ship_by: 48h                  # deadline of an order that has none (TikTok: 2 business days)
//!   auto_cancel_after: 7d         # TikTok cancels an order not shipped by then (none: never)
//!   reorder_lead_time: 7d         # an `auto_reorder_inventory` arrives after this
//!   expedited_lead_time: 2d       # … or this, with `expedite: true`
//! ```

use chrono::TimeDelta;
use creatorflow::diag::{Code, Diagnostics};
use creatorflow::yaml::Node;
use creatorflow::yaml::reader::{self, MapReader};

use crate::scenario::{count, duration, number_in};

/// Minutes in a day.
pub const DAY_MINUTES: u32 = 24 * 60;

/// One packing shift, every day.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    /// Start, minutes after midnight UTC.
    pub start: u32,
    /// End, minutes after midnight UTC (at or before `start`: the shift
    /// runs past midnight).
    pub end: u32,
    /// Packing stations staffed.
    pub stations: u32,
    /// Orders one station packs in an hour.
    pub orders_per_station_hour: f64,
}

impl Shift {
    /// Whether the shift is at work in minute `m` of the day.
    pub fn covers(&self, m: u32) -> bool {
        if self.start < self.end {
            self.start <= m && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }

    /// Orders the shift packs per minute.
    pub fn per_minute(&self) -> f64 {
        f64::from(self.stations) * self.orders_per_station_hour / 60.0
    }

    /// Minutes the shift lasts.
    pub fn minutes(&self) -> u32 {
        (self.end + DAY_MINUTES - self.start - 1) % DAY_MINUTES + 1
    }
}

/// What limits the shop's fulfilment.
#[derive(Debug, Clone, PartialEq)]
pub struct FulfilmentSpec {
    /// Packing shifts; empty: capacity is unlimited (an order is packed
    /// as soon as its label is printed).
    pub shifts: Vec<Shift>,
    /// The carrier's daily pickup, minutes after midnight UTC; `None`: a
    /// packed order is with the carrier at once.
    pub pickup_cutoff: Option<u32>,
    /// The ship-by deadline of an order that carries none.
    pub ship_by: TimeDelta,
    /// When the platform cancels an order not yet shipped, after its
    /// placement; `None`: never.
    pub auto_cancel_after: Option<TimeDelta>,
    /// Lead time of a standard reorder.
    pub reorder_lead_time: TimeDelta,
    /// Lead time of an expedited reorder (`expedite: true`).
    pub expedited_lead_time: TimeDelta,
}

impl Default for FulfilmentSpec {
    /// No section: unlimited packing, no pickup cut-off, a 48 h SLA, no
    /// auto-cancellation, reorders in 7 days (2 expedited).
    fn default() -> Self {
        FulfilmentSpec {
            shifts: Vec::new(),
            pickup_cutoff: None,
            ship_by: TimeDelta::hours(48),
            auto_cancel_after: None,
            reorder_lead_time: TimeDelta::days(7),
            expedited_lead_time: TimeDelta::days(2),
        }
    }
}

impl FulfilmentSpec {
    /// Whether packing capacity is limited at all.
    pub fn limited(&self) -> bool {
        !self.shifts.is_empty()
    }

    /// Orders the shifts can pack in minute `m` of the day.
    pub fn capacity_at(&self, m: u32) -> f64 {
        self.shifts
            .iter()
            .filter(|s| s.covers(m))
            .map(Shift::per_minute)
            .sum()
    }

    /// Orders the shifts can pack in a day.
    pub fn per_day(&self) -> f64 {
        self.shifts
            .iter()
            .map(|s| s.per_minute() * f64::from(s.minutes()))
            .sum()
    }
}

const KEYS: &[&str] = &[
    "shifts",
    "pickup_cutoff",
    "ship_by",
    "auto_cancel_after",
    "reorder_lead_time",
    "expedited_lead_time",
];
const SHIFT_KEYS: &[&str] = &["start", "end", "stations", "orders_per_station_hour"];

/// Reads the `fulfilment:` section.
pub fn read(node: &Node, d: &mut Diagnostics) -> Option<FulfilmentSpec> {
    let mut m = MapReader::new(node, "fulfilment", KEYS, d)?;
    let base = FulfilmentSpec::default();
    let shifts = match m.opt("shifts") {
        Some(n) => reader::seq(n, "shifts", d).map(|items| {
            items
                .iter()
                .filter_map(|i| read_shift(i, d))
                .collect::<Vec<_>>()
        }),
        None => Some(Vec::new()),
    };
    let cutoff = match m.opt("pickup_cutoff") {
        Some(n) => time_of_day(n, "pickup_cutoff", d).map(|t| Some(t % DAY_MINUTES)),
        None => Some(None),
    };
    let ship_by_node = m.opt("ship_by");
    let ship_by = match ship_by_node {
        Some(n) => positive_duration(n, "ship_by", d),
        None => Some(base.ship_by),
    };
    let cancel_node = m.opt("auto_cancel_after");
    let cancel = match cancel_node {
        Some(n) => positive_duration(n, "auto_cancel_after", d).map(Some),
        None => Some(None),
    };
    let lead = match m.opt("reorder_lead_time") {
        Some(n) => duration(n, "reorder_lead_time", d),
        None => Some(base.reorder_lead_time),
    };
    let expedited = match m.opt("expedited_lead_time") {
        Some(n) => duration(n, "expedited_lead_time", d),
        None => Some(base.expedited_lead_time),
    };
    m.finish(d);
    if let (Some(n), Some(Some(c)), Some(s)) = (cancel_node, cancel, ship_by)
        && c <= s
    {
        d.emit(
            Code::ScenarioCancelBeforeShipBy,
            n.pos,
            format!(
                "`auto_cancel_after` ({}h) must be longer than `ship_by` ({}h): an order is late before the platform cancels it",
                c.num_hours(),
                s.num_hours()
            ),
        );
        return None;
    }
    Some(FulfilmentSpec {
        shifts: shifts?,
        pickup_cutoff: cutoff?,
        ship_by: ship_by?,
        auto_cancel_after: cancel?,
        reorder_lead_time: lead?,
        expedited_lead_time: expedited?,
    })
}

fn positive_duration(node: &Node, key: &str, d: &mut Diagnostics) -> Option<TimeDelta> {
    let t = duration(node, key, d)?;
    if t <= TimeDelta::zero() {
        d.emit(
            Code::ScenarioNotPositive,
            node.pos,
            format!("`{key}` must be longer than 0"),
        );
        return None;
    }
    Some(t)
}

fn read_shift(node: &Node, d: &mut Diagnostics) -> Option<Shift> {
    let mut m = MapReader::new(node, "shift", SHIFT_KEYS, d)?;
    let start = m.req("start", d).and_then(|n| time_of_day(n, "start", d));
    let end = m.req("end", d).and_then(|n| time_of_day(n, "end", d));
    let stations = m
        .req("stations", d)
        .and_then(|n| count(n, "stations", d))
        .and_then(|n| u32::try_from(n).ok());
    let rate = m
        .req("orders_per_station_hour", d)
        .and_then(|n| number_in(n, "orders_per_station_hour", 0.1, 1e5, d));
    m.finish(d);
    let (start, end) = (start?, end?);
    let round_the_clock = start == 0 && end == DAY_MINUTES;
    if start % DAY_MINUTES == end % DAY_MINUTES && !round_the_clock {
        d.emit(
            Code::ScenarioEmptyShift,
            node.pos,
            format!(
                "the shift starts and ends at {}: write 00:00 to 24:00 for a shift round the clock",
                clock(start % DAY_MINUTES)
            ),
        );
        return None;
    }
    Some(Shift {
        start: start % DAY_MINUTES,
        end: if end == DAY_MINUTES {
            end
        } else {
            end % DAY_MINUTES
        },
        stations: stations?,
        orders_per_station_hour: rate?,
    })
}

/// `HH:MM` as minutes after midnight, 00:00 to 24:00.
fn time_of_day(node: &Node, key: &str, d: &mut Diagnostics) -> Option<u32> {
    let text = reader::string(node, key, d)?;
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let ok = h.len() == 2 && m.len() == 2;
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        (ok && m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        d.emit(
            Code::ScenarioBadTimeOfDay,
            node.pos,
            format!("`{key}` must be a time of day `HH:MM` (00:00 to 24:00, UTC), found `{text}`"),
        );
    }
    parsed
}

/// Minutes after midnight as `HH:MM`.
pub fn clock(m: u32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_past_midnight() {
        let s = Shift {
            start: 22 * 60,
            end: 6 * 60,
            stations: 2,
            orders_per_station_hour: 30.0,
        };
        assert!(s.covers(23 * 60) && s.covers(0) && !s.covers(6 * 60) && !s.covers(12 * 60));
        assert_eq!(s.minutes(), 8 * 60);
        let day = Shift {
            start: 0,
            end: DAY_MINUTES,
            ..s
        };
        assert!(day.covers(0) && day.covers(DAY_MINUTES - 1));
        assert_eq!(day.minutes(), DAY_MINUTES);
    }
}
