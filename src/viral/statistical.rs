//! The default detector: a Poisson CUSUM of each product's orders against its
//! own seasonal baseline.
//!
//! # The question
//!
//! Is this product selling faster than its own history says it should, by
//! enough and for long enough that it is not chance? The plan's fixed
//! threshold (more than 40 orders in the last hour) answers a different
//! question: it is late for a product that normally sells 2 an hour (it has to
//! reach 40 first) and always on for one that normally sells 60.
//!
//! # Method: one-sided Poisson CUSUM (Page's test)
//!
//! Orders of a product are modelled as a Poisson process with rate
//! `λ0(t) = level × profile[hour of day]` (the baseline, below). A viral spike
//! raises it to `λ1 = k × λ0`, with `k` = [`StatisticalConfig::design_ratio`]
//! (4). The detector keeps Page's statistic, the log-likelihood ratio of
//! "the rate went to `λ1` at some point" against "it stayed `λ0`", maximised
//! over the change point:
//!
//! ```text
//! between orders:  S ← max(0, S − (k − 1) λ0 Δt)
//! at an order:     S ← S + ln k
//! ```
//!
//! and raises the alarm when `S ≥ h`, with
//! `h = threshold + ln(max(λ0, 1/h))` ([`threshold`](StatisticalConfig::threshold)
//! = 12): the statistic's false-alarm rate grows with the number of orders
//! (more orders, more chances for a chance cluster), and lifting `h` by the
//! log of the rate keeps it about the same per hour for every product, while
//! costing a busy product almost nothing (its statistic climbs in seconds).
//! Why CUSUM rather than a Poisson tail test on a fixed window:
//!
//! - **It adapts its window to the spike.** A 400× spike on a 5/h product
//!   crosses `h` after about eight orders (seconds); a 5× spike on a 1/h
//!   product after a couple of hours. A fixed 15-minute window is too long
//!   for the first and far too short for the second (0.25 orders expected).
//!   Page's test is the optimal detector for a step change of known size
//!   (Lorden), and near-optimal for sizes around it.
//! - **It is robust to a wrong baseline.** Under the no-spike hypothesis the
//!   statistic drifts down unless the true rate exceeds
//!   `(k − 1) / ln k × λ0` ≈ 2.16 λ0 (k = 4): a baseline wrong by a factor of
//!   two (a seasonality not learned yet, a slow trend) raises no alarm. A high
//!   steady baseline is no problem at all: at 200/h the drift is −320 an hour.
//! - **It is O(1) per order**: a multiply-add and a compare, no window scan,
//!   no special function on the hot path; the baseline work happens once per
//!   product and clock hour (see `benches/viral.rs`).
//!
//! Confidence and impact come from the evidence, once the alarm is up. The
//! evidence window starts where the statistic last left zero (the CUSUM
//! estimate of the change point), at most an hour back; `observed` orders in
//! it against `expected = ∫ λ0`:
//!
//! - `confidence = 1 − P(N ≥ observed)` for `N ~ Poisson(expected)`, the
//!   Poisson upper tail from `statrs` (computed at most once per product and
//!   minute);
//! - `impact_multiplier = min(observed / expected, 10)`.
//!
//! **Hysteresis.** `S` is capped at `h` while the alarm is up and the alarm
//! clears when `S` falls below [`clear_threshold`](StatisticalConfig::clear_threshold)
//! (half the threshold): the indicator stays while the rate is above about twice the
//! baseline and clears once the spike has decayed (minutes for a busy
//! product, a couple of hours for a 1/h one).
//!
//! # The baseline
//!
//! - **Level**: an exponentially weighted mean of the product's de-seasonalised
//!   hourly counts (half-life [`level_half_life`](StatisticalConfig::level_half_life),
//!   6 h, lengthened for a slow product so that it averages at least
//!   [`level_min_orders`](StatisticalConfig::level_min_orders), 48, orders),
//!   updated when a clock hour closes, empty hours included.
//! - **Cold start**: the level starts at a prior rate
//!   ([`prior_rate_per_hour`](StatisticalConfig::prior_rate_per_hour), 2/h)
//!   worth [`prior_hours`](StatisticalConfig::prior_hours) (1) hours of data,
//!   and is a plain running mean until the EWMA's weight takes over; the
//!   CUSUM does not run until the product has
//!   [`min_history`](StatisticalConfig::min_history) (6 h) of history and the
//!   daily shape is known (the shop has seen every hour of the day, or the
//!   product is a day old), so a new product's launch burst is learned, not
//!   flagged. Until then a conservative test of its own watches the product
//!   (`viral/cold_start.rs`): its last 15 minutes against its own rate so far,
//!   at least 30 orders and ten times that rate, which never flags a steady
//!   seller whatever its rate, and flags a jump from a few orders an hour to
//!   2,000 within a couple of minutes. When the CUSUM starts while that
//!   alarm is up, it takes the alarm over (its statistic starts at the
//!   threshold), so the alarm does not drop at the hand-over.
//! - **Seasonality**: an hour-of-day profile per product, shrunk towards a
//!   shop-wide profile (a product selling 2 an hour would need months to learn
//!   its own), which is itself shrunk towards flat; each slot is a
//!   Gamma-Poisson estimate with
//!   [`profile_prior_orders`](StatisticalConfig::profile_prior_orders) (5)
//!   pseudo-orders. The shop-wide profile counts every product's hours
//!   against the orders its own level expected, so a product that starts or
//!   stops selling does not look like a daily rhythm. Counts decay with a
//!   memory of [`profile_memory_days`](StatisticalConfig::profile_memory_days)
//!   (10). A product's first hours (before its minimum history) teach the
//!   level but not the profile: a launch burst is not a rhythm.
//! - **Spikes don't become the baseline**: an hour during which the alarm was
//!   up counts at most twice its expected orders into the level and profile,
//!   so a spike barely moves the baseline while a permanent step up is still
//!   absorbed within about a day.
//! - A floor, [`min_rate_per_hour`](StatisticalConfig::min_rate_per_hour),
//!   keeps a product that has gone quiet from alarming on its next few orders,
//!   and [`min_orders`](StatisticalConfig::min_orders) orders are needed in the
//!   evidence window.
//!
//! # Calibration
//!
//! `k`, `h`, the half-lives and the priors were chosen on simulated streams
//! (`tests/viral.rs`, `calibrate`): six days of non-homogeneous Poisson
//! traffic per product, from a cold start, with a daily profile (amplitude
//! 0.2-0.6, random peak hour) and baselines log-uniform over 1-200/h; 150
//! spike-free products (150 product-weeks... 128.6) and 150 with a spike (ramp 5-60 min,
//! peak 5-50x, hold 1-6 h, decay 15-120 min). False alarms per product-week
//! on the spike-free set | recall | median time to detect on the spiky set:
//!
//! | | h = 10 | h = 12 |
//! |---|---|---|
//! | k = 3 | 0.124, 1.00, 15.3 min | 0.039, 1.00, 16.1 min |
//! | k = 4 | 0.117, 1.00, 14.3 min | **0.031, 1.00, 16.0 min** |
//! | k = 5 | 0.078, 1.00, 13.9 min | 0.016, 1.00, 15.5 min |
//!
//! (Without the `ln(rate)` lift, h = 10 gave 0.6 false alarms per
//! product-week, mostly on busy products.) k = 4 is kept over k = 5 for its
//! wider tolerance of a wrong baseline (2.16x against 2.49x). A 2,000/h spike
//! on a 5/h product is flagged in under two minutes.
//!
//! # Memory
//!
//! [`StatisticalDetector::bytes_per_product`]: the product's [`Velocity`]
//! (2,320 bytes) plus about 220 bytes of baseline and CUSUM state, and the
//! map slot.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use foldhash::fast::RandomState;
use statrs::distribution::{DiscreteCDF, Poisson};

