//! The self-contained HTML report: inline SVG charts generated here, inline
//! CSS, one small inline script; no network, no external fonts or scripts.
//!
//! Charts: arrivals per minute with the spikes (shaded), each detector's
//! detection time and service outages marked; queue depth per lane; latency
//! percentiles per lane; time to detect per detector.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use creatorflow::model::Priority;

use super::{Pct, Report};

const W: f64 = 960.0;
const H: f64 = 260.0;
const ML: f64 = 56.0;
const MR: f64 = 16.0;
const MT: f64 = 16.0;
const MB: f64 = 36.0;
/// At most this many points per line (longer series are averaged in buckets).
const MAX_POINTS: usize = 1_500;

const LANE_COLORS: [(&str, &str); 4] = [
    ("high", "#d62728"),
    ("urgent", "#ff7f0e"),
    ("standard", "#1f77b4"),
    ("automated", "#2ca02c"),
];
const DETECTOR_COLORS: [(&str, &str); 2] = [("reference", "#9467bd"), ("statistical", "#17becf")];

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn color<'a>(table: &[(&str, &'a str)], key: &str) -> &'a str {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("#555", |(_, c)| c)
}

/// Averages `v` into at most `MAX_POINTS` buckets: (minute index, value).
fn bucket(v: &[f64]) -> Vec<(f64, f64)> {
    let step = v.len().div_ceil(MAX_POINTS).max(1);
    v.chunks(step)
        .enumerate()
        .map(|(i, c)| {
            (
                (i * step) as f64 + (c.len() as f64 - 1.0) / 2.0,
                c.iter().sum::<f64>() / c.len() as f64,
            )
        })
        .collect()
}

/// A "nice" upper bound for an axis.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

struct Frame {
    minutes: f64,
    ymax: f64,
}

impl Frame {
    fn x(&self, minute: f64) -> f64 {
        ML + (W - ML - MR) * (minute / self.minutes.max(1.0)).clamp(0.0, 1.0)
    }
    fn y(&self, v: f64) -> f64 {
        MT + (H - MT - MB) * (1.0 - (v / self.ymax).clamp(0.0, 1.0))
    }
}

fn axes(s: &mut String, f: &Frame, start: DateTime<Utc>, ylabel: &str) {
    let _ = write!(
        s,
        r##"<line x1="{ML}" y1="{b}" x2="{r}" y2="{b}" stroke="#444"/><line x1="{ML}" y1="{MT}" x2="{ML}" y2="{b}" stroke="#444"/>"##,
        b = H - MB,
        r = W - MR
    );
    for i in 0..=4 {
        let v = f.ymax * f64::from(i) / 4.0;
        let y = f.y(v);
        let _ = write!(
            s,
            r##"<line x1="{ML}" y1="{y:.1}" x2="{r}" y2="{y:.1}" stroke="#eee"/><text x="{tx}" y="{ty:.1}" text-anchor="end" class="tick">{v}</text>"##,
            r = W - MR,
            tx = ML - 6.0,
            ty = y + 4.0,
            v = if f.ymax >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        );
    }
    let hours = f.minutes / 60.0;
    let every = if hours > 72.0 {
        24.0
    } else if hours > 24.0 {
        6.0
    } else {
        3.0
    };
    let mut h = 0.0;
    while h <= hours + 1e-9 {
        let x = f.x(h * 60.0);
        let t = start + chrono::TimeDelta::minutes((h * 60.0) as i64);
        let label = if every >= 24.0 {
            t.format("%a %d").to_string()
        } else {
            t.format("%a %H:%M").to_string()
        };
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}" stroke="#444"/><text x="{x:.1}" y="{ty}" text-anchor="middle" class="tick">{label}</text>"##,
            b = H - MB,
            b2 = H - MB + 4.0,
            ty = H - MB + 16.0
        );
        h += every;
    }
    let _ = write!(
        s,
        r##"<text x="12" y="{y}" transform="rotate(-90 12 {y})" text-anchor="middle" class="axis">{}</text>"##,
        esc(ylabel),
        y = (H - MB + MT) / 2.0
    );
}

fn polyline(s: &mut String, f: &Frame, pts: &[(f64, f64)], stroke: &str, name: &str) {
    let mut d = String::new();
    for (m, v) in pts {
        let _ = write!(d, "{:.1},{:.1} ", f.x(*m), f.y(*v));
    }
    let _ = write!(
        s,
        r##"<polyline fill="none" stroke="{stroke}" stroke-width="1.4" points="{}"><title>{}</title></polyline>"##,
        d.trim_end(),
        esc(name)
    );
}

