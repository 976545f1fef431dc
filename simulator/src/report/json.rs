//! The JSON report: the [`Report`] serialised, keys as the spec's `cli.md`
//! lists them (plus the extra sections documented on [`Report`]).

use super::Report;

/// The report as pretty-printed JSON.
pub fn to_json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::*;

    #[test]
    fn has_the_keys_of_cli_md() {
        let r = Report {
            scenario: "s".into(),
            description: String::new(),
            seed: 1,
            mode: "virtual",
            store: "memory".into(),
            simulated_seconds: 1.0,
            wall_seconds: 0.1,
            orders: Orders::default(),
            peak_orders_per_hour: 0,
            peak_product_orders_per_hour: 0,
            lanes: [("high".to_owned(), Lane::default())].into_iter().collect(),
            viral_detection: Default::default(),
            rules: Default::default(),
            actions: Actions::default(),
            breakers: Default::default(),
            services: Default::default(),
            spikes: Vec::new(),
            engine: EngineWork::default(),
            series: Series::default(),
            fulfilment: FulfilmentReport::default(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&to_json(&r).expect("json")).expect("parse");
        for k in [
            "scenario",
            "seed",
            "simulated_seconds",
            "wall_seconds",
            "peak_orders_per_hour",
            "lanes",
            "viral_detection",
            "rules",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        for k in [
            "generated",
            "ingested",
            "duplicates_ignored",
            "lost",
            "by_final_state",
        ] {
            assert!(v["orders"].get(k).is_some(), "orders.{k}");
        }
        for k in ["attempts", "retries", "failures", "circuit_opened"] {
            assert!(v["actions"].get(k).is_some(), "actions.{k}");
        }
        for k in [
            "orders",
            "queue_wait_ms",
            "time_to_ship_ms",
            "max_queue_depth",
        ] {
            assert!(v["lanes"]["high"].get(k).is_some(), "lanes.high.{k}");
        }
        for k in ["p50", "p95", "p99", "max"] {
            assert!(v["lanes"]["high"]["queue_wait_ms"].get(k).is_some());
        }
    }
}
