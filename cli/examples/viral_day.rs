//! Prints the deterministic day of orders `cli/tests/viral_eval.rs` judges
//! the shipped viral rules on, as JSON lines: steady best sellers at 60, 150
//! and 500 orders an hour, 40 long-tail products, and one product jumping
//! from about 5 an hour to 2,000 an hour at noon.
//!
//! ```sh
//! cargo run -p creatorflow-cli --example viral_day > /tmp/day.jsonl          # from midnight (fresh start)
//! cargo run -p creatorflow-cli --example viral_day -- warm > /tmp/2days.jsonl # after a day of history
//! creatorflow eval --orders /tmp/day.jsonl | grep -c '"impact":"VIRAL"'
//! ```

#[path = "../tests/support/viral_day.rs"]
mod viral_day;

use std::io::Write;

fn main() -> std::io::Result<()> {
    let plan = match std::env::args().nth(1).as_deref() {
        Some("warm") => viral_day::Plan::warm(),
        _ => viral_day::Plan::fresh(),
    };
    let text = viral_day::jsonl(&viral_day::orders(&plan));
    std::io::stdout().lock().write_all(text.as_bytes())
}