use super::cold_start;
use super::velocity::{HOUR_MS, MINUTE_MS, Velocity};
use super::{Assessment, Detector, Evidence, Spike};

/// Tuning of the [`StatisticalDetector`]; the defaults are the calibrated
/// values (see the module docs of `viral/statistical.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticalConfig {
    /// `k`: the spike the test is tuned for, as a multiple of the baseline (> 1).
    pub design_ratio: f64,
    /// `h`: the CUSUM statistic (a log-likelihood ratio) that raises the alarm (> 0).
    pub threshold: f64,
    /// The alarm clears when the statistic falls below this (0 ≤ it < `threshold`).
    pub clear_threshold: f64,
    /// A new product's assumed rate, orders per hour (> 0).
    pub prior_rate_per_hour: f64,
    /// How many hours of data the prior is worth (> 0).
    pub prior_hours: f64,
    /// No alarm until the product's first order is this old.
    pub min_history: TimeDelta,
    /// Orders needed in the evidence window to raise the alarm.
    pub min_orders: u32,
    /// Half-life of the level's exponentially weighted mean (> 0) ...
    pub level_half_life: TimeDelta,
    /// ... lengthened for a slow product so that the level always averages
    /// about this many orders (≥ 0): at 2/h, 48 orders make a 24 h half-life.
    pub level_min_orders: f64,
    /// The baseline never goes below this rate, orders per hour (> 0).
    pub min_rate_per_hour: f64,
    /// Memory of the hour-of-day profile, in days (≥ 1).
    pub profile_memory_days: f64,
    /// Pseudo-orders per hour-of-day slot pulling a profile towards its
    /// prior (the shop-wide profile, or flat) (> 0).
    pub profile_prior_orders: f64,
    /// Cap on the impact multiplier (≥ 1).
    pub max_impact: f64,
    /// Cold start (before the CUSUM runs): the recent window compared
    /// with the product's rate so far (1 min to 2 h).
    pub cold_start_window: TimeDelta,
    /// Cold start: orders needed in the recent window to raise the alarm.
    pub cold_start_min_orders: u32,
    /// Cold start: how long the product must have been seen before the
    /// recent window (≥ 0).
    pub cold_start_min_history: TimeDelta,
    /// Cold start: the recent rate that raises the alarm, as a multiple of
    /// the product's reference rate (> `cold_start_clear_ratio`).
    pub cold_start_ratio: f64,
    /// Cold start: the alarm clears when the recent rate falls below this
    /// multiple of the reference rate frozen when it was raised (≥ 1).
    pub cold_start_clear_ratio: f64,
}

