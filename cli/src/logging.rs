//! The log subscriber: the library's and the server's `tracing` events, one
//! line per event on stderr, human-readable by default or JSON with
//! `--log-format json`; the level comes from `RUST_LOG` (default `info`).
//!
//! What commands print for people (the start-up report, `listening on …`,
//! summaries, diagnostics) stays on stdout / stderr as plain text: it is
//! output, not a log.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `TIME LEVEL target: message field=value …`.
    #[default]
    Human,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`).
    Json,
}

/// The level filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info";

/// Installs the process's subscriber. An unreadable `RUST_LOG` is said on
/// stderr and the default level used.
pub fn init(format: LogFormat) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("creatorflow: RUST_LOG ignored ({e}); logging at {DEFAULT_FILTER}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    // A second installation (never in the binary) is not an error worth
    // stopping for: the first subscriber keeps logging.
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
