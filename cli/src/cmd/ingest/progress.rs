//! The progress bar of `ingest`: drawn on stderr only when stderr is a
//! terminal (never in a pipe, a log or a test), by bytes of a file whose
//! size is known, else a spinner; lines printed meanwhile go above it.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar, or nothing when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    /// A bar over `total` bytes (`None`: unknown, a spinner), shown only
    /// if stderr is a terminal.
    pub fn new(total: Option<u64>) -> Self {
        let bar = if !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else if let Some(len) = total {
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} ingest [{bar:40}] {percent:>3}% {msg} ({elapsed}, eta {eta})",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        } else {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} ingest {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar
        };
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    /// The input read so far (`bytes`) and the orders done (`new`, `known`).
    pub fn update(&self, bytes: u64, new: usize, known: usize) {
        if self.bar.is_hidden() {
            return;
        }
        let done = new + known;
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        self.bar.set_position(bytes);
        self.bar.set_message(format!(
            "{done} orders ({new} new, {known} known), {rate:.0}/s"
        ));
    }

    /// Prints `line` on stderr, above the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
