//! A load run on loopback: starts the server in-process (the fake Order API,
//! the given store), fires signed ORDER_STATUS_CHANGE webhooks at a fixed
//! rate with a concurrency-limited client (a share of them re-sent
//! duplicates), measures acknowledgement latency, then waits for the inbox
//! to drain and checks that every acknowledged notification was processed
//! exactly once. With several replicas (on PostgreSQL), as many servers
//! run on the one database and the requests alternate between them, each
//! duplicate crossing to another replica than its original.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use creatorflow::store::{Inbox, OrderStore};
use creatorflow::tiktok::{FakeOrderApi, sign_webhook};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::serve::{ServeConfig, start};

/// The shop and tenant of the load run.
pub const SHOP: &str = "7494049642642441621";
/// The tenant the load run's shop belongs to.
pub const TENANT: &str = "creator-load";
/// The TikTok app key of the load run.
pub const APP_KEY: &str = "load-key";
/// The TikTok app secret of the load run.
pub const APP_SECRET: &str = "load-secret";

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Requests per second to send.
    pub rate: u32,
    /// How long to send.
    pub duration: Duration,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Every n-th request re-sends an earlier notification (0: never).
    pub duplicate_every: u64,
    /// The store URL (`memory:`, `sqlite://…`, `postgres://…`).
    pub store: String,
    /// How long to wait for the inbox to drain afterwards.
    pub drain_timeout: Duration,
    /// How many `serve` replicas on the one store (each with its own
    /// connections, as separate processes would have): requests go round
    /// robin by notification, and each duplicate goes to another replica
    /// than its original (duplicates cross). More than one needs a
    /// `postgres://` store.
    pub replicas: usize,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Maximum.
    pub max: f64,
}

/// What a load run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Requests sent.
    pub sent: u64,
    /// Answered 200.
    pub acked: u64,
    /// Answered anything else, or failed.
    pub failed: u64,
    /// Of the sent requests, deliberate duplicates.
    pub duplicates_sent: u64,
    /// Seconds spent sending.
    pub send_seconds: f64,
    /// Requests per second achieved.
    pub achieved_rate: f64,
    /// Acknowledgement latency (client side: request sent → response read).
    pub ack_ms: Percentiles,
    /// Distinct notifications acknowledged (sent − duplicates, if all acked).
    pub distinct_acked: u64,
    /// Inbox: entries stored.
    pub inbox_received: u64,
    /// Inbox: entries processed.
    pub inbox_processed: u64,
    /// Inbox: entries still pending after the drain timeout.
    pub inbox_pending: u64,
    /// Inbox: processed entries that needed more than one claim.
    pub inbox_reclaimed: u64,
    /// Commands applied by the processor (one per processing).
    pub commands_applied: u64,
    /// Orders in the store.
    pub orders: u64,
    /// Seconds from the last request to an empty inbox.
    pub drain_seconds: f64,
    /// Every acknowledged notification stored once and processed exactly once.
    pub exactly_once: bool,
}

/// The fake Order API's JSON of order `id` (a TikTok order id).
pub fn order_json(id: u64) -> String {
    format!(
        r#"{{"id":"{id}","status":"AWAITING_SHIPMENT","user_id":"{}","create_time":1718305585,
        "update_time":1718305600,"rts_sla_time":1718564785,"shipping_provider":"USPS",
        "line_items":[{{"id":"1","product_id":"p{}","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99"}}],
        "payment":{{"total_amount":"11.99","currency":"USD"}}}}"#,
        9_000_000 + id % 5000,
        id % 40
    )
}

/// The body of the `n`th ORDER_STATUS_CHANGE notification (order
/// `576_000_000_000_000_000 + n`).
pub fn webhook(n: u64) -> Vec<u8> {
    format!(
        r#"{{"type":1,"tts_notification_id":"{}","shop_id":"{SHOP}","timestamp":1718305600,"data":{{"order_id":"{}","order_status":"AWAITING_SHIPMENT","is_on_hold_order":false,"update_time":1718305600}}}}"#,
        7_000_000_000_000_000_000u64 + n,
        576_000_000_000_000_000u64 + n
    )
    .into_bytes()
}

/// The percentiles of `v` (nearest rank).
pub fn percentiles(mut v: Vec<f64>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
        p999: at(0.999),
        max: v[v.len() - 1],
    }
}

