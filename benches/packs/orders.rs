//! The orders the per-order benches feed: varied, deterministic orders and
//! an endless stream replaying them with shifted times.

use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::Order;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const TIERS: &[&str] = &["vip", "regular", "regular", "regular", "new"];
pub const ZONES: &[&str] = &[
    "US-EAST",
    "US-WEST",
    "US-CENTRAL",
    "US-MIDWEST",
    "US-SOUTH",
    "US-PACIFIC",
    "CA",
    "UK",
    "AU",
];
pub const VIRAL: &[&str] = &[
    "content_spike",
    "hashtag_trending",
    "influencer_mention",
    "flash_sale",
];

fn base() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-12T06:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// `n` varied orders, about one every 1.2 s, with a viral burst on one
/// product, repeat customers, deadlines, zones and viral indicators.
pub fn varied_orders(n: usize, seed: u64) -> Vec<Order> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut t = base();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // Mostly in order; one in 20 arrives up to 5 minutes late.
        t += TimeDelta::milliseconds(rng.random_range(0..2_400));
        let created = if rng.random_bool(0.05) {
            t - TimeDelta::seconds(rng.random_range(1..300))
        } else {
            t
        };
        let burst = (n / 3..n / 3 + n / 10).contains(&i) && rng.random_bool(0.6);
        let product = if burst {
            "prod-hot".to_owned()
        } else {
            format!("prod-{}", rng.random_range(0..200))
        };
        let customer = format!("@cust{}", rng.random_range(0..2_000));
        let quantity = if rng.random_bool(0.05) {
            rng.random_range(10..40)
        } else {
            rng.random_range(1..4)
        };
        let cents: u32 = rng.random_range(299..40_000);
        let mut json = format!(
            r#"{{"tiktok_order_id":"{id}","customer_handle":"{customer}","customer_tier":"{tier}","product_name":"Product","product_id":"{product}","quantity":{quantity},"price":"{p}.{c:02}","created_at":"{created}""#,
            id = 577_240_611_800_000_000u64 + i as u64,
            tier = TIERS[rng.random_range(0..TIERS.len())],
            p = cents / 100,
            c = cents % 100,
            created = created.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
        if rng.random_bool(0.8) {
            let _ = write!(
                json,
                r#","shipping_zone":"{}""#,
                ZONES[rng.random_range(0..ZONES.len())]
            );
        }
        if rng.random_bool(0.3) {
            let d = created + TimeDelta::minutes(rng.random_range(-60..3_000));
            let _ = write!(json, r#","deadline":"{}""#, d.to_rfc3339());
        }
        if burst || rng.random_bool(0.1) {
            let rate = if burst {
                rng.random_range(30..90)
            } else {
                rng.random_range(0..20)
            };
            let _ = write!(
                json,
                r#","orders_per_hour_current":{rate},"velocity_multiplier":{}.{}"#,
                rng.random_range(1..5),
                rng.random_range(0..10)
            );
        }
        if rng.random_bool(if burst { 0.5 } else { 0.03 }) {
            let _ = write!(
                json,
                r#","viral_indicators":[{{"type":"{}","source":"bench","confidence":0.8,"impact_multiplier":2.5,"detected_at":"{}"}}]"#,
                VIRAL[rng.random_range(0..VIRAL.len())],
                created.to_rfc3339()
            );
        }
        if rng.random_bool(0.2) {
            let _ = write!(json, r#","user":{{"id":"u1","creator_tier":"gold"}}"#);
        }
        json.push('}');
        out.push(Order::from_json(&json).unwrap_or_else(|e| panic!("{json}: {e}")));
    }
    out
}

/// Replays `orders` forever, shifting times forward by the batch's span on each pass.
pub struct Stream {
    orders: Vec<Order>,
    next: usize,
    span: TimeDelta,
}

impl Stream {
    pub fn new(orders: Vec<Order>) -> Self {
        let first = orders.iter().map(|o| o.created_at).min().unwrap();
        let last = orders.iter().map(|o| o.created_at).max().unwrap();
        Stream {
            orders,
            next: 0,
            span: last - first + TimeDelta::seconds(1),
        }
    }

    pub fn next(&mut self) -> &Order {
        if self.next == self.orders.len() {
            self.next = 0;
            for o in &mut self.orders {
                o.created_at += self.span;
                o.deadline = o.deadline.map(|d| d + self.span);
            }
        }
        self.next += 1;
        &self.orders[self.next - 1]
    }
}