fn minute_of(start: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
    (t - start).num_milliseconds() as f64 / 60_000.0
}

fn legend(s: &mut String, items: &[(&str, &str)]) {
    s.push_str(r#"<div class="legend">"#);
    for (name, c) in items {
        let _ = write!(
            s,
            r#"<span><i style="background:{c}"></i>{}</span>"#,
            esc(name)
        );
    }
    s.push_str("</div>");
}

fn arrivals_chart(s: &mut String, r: &Report, start: DateTime<Utc>) {
    let v: Vec<f64> = r
        .series
        .arrivals_per_minute
        .iter()
        .map(|x| f64::from(*x))
        .collect();
    let pts = bucket(&v);
    let minutes = (r.simulated_seconds / 60.0).max(v.len() as f64);
    let f = Frame {
        minutes,
        ymax: nice_max(pts.iter().map(|p| p.1).fold(0.0, f64::max)),
    };
    let _ = write!(
        s,
        r##"<svg id="chart-arrivals" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Arrivals per minute"><rect width="{W}" height="{H}" fill="white"/>"##
    );
    for sp in &r.spikes {
        let (x0, x1) = (
            f.x(minute_of(start, sp.start)),
            f.x(minute_of(start, sp.end)),
        );
        let _ = write!(
            s,
            r##"<rect class="spike" x="{x0:.1}" y="{MT}" width="{w:.1}" height="{h}" fill="#ffdd57" fill-opacity="0.35"><title>spike on {}: {} to {}</title></rect>"##,
            esc(&sp.product_id),
            sp.start.format("%H:%M"),
            sp.end.format("%H:%M"),
            w = (x1 - x0).max(1.0),
            h = H - MT - MB
        );
    }
    for (name, svc) in &r.services {
        for (a, b) in &svc.outages {
            let (x0, x1) = (f.x(minute_of(start, *a)), f.x(minute_of(start, *b)));
            let _ = write!(
                s,
                r##"<rect class="outage" x="{x0:.1}" y="{MT}" width="{w:.1}" height="{h}" fill="#888" fill-opacity="0.25"><title>{} outage {} to {}</title></rect>"##,
                esc(name),
                a.format("%H:%M"),
                b.format("%H:%M"),
                w = (x1 - x0).max(1.0),
                h = H - MT - MB
            );
        }
    }
    axes(s, &f, start, "orders per minute");
    polyline(s, &f, &pts, "#333", "orders placed per minute");
    for (name, score) in &r.viral_detection {
        let c = color(&DETECTOR_COLORS, name);
        for (sp, ttd) in r.spikes.iter().zip(&score.per_spike_minutes) {
            if let Some(m) = ttd {
                let x = f.x(minute_of(start, sp.start) + m);
                let _ = write!(
                    s,
                    r##"<line class="detection" x1="{x:.1}" y1="{MT}" x2="{x:.1}" y2="{b}" stroke="{c}" stroke-width="2" stroke-dasharray="4 3"><title>{} detected {} after {m:.1} min</title></line>"##,
                    esc(name),
                    esc(&sp.product_id),
                    b = H - MB
                );
            }
        }
    }
    s.push_str("</svg>");
    legend(
        s,
        &[
            ("orders placed", "#333"),
            ("spike (ground truth)", "#ffdd57"),
            ("service outage", "#bbb"),
            ("detected: reference", color(&DETECTOR_COLORS, "reference")),
            (
                "detected: statistical",
                color(&DETECTOR_COLORS, "statistical"),
            ),
        ],
    );
}

fn depth_chart(s: &mut String, r: &Report, start: DateTime<Utc>) {
    let mut ymax: f64 = 0.0;
    let mut lines = Vec::new();
    for p in Priority::ALL {
        let v: Vec<f64> = r
            .series
            .queue_depth
            .get(p.as_str())
            .map(|v| v.iter().map(|x| *x as f64).collect())
            .unwrap_or_default();
        let pts = bucket(&v);
        ymax = ymax.max(pts.iter().map(|p| p.1).fold(0.0, f64::max));
        lines.push((p.as_str(), pts));
    }
    let f = Frame {
        minutes: (r.simulated_seconds / 60.0).max(1.0),
        ymax: nice_max(ymax),
    };
    let _ = write!(
        s,
        r##"<svg id="chart-queue" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Queue depth per lane"><rect width="{W}" height="{H}" fill="white"/>"##
    );
    axes(s, &f, start, "items due");
    for (lane, pts) in &lines {
        polyline(s, &f, pts, color(&LANE_COLORS, lane), lane);
    }
    s.push_str("</svg>");
    legend(s, &LANE_COLORS);
}

/// Horizontal grouped bars: one group per lane, bars p50 / p95 / p99, log scale.
fn latency_chart(s: &mut String, r: &Report, id: &str, title: &str, pick: fn(&super::Lane) -> Pct) {
    let groups: Vec<(&str, Pct)> = Priority::ALL
        .iter()
        .filter_map(|p| r.lanes.get(p.as_str()).map(|l| (p.as_str(), pick(l))))
        .collect();
    let max = groups
        .iter()
        .filter_map(|(_, p)| p.p99)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let lo = 1.0f64; // 1 ms
    let hi = nice_max(max).max(10.0);
    let row = 14.0;
    let gh = row * 3.0 + 12.0;
    let height = MT + gh * groups.len() as f64 + 30.0;
    let x = |ms: f64| {
        ML + 40.0
            + (W - ML - 40.0 - MR - 90.0) * ((ms.max(lo)).ln() - lo.ln()) / (hi.ln() - lo.ln())
    };
    let _ = write!(
        s,
        r##"<svg id="{id}" class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="{t}"><rect width="{W}" height="{height}" fill="white"/>"##,
        t = esc(title)
    );
    let ticks: [(f64, &str); 10] = [
        (1.0, "1ms"),
        (10.0, "10ms"),
        (100.0, "100ms"),
        (1_000.0, "1s"),
        (10_000.0, "10s"),
        (60_000.0, "1min"),
        (600_000.0, "10min"),
        (3_600_000.0, "1h"),
        (36_000_000.0, "10h"),
        (86_400_000.0, "1d"),
    ];
    for (tick, label) in ticks.iter().filter(|(t, _)| *t <= hi * 1.0001) {
        let tx = x(*tick);
        let _ = write!(
            s,
            r##"<line x1="{tx:.1}" y1="{MT}" x2="{tx:.1}" y2="{b:.1}" stroke="#eee"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" class="tick">{label}</text>"##,
            b = height - 26.0,
            ty = height - 12.0
        );
    }
    for (gi, (lane, p)) in groups.iter().enumerate() {
        let y0 = MT + gh * gi as f64;
        let c = color(&LANE_COLORS, lane);
        let _ = write!(
            s,
            r##"<text x="{tx}" y="{ty:.1}" text-anchor="end" class="axis">{lane}</text>"##,
            tx = ML + 34.0,
            ty = y0 + row * 1.5 + 4.0
        );
        for (bi, (name, v, op)) in [
            ("p50", p.p50, 0.45),
            ("p95", p.p95, 0.7),
            ("p99", p.p99, 1.0),
        ]
        .into_iter()
        .enumerate()
        {
            let y = y0 + row * bi as f64;
            let Some(v) = v else {
                let _ = write!(
                    s,
                    r##"<text x="{tx}" y="{ty:.1}" class="tick">{name}: no samples</text>"##,
                    tx = ML + 44.0,
                    ty = y + row - 3.0
                );
                continue;
            };
            let x1 = x(v as f64);
            let _ = write!(
                s,
                r##"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}" fill-opacity="{op}"><title>{lane} {name}: {v} ms</title></rect><text x="{tx:.1}" y="{ty:.1}" class="tick">{name} {label}</text>"##,
                x0 = ML + 40.0,
                w = (x1 - ML - 40.0).max(1.0),
                h = row - 2.0,
                tx = x1 + 4.0,
                ty = y + row - 3.0,
                label = human_ms(v)
            );
        }
    }
    s.push_str("</svg>");
}

fn human_ms(v: u64) -> String {
    if v < 1000 {
        format!("{v} ms")
    } else if v < 120_000 {
        format!("{:.1} s", v as f64 / 1000.0)
    } else if v < 7_200_000 {
        format!("{:.1} min", v as f64 / 60_000.0)
    } else {
        format!("{:.1} h", v as f64 / 3_600_000.0)
    }
}

fn detection_chart(s: &mut String, r: &Report) {
    let rows: Vec<(&str, usize, Option<f64>)> = r
        .viral_detection
        .iter()
        .flat_map(|(name, sc)| {
            sc.per_spike_minutes
                .iter()
                .enumerate()
                .map(move |(i, m)| (name.as_str(), i, *m))
        })
        .collect();
    let row = 18.0;
    let height = MT + row * rows.len().max(1) as f64 + 30.0;
    let max = nice_max(rows.iter().filter_map(|r| r.2).fold(1.0, f64::max));
    let x = |m: f64| ML + 150.0 + (W - ML - 150.0 - MR - 60.0) * (m / max).clamp(0.0, 1.0);
    let _ = write!(
        s,
        r##"<svg id="chart-detection" class="chart" viewBox="0 0 {W} {height}" role="img" aria-label="Time to detect"><rect width="{W}" height="{height}" fill="white"/>"##
    );
    if rows.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{ML}" y="{y}" class="axis">No spikes in this scenario: every alarm is a false alarm (see the table).</text>"##,
            y = MT + 14.0
        );
    }
    for (i, (name, spike, m)) in rows.iter().enumerate() {
        let y = MT + row * i as f64;
        let product = r.spikes.get(*spike).map_or("?", |s| s.product_id.as_str());
        let c = color(&DETECTOR_COLORS, name);
        let _ = write!(
            s,
            r##"<text x="{tx}" y="{ty:.1}" text-anchor="end" class="tick">{} · {}</text>"##,
            esc(name),
            esc(product),
            tx = ML + 144.0,
            ty = y + row - 5.0
        );
        match m {
            Some(m) => {
                let _ = write!(
                    s,
                    r##"<rect class="bar" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{h}" fill="{c}"><title>{m:.1} min</title></rect><text x="{tx:.1}" y="{ty:.1}" class="tick">{m:.1} min</text>"##,
                    x0 = ML + 150.0,
                    w = (x(*m) - ML - 150.0).max(1.0),
                    h = row - 4.0,
                    tx = x(*m) + 4.0,
                    ty = y + row - 5.0
                );
            }
            None => {
                let _ = write!(
                    s,
                    r##"<text x="{tx}" y="{ty:.1}" class="tick missed">missed</text>"##,
                    tx = ML + 152.0,
                    ty = y + row - 5.0
                );
            }
        }
    }
    s.push_str("</svg>");
}