impl Default for StatisticalConfig {
    fn default() -> Self {
        StatisticalConfig {
            design_ratio: 4.0,
            threshold: 12.0,
            clear_threshold: 6.0,
            prior_rate_per_hour: 2.0,
            prior_hours: 1.0,
            min_history: TimeDelta::hours(6),
            min_orders: 5,
            level_half_life: TimeDelta::hours(6),
            level_min_orders: 48.0,
            min_rate_per_hour: 0.2,
            profile_memory_days: 10.0,
            profile_prior_orders: 5.0,
            max_impact: 10.0,
            cold_start_window: TimeDelta::minutes(15),
            cold_start_min_orders: 30,
            cold_start_min_history: TimeDelta::hours(1),
            cold_start_ratio: 10.0,
            cold_start_clear_ratio: 3.0,
        }
    }
}

/// A [`StatisticalConfig`] value out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field is outside its documented range.
    #[error("{field} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
}

impl StatisticalConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn check(
            ok: bool,
            field: &'static str,
            value: f64,
            expected: &'static str,
        ) -> Result<(), ConfigError> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange {
                    field,
                    value: value.to_string(),
                    expected,
                })
            }
        }
        let pos = |x: f64| x.is_finite() && x > 0.0;
        check(
            self.design_ratio.is_finite() && self.design_ratio > 1.0,
            "design_ratio",
            self.design_ratio,
            "> 1",
        )?;
        check(pos(self.threshold), "threshold", self.threshold, "> 0")?;
        check(
            self.clear_threshold >= 0.0 && self.clear_threshold < self.threshold,
            "clear_threshold",
            self.clear_threshold,
            ">= 0 and < threshold",
        )?;
        check(
            pos(self.prior_rate_per_hour),
            "prior_rate_per_hour",
            self.prior_rate_per_hour,
            "> 0",
        )?;
        check(
            pos(self.prior_hours),
            "prior_hours",
            self.prior_hours,
            "> 0",
        )?;
        check(
            self.min_history >= TimeDelta::zero(),
            "min_history",
            self.min_history.num_seconds() as f64,
            ">= 0 s",
        )?;
        check(
            self.level_half_life > TimeDelta::zero(),
            "level_half_life",
            self.level_half_life.num_seconds() as f64,
            "> 0 s",
        )?;
        check(
            self.level_min_orders.is_finite() && self.level_min_orders >= 0.0,
            "level_min_orders",
            self.level_min_orders,
            ">= 0",
        )?;
        check(
            pos(self.min_rate_per_hour),
            "min_rate_per_hour",
            self.min_rate_per_hour,
            "> 0",
        )?;
        check(
            self.profile_memory_days.is_finite() && self.profile_memory_days >= 1.0,
            "profile_memory_days",
            self.profile_memory_days,
            ">= 1",
        )?;
        check(
            pos(self.profile_prior_orders),
            "profile_prior_orders",
            self.profile_prior_orders,
            "> 0",
        )?;
        check(
            self.max_impact.is_finite() && self.max_impact >= 1.0,
            "max_impact",
            self.max_impact,
            ">= 1",
        )?;
        check(
            self.cold_start_window >= TimeDelta::minutes(1)
                && self.cold_start_window <= TimeDelta::hours(2),
            "cold_start_window",
            self.cold_start_window.num_seconds() as f64,
            ">= 60 s and <= 7200 s",
        )?;
        check(
            self.cold_start_min_history >= TimeDelta::zero(),
            "cold_start_min_history",
            self.cold_start_min_history.num_seconds() as f64,
            ">= 0 s",
        )?;
        check(
            self.cold_start_clear_ratio.is_finite() && self.cold_start_clear_ratio >= 1.0,
            "cold_start_clear_ratio",
            self.cold_start_clear_ratio,
            ">= 1",
        )?;
        check(
            self.cold_start_ratio > self.cold_start_clear_ratio,
            "cold_start_ratio",
            self.cold_start_ratio,
            "> cold_start_clear_ratio",
        )
    }
}

/// Derived constants of a configuration.
#[derive(Debug, Clone)]
struct Params {
    ln_k: f64,
    k_minus_1: f64,
    h: f64,
    h_off: f64,
    half_life_h: f64,
    decay: f32,
    min_history_ms: i64,
}

impl Params {
    fn new(c: &StatisticalConfig) -> Self {
        let half_life_h = c.level_half_life.num_milliseconds() as f64 / HOUR_MS as f64;
        Params {
            ln_k: c.design_ratio.ln(),
            k_minus_1: c.design_ratio - 1.0,
            h: c.threshold,
            h_off: c.clear_threshold,
            half_life_h,
            decay: (1.0 - 1.0 / c.profile_memory_days) as f32,
            min_history_ms: c.min_history.num_milliseconds(),
        }
    }
}

