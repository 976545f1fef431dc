//! Ground truth and scoring of the viral detectors.
//!
//! The engine runs with the default [`ViralEnricher`] (the statistical
//! detector), wrapped in a [`ScoringEnricher`] that also runs the plan's
//! [`ReferenceDetector`] in the shadow on the same orders at the same
//! times, and notes when each detector flags a product. Scoring follows
//! `tests/viral.rs`:
//!
//! - an **alarm episode** is a run of flagged orders of one product; flagged
//!   orders less than [`MERGE`] apart belong to one episode (a detector that
//!   flickers around its threshold is not charged one alarm per flicker);
//! - an episode **matches** a spike of its product when it starts within the
//!   spike (`[start, end of decay]`); the spike is **detected** by its first
//!   matching episode, and the time to detect is that episode's start minus
//!   the spike's start; an episode that matches nothing is a **false alarm**;
//! - precision = matching episodes / episodes (none when there was no
//!   episode), recall = detected spikes / spikes (none without spikes).
//!
//! A detector flags at the time the engine handles the order (ingest), so
//! the time to detect includes webhook and batching delays.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use creatorflow::viral::{Detector, Enricher, Enrichment, ReferenceDetector, ViralEnricher};
use serde::Serialize;

use super::traffic::TrueSpike;

/// Flagged orders closer than this belong to one alarm episode.
pub const MERGE: TimeDelta = TimeDelta::minutes(30);

/// The detectors scored, in report order.
pub const DETECTORS: [&str; 2] = ["reference", "statistical"];

/// Alarm episodes of one detector, built online.
#[derive(Debug, Default, Clone)]
pub struct Episodes {
    /// Per product: whether its previous order was flagged, and its last flagged time.
    state: BTreeMap<String, (bool, Option<DateTime<Utc>>)>,
    /// Episode starts: (product, time), in the order they were raised.
    pub starts: Vec<(String, DateTime<Utc>)>,
}

impl Episodes {
    /// Notes that an order of `product` was (or was not) flagged at `t`.
    pub fn note(&mut self, product: &str, t: DateTime<Utc>, flagged: bool) {
        let (previous, last) = self.state.entry(product.to_owned()).or_default();
        if flagged {
            if !*previous && last.is_none_or(|l| t - l > MERGE) {
                self.starts.push((product.to_owned(), t));
            }
            *last = Some(t);
        }
        *previous = flagged;
    }
}

/// What the detectors saw, shared between the enricher and the driver.
#[derive(Debug, Default)]
pub struct DetectionLog {
    /// Episodes of each detector, by name.
    pub detectors: BTreeMap<&'static str, Episodes>,
}

/// The engine's enricher (statistical) plus the reference detector in the
/// shadow, noting every flag in a [`DetectionLog`].
pub struct ScoringEnricher {
    inner: ViralEnricher,
    reference: ReferenceDetector,
    log: Arc<Mutex<DetectionLog>>,
}

impl ScoringEnricher {
    /// The default enricher and a shadow reference detector, logging into `log`.
    pub fn new(log: Arc<Mutex<DetectionLog>>) -> Self {
        ScoringEnricher {
            inner: ViralEnricher::statistical(),
            reference: ReferenceDetector::new(),
            log,
        }
    }
}

impl Enricher for ScoringEnricher {
    fn enrich(&mut self, order: &mut Order, now: DateTime<Utc>) -> Enrichment {
        let out = self.inner.enrich(order, now);
        let shadow =
            self.reference
                .observe(&order.product_id, order.created_at, order.quantity, now);
        let at = now.max(order.created_at);
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.detectors.entry("statistical").or_default().note(
            &order.product_id,
            at,
            out.assessment.spike.is_some(),
        );
        log.detectors.entry("reference").or_default().note(
            &order.product_id,
            at,
            shadow.spike.is_some(),
        );
        out
    }

    fn record(
        &mut self,
        product_id: &str,
        customer: &str,
        created_at: DateTime<Utc>,
        quantity: u32,
    ) {
        self.inner
            .record(product_id, customer, created_at, quantity);
        self.reference.record(product_id, created_at, quantity);
    }
}