/// Colours of the policies on the comparison page, in the given order.
const POLICY_COLORS: [&str; 2] = ["#7f7f7f", "#d62728"];

/// A line chart of per-minute (`per_hour: false`) or per-hour series.
fn series_chart(
    s: &mut String,
    id: &str,
    label: &str,
    ylabel: &str,
    minutes: f64,
    start: DateTime<Utc>,
    lines: &[(&str, &str, &[u64], bool)],
) {
    let mut ymax: f64 = 0.0;
    let mut drawn = Vec::new();
    for (name, colour, v, per_hour) in lines {
        let values: Vec<f64> = v.iter().map(|x| *x as f64).collect();
        let pts: Vec<(f64, f64)> = if *per_hour {
            values
                .iter()
                .enumerate()
                .map(|(h, y)| (h as f64 * 60.0 + 30.0, *y))
                .collect()
        } else {
            bucket(&values)
        };
        ymax = ymax.max(pts.iter().map(|p| p.1).fold(0.0, f64::max));
        drawn.push((*name, *colour, pts));
    }
    let f = Frame {
        minutes: minutes.max(1.0),
        ymax: nice_max(ymax),
    };
    let _ = write!(
        s,
        r##"<svg id="{id}" class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{l}"><rect width="{W}" height="{H}" fill="white"/>"##,
        l = esc(label)
    );
    axes(s, &f, start, ylabel);
    for (name, colour, pts) in &drawn {
        polyline(s, &f, pts, colour, name);
    }
    s.push_str("</svg>");
    let items: Vec<(&str, &str)> = drawn.iter().map(|(n, c, _)| (*n, *c)).collect();
    legend(s, &items);
}