/// Hour-of-day counts and exposure (hours observed) with exponential
/// forgetting across days.
#[derive(Debug, Clone, Copy)]
struct Profile {
    counts: [f32; 24],
    exposure: [f32; 24],
    total_counts: f32,
    total_exposure: f32,
}

impl Profile {
    const EMPTY: Profile = Profile {
        counts: [0.0; 24],
        exposure: [0.0; 24],
        total_counts: 0.0,
        total_exposure: 0.0,
    };

    /// Folds `span` hours (≤ 1) of slot `slot` with `count` orders, after
    /// a day's forgetting.
    fn add(&mut self, slot: usize, count: f32, span: f32, decay: f32) {
        self.scale(slot, decay);
        self.bump(slot, count, span);
    }

    fn scale(&mut self, slot: usize, f: f32) {
        let (c, e) = (self.counts[slot], self.exposure[slot]);
        self.counts[slot] = c * f;
        self.exposure[slot] = e * f;
        self.total_counts -= c - c * f;
        self.total_exposure -= e - e * f;
    }

    fn bump(&mut self, slot: usize, count: f32, exposure: f32) {
        self.counts[slot] += count;
        self.exposure[slot] += exposure;
        self.total_counts += count;
        self.total_exposure += exposure;
    }

    /// The slot's rate relative to the typical rate: `prior[slot]` times a
    /// Gamma-Poisson estimate of the slot's deviation from the prior
    /// (observed over expected orders, with `kappa` pseudo-orders of no
    /// deviation);
    /// `prior[slot]` while nothing was observed. The typical rate is the
    /// counts over the exposure weighted by `prior`, so that a partly
    /// observed day (a new product seen only in the evening) is measured
    /// against the prior's shape, not against its own partial mean.
    fn factor(&self, slot: usize, prior: &[f64; 24], kappa: f64) -> f64 {
        let weighted: f64 = self
            .exposure
            .iter()
            .zip(prior)
            .map(|(e, g)| f64::from(e.max(0.0)) * g)
            .sum();
        if weighted <= 1e-6 {
            return prior[slot];
        }
        let rate = f64::from(self.total_counts.max(0.0)) / weighted;
        let expected = f64::from(self.exposure[slot].max(0.0)) * prior[slot] * rate;
        (prior[slot] * (f64::from(self.counts[slot].max(0.0)) + kappa) / (expected + kappa))
            .clamp(0.05, 20.0)
    }
}

/// The shop-wide hour-of-day profile: every product's closed hours (past
/// its minimum history, spikes capped), as orders against the orders its
/// level expected. Measuring each product against its own level keeps a
/// product that starts or stops selling from looking like a daily rhythm.
#[derive(Debug, Clone)]
struct Global {
    /// Counts are orders; exposure is orders expected at factor 1.
    profile: Profile,
    /// The day (days since the epoch) each slot's forgetting is at;
    /// `i64::MIN` for a slot never observed.
    day: [i64; 24],
    /// Whether every hour of the day has been observed (the daily shape is known).
    full_day: bool,
    /// The profile's factors, and the hour they were computed in.
    factors: [f64; 24],
    factors_hour: i64,
}

impl Global {
    fn new() -> Self {
        Global {
            profile: Profile::EMPTY,
            day: [i64::MIN; 24],
            full_day: false,
            factors: [1.0; 24],
            factors_hour: i64::MIN,
        }
    }

    /// Adds a product's closed `hour`: `count` orders where its level expected `expected`.
    fn add(&mut self, hour: i64, count: f64, expected: f64, decay: f32, kappa: f64) {
        let slot = hour_slot(hour);
        let day = hour.div_euclid(24);
        let last = self.day[slot];
        let age = |d: i64| decay.powi(d.clamp(0, 1000) as i32);
        let weight = if last == i64::MIN {
            self.day[slot] = day;
            self.full_day = self.day.iter().all(|d| *d != i64::MIN);
            1.0
        } else if day > last {
            self.profile.scale(slot, age(day - last));
            self.day[slot] = day;
            1.0
        } else {
            age(last - day)
        };
        self.profile
            .bump(slot, count as f32 * weight, expected as f32 * weight);
        // Refreshed once per clock hour (and on a new slot): within an hour
        // the factors move by a fraction of a percent.
        if hour != self.factors_hour || last == i64::MIN {
            self.factors_hour = hour;
            for (s, f) in self.factors.iter_mut().enumerate() {
                *f = self.profile.factor(s, &[1.0; 24], kappa);
            }
        }
    }
}

fn hour_slot(hour: i64) -> usize {
    hour.rem_euclid(24) as usize
}

/// What a product's update reads from the detector.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    cfg: &'a StatisticalConfig,
    p: &'a Params,
    global: &'a Global,
}

/// A clock hour being folded into a product's baseline.
#[derive(Debug, Clone, Copy)]
struct Closed {
    hour: i64,
    count: f64,
    /// Hours of it observed (≤ 1: a product's first hour is partial).
    span: f64,
    /// Whether the alarm was up during it.
    alarmed: bool,
}

