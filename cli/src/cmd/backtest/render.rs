//! The terminal form of a backtest [`Report`].

use std::fmt::Write;

use super::Provenance;
use super::tally::Report;

/// The report as a readable table: orders, changes, moves, rules.
pub fn text(r: &Report, p: &Provenance) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backtest of tenant `{}`: {} orders replayed, {} changed",
        p.tenant, r.orders, r.changed
    );
    let _ = writeln!(s, "  before: pack {} ({})", short(&p.before), p.before_from);
    let _ = writeln!(s, "  after:  pack {} ({})", short(&p.after), p.after_from);
    if p.other_versions > 0 || p.undecided > 0 {
        let _ = writeln!(
            s,
            "  note: {} order(s) were decided by another pack version, {} carry no decision",
            p.other_versions, p.undecided
        );
    }
    for (title, moves) in [
        ("priority moves", &r.priority_moves),
        ("impact moves", &r.impact_moves),
    ] {
        let _ = writeln!(s, "\n{title}:");
        if moves.is_empty() {
            let _ = writeln!(s, "  none");
        }
        for (k, n) in moves {
            let _ = writeln!(s, "  {:<24} {n:>8}", k.replace("->", " -> "));
        }
    }
    let width = r.rules.keys().map(String::len).max().unwrap_or(4).max(4);
    let _ = writeln!(
        s,
        "\n{:<width$} {:>8} {:>8} {:>8}",
        "rule", "before", "after", "change"
    );
    for (id, f) in &r.rules {
        let delta = i128::from(f.after) - i128::from(f.before);
        let change = if delta == 0 {
            String::new()
        } else {
            format!("{delta:+}")
        };
        let _ = writeln!(s, "{id:<width$} {:>8} {:>8} {change:>8}", f.before, f.after);
    }
    if !r.examples.is_empty() {
        let _ = writeln!(
            s,
            "\nexamples (--format json lists all {}):",
            r.examples.len()
        );
        for e in r.examples.iter().take(10) {
            let _ = writeln!(
                s,
                "  {}: {}/{} [{}] -> {}/{} [{}]",
                e.order_id,
                e.before.priority.as_str(),
                e.before.impact.as_str(),
                e.before.matched.join(", "),
                e.after.priority.as_str(),
                e.after.impact.as_str(),
                e.after.matched.join(", ")
            );
        }
    }
    s
}

/// The first 12 characters of a pack version.
fn short(v: &str) -> &str {
    v.get(..12).unwrap_or(v)
}
