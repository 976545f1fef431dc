//! `simulate --compare A,B`: the same scenario and seed under two policies,
//! side by side. The JSON document holds the `comparison` key of
//! `simulator.md` and both runs' full reports (`reports`, by policy name).

use std::collections::BTreeMap;
use std::fmt::Write;

use creatorflow::model::{Impact, Priority};
use serde::Serialize;

use super::Report;

/// The `comparison` object, exactly `simulator.md`'s shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The two policies, as given (`fifo`, `lanes`, or a pack directory).
    pub policies: Vec<String>,
    /// Late shipments / shipped orders, per policy.
    pub late_dispatch_rate: BTreeMap<String, f64>,
    /// Per policy, per impact (every impact present): late / shipped of
    /// that impact, 0 when none shipped.
    pub late_by_impact: BTreeMap<String, BTreeMap<String, f64>>,
    /// Orders the platform cancelled, per policy.
    pub auto_cancelled: BTreeMap<String, u64>,
}

/// The JSON document of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed both runs used.
    pub seed: u64,
    /// The comparison.
    pub comparison: Comparison,
    /// Each run's full report, by policy.
    pub reports: BTreeMap<String, Report>,
}

impl CompareReport {
    /// The comparison of `runs` (policy name, report), in the given order.
    pub fn new(runs: Vec<(String, Report)>) -> Self {
        let policies: Vec<String> = runs.iter().map(|(n, _)| n.clone()).collect();
        let (scenario, seed) = runs
            .first()
            .map(|(_, r)| (r.scenario.clone(), r.seed))
            .unwrap_or_default();
        let comparison = Comparison {
            policies,
            late_dispatch_rate: runs
                .iter()
                .map(|(n, r)| (n.clone(), r.fulfilment.late_dispatch_rate))
                .collect(),
            late_by_impact: runs
                .iter()
                .map(|(n, r)| {
                    let by = Impact::ALL
                        .iter()
                        .map(|i| {
                            let rate = r
                                .fulfilment
                                .by_impact
                                .get(i.as_str())
                                .map_or(0.0, |t| t.late_rate);
                            (i.as_str().to_owned(), rate)
                        })
                        .collect();
                    (n.clone(), by)
                })
                .collect(),
            auto_cancelled: runs
                .iter()
                .map(|(n, r)| (n.clone(), r.fulfilment.auto_cancelled))
                .collect(),
        };
        CompareReport {
            scenario,
            seed,
            comparison,
            reports: runs.into_iter().collect(),
        }
    }

    /// The runs in the order the policies were given.
    pub fn runs(&self) -> Vec<(&str, &Report)> {
        self.comparison
            .policies
            .iter()
            .filter_map(|p| self.reports.get(p).map(|r| (p.as_str(), r)))
            .collect()
    }
}

fn pct(late: u64, shipped: u64) -> String {
    if shipped == 0 {
        "-".into()
    } else {
        format!(
            "{:.1}% ({late}/{shipped})",
            late as f64 * 100.0 / shipped as f64
        )
    }
}

/// The side-by-side terminal summary.
pub fn summary(c: &CompareReport) -> String {
    let runs = c.runs();
    let mut s = String::new();
    let names: Vec<&str> = runs.iter().map(|(n, _)| *n).collect();
    let _ = writeln!(
        s,
        "compare  {} (seed {}): {}, the same traffic and packing capacity",
        c.scenario,
        c.seed,
        names.join(" vs ")
    );
    let _ = write!(s, "         {:<22}", "");
    for n in &names {
        let _ = write!(s, " {n:>24}");
    }
    s.push('\n');
    let mut row = |label: &str, cell: &dyn Fn(&Report) -> String| {
        let _ = write!(s, "         {label:<22}");
        for (_, r) in &runs {
            let _ = write!(s, " {:>24}", cell(r));
        }
        s.push('\n');
    };
    row("late dispatch", &|r| {
        pct(r.fulfilment.late, r.fulfilment.shipped)
    });
    for i in Impact::ALL {
        row(&format!("late {}", i.as_str()), &|r| {
            r.fulfilment
                .by_impact
                .get(i.as_str())
                .map_or("-".into(), |t| pct(t.late, t.shipped))
        });
    }
    for p in Priority::ALL {
        row(&format!("late in lane {}", p.as_str()), &|r| {
            r.fulfilment
                .by_lane
                .get(p.as_str())
                .map_or("-".into(), |t| pct(t.late, t.shipped))
        });
    }
    row("auto-cancelled", &|r| {
        r.fulfilment.auto_cancelled.to_string()
    });
    row("packing backlog peak", &|r| {
        r.fulfilment.packing.max_backlog.to_string()
    });
    row("unshipped at the end", &|r| {
        r.fulfilment.unshipped_at_end.to_string()
    });
    row("lost", &|r| r.orders.lost.to_string());
    s
}
