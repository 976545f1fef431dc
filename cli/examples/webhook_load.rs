//! Load run of `creatorflow serve` on loopback: signed TikTok Shop webhooks
//! at a fixed rate for a bounded time, acknowledgement latency percentiles,
//! then a check that every acknowledged notification was processed exactly
//! once. Exit 1 if a target is missed.
//!
//! ```sh
//! cargo run --release -p creatorflow-cli --example webhook_load -- \
//!     [--rate 1000] [--seconds 30] [--concurrency 64] [--store memory:] \
//!     [--replicas 1]
//! ```
//!
//! `--replicas N` (a `postgres://` store) runs N `serve` replicas on the one
//! database, requests round robin, duplicates crossing replicas.
//!
//! Targets: the requested rate achieved (within 2%), p99 acknowledgement
//! under 50 ms, no failed request, exactly-once processing.

use std::time::Duration;

use creatorflow_cli::load::{LoadConfig, run};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = (|| {
        Ok::<_, String>(LoadConfig {
            rate: arg(&args, "--rate", 1000u32)?,
            duration: Duration::from_secs(arg(&args, "--seconds", 30u64)?.clamp(1, 600)),
            concurrency: arg(&args, "--concurrency", 64usize)?.max(1),
            duplicate_every: arg(&args, "--duplicate-every", 10u64)?,
            store: arg(&args, "--store", "memory:".to_owned())?,
            drain_timeout: Duration::from_secs(arg(&args, "--drain-seconds", 120u64)?),
            replicas: arg(&args, "--replicas", 1usize)?.max(1),
        })
    })();
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("webhook_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("webhook_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let report = match runtime.block_on(run(&config)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("webhook_load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    let rate_ok = report.achieved_rate >= f64::from(config.rate) * 0.98;
    let p99_ok = report.ack_ms.p99 < 50.0;
    println!(
        "rate {:.0}/s ({}), p99 ack {:.2} ms ({}), failed {}, exactly once: {}",
        report.achieved_rate,
        if rate_ok { "ok" } else { "MISSED" },
        report.ack_ms.p99,
        if p99_ok { "ok" } else { "MISSED" },
        report.failed,
        report.exactly_once
    );
    if rate_ok && p99_ok && report.failed == 0 && report.exactly_once {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
