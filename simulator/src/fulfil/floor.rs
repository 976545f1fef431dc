//! The packing floor: orders whose label is printed wait for a packing
//! station, packed parcels wait for the carrier's pickup, shipped ones for
//! delivery. Pure bookkeeping in memory, in simulated minutes; the driver
//! ([`super::Fulfilment`]) makes the engine calls it asks for.
//!
//! Capacity accrues minute by minute from the shifts at work (stations ×
//! orders per station-hour / 60); whole orders are packed from the front of
//! the queue in the [`Policy`]'s order at the end of each minute. A station
//! with nothing to pack cannot bank its time: capacity left when the queue
//! runs dry is lost. A parcel packed before the day's pickup cut-off leaves
//! at the cut-off, later ones at the next day's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::model::{Impact, Priority};
use creatorflow::store::OrderId;

use super::policy::{Key, Policy};
use super::spec::{DAY_MINUTES, FulfilmentSpec};

const MINUTE_MS: i64 = 60_000;

/// An order on the packing floor.
#[derive(Debug, Clone, PartialEq)]
pub struct Parcel {
    /// The stored order.
    pub id: OrderId,
    /// Its TikTok id (transit draws are keyed by it).
    pub tiktok_id: String,
    /// The lane the engine gave it.
    pub lane: Priority,
    /// The impact the rules gave it.
    pub impact: Impact,
    /// When it was placed.
    pub created: DateTime<Utc>,
    /// The ship-by deadline.
    pub deadline: DateTime<Utc>,
    /// When its label was printed (it joined the packing queue).
    pub queued: DateTime<Utc>,
}

/// Shipments, lateness and cancellations of one group (a lane, an impact).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Tally {
    /// Orders handed to the carrier.
    pub shipped: u64,
    /// Of which after their ship-by deadline.
    pub late: u64,
    /// `late / shipped` (0 when none shipped).
    pub late_rate: f64,
    /// Orders the platform cancelled because they had not shipped in time.
    pub auto_cancelled: u64,
}

impl Tally {
    fn finish(&mut self) {
        self.late_rate = rate(self.late, self.shipped);
    }
}

