//! The statistical detector's cold-start test: a product's recent rate
//! against its own rate so far, for the hours before the CUSUM may run.
//!
//! # Why
//!
//! The CUSUM needs a baseline with its daily shape (see
//! `viral/statistical.rs`): it stays silent until the product is a day old or
//! the shop has seen every hour of the day. A creator who installs the engine
//! the morning a video takes off would be blind until the next day. This test
//! covers those hours, and nothing else: once the CUSUM runs, it takes the
//! alarm over.
//!
//! # The test
//!
//! At each order of a product the CUSUM does not watch yet:
//!
//! - `recent`: the product's orders in the last
//!   [`cold_start_window`](super::StatisticalConfig::cold_start_window)
//!   (15 min);
//! - `reference`, orders per hour: the larger of the product's rate so far
//!   (its orders from the first one the detector saw to the start of the
//!   recent window, plus one, over that span) and its rate in the hour before
//!   the recent window; never below
//!   [`min_rate_per_hour`](super::StatisticalConfig::min_rate_per_hour);
//! - the alarm goes up when the product has been seen for at least
//!   [`cold_start_min_history`](super::StatisticalConfig::cold_start_min_history)
//!   (1 h) before the recent window, `recent` is at least
//!   [`cold_start_min_orders`](super::StatisticalConfig::cold_start_min_orders)
//!   (30), and the recent rate is at least
//!   [`cold_start_ratio`](super::StatisticalConfig::cold_start_ratio) (10)
//!   times the reference;
//! - the reference is then frozen, and the alarm holds while the recent rate
//!   stays at least [`cold_start_clear_ratio`](super::StatisticalConfig::cold_start_clear_ratio)
//!   (3) times it.
//!
//! # Why it never flags a steady seller
//!
//! A steady seller's recent rate is its rate so far, give or take Poisson
//! noise: at λ orders an hour the 15-minute count has mean λ/4 and standard
//! deviation √(λ/4), while the alarm needs 10 × λ/4 *and* 30 orders. At 12/h
//! and below the 30 orders bind (mean ≤ 3: P(N ≥ 30) < 1e-17); above, the
//! ratio does (at 150/h: 375 orders against a mean of 37.5). A daily rhythm
//! moves a rate by a few times over hours, not tenfold within an hour, and
//! the previous hour's rate in the reference absorbs a ramp that does. What
//! it cannot tell from a spike is a product that sells nothing for hours and
//! then 120+ an hour at once; that is a jump, and it is flagged.
//!
//! # What it misses, by design
//!
//! A spike that is already running when the detector first sees the product
//! (its rate so far *is* the spike), or that ramps up over more than an hour
//! (the previous hour's rate keeps up with it): the CUSUM catches those once
//! it runs. A launch burst is the product's first orders, so it is its own
//! reference and is not flagged (`tests/viral.rs`).

use chrono::TimeDelta;

use super::StatisticalConfig;
use super::velocity::{HOUR_MS, MINUTE_MS, Velocity};

/// What the test saw at one order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Reading {
    /// The product's orders in the recent window.
    pub(super) recent: u64,
    /// The orders the reference rate expects in that window.
    pub(super) expected: f64,
    /// The window, in minutes.
    pub(super) window_minutes: f64,
}

fn window_ms(cfg: &StatisticalConfig) -> i64 {
    cfg.cold_start_window.num_milliseconds().max(MINUTE_MS)
}

fn window_hours(cfg: &StatisticalConfig) -> f64 {
    window_ms(cfg) as f64 / HOUR_MS as f64
}

/// Tests a product not alarmed at its order at `at_ms`: its reference rate
/// (orders per hour) when the recent rate is a jump from it, else `None`.
/// `first_ms` is the first order the detector saw, `seen` the orders seen
/// since (this one included).
pub(super) fn raise(
    v: &Velocity,
    at_ms: i64,
    first_ms: i64,
    seen: u64,
    cfg: &StatisticalConfig,
) -> Option<f64> {
    let min = u64::from(cfg.cold_start_min_orders);
    if seen < min {
        return None;
    }
    let w = window_ms(cfg);
    let span_ms = at_ms - w - first_ms;
    if span_ms < cfg.cold_start_min_history.num_milliseconds().max(1) {
        return None;
    }
    let recent = v.orders_ms(at_ms, w);
    if recent < min {
        return None;
    }
    let so_far = seen.saturating_sub(recent) as f64 + 1.0;
    let so_far_rate = so_far / (span_ms as f64 / HOUR_MS as f64);
    let previous_hour = v.orders_ms(at_ms, w + HOUR_MS).saturating_sub(recent) as f64;
    let reference = so_far_rate.max(previous_hour).max(cfg.min_rate_per_hour);
    (recent as f64 >= cfg.cold_start_ratio * reference * window_hours(cfg)).then_some(reference)
}

/// Whether an alarm raised against `reference` (orders per hour) still
/// holds at an order at `at_ms`, with what the test saw.
pub(super) fn holds(
    v: &Velocity,
    at_ms: i64,
    reference: f64,
    cfg: &StatisticalConfig,
) -> (bool, Reading) {
    let reading = read(v, at_ms, reference, cfg.cold_start_window);
    let holds = reading.recent as f64 >= cfg.cold_start_clear_ratio * reading.expected;
    (holds, reading)
}

/// The recent count (over `window`) against `reference`.
pub(super) fn read(v: &Velocity, at_ms: i64, reference: f64, window: TimeDelta) -> Reading {
    let w = window.num_milliseconds().max(MINUTE_MS);
    Reading {
        recent: v.orders_ms(at_ms, w),
        expected: reference * w as f64 / HOUR_MS as f64,
        window_minutes: w as f64 / MINUTE_MS as f64,
    }
}