/// The packing backlog and the late shipments over time.
fn fulfilment_charts(s: &mut String, r: &Report, start: DateTime<Utc>) {
    let f = &r.fulfilment;
    let minutes = r.simulated_seconds / 60.0;
    s.push_str("<h2>Orders waiting for packing</h2>");
    series_chart(
        s,
        "chart-backlog",
        "Packing backlog",
        "orders waiting",
        minutes,
        start,
        &[(
            "waiting for a packing station",
            "#8c564b",
            &f.series.backlog_per_minute,
            false,
        )],
    );
    s.push_str("<h2>Shipments per hour, and late ones</h2>");
    series_chart(
        s,
        "chart-late",
        "Late shipments per hour",
        "orders per hour",
        minutes,
        start,
        &[
            ("shipped", "#1f77b4", &f.series.shipped_per_hour, true),
            ("shipped late", "#d62728", &f.series.late_per_hour, true),
        ],
    );
}

fn fulfilment_table(s: &mut String, r: &Report) {
    let f = &r.fulfilment;
    let pc = |v: f64| format!("{:.1}%", v * 100.0);
    s.push_str("<table><tr><th>lane / impact</th><th>shipped</th><th>late</th><th>late rate</th><th>auto-cancelled</th></tr>");
    for (group, t) in f.by_lane.iter().chain(f.by_impact.iter()) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(group),
            t.shipped,
            t.late,
            pc(t.late_rate),
            t.auto_cancelled
        );
    }
    let _ = write!(
        s,
        "<tr><th>all</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></table>",
        f.shipped,
        f.late,
        pc(f.late_dispatch_rate),
        f.auto_cancelled
    );
    let c = &f.capacity;
    let _ = write!(
        s,
        "<p class=\"sub\">Packing first: {} · shifts: {} · pickup: {} · ship-by (orders without a deadline): {} h · auto-cancel: {} · stations busy: {} · stock-outs: {} · reorders: {}</p>",
        esc(&f.policy),
        esc(&if c.shifts.is_empty() {
            "unlimited".to_owned()
        } else {
            c.shifts.join(", ")
        }),
        esc(c.pickup_cutoff.as_deref().unwrap_or("at once")),
        c.ship_by_hours,
        c.auto_cancel_after_hours
            .map_or_else(|| "never".to_owned(), |h| format!("{h} h")),
        f.packing
            .utilisation
            .map_or_else(|| "-".to_owned(), |u| format!("{:.0}%", u * 100.0)),
        f.stock.stock_outs,
        f.stock.reorders
    );
}