/// `num / den`, 0 when `den` is 0, rounded to 4 decimals.
pub fn rate(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        (num as f64 / den as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Where a parcel is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Waiting(Key),
    Packed(i64, Key),
    /// The machine gave up on it (manual review) before it shipped.
    Stalled,
}

/// The floor's running figures.
#[derive(Debug, Clone, Default)]
pub struct FloorStats {
    /// Per lane.
    pub by_lane: BTreeMap<Priority, Tally>,
    /// Per impact.
    pub by_impact: BTreeMap<Impact, Tally>,
    /// Orders packed.
    pub packed: u64,
    /// Orders the stations could have packed while the run lasted.
    pub capacity: f64,
    /// The longest packing queue.
    pub max_backlog: u64,
    /// Orders left the packing floor for manual review (the machine's
    /// timeout) or a customer's cancellation before shipping.
    pub left_unshipped: u64,
    /// Orders waiting for packing, at the end of each simulated minute.
    pub backlog: Vec<u64>,
    /// Orders shipped per simulated hour.
    pub shipped_per_hour: Vec<u64>,
    /// Of which late.
    pub late_per_hour: Vec<u64>,
}

/// The packing floor.
#[derive(Debug)]
pub struct Floor {
    spec: FulfilmentSpec,
    policy: Policy,
    start: DateTime<Utc>,
    waiting: BTreeMap<Key, Parcel>,
    packed: BTreeMap<(i64, Key), Parcel>,
    stalled: HashMap<OrderId, Parcel>,
    place: HashMap<OrderId, Place>,
    cancel_due: BTreeSet<(i64, OrderId)>,
    transit: BTreeSet<(i64, OrderId)>,
    /// The first minute (since the epoch) not yet packed.
    next_minute: i64,
    carry: f64,
    /// The figures so far.
    pub stats: FloorStats,
}

impl Floor {
    /// An empty floor from `start` on.
    pub fn new(spec: FulfilmentSpec, policy: Policy, start: DateTime<Utc>) -> Self {
        Floor {
            spec,
            policy,
            start,
            waiting: BTreeMap::new(),
            packed: BTreeMap::new(),
            stalled: HashMap::new(),
            place: HashMap::new(),
            cancel_due: BTreeSet::new(),
            transit: BTreeSet::new(),
            next_minute: start.timestamp_millis().div_euclid(MINUTE_MS),
            carry: 0.0,
            stats: FloorStats::default(),
        }
    }

    /// The scenario's fulfilment settings.
    pub fn spec(&self) -> &FulfilmentSpec {
        &self.spec
    }

    /// A printed label: the parcel joins the packing queue (once).
    pub fn label(&mut self, p: Parcel) {
        if self.place.contains_key(&p.id) {
            return;
        }
        if let Some(after) = self.spec.auto_cancel_after {
            let at = (p.created + after).timestamp_millis();
            self.cancel_due.insert((at, p.id));
        }
        let key = self.policy.key(&p);
        self.place.insert(p.id, Place::Waiting(key));
        self.waiting.insert(key, p);
        self.stats.max_backlog = self.stats.max_backlog.max(self.waiting.len() as u64);
    }

    /// A voided label (the order left for manual review, `to_review`, or was
    /// cancelled): the parcel leaves the floor.
    pub fn void(&mut self, id: OrderId, to_review: bool) {
        let parcel = match self.place.remove(&id) {
            Some(Place::Waiting(k)) => self.waiting.remove(&k),
            Some(Place::Packed(at, k)) => self.packed.remove(&(at, k)),
            Some(Place::Stalled) | None => return,
        };
        if let Some(p) = parcel {
            self.stats.left_unshipped += 1;
            if to_review {
                self.place.insert(id, Place::Stalled);
                self.stalled.insert(id, p);
            }
        }
    }

    /// Orders waiting for packing or pickup.
    pub fn busy(&self) -> bool {
        !self.waiting.is_empty() || !self.packed.is_empty()
    }

    /// Orders waiting for packing.
    pub fn backlog(&self) -> usize {
        self.waiting.len()
    }

    /// Packs, minute by minute, up to `now` (only whole minutes: a parcel
    /// labelled during a minute can be packed at its end at the earliest).
    pub fn pack_until(&mut self, now: DateTime<Utc>) {
        let until = now.timestamp_millis().div_euclid(MINUTE_MS);
        if !self.spec.limited() {
            // No limit: everything printed by now is packed now.
            let all = std::mem::take(&mut self.waiting);
            for (_, p) in all {
                self.stats.packed += 1;
                self.await_pickup(p, now);
            }
            while self.next_minute < until {
                self.sample_minute(0);
                self.next_minute += 1;
            }
            return;
        }
        while self.next_minute < until {
            let m = self.next_minute;
            let cap = self.spec.capacity_at(minute_of_day(m));
            self.stats.capacity += cap;
            self.carry += cap;
            let done = DateTime::from_timestamp_millis((m + 1) * MINUTE_MS).unwrap_or(now);
            while self.carry >= 1.0 {
                let Some((_, p)) = self.waiting.pop_first() else {
                    break;
                };
                self.carry -= 1.0;
                self.stats.packed += 1;
                self.await_pickup(p, done);
            }
            if self.waiting.is_empty() {
                // Idle stations cannot bank their time.
                self.carry = self.carry.min(1.0).fract();
            }
            self.sample_minute(self.waiting.len() as u64);
            self.next_minute += 1;
        }
    }

    fn sample_minute(&mut self, backlog: u64) {
        let index = self.next_minute - self.start.timestamp_millis().div_euclid(MINUTE_MS);
        if index >= 0 {
            let series = &mut self.stats.backlog;
            while series.len() as i64 <= index {
                series.push(backlog);
            }
        }
    }

    fn await_pickup(&mut self, p: Parcel, packed_at: DateTime<Utc>) {
        let at = self.pickup_after(packed_at).timestamp_millis();
        let key = self.policy.key(&p);
        self.place.insert(p.id, Place::Packed(at, key));
        self.packed.insert((at, key), p);
    }

    /// When a parcel packed at `t` leaves with the carrier.
    fn pickup_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let Some(cut) = self.spec.pickup_cutoff else {
            return t;
        };
        let day = t.timestamp_millis().div_euclid(86_400_000) * 86_400_000;
        let today = day + i64::from(cut) * MINUTE_MS;
        let at = if t.timestamp_millis() <= today {
            today
        } else {
            today + 86_400_000
        };
        DateTime::from_timestamp_millis(at).unwrap_or(t)
    }

    /// The parcels the carrier picks up by `now`, in the policy's order.
    pub fn pickups(&mut self, now: DateTime<Utc>) -> Vec<Parcel> {
        let now_ms = now.timestamp_millis();
        let mut out = Vec::new();
        while let Some(((at, _), _)) = self.packed.first_key_value() {
            if *at > now_ms {
                break;
            }
            if let Some((_, p)) = self.packed.pop_first() {
                self.place.remove(&p.id);
                out.push(p);
            }
        }
        out
    }

    /// Records that `p` was handed to the carrier at `at`; its delivery is
    /// confirmed `transit` later.
    pub fn shipped(&mut self, p: &Parcel, at: DateTime<Utc>, transit: TimeDelta) {
        let late = at > p.deadline;
        for t in [
            self.stats.by_lane.entry(p.lane).or_default(),
            self.stats.by_impact.entry(p.impact).or_default(),
        ] {
            t.shipped += 1;
            t.late += u64::from(late);
        }
        let hour = ((at - self.start).num_minutes().max(0) / 60) as usize;
        for series in [
            &mut self.stats.shipped_per_hour,
            &mut self.stats.late_per_hour,
        ] {
            if series.len() <= hour {
                series.resize(hour + 1, 0);
            }
        }
        self.stats.shipped_per_hour[hour] += 1;
        self.stats.late_per_hour[hour] += u64::from(late);
        self.transit
            .insert(((at + transit).timestamp_millis(), p.id));
    }

    /// Shipped orders whose delivery is confirmed by `now`.
    pub fn deliveries(&mut self, now: DateTime<Utc>) -> Vec<OrderId> {
        take_due(&mut self.transit, now)
    }

    /// Orders the platform cancels by `now` (not shipped by their
    /// auto-cancel time): they leave the floor.
    pub fn cancellations(&mut self, now: DateTime<Utc>) -> Vec<Parcel> {
        let mut out = Vec::new();
        for id in take_due(&mut self.cancel_due, now) {
            let p = match self.place.remove(&id) {
                Some(Place::Waiting(k)) => self.waiting.remove(&k),
                Some(Place::Packed(at, k)) => self.packed.remove(&(at, k)),
                Some(Place::Stalled) => self.stalled.remove(&id),
                None => None,
            };
            out.extend(p);
        }
        out
    }

    /// Records the platform's cancellation of `p`.
    pub fn auto_cancelled(&mut self, p: &Parcel) {
        self.stats.by_lane.entry(p.lane).or_default().auto_cancelled += 1;
        self.stats
            .by_impact
            .entry(p.impact)
            .or_default()
            .auto_cancelled += 1;
    }

    /// When something is next due on the floor after `now`: the end of the
    /// next minute with capacity (while orders wait), a pickup, a delivery,
    /// an auto-cancellation.
    pub fn next_event(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut next: Option<i64> = None;
        let mut consider = |ms: i64| next = Some(next.map_or(ms, |n| n.min(ms)));
        if !self.waiting.is_empty() {
            let from = self
                .next_minute
                .max(now.timestamp_millis().div_euclid(MINUTE_MS));
            if !self.spec.limited() {
                consider((from + 1) * MINUTE_MS);
            } else if let Some(m) = (from..from + 2 * i64::from(DAY_MINUTES))
                .find(|m| self.spec.capacity_at(minute_of_day(*m)) > 0.0)
            {
                consider((m + 1) * MINUTE_MS);
            }
        }
        if let Some(((at, _), _)) = self.packed.first_key_value() {
            consider(*at);
        }
        for set in [&self.transit, &self.cancel_due] {
            if let Some((at, _)) = set.first() {
                consider(*at);
            }
        }
        next.and_then(DateTime::from_timestamp_millis)
    }

    /// The final figures: rates computed.
    pub fn finish(&mut self) -> FloorStats {
        for p in Priority::ALL {
            self.stats.by_lane.entry(*p).or_default().finish();
        }
        for i in Impact::ALL {
            self.stats.by_impact.entry(*i).or_default().finish();
        }
        self.stats.clone()
    }

    /// Orders still waiting for packing or pickup.
    pub fn unshipped(&self) -> u64 {
        (self.waiting.len() + self.packed.len()) as u64
    }
}