/// One product's state.
#[derive(Debug, Clone)]
struct Product {
    velocity: Velocity,
    profile: Profile,
    /// De-seasonalised baseline, orders per hour.
    level: f64,
    /// Hours of data the level has learned (fractional for the first hour).
    learned_hours: f64,
    first_ms: i64,
    /// The clock hour (hours since the epoch) whose orders are still being counted.
    open_hour: i64,
    /// Whether the alarm was up at some time in the open hour.
    open_alarmed: bool,
    /// `λ0` for the open hour, orders per hour.
    lambda0: f64,
    /// The alarm and clear thresholds for the open hour.
    h: f64,
    h_off: f64,
    cusum: f64,
    last_ms: i64,
    run_start_ms: i64,
    run_orders: u32,
    run_expected: f64,
    alarm: bool,
    alarm_since_ms: i64,
    /// Orders seen since the first (restores included).
    seen: u64,
    /// While the alarm is the cold-start test's: the reference rate it was
    /// raised against, orders per hour.
    cold_reference: Option<f64>,
    /// Minute and p-value of the last confidence computed.
    p_minute: i64,
    p_value: f64,
}

impl Product {
    fn new(at_ms: i64, cfg: &StatisticalConfig) -> Self {
        Product {
            velocity: Velocity::new(),
            profile: Profile::EMPTY,
            level: cfg.prior_rate_per_hour,
            learned_hours: 0.0,
            first_ms: at_ms,
            open_hour: at_ms.div_euclid(HOUR_MS),
            open_alarmed: false,
            lambda0: 0.0,
            h: f64::INFINITY,
            h_off: 0.0,
            cusum: 0.0,
            last_ms: at_ms,
            run_start_ms: at_ms,
            run_orders: 0,
            run_expected: 0.0,
            alarm: false,
            alarm_since_ms: at_ms,
            seen: 0,
            cold_reference: None,
            p_minute: i64::MIN,
            p_value: 1.0,
        }
    }

    fn factor(&self, slot: usize, cfg: &StatisticalConfig, global: &Global) -> f64 {
        self.profile
            .factor(slot, &global.factors, cfg.profile_prior_orders)
    }

    /// Learns the closed hour `hour` (its orders `count`), of which `span`
    /// hours (≤ 1) were observed.
    fn learn(&mut self, closed: Closed, cfg: &StatisticalConfig, p: &Params, global: &mut Global) {
        let Closed {
            hour,
            count,
            span,
            alarmed,
        } = closed;
        let slot = hour_slot(hour);
        let f = self.factor(slot, cfg, global);
        let level_before = self.level;
        let expected = (self.level * f).max(cfg.min_rate_per_hour) * span;
        let count = if alarmed {
            count.min(2.0 * expected)
        } else {
            count
        };
        let x = count / (f * span);
        let warm_weight = span / (cfg.prior_hours + self.learned_hours + span);
        let half_life = p
            .half_life_h
            .max(cfg.level_min_orders / self.level.max(cfg.min_rate_per_hour));
        let alpha = 1.0 - 0.5f64.powf(1.0 / half_life);
        let weight = (alpha * span).max(warm_weight);
        self.level += weight * (x - self.level);
        self.learned_hours += span;
        // A launch burst is not a daily rhythm: the profile learns only
        // once the product is past its minimum history.
        if self.learned_hours >= p.min_history_ms as f64 / HOUR_MS as f64 {
            self.profile.add(slot, count as f32, span as f32, p.decay);
            global.add(
                hour,
                count,
                level_before * span,
                p.decay,
                cfg.profile_prior_orders,
            );
        }
    }

    /// Closes the hours before `hour` and opens `hour`.
    fn roll(&mut self, hour: i64, cfg: &StatisticalConfig, p: &Params, global: &mut Global) {
        let mut h = self.open_hour;
        let first_hour = self.first_ms.div_euclid(HOUR_MS);
        // Past two weeks of silence, everything learned has decayed anyway.
        let last = hour.min(h + 24 * 14);
        while h < last {
            let span = if h == first_hour {
                ((h + 1) * HOUR_MS - self.first_ms) as f64 / HOUR_MS as f64
            } else {
                1.0
            };
            let count = f64::from(self.velocity.hour_orders(h));
            let alarmed = h == self.open_hour && self.open_alarmed;
            let closed = Closed {
                hour: h,
                count,
                span: span.max(1.0 / 60.0),
                alarmed,
            };
            self.learn(closed, cfg, p, global);
            h += 1;
        }
        self.open_hour = hour;
        self.open_alarmed = self.alarm;
        self.refresh_lambda(Ctx { cfg, p, global });
    }

    fn refresh_lambda(&mut self, cx: Ctx<'_>) {
        let f = self.factor(hour_slot(self.open_hour), cx.cfg, cx.global);
        self.lambda0 = (self.level * f).max(cx.cfg.min_rate_per_hour);
        // The statistic's false-alarm rate per hour grows with the order
        // rate (more orders, more chances): raising the threshold by
        // ln(rate) keeps it the same for every product.
        let lift = self.lambda0.max(1.0).ln();
        self.h = cx.p.h + lift;
        self.h_off = cx.p.h_off * (self.h / cx.p.h);
    }
}

