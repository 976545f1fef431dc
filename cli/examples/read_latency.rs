//! Read latency of `creatorflow serve` at scale: seeds `--orders` orders
//! through the store API (created, then one step each to a state of the
//! shipped workflow: what the engine writes, history rows included), spread
//! over the workflow's states, the four lanes and four tenants (the served
//! one holds 70%), starts the server with its workers busy on a stream of new
//! orders (signed webhooks at `--rate` per second), and measures p50 / p95 /
//! p99 of every read route, round robin, `--requests` times each.
//!
//! ```sh
//! cargo run --release -p creatorflow-cli --example read_latency -- \
//!     [--orders 1000000] [--store sqlite:///tmp/cf-read.db | postgres://…] \
//!     [--requests 200] [--rate 200] [--keep]
//! ```
//!
//! With `--keep` and a store that already holds orders of the served tenant,
//! seeding is skipped (measure the same data again, e.g. after a change).
//! Every route is read with a tenant token (`GET /metrics` with the
//! admin's), as the dashboard does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::store::{JsonText, NewOrder, OrderId, OrderReads, OrderStore, Transition, open};
use creatorflow::tiktok::{FakeOrderApi, sign_webhook};
use creatorflow::{Machine, Order};
use creatorflow_cli::load::{APP_KEY, APP_SECRET, SHOP, TENANT, order_json, percentiles, webhook};
use creatorflow_cli::serve::{ServeConfig, Tokens, start};

/// The served tenant's API token, and the admin's (for `/metrics`).
const TENANT_TOKEN: &str = "read-latency-tenant-token";
const ADMIN_TOKEN: &str = "read-latency-admin-token";

type Error = Box<dyn std::error::Error + Send + Sync>;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value")),
    }
}

/// Orders per store call while seeding.
const BATCH: usize = 2000;

/// The tenant of the `i`th seeded order: 70% the served one.
fn tenant_of(i: usize) -> &'static str {
    match i % 10 {
        7 => "creator-b",
        8 => "creator-c",
        9 => "creator-d",
        _ => TENANT,
    }
}

/// The `i`th seeded order, placed over the 30 days before `now`.
fn seed_order(i: usize, n: usize, now: DateTime<Utc>) -> Result<Order, Error> {
    let age_ms = 30 * 24 * 3_600_000 * (n - i) as i64 / n.max(1) as i64;
    let at = now - TimeDelta::milliseconds(age_ms + 60_000);
    let priority = ["standard", "automated", "standard", "urgent", "high"][i % 5];
    let impact = if i.is_multiple_of(20) { "VIRAL" } else { "MED" };
    Ok(Order::from_json(&format!(
        r#"{{"tiktok_order_id":"seed{i}","customer_handle":"@c{}","product_name":"Glow Serum",
        "product_id":"p{}","quantity":1,"price":"19.00","created_at":"{}",
        "priority":"{priority}","impact":"{impact}"}}"#,
        i % 50_000,
        i % 500,
        at.to_rfc3339()
    ))?)
}

/// Where the `i`th seeded order ends: 70% in a terminal state, the rest
/// spread over the others (the initial one included).
fn target(i: usize, machine: &Machine) -> Option<&creatorflow::machine::StateDef> {
    let (done, open): (Vec<_>, Vec<_>) = machine.states().iter().partition(|s| s.terminal);
    let h = i.wrapping_mul(2_654_435_761) % 100;
    if h < 70 && !done.is_empty() {
        done.get(i % done.len()).copied()
    } else {
        open.get(i % open.len().max(1)).copied()
    }
}