/// Minutes to detect: median and max (none when nothing was detected).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ttd {
    /// Median minutes from spike start to detection.
    pub median: Option<f64>,
    /// Longest.
    pub max: Option<f64>,
}

/// One detector's score (the `viral_detection.<name>` object of the report).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// Spikes in the ground truth.
    pub spikes: usize,
    /// Spikes detected.
    pub detected: usize,
    /// Episodes matching no spike.
    pub false_alarms: usize,
    /// Matching episodes / episodes; none without episodes.
    pub precision: Option<f64>,
    /// Detected / spikes; none without spikes.
    pub recall: Option<f64>,
    /// Minutes from spike start to detection.
    pub time_to_detect_minutes: Ttd,
    /// Alarm episodes in all.
    pub episodes: usize,
    /// Per spike (ground-truth order): minutes to detect, none if missed.
    pub per_spike_minutes: Vec<Option<f64>>,
}

/// Median of sorted values.
pub fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n.is_multiple_of(2) {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    } else {
        sorted[n / 2]
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Scores `episodes` against the ground-truth `spikes`.
pub fn score(spikes: &[TrueSpike], episodes: &Episodes) -> Score {
    let matches = |s: &TrueSpike, (p, t): &(String, DateTime<Utc>)| {
        *p == s.product_id && *t >= s.start && *t <= s.end
    };
    let matching = episodes
        .starts
        .iter()
        .filter(|e| spikes.iter().any(|s| matches(s, e)))
        .count();
    let per_spike: Vec<Option<f64>> = spikes
        .iter()
        .map(|s| {
            episodes
                .starts
                .iter()
                .filter(|e| matches(s, e))
                .map(|(_, t)| (*t - s.start).num_milliseconds() as f64 / 60_000.0)
                .reduce(f64::min)
                .map(round2)
        })
        .collect();
    let mut ttd: Vec<f64> = per_spike.iter().flatten().copied().collect();
    ttd.sort_by(f64::total_cmp);
    let n = episodes.starts.len();
    let detected = ttd.len();
    Score {
        spikes: spikes.len(),
        detected,
        false_alarms: n - matching,
        precision: (n > 0).then(|| round2(matching as f64 / n as f64)),
        recall: (!spikes.is_empty()).then(|| round2(detected as f64 / spikes.len() as f64)),
        time_to_detect_minutes: Ttd {
            median: median(&ttd).map(round2),
            max: ttd.last().copied(),
        },
        episodes: n,
        per_spike_minutes: per_spike,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        "2025-06-12T00:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time")
            + TimeDelta::minutes(min)
    }

    #[test]
    fn episodes_merge_flickers() {
        let mut e = Episodes::default();
        for (m, f) in [(0, false), (1, true), (2, false), (10, true), (50, true)] {
            e.note("p", t(m), f);
        }
        // 1 and 10 are one episode (9 min apart); 50 continues it (flagged before).
        assert_eq!(e.starts, vec![("p".to_owned(), t(1))]);
        e.note("p", t(51), false);
        e.note("p", t(200), true);
        assert_eq!(e.starts.len(), 2);
    }

    #[test]
    fn scoring() {
        let spikes = vec![
            TrueSpike {
                product_id: "a".into(),
                start: t(100),
                end: t(200),
            },
            TrueSpike {
                product_id: "b".into(),
                start: t(100),
                end: t(200),
            },
        ];
        let mut e = Episodes::default();
        e.note("a", t(104), true); // detects a after 4 min
        e.note("c", t(120), true); // false alarm
        e.note("b", t(90), true); // before b's spike: false alarm, b missed
        let s = score(&spikes, &e);
        assert_eq!((s.spikes, s.detected, s.false_alarms), (2, 1, 2));
        assert_eq!(s.precision, Some(0.33));
        assert_eq!(s.recall, Some(0.5));
        assert_eq!(s.time_to_detect_minutes.median, Some(4.0));
        assert_eq!(s.per_spike_minutes, vec![Some(4.0), None]);
        let none = score(&[], &Episodes::default());
        assert_eq!((none.precision, none.recall), (None, None));
    }
}