/// The default detector: a Poisson CUSUM of each product's orders against
/// its own seasonal baseline (see the module docs of `viral/statistical.rs` for the method,
/// its justification and calibration).
///
/// ```
/// use chrono::{DateTime, TimeDelta, Utc};
/// use creatorflow::viral::{Detector, StatisticalDetector};
///
/// let mut d = StatisticalDetector::new();
/// let t0: DateTime<Utc> = "2025-03-01T00:00:00Z".parse().unwrap();
/// // Two days at 6 orders an hour: learned, no alarm.
/// for i in 0..(2 * 24 * 6) {
///     let t = t0 + TimeDelta::minutes(10 * i);
///     assert!(d.observe("lamp", t, 1, t).spike.is_none());
/// }
/// // Then an order every 3 seconds (1,200 an hour): flagged within a minute.
/// let start = t0 + TimeDelta::days(2);
/// let first = (0..100)
///     .map(|i| start + TimeDelta::seconds(3 * i))
///     .find(|t| d.observe("lamp", *t, 1, *t).spike.is_some())
///     .unwrap();
/// assert!(first - start < TimeDelta::minutes(1));
/// ```
#[derive(Debug, Clone)]
pub struct StatisticalDetector {
    config: StatisticalConfig,
    params: Params,
    global: Global,
    products: HashMap<Box<str>, Box<Product>, RandomState>,
}

impl Default for StatisticalDetector {
    fn default() -> Self {
        StatisticalDetector::new()
    }
}

impl StatisticalDetector {
    /// A detector with the calibrated defaults and no history.
    pub fn new() -> Self {
        let config = StatisticalConfig::default();
        StatisticalDetector {
            params: Params::new(&config),
            config,
            global: Global::new(),
            products: HashMap::default(),
        }
    }

    /// A detector with `config`, checked.
    pub fn with_config(config: StatisticalConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut d = StatisticalDetector::new();
        d.params = Params::new(&config);
        d.config = config;
        Ok(d)
    }

    /// The configuration in use.
    pub fn config(&self) -> &StatisticalConfig {
        &self.config
    }

    /// Memory per tracked product, in bytes: its state (velocity buckets,
    /// profile, baseline, CUSUM) and map slot, the key's bytes not included.
    pub fn bytes_per_product() -> usize {
        std::mem::size_of::<Product>() + std::mem::size_of::<(Box<str>, Box<Product>)>() + 1
    }

    /// The product's current baseline (orders per hour expected now), if tracked.
    pub fn baseline(&self, product_id: &str) -> Option<f64> {
        self.products.get(product_id).map(|p| p.lambda0)
    }

    /// Whether the product's alarm is up.
    pub fn is_alarmed(&self, product_id: &str) -> bool {
        self.products.get(product_id).is_some_and(|p| p.alarm)
    }

    /// Updates the product's state with an order at `at_ms`; returns it.
    fn update(&mut self, product_id: &str, at_ms: i64, quantity: u32) -> &mut Product {
        let cfg = &self.config;
        let p = &self.params;
        if !self.products.contains_key(product_id) {
            let mut fresh = Product::new(at_ms, cfg);
            fresh.refresh_lambda(Ctx {
                cfg,
                p,
                global: &self.global,
            });
            self.products.insert(product_id.into(), Box::new(fresh));
        }
        let Some(prod) = self.products.get_mut(product_id) else {
            unreachable!("inserted above")
        };
        let hour = at_ms.div_euclid(HOUR_MS);
        if hour > prod.open_hour {
            prod.roll(hour, cfg, p, &mut self.global);
        }
        prod.velocity.record_ms(at_ms, quantity);
        prod.seen = prod.seen.saturating_add(1);

        // CUSUM: decay over the time since the previous order, then this order.
        let dt = (at_ms - prod.last_ms).max(0) as f64 / HOUR_MS as f64;
        prod.last_ms = prod.last_ms.max(at_ms);
        // The newest order's age: a late order does not make the product young again.
        let age = prod.last_ms - prod.first_ms;
        let warm = age >= p.min_history_ms && (self.global.full_day || age >= 24 * HOUR_MS);
        if !warm {
            cold_step(prod, at_ms, cfg);
            return prod;
        }
        if prod.cold_reference.take().is_some() {
            // The CUSUM takes the cold-start alarm over: its statistic
            // starts at the threshold, as if it had raised the alarm itself.
            // Its evidence window starts as the cold-start test's (the last
            // 15 minutes), measured against the CUSUM's baseline.
            let r = cold_start::read(&prod.velocity, at_ms, 1.0, cfg.cold_start_window);
            prod.cusum = prod.h;
            prod.run_start_ms = at_ms - cfg.cold_start_window.num_milliseconds();
            prod.run_orders = u32::try_from(r.recent.saturating_sub(1)).unwrap_or(u32::MAX);
            prod.run_expected = prod.lambda0 * r.expected;
            prod.p_minute = i64::MIN;
        }
        let mean = prod.lambda0 * dt;
        prod.cusum -= p.k_minus_1 * mean;
        prod.run_expected += mean;
        if prod.cusum <= 0.0 {
            prod.cusum = 0.0;
            prod.run_start_ms = at_ms;
            prod.run_orders = 0;
            prod.run_expected = 0.0;
        }
        prod.cusum += p.ln_k;
        prod.run_orders = prod.run_orders.saturating_add(1);
        if prod.alarm {
            if prod.cusum < prod.h_off {
                prod.alarm = false;
            }
        } else if prod.cusum >= prod.h && prod.run_orders >= cfg.min_orders {
            prod.alarm = true;
            prod.alarm_since_ms = at_ms;
            prod.open_alarmed = true;
            prod.p_minute = i64::MIN;
        }
        if prod.alarm {
            prod.cusum = prod.cusum.min(prod.h);
        }
        prod
    }
}