/// Runs the load; see the [module docs](self).
pub async fn run(config: &LoadConfig) -> Result<LoadReport, String> {
    let total = u64::from(config.rate) * config.duration.as_secs().max(1);
    let dup_every = config.duplicate_every;
    let distinct = total - total.checked_div(dup_every).unwrap_or(0);
    let api = Arc::new(FakeOrderApi::new());
    api.add_shop(SHOP, "ROW_load");
    for i in 0..distinct {
        api.put_order_json("ROW_load", &order_json(576_000_000_000_000_000 + i))
            .map_err(|e| e.to_string())?;
    }
    let store = creatorflow::store::open(&config.store)
        .await
        .map_err(|e| e.to_string())?;
    let replicas = config.replicas.max(1);
    if replicas > 1 && store.backend() != "postgres" {
        return Err("several replicas need a postgres:// store".to_owned());
    }
    let mut servers = Vec::with_capacity(replicas);
    for r in 0..replicas {
        let mut serve =
            ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), APP_KEY, APP_SECRET);
        serve.shops = vec![(SHOP.to_owned(), TENANT.to_owned())];
        serve.default_tenant = TENANT.to_owned();
        serve.poll_every = None;
        serve.idle_poll = Duration::from_millis(20);
        serve.replica = format!("load-{r}");
        // Each replica its own pools, as a process of its own would have.
        let own = if r == 0 {
            store.clone()
        } else {
            creatorflow::store::open(&config.store)
                .await
                .map_err(|e| e.to_string())?
        };
        servers.push(start(serve, own, api.clone()).await?);
    }
    let urls: Vec<String> = servers
        .iter()
        .map(|s| format!("http://{}/webhooks/tiktok-shop", s.addr))
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(config.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let permits = Arc::new(Semaphore::new(config.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.rate.max(1)));
    let mut next_new = 0u64;
    let mut duplicates_sent = 0;
    for i in 0..total {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (n, replica) = if dup_every > 0 && (i + 1) % dup_every == 0 && next_new > 0 {
            duplicates_sent += 1;
            let n = next_new / 2;
            (n, (n as usize + 1) % replicas)
        } else {
            next_new += 1;
            (next_new - 1, (next_new - 1) as usize % replicas)
        };
        let body = webhook(n);
        let signature = sign_webhook(APP_KEY, APP_SECRET, &body);
        let (client, url) = (client.clone(), urls[replica].clone());
        tasks.spawn(async move {
            let t = Instant::now();
            let r = client
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", signature)
                .body(body)
                .send()
                .await;
            let ok = match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let _ = resp.bytes().await;
                    status == 200
                }
                Err(_) => false,
            };
            drop(permit);
            (ok, t.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut latencies = Vec::with_capacity(total as usize);
    let (mut acked, mut failed) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let (ok, ms) = r.map_err(|e| e.to_string())?;
        if ok {
            acked += 1;
            latencies.push(ms);
        } else {
            failed += 1;
        }
    }
    let send_seconds = started.elapsed().as_secs_f64();
    // Drain.
    let drain_start = Instant::now();
    let stats = loop {
        let s = store.inbox_stats(TENANT).await.map_err(|e| e.to_string())?;
        if s.pending == 0 || drain_start.elapsed() > config.drain_timeout {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let drain_seconds = drain_start.elapsed().as_secs_f64();
    let (mut processed, mut commands_applied) = (0u64, 0u64);
    for server in &servers {
        let p = server.processor().stats();
        processed += p.processed;
        commands_applied += p.outcomes.values().sum::<u64>();
    }
    let mut orders = 0u64;
    let mut after = None;
    loop {
        let page = store
            .list_orders(TENANT, after, 5000)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        orders += page.len() as u64;
    }
    let mut distinct_acked = 0;
    for server in servers {
        distinct_acked += server.webhook_stats().counts().accepted;
        server.stop().await;
    }
    let exactly_once = failed == 0
        && distinct_acked == distinct
        && stats.received == distinct_acked
        && stats.processed == distinct_acked
        && stats.pending == 0
        && stats.reclaimed == 0
        && processed == distinct_acked
        && commands_applied == distinct_acked
        && orders == distinct_acked;
    Ok(LoadReport {
        sent: total,
        acked,
        failed,
        duplicates_sent,
        send_seconds,
        achieved_rate: total as f64 / send_seconds,
        ack_ms: percentiles(latencies),
        distinct_acked,
        inbox_received: stats.received,
        inbox_processed: stats.processed,
        inbox_pending: stats.pending,
        inbox_reclaimed: stats.reclaimed,
        commands_applied,
        orders,
        drain_seconds,
        exactly_once,
    })
}