/// The page's head and style.
fn head(s: &mut String, title: &str) {
    let _ = write!(
        s,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CreatorFlow simulation: {name}</title>
<style>
body{{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1000px;color:#222;padding:0 12px}}
h1{{font-size:22px;margin:0 0 4px}} h2{{font-size:17px;margin:28px 0 6px}}
.sub{{color:#666;margin:0 0 16px}}
.cards{{display:flex;flex-wrap:wrap;gap:10px}}
.card{{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}}
.card b{{display:block;font-size:20px}} .bad b{{color:#c00}} .good b{{color:#080}}
.chart{{width:100%;height:auto;border:1px solid #eee}}
.tick{{font-size:11px;fill:#555}} .axis{{font-size:12px;fill:#333}} .missed{{fill:#c00}}
.legend span{{margin-right:14px;font-size:12px}} .legend i{{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}}
table{{border-collapse:collapse;margin:6px 0}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}} th:first-child,td:first-child{{text-align:left}}
</style></head>
<body data-rendered="pending">
"#,
        name = esc(title)
    );
}

/// The check a browser runs: `expected` charts, each drawn with a size.
fn script(s: &mut String, expected: usize) {
    let _ = write!(
        s,
        r#"<script>
(function () {{
  var charts = document.querySelectorAll("svg.chart");
  var ok = charts.length === {expected};
  for (var i = 0; i < charts.length; i++) {{
    var b = charts[i].getBBox();
    if (!(b.width > 0 && b.height > 0)) {{ ok = false; }}
  }}
  document.body.setAttribute("data-charts", String(charts.length));
  document.body.setAttribute("data-rendered", ok ? "ok" : "broken");
}})();
</script>
</body></html>
"#
    );
}

/// A comparison of policies (`simulate --compare`) as one HTML page: the
/// figures side by side, the packing backlog and the late shipments of
/// each policy on the same axes.
pub fn render_compare(c: &super::compare::CompareReport) -> String {
    let runs = c.runs();
    let mut s = String::with_capacity(128 * 1024);
    head(&mut s, &c.scenario);
    let names: Vec<&str> = runs.iter().map(|(n, _)| *n).collect();
    let _ = write!(
        s,
        "<h1>{}: {}</h1><p class=\"sub\">the same scenario, seed {} and packing capacity under each policy</p>",
        esc(&c.scenario),
        esc(&names.join(" vs ")),
        c.seed
    );
    s.push_str("<table><tr><th></th>");
    for n in &names {
        let _ = write!(s, "<th>{}</th>", esc(n));
    }
    s.push_str("</tr>");
    let pc = |v: f64| format!("{:.1}%", v * 100.0);
    let mut row = |label: String, cell: &dyn Fn(&Report) -> String| {
        let _ = write!(s, "<tr><td>{}</td>", esc(&label));
        for (_, r) in &runs {
            let _ = write!(s, "<td>{}</td>", esc(&cell(r)));
        }
        s.push_str("</tr>");
    };
    row("late dispatch rate".into(), &|r| {
        pc(r.fulfilment.late_dispatch_rate)
    });
    for i in creatorflow::model::Impact::ALL {
        row(format!("late {}", i.as_str()), &|r| {
            r.fulfilment
                .by_impact
                .get(i.as_str())
                .map_or("-".into(), |t| {
                    format!("{} ({}/{})", pc(t.late_rate), t.late, t.shipped)
                })
        });
    }
    for p in Priority::ALL {
        row(format!("late in lane {}", p.as_str()), &|r| {
            r.fulfilment
                .by_lane
                .get(p.as_str())
                .map_or("-".into(), |t| {
                    format!("{} ({}/{})", pc(t.late_rate), t.late, t.shipped)
                })
        });
    }
    row("auto-cancelled".into(), &|r| {
        r.fulfilment.auto_cancelled.to_string()
    });
    row("packing backlog peak".into(), &|r| {
        r.fulfilment.packing.max_backlog.to_string()
    });
    row("lost".into(), &|r| r.orders.lost.to_string());
    s.push_str("</table>");
    let start = runs
        .first()
        .and_then(|(_, r)| r.series.start)
        .unwrap_or_default();
    let minutes = runs
        .iter()
        .map(|(_, r)| r.simulated_seconds / 60.0)
        .fold(1.0, f64::max);
    let lines = |pick: fn(&Report) -> &[u64], per_hour: bool| -> Vec<(&str, &str, &[u64], bool)> {
        runs.iter()
            .enumerate()
            .map(|(i, (n, r))| {
                (
                    *n,
                    POLICY_COLORS[i % POLICY_COLORS.len()],
                    pick(r),
                    per_hour,
                )
            })
            .collect()
    };
    s.push_str("<h2>Orders waiting for packing</h2>");
    series_chart(
        &mut s,
        "chart-compare-backlog",
        "Packing backlog per policy",
        "orders waiting",
        minutes,
        start,
        &lines(|r| &r.fulfilment.series.backlog_per_minute, false),
    );
    s.push_str("<h2>Late shipments per hour</h2>");
    series_chart(
        &mut s,
        "chart-compare-late",
        "Late shipments per hour per policy",
        "late per hour",
        minutes,
        start,
        &lines(|r| &r.fulfilment.series.late_per_hour, true),
    );
    script(&mut s, 2);
    s
}

/// The report as one HTML page.
pub fn render(r: &Report) -> String {
    let start = r.series.start.unwrap_or_default();
    let mut s = String::with_capacity(256 * 1024);
    head(&mut s, &r.scenario);
    let _ = write!(
        s,
        r#"<h1>{name}</h1>
<p class="sub">{desc} · seed {seed} · {store} store · {mode} time · {hours:.1} simulated hours in {wall:.1} s</p>
"#,
        name = esc(&r.scenario),
        desc = esc(&r.description),
        seed = r.seed,
        store = esc(&r.store),
        mode = r.mode,
        hours = r.simulated_seconds / 3600.0,
        wall = r.wall_seconds
    );
    let o = &r.orders;
    s.push_str(r#"<div class="cards">"#);
    let card = |s: &mut String, label: &str, value: String, class: &str| {
        let _ = write!(
            s,
            r#"<div class="card {class}"><b>{}</b>{}</div>"#,
            esc(&value),
            esc(label)
        );
    };
    let f = &r.fulfilment;
    card(
        &mut s,
        "dispatched late (TikTok: under 4%)",
        format!("{:.1}%", f.late_dispatch_rate * 100.0),
        if f.late_dispatch_rate < 0.04 {
            "good"
        } else {
            "bad"
        },
    );
    let viral = f.by_impact.get("VIRAL").copied().unwrap_or_default();
    card(
        &mut s,
        "VIRAL orders late",
        format!("{} of {}", viral.late, viral.shipped),
        "",
    );
    card(
        &mut s,
        "auto-cancelled",
        f.auto_cancelled.to_string(),
        if f.auto_cancelled == 0 { "good" } else { "bad" },
    );
    card(&mut s, "orders placed", o.generated.to_string(), "");
    card(
        &mut s,
        "lost",
        o.lost.to_string(),
        if o.lost == 0 { "good" } else { "bad" },
    );
    card(
        &mut s,
        "duplicates ignored",
        o.duplicates_ignored.to_string(),
        "",
    );
    card(
        &mut s,
        "peak orders / hour",
        r.peak_orders_per_hour.to_string(),
        "",
    );
    card(
        &mut s,
        "peak on one product / hour",
        r.peak_product_orders_per_hour.to_string(),
        "",
    );
    card(
        &mut s,
        "circuit opened",
        r.actions.circuit_opened.to_string(),
        "",
    );
    s.push_str("</div>");

    s.push_str("<h2>Arrivals per minute</h2>");
    arrivals_chart(&mut s, r, start);
    s.push_str("<h2>Queue depth per lane</h2>");
    depth_chart(&mut s, r, start);
    s.push_str("<h2>Queue wait per lane (p50 / p95 / p99, log scale)</h2>");
    latency_chart(&mut s, r, "chart-wait", "Queue wait per lane", |l| {
        l.queue_wait_ms
    });
    s.push_str("<h2>Time to ship per lane (p50 / p95 / p99, log scale)</h2>");
    latency_chart(&mut s, r, "chart-ship", "Time to ship per lane", |l| {
        l.time_to_ship_ms
    });
    fulfilment_charts(&mut s, r, start);
    fulfilment_table(&mut s, r);
    s.push_str("<h2>Viral detection: time to detect</h2>");
    detection_chart(&mut s, r);
    s.push_str(
        "<table><tr><th>detector</th><th>spikes</th><th>detected</th><th>false alarms</th><th>precision</th><th>recall</th><th>median min</th><th>max min</th></tr>",
    );
    let f = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    for (name, d) in &r.viral_detection {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            d.spikes,
            d.detected,
            d.false_alarms,
            f(d.precision),
            f(d.recall),
            f(d.time_to_detect_minutes.median),
            f(d.time_to_detect_minutes.max)
        );
    }
    s.push_str("</table>");

    s.push_str("<h2>Orders and actions</h2><table><tr><th>final state</th><th>orders</th></tr>");
    for (k, v) in &o.by_final_state {
        let _ = write!(s, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    }
    s.push_str("</table><table><tr><th>actions</th><th></th></tr>");
    let a = &r.actions;
    for (k, v) in [
        ("attempts", a.attempts),
        ("retries", a.retries),
        ("failed for good", a.failures),
        ("circuit opened", a.circuit_opened),
    ] {
        let _ = write!(s, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    s.push_str("</table>");
    if !r.breakers.is_empty() {
        s.push_str("<table><tr><th>breaker</th><th>open periods</th><th>now</th></tr>");
        for (k, b) in &r.breakers {
            let periods: Vec<String> = b
                .open_periods
                .iter()
                .map(|(o, c)| {
                    format!(
                        "{}–{}",
                        o.format("%H:%M:%S"),
                        c.map_or_else(|| "open".into(), |c| c.format("%H:%M:%S").to_string())
                    )
                })
                .collect();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(k),
                esc(&periods.join(", ")),
                esc(&b.final_state)
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<table><tr><th>rule</th><th>fired</th></tr>");
    for (k, v) in &r.rules {
        let _ = write!(s, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    }
    s.push_str("</table>");
    script(&mut s, 7);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn buckets_long_series() {
        let v: Vec<f64> = (0..10_080).map(f64::from).collect();
        let b = bucket(&v);
        assert!(b.len() <= MAX_POINTS);
        assert!((b[0].1 - 3.0).abs() < 1e-9); // mean of 0..=6 (step 7)
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(37.0), 50.0);
    }
}