fn minute_of_day(m: i64) -> u32 {
    m.rem_euclid(i64::from(DAY_MINUTES)) as u32
}

fn take_due(set: &mut BTreeSet<(i64, OrderId)>, now: DateTime<Utc>) -> Vec<OrderId> {
    let now_ms = now.timestamp_millis();
    let mut out = Vec::new();
    while let Some((at, _)) = set.first() {
        if *at > now_ms {
            break;
        }
        if let Some((_, id)) = set.pop_first() {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfil::spec::Shift;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn parcel(n: u128, lane: Priority, impact: Impact, queued: &str) -> Parcel {
        let at = t(queued);
        Parcel {
            id: OrderId::from_u128(n),
            tiktok_id: format!("o{n}"),
            lane,
            impact,
            created: at,
            deadline: at + TimeDelta::hours(30),
            queued: at,
        }
    }

    /// One station packing 60 an hour from 08:00 to 10:00, pickup at 09:00.
    fn floor(policy: Policy) -> Floor {
        let spec = FulfilmentSpec {
            shifts: vec![Shift {
                start: 8 * 60,
                end: 10 * 60,
                stations: 1,
                orders_per_station_hour: 60.0,
            }],
            pickup_cutoff: Some(9 * 60),
            ..FulfilmentSpec::default()
        };
        Floor::new(spec, policy, t("2025-06-12T00:00:00Z"))
    }

    fn packing_order(policy: Policy) -> Vec<u128> {
        let mut f = floor(policy);
        f.label(parcel(
            1,
            Priority::Standard,
            Impact::Med,
            "2025-06-12T07:00:00Z",
        ));
        f.label(parcel(
            2,
            Priority::High,
            Impact::Viral,
            "2025-06-12T07:10:00Z",
        ));
        f.label(parcel(
            3,
            Priority::Urgent,
            Impact::High,
            "2025-06-12T07:20:00Z",
        ));
        // Nothing is packed before the shift; one a minute after 08:00.
        f.pack_until(t("2025-06-12T08:00:00Z"));
        assert!(f.pickups(t("2025-06-12T09:00:00Z")).is_empty());
        f.pack_until(t("2025-06-12T08:03:00Z"));
        assert_eq!(f.backlog(), 0);
        f.pickups(t("2025-06-12T09:00:00Z"))
            .iter()
            .map(|p| p.id.as_u128())
            .collect()
    }

    #[test]
    fn lanes_pack_urgent_then_viral_fifo_packs_in_arrival_order() {
        assert_eq!(packing_order(Policy::Lanes), vec![3, 2, 1]);
        assert_eq!(packing_order(Policy::Fifo), vec![1, 2, 3]);
    }

    #[test]
    fn a_parcel_packed_after_the_cutoff_leaves_the_next_day() {
        let mut f = floor(Policy::Fifo);
        f.pack_until(t("2025-06-12T09:30:00Z"));
        f.label(parcel(
            1,
            Priority::Standard,
            Impact::Med,
            "2025-06-12T09:30:00Z",
        ));
        f.pack_until(t("2025-06-12T09:40:00Z"));
        assert!(f.pickups(t("2025-06-12T23:59:00Z")).is_empty());
        assert_eq!(
            f.next_event(t("2025-06-12T09:40:00Z")),
            Some(t("2025-06-13T09:00:00Z"))
        );
        f.pack_until(t("2025-06-13T09:00:00Z"));
        let p = f.pickups(t("2025-06-13T09:00:00Z"));
        assert_eq!(p.len(), 1);
        // Shipped 23.5 h after placement, within its 30 h: on time.
        f.shipped(&p[0], t("2025-06-13T09:00:00Z"), TimeDelta::hours(48));
        let stats = f.finish();
        assert_eq!(stats.by_lane[&Priority::Standard].shipped, 1);
        assert_eq!(stats.by_lane[&Priority::Standard].late, 0);
        // 08:00-10:00 the first day, 08:00-09:00 the next, at 60/h.
        assert_eq!(stats.capacity.round(), 180.0);
    }

    #[test]
    fn a_voided_label_leaves_the_floor() {
        let mut f = floor(Policy::Lanes);
        f.label(parcel(
            1,
            Priority::Standard,
            Impact::Med,
            "2025-06-12T07:00:00Z",
        ));
        f.label(parcel(
            1,
            Priority::Standard,
            Impact::Med,
            "2025-06-12T07:05:00Z",
        ));
        assert_eq!(f.backlog(), 1);
        f.void(OrderId::from_u128(1), false);
        assert!(!f.busy());
    }
}