async fn seed(
    store: &creatorflow::AnyStore,
    machine: &Machine,
    n: usize,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let started = Instant::now();
    let initial = machine.initial().clone();
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let mut by_tenant: std::collections::BTreeMap<&str, Vec<(usize, NewOrder)>> =
            Default::default();
        for j in i..end {
            by_tenant.entry(tenant_of(j)).or_default().push((
                j,
                NewOrder {
                    order: seed_order(j, n, now)?,
                    work: None,
                    decision: None,
                },
            ));
        }
        let mut steps: Vec<(&str, Transition)> = Vec::new();
        for (tenant, orders) in &by_tenant {
            let new: Vec<NewOrder> = orders.iter().map(|(_, o)| o.clone()).collect();
            let created = store.create_orders(tenant, &new).await?;
            for ((j, _), c) in orders.iter().zip(created) {
                let c = c?;
                let Some(to) = target(*j, machine) else {
                    continue;
                };
                if to.name == initial {
                    continue;
                }
                let at = c.order.order.created_at + TimeDelta::seconds(30);
                steps.push((
                    tenant,
                    Transition {
                        order_id: c.order.id,
                        expected_state: initial.clone(),
                        expected_version: Some(c.order.version),
                        to: to.name.clone(),
                        terminal: to.terminal,
                        progress: to.progress,
                        automation_status: to.automation_status,
                        processing_time_ms: 30_000,
                        priority: None,
                        impact: None,
                        reason: Some("seed".to_owned()),
                        automated: true,
                        duration_ms: 12,
                        actions_executed: JsonText::empty_array(),
                        error_message: None,
                        actor: None,
                        pack_version: None,
                        at,
                        settle: None,
                        enqueue: None,
                    },
                ));
            }
        }
        for r in store.transitions(&steps).await? {
            r?;
        }
        i = end;
        if i % 100_000 < BATCH {
            eprintln!(
                "read_latency: seeded {i} orders in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// One measured read.
struct Route {
    name: String,
    latencies: Vec<f64>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // The server's logs on stderr, at the level `RUST_LOG` sets (warn).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = arg(&args, "--orders", 200_000)?;
    let requests: usize = arg(&args, "--requests", 200)?;
    let rate: u32 = arg(&args, "--rate", 200)?;
    let dir = std::env::temp_dir().join("creatorflow-read-latency.db");
    let default_store = format!("sqlite://{}", dir.display());
    let url: String = arg(&args, "--store", default_store)?;
    let keep = args.iter().any(|a| a == "--keep");

    let api = Arc::new(FakeOrderApi::new());
    api.add_shop(SHOP, "ROW_load");
    let store = open(&url).await?;
    let mut serve = ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), APP_KEY, APP_SECRET);
    serve.shops = vec![(SHOP.to_owned(), TENANT.to_owned())];
    serve.default_tenant = TENANT.to_owned();
    serve.poll_every = None;
    serve.tokens = Tokens::none()
        .admin(ADMIN_TOKEN)
        .tenant(TENANT, TENANT_TOKEN);
    let server = start(serve, store.clone(), api.clone()).await?;
    let engine = server
        .processor()
        .engine(TENANT)
        .ok_or("the served tenant has no engine")?;
    let machine = engine.machine().clone();
    let have = store.list_orders(TENANT, None, 1).await?.len();
    if !(keep && have > 0) {
        seed(&store, &machine, n, Utc::now()).await?;
    }

    // Workers busy: a stream of new orders through signed webhooks.
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    // Webhook answers: acknowledged (200), anything else.
    let answers = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let webhooks = {
        let (client, url) = (client.clone(), format!("{base}/webhooks/tiktok-shop"));
        let answers = answers.clone();
        // New order numbers on every run (a kept store holds the last run's).
        let offset = Utc::now().timestamp_millis().unsigned_abs() % 100_000_000 * 1000;
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
            let mut tick = tokio::time::interval(every);
            for k in offset.. {
                tick.tick().await;
                if api
                    .put_order_json("ROW_load", &order_json(576_000_000_000_000_000 + k))
                    .is_err()
                {
                    return;
                }
                let body = webhook(k);
                let signature = sign_webhook(APP_KEY, APP_SECRET, &body);
                let client = client.clone();
                let url = url.clone();
                let answers = answers.clone();
                tokio::spawn(async move {
                    let ok = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("authorization", signature)
                        .body(body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    answers[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
                });
            }
        })
    };
    // Measured once the workers are busy: the first ingest after a start
    // waits for the engine to restore its window facts from the stored
    // orders (logged), which at 1M orders takes seconds.
    let warm = Instant::now();
    while server.processor().stats().processed == 0 && warm.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "first webhook processed {:.1} s after the stream started",
        warm.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = server.processor().stats().processed;

    let open_state = machine
        .states()
        .iter()
        .rev()
        .find(|s| !s.terminal && s.name != *machine.initial())
        .map_or_else(
            || machine.initial().as_str().to_owned(),
            |s| s.name.as_str().to_owned(),
        );
    let ids: Vec<OrderId> = store
        .find_orders(TENANT, &Default::default(), 1000)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let paths = [
        "/api/metrics".to_owned(),
        "/api/orders?limit=50".to_owned(),
        "/api/orders?limit=50&priority=urgent".to_owned(),
        format!("/api/orders?limit=50&state={open_state}"),
        "/api/orders/{id}".to_owned(),
        "/api/review?limit=50".to_owned(),
        "/metrics".to_owned(),
    ];
    let mut routes: Vec<Route> = paths
        .iter()
        .map(|p| Route {
            name: format!("GET {p}"),
            latencies: Vec::new(),
        })
        .collect();
    for k in 0..requests {
        for (path, route) in paths.iter().zip(routes.iter_mut()) {
            let id = ids.get(k % ids.len().max(1)).copied().unwrap_or_default();
            let url = format!("{base}{}", path.replace("{id}", &id.to_string()));
            let token = if path == "/metrics" {
                ADMIN_TOKEN
            } else {
                TENANT_TOKEN
            };
            let t = Instant::now();
            let resp = client.get(url).bearer_auth(token).send().await?;
            let status = resp.status();
            let _ = resp.bytes().await?;
            if !status.is_success() {
                return Err(format!("{path}: {status}").into());
            }
            route.latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    webhooks.abort();
    let processed = server.processor().stats().processed - before;
    let [acked, refused] = [0, 1].map(|i| answers[i].load(Ordering::Relaxed));
    println!(
        "store {} · {n} orders seeded · {requests} requests per route · webhooks {rate}/s \
         ({acked} acknowledged, {refused} not; {processed} processed while measuring)",
        store.backend()
    );
    println!("| route | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|");
    for r in routes {
        let p = percentiles(r.latencies);
        println!(
            "| {} | {:.1} | {:.1} | {:.1} |",
            r.name, p.p50, p.p95, p.p99
        );
    }
    server.stop().await;
    Ok(())
}
