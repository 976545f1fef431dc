//! The terminal summary: what a person reads in ten seconds.

use std::fmt::Write;

use creatorflow::model::Priority;

use super::{Pct, Report};

fn secs(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(v) if v < 10_000 => format!("{:.1}s", v as f64 / 1000.0),
        Some(v) if v < 120_000 => format!("{:.0}s", v as f64 / 1000.0),
        Some(v) if v < 3_600_000 => format!("{:.0}m", v as f64 / 60_000.0),
        Some(v) => format!("{:.1}h", v as f64 / 3_600_000.0),
    }
}

fn pct(p: &Pct) -> String {
    format!("{} / {} / {}", secs(p.p50), secs(p.p95), secs(p.p99))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn share(late: u64, shipped: u64) -> String {
    if shipped == 0 {
        "-".into()
    } else {
        format!("{:.1}%", late as f64 * 100.0 / shipped as f64)
    }
}

/// The business answer first: the late dispatch rate (TikTok Shop's
/// measure of a seller), late VIRAL and urgent orders, cancellations; then
/// the packing floor behind them.
pub fn headline(r: &Report) -> String {
    let f = &r.fulfilment;
    let viral = f.by_impact.get("VIRAL").copied().unwrap_or_default();
    let urgent = f.by_lane.get("urgent").copied().unwrap_or_default();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "LATE     {} of shipped orders dispatched late ({} of {}; TikTok Shop expects under 4%) | VIRAL late {} ({}/{}) | urgent late {} ({}/{}) | auto-cancelled {}",
        share(f.late, f.shipped),
        f.late,
        f.shipped,
        share(viral.late, viral.shipped),
        viral.late,
        viral.shipped,
        share(urgent.late, urgent.shipped),
        urgent.late,
        urgent.shipped,
        f.auto_cancelled
    );
    let capacity = if f.capacity.shifts.is_empty() {
        "unlimited packing".to_owned()
    } else {
        format!(
            "{} ({} orders/day), pickup {}",
            f.capacity.shifts.join(", "),
            f.capacity.orders_per_day.unwrap_or(0.0),
            f.capacity.pickup_cutoff.as_deref().unwrap_or("at once")
        )
    };
    let _ = writeln!(
        s,
        "packing  {} first; {capacity}; backlog peak {}, stations busy {}, {} unshipped at the end; stock-outs {}, reorders {}",
        f.policy,
        f.packing.max_backlog,
        f.packing
            .utilisation
            .map_or_else(|| "-".into(), |u| format!("{:.0}%", u * 100.0)),
        f.unshipped_at_end,
        f.stock.stock_outs,
        f.stock.reorders
    );
    s
}

/// The summary, several short lines.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&headline(r));
    let o = &r.orders;
    let hours = r.simulated_seconds / 3600.0;
    let _ = writeln!(
        s,
        "{} (seed {}, {} store, {} time): {:.1} simulated hours in {:.1}s wall",
        r.scenario, r.seed, r.store, r.mode, hours, r.wall_seconds
    );
    let verdict = if o.lost == 0 { "OK" } else { "LOST ORDERS" };
    let _ = writeln!(
        s,
        "orders   {} placed, {} ingested, {} duplicate deliveries ignored, lost {} [{verdict}]",
        o.generated, o.ingested, o.duplicates_ignored, o.lost
    );
    let states: Vec<String> = o
        .by_final_state
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(s, "states   {}", states.join(", "));
    let _ = writeln!(
        s,
        "peak     {} orders/hour shop-wide, {} on one product",
        r.peak_orders_per_hour, r.peak_product_orders_per_hour
    );
    let _ = writeln!(
        s,
        "lanes    {:<10} {:>7} {:>22} {:>22} {:>6}",
        "", "orders", "wait p50/p95/p99", "to ship p50/p95/p99", "depth"
    );
    for p in Priority::ALL {
        if let Some(l) = r.lanes.get(p.as_str()) {
            let _ = writeln!(
                s,
                "         {:<10} {:>7} {:>22} {:>22} {:>6}",
                p.as_str(),
                l.orders,
                pct(&l.queue_wait_ms),
                pct(&l.time_to_ship_ms),
                l.max_queue_depth
            );
        }
    }
    for (name, d) in &r.viral_detection {
        let _ = writeln!(
            s,
            "viral    {:<11} detected {}/{}, false alarms {}, precision {}, recall {}, time to detect median {} min (max {})",
            name,
            d.detected,
            d.spikes,
            d.false_alarms,
            opt(d.precision, 2),
            opt(d.recall, 2),
            opt(d.time_to_detect_minutes.median, 1),
            opt(d.time_to_detect_minutes.max, 1),
        );
    }
    let a = &r.actions;
    let _ = writeln!(
        s,
        "actions  {} attempts, {} retries, {} failed for good, circuit opened {}x",
        a.attempts, a.retries, a.failures, a.circuit_opened
    );
    for (kind, b) in &r.breakers {
        let periods: Vec<String> = b
            .open_periods
            .iter()
            .map(|(o, c)| {
                format!(
                    "{}-{}",
                    o.format("%H:%M"),
                    c.map_or_else(|| "still open".into(), |c| c.format("%H:%M").to_string())
                )
            })
            .collect();
        let shown: Vec<&str> = periods.iter().take(4).map(String::as_str).collect();
        let more = periods.len().saturating_sub(4);
        let _ = writeln!(
            s,
            "breaker  {kind}: open {}{}; now {}",
            shown.join(", "),
            if more > 0 {
                format!(" (+{more} more)")
            } else {
                String::new()
            },
            b.final_state
        );
    }
    let _ = writeln!(
        s,
        "engine   {} steps recorded in {} claim rounds; {:.0} simulated orders per wall second",
        r.engine.recorded, r.engine.rounds, r.engine.orders_per_wall_second
    );
    s
}