/// The cold-start test at an order of a product the CUSUM does not watch
/// yet (`viral/cold_start.rs`): raises or clears its alarm.
fn cold_step(prod: &mut Product, at_ms: i64, cfg: &StatisticalConfig) {
    // Nothing of the CUSUM carries over to the hour it starts.
    prod.cusum = 0.0;
    prod.run_start_ms = at_ms;
    prod.run_orders = 0;
    prod.run_expected = 0.0;
    match prod.cold_reference {
        Some(reference) => {
            if !cold_start::holds(&prod.velocity, at_ms, reference, cfg).0 {
                prod.alarm = false;
                prod.cold_reference = None;
            }
        }
        None => {
            if let Some(reference) =
                cold_start::raise(&prod.velocity, at_ms, prod.first_ms, prod.seen, cfg)
            {
                prod.alarm = true;
                prod.cold_reference = Some(reference);
                prod.alarm_since_ms = at_ms;
                prod.open_alarmed = true;
                prod.p_minute = i64::MIN;
            }
        }
    }
}

/// Poisson upper tail `P(N >= observed)` for `N ~ Poisson(expected)`.
fn upper_tail(observed: u64, expected: f64) -> f64 {
    Poisson::new(expected)
        .map(|d| d.sf(observed.saturating_sub(1)))
        .unwrap_or(0.0)
}

impl Detector for StatisticalDetector {
    fn name(&self) -> &'static str {
        "statistical"
    }

    fn record(&mut self, product_id: &str, at: DateTime<Utc>, quantity: u32) {
        self.update(product_id, at.timestamp_millis(), quantity);
    }

    fn observe(
        &mut self,
        product_id: &str,
        at: DateTime<Utc>,
        quantity: u32,
        now: DateTime<Utc>,
    ) -> Assessment {
        let at_ms = at.timestamp_millis();
        let now_ms = now.timestamp_millis().max(at_ms);
        let max_impact = self.config.max_impact;
        let cold_window = self.config.cold_start_window;
        let prod = self.update(product_id, at_ms, quantity);
        let orders_last_hour = prod.velocity.orders_ms(now_ms, HOUR_MS);
        let baseline = prod.lambda0;
        let velocity_multiplier = (orders_last_hour as f64 / baseline).min(5.0);
        if let (true, Some(reference)) = (prod.alarm, prod.cold_reference) {
            let r = cold_start::read(&prod.velocity, at_ms, reference, cold_window);
            let expected = r.expected.max(f64::MIN_POSITIVE);
            let minute = at_ms.div_euclid(MINUTE_MS);
            if minute != prod.p_minute {
                prod.p_minute = minute;
                prod.p_value = upper_tail(r.recent, expected);
            }
            return Assessment {
                orders_last_hour,
                baseline_per_hour: baseline,
                velocity_multiplier,
                spike: Some(Spike {
                    confidence: (1.0 - prod.p_value).clamp(0.0, 1.0),
                    impact_multiplier: (r.recent as f64 / expected).min(max_impact),
                    evidence: Evidence::ColdStart {
                        observed: r.recent,
                        expected: r.expected,
                        window_minutes: r.window_minutes,
                        reference_per_hour: reference,
                        p_value: prod.p_value,
                        since: DateTime::from_timestamp_millis(prod.alarm_since_ms).unwrap_or(at),
                    },
                }),
            };
        }
        let spike = prod.alarm.then(|| {
            let run_ms = at_ms - prod.run_start_ms;
            let (observed, expected, window_ms) = if run_ms <= HOUR_MS {
                (
                    u64::from(prod.run_orders),
                    prod.run_expected,
                    run_ms.max(MINUTE_MS),
                )
            } else {
                (orders_last_hour, baseline, HOUR_MS)
            };
            let expected = expected.max(baseline / 60.0);
            let minute = at_ms.div_euclid(MINUTE_MS);
            if minute != prod.p_minute {
                prod.p_minute = minute;
                prod.p_value = upper_tail(observed, expected);
            }
            Spike {
                confidence: (1.0 - prod.p_value).clamp(0.0, 1.0),
                impact_multiplier: (observed as f64 / expected).min(max_impact),
                evidence: Evidence::Statistical {
                    observed,
                    expected,
                    window_minutes: window_ms as f64 / MINUTE_MS as f64,
                    p_value: prod.p_value,
                    since: DateTime::from_timestamp_millis(prod.alarm_since_ms).unwrap_or(at),
                },
            }
        });
        Assessment {
            orders_last_hour,
            baseline_per_hour: baseline,
            velocity_multiplier,
            spike,
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.products.capacity() * (std::mem::size_of::<(Box<str>, Box<Product>)>() + 1)
            + self
                .products
                .keys()
                .map(|k| k.len() + std::mem::size_of::<Product>())
                .sum::<usize>()
    }

    fn tracked_products(&self) -> usize {
        self.products.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        "2025-03-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn config_is_checked() {
        assert!(StatisticalDetector::with_config(StatisticalConfig::default()).is_ok());
        let bad = StatisticalConfig {
            clear_threshold: 20.0,
            ..StatisticalConfig::default()
        };
        let e = StatisticalDetector::with_config(bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "clear_threshold = 20 is out of range: >= 0 and < threshold"
        );
        let bad = StatisticalConfig {
            design_ratio: f64::NAN,
            ..StatisticalConfig::default()
        };
        assert!(StatisticalDetector::with_config(bad).is_err());
    }

    #[test]
    fn learns_a_steady_rate_and_its_profile() {
        let mut d = StatisticalDetector::new();
        // 4 days: 12/h from 08:00 to 20:00, 3/h otherwise. The first day's
        // 4x step at 08:00 is a spike for all the detector knows; from the
        // second day on, the profile expects it.
        let mut t = t0();
        let end = t0() + TimeDelta::days(4);
        while t < end {
            let h = (t - t0()).num_hours() % 24;
            let per_hour = if (8..20).contains(&h) { 12 } else { 3 };
            let a = d.observe("p", t, 1, t);
            if t >= t0() + TimeDelta::days(1) {
                assert!(a.spike.is_none(), "{t}");
            }
            t += TimeDelta::seconds(3600 / per_hour);
        }
        let prod = &d.products["p"];
        let day = prod.factor(12, &d.config, &d.global);
        let night = prod.factor(2, &d.config, &d.global);
        assert!(day / night > 2.5, "day {day} night {night}");
        let b = d.baseline("p").unwrap();
        assert!((2.0..=4.5).contains(&b), "baseline at midnight {b}");
    }

    #[test]
    fn the_cusum_takes_over_a_cold_start_alarm_without_a_gap() {
        let mut d = StatisticalDetector::new();
        // 5 an hour from midnight, then one order every 1.8 s (2,000 an
        // hour) from 23:30 to 00:30: the cold-start test flags the jump, and
        // at midnight (the product is a day old) the CUSUM takes over.
        let mut t = t0();
        let jump = t0() + TimeDelta::minutes(23 * 60 + 30);
        while t < jump {
            assert!(d.observe("p", t, 1, t).spike.is_none(), "{t}");
            t += TimeDelta::minutes(12);
        }
        let (mut first, mut kinds) = (None, Vec::new());
        t = jump;
        while t < jump + TimeDelta::hours(1) {
            let a = d.observe("p", t, 1, t);
            match (a.spike, first) {
                (Some(s), _) => {
                    first.get_or_insert(t);
                    let kind = matches!(s.evidence, Evidence::ColdStart { .. });
                    if kinds.last() != Some(&kind) {
                        kinds.push(kind);
                    }
                    assert!(s.confidence > 0.99, "{t}: {s:?}");
                }
                (None, Some(f)) => panic!("the alarm dropped at {t} (raised at {f})"),
                (None, None) => {}
            }
            t += TimeDelta::milliseconds(1800);
        }
        let first = first.expect("flagged");
        assert!(first - jump < TimeDelta::minutes(2), "{first}");
        assert_eq!(kinds, [true, false], "cold start, then the CUSUM");
    }

    #[test]
    fn alarm_clears_when_the_spike_decays() {
        let mut d = StatisticalDetector::new();
        let mut t = t0();
        for _ in 0..(24 * 10) {
            d.observe("p", t, 1, t);
            t += TimeDelta::minutes(6);
        }
        // 30 minutes at 1 order / 20 s (180/h, 18x).
        let mut raised = None;
        for _ in 0..90 {
            if d.observe("p", t, 1, t).spike.is_some() && raised.is_none() {
                raised = Some(t);
            }
            t += TimeDelta::seconds(20);
        }
        assert!(raised.is_some());
        let a = d.observe("p", t, 1, t);
        let s = a.spike.expect("still up");
        assert!(s.confidence > 0.99, "{s:?}");
        assert!(s.impact_multiplier > 5.0, "{s:?}");
        // Back to 10/h: clears within the hour.
        let mut cleared = None;
        for _ in 0..20 {
            t += TimeDelta::minutes(6);
            if d.observe("p", t, 1, t).spike.is_none() {
                cleared = Some(t);
                break;
            }
        }
        assert!(cleared.is_some(), "alarm still up at {t}");
        assert!(!d.is_alarmed("p"));
    }
}
