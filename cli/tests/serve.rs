//! `creatorflow serve` through its real HTTP server on 127.0.0.1:0: the
//! webhook's answers (forged, tampered, unsigned, duplicate, out-of-order,
//! malformed, oversized, unknown topic), a signed AWAITING_SHIPMENT fetched
//! from a mock Order API and processed to shipped, a cancellation
//! mid-workflow with its rollbacks, the read endpoints, and a short load run.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use creatorflow::actions::{DefaultHandlers, SimConfig};
use creatorflow::store::{Inbox, OrderStore};
use creatorflow::tiktok::{HttpConfig, HttpOrderApi};
use creatorflow::{EngineBuilder, SystemClock};
use creatorflow_cli::load::{LoadConfig, run as load};
use creatorflow_cli::serve::{
    Running, ServeConfig, SharedStore, Tokens, engines, start, start_with,
};
use support::*;

fn config() -> ServeConfig {
    let mut c = ServeConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), APP_KEY, APP_SECRET);
    c.shops = vec![(SHOP.to_owned(), TENANT.to_owned())];
    c.default_tenant = TENANT.to_owned();
    c.poll_every = None;
    c.idle_poll = Duration::from_millis(20);
    c.body_limit = 8 * 1024;
    c.tokens = Tokens::none().admin(ADMIN_TOKEN);
    c
}

fn http_api(base: &str) -> Arc<HttpOrderApi> {
    let mut c = HttpConfig::new(APP_KEY, APP_SECRET, "token");
    c.base_url = base.to_owned();
    c.timeout = Duration::from_secs(2);
    Arc::new(HttpOrderApi::new(c, Arc::new(SystemClock)).expect("client"))
}

async fn server(api_base: &str) -> (Running<HttpOrderApi>, SharedStore, String) {
    let store: SharedStore = creatorflow::store::open("memory:").await.expect("store");
    let running = start(config(), store.clone(), http_api(api_base))
        .await
        .expect("start");
    let base = format!("http://{}", running.addr);
    (running, store, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_answers_follow_tiktoks_delivery_semantics() {
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("576461413038785752", "AWAITING_SHIPMENT"));
    let (running, store, base) = server(&api).await;
    let body = status_push(Some("n-1"), "576461413038785752", "ON_HOLD", 100);

    // Unsigned, forged (signed with another secret), Bearer-prefixed, tampered: 401.
    assert_eq!(post(&base, &body, None).await.0, 401);
    let forged = creatorflow::tiktok::sign_webhook(APP_KEY, "wrong-secret", &body);
    assert_eq!(post(&base, &body, Some(&forged)).await.0, 401);
    assert_eq!(
        post(&base, &body, Some(&format!("Bearer {}", sign(&body))))
            .await
            .0,
        401
    );
    let mut tampered = body.clone();
    let at = tampered.len() - 3;
    tampered[at] = b'9';
    assert_eq!(post(&base, &tampered, Some(&sign(&body))).await.0, 401);
    // Malformed but signed: 400, naming the problem.
    let (status, text) = post_signed(&base, b"{\"type\":1,\"timestamp\":1,\"data\":{}}").await;
    assert_eq!(status, 400);
    assert!(text.contains("shop_id"), "{text}");
    assert_eq!(post_signed(&base, b"not json").await.0, 400);
    // Oversized: 413 (the limit is 8 KiB here), whatever the signature.
    let big = vec![b' '; 9 * 1024];
    assert_eq!(post(&base, &big, Some(&sign(&big))).await.0, 413);
    assert_eq!(post(&base, &big, None).await.0, 413);

    // Signed: 200 with an empty body; a duplicate delivery too, stored once.
    let (status, text) = post_signed(&base, &body).await;
    assert_eq!((status, text.as_str()), (200, ""));
    assert_eq!(post_signed(&base, &body).await, (200, String::new()));
    // An unknown topic is acknowledged, not rejected.
    let unknown = format!(
        r#"{{"type":53,"tts_notification_id":"n-2","shop_id":"{SHOP}","timestamp":5,"data":{{"whatever":[1,2]}}}}"#
    );
    assert_eq!(
        post_signed(&base, unknown.as_bytes()).await,
        (200, String::new())
    );
    // A shop no tenant is configured for: acknowledged and dropped.
    let stranger = String::from_utf8(status_push(Some("n-3"), "1", "ON_HOLD", 100))
        .unwrap()
        .replace(SHOP, "42");
    assert_eq!(post_signed(&base, stranger.as_bytes()).await.0, 200);

    // Out of order: AWAITING_SHIPMENT at 200 processed, then a stale
    // ON_HOLD at 150 that must not undo it.
    let ship = status_push(Some("n-4"), "576461413038785752", "AWAITING_SHIPMENT", 200);
    assert_eq!(post_signed(&base, &ship).await.0, 200);
    let shipped = wait_for(Duration::from_secs(10), || {
        in_state(&base, "576461413038785752", "shipped")
    })
    .await;
    assert!(shipped.is_some(), "the order reached shipped");
    let stale = status_push(Some("n-5"), "576461413038785752", "UNPAID", 150);
    assert_eq!(post_signed(&base, &stale).await.0, 200);

    let m = wait_for(Duration::from_secs(5), || {
        let base = base.clone();
        async move {
            let m = get_json(&base, "/api/metrics").await;
            (m["inbox"]["pending"] == 0 && m["inbox"]["received"] == 4).then_some(m)
        }
    })
    .await
    .expect("inbox drained");
    assert_eq!(m["webhooks"]["accepted"], 4);
    assert_eq!(m["webhooks"]["duplicates"], 1);
    assert_eq!(m["webhooks"]["unauthorized"], 4);
    assert_eq!(m["webhooks"]["malformed"], 2);
    assert_eq!(m["webhooks"]["too_large"], 2);
    assert_eq!(m["webhooks"]["unrouted"], 1);
    assert_eq!(m["processor"]["outcomes"]["stale"], 1);
    assert_eq!(m["processor"]["outcomes"]["acknowledged"], 1);
    assert_eq!(m["inbox"]["processed"], 4);
    let order = store
        .find_order(TENANT, "576461413038785752")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(order.order.current_state, "shipped");
    assert_eq!(
        *mock.detail_calls.lock().unwrap(),
        1,
        "details fetched once"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_shipment_is_fetched_from_the_api_and_processed_to_shipped() {
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("900", "AWAITING_SHIPMENT"));
    let (running, store, base) = server(&api).await;
    let push = status_push(None, "900", "AWAITING_SHIPMENT", 300);
    assert_eq!(post_signed(&base, &push).await, (200, String::new()));
    let o = wait_for(Duration::from_secs(10), || {
        in_state(&base, "900", "shipped")
    })
    .await
    .expect("shipped");
    // The Order API's details, mapped.
    assert_eq!(o["quantity"], 3);
    assert_eq!(o["price"], "35.97");
    assert_eq!(o["product_name"], "Glow Serum");
    assert_eq!(o["customer_handle"], "buyer-7494560109732334000");
    let stored = store.find_order(TENANT, "900").await.unwrap().unwrap();
    assert_eq!(
        stored.order.shipping_location.as_deref(),
        Some("California, San Francisco")
    );
    assert_eq!(stored.order.deadline.unwrap().timestamp(), 1718564785);
    let h = store
        .order_with_history(TENANT, stored.id)
        .await
        .unwrap()
        .unwrap();
    let path: Vec<&str> = h.history.iter().map(|t| t.to.as_str()).collect();
    assert_eq!(
        path,
        [
            "validated",
            "processing",
            "inventory_reserved",
            "label_generated",
            "shipped"
        ]
    );
    // Delivered by TikTok: moved through the machine, with history.
    let delivered = status_push(None, "900", "DELIVERED", 400);
    assert_eq!(post_signed(&base, &delivered).await.0, 200);
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "900", "delivered")
    })
    .await
    .expect("delivered");
    // The read endpoints: filters, most urgent first, and Prometheus text.
    let orders = get_json(&base, "/api/orders?priority=standard").await;
    assert!(
        orders["orders"].as_array().unwrap().is_empty(),
        "no active order"
    );
    let (status, bad) = get_admin(&base, "/api/orders?priority=soon").await;
    assert_eq!(status, 400);
    assert!(bad.contains("`priority`"), "{bad}");
    assert_eq!(get_admin(&base, "/api/metrics?tenant=nobody").await.0, 404);
    let (status, prom) = get_admin(&base, "/metrics").await;
    assert_eq!(status, 200);
    // Per-process counters carry the replica (default HOST-PID).
    let replica = creatorflow::service::default_replica_name();
    assert!(
        prom.contains(&format!(
            "creatorflow_webhooks_total{{result=\"accepted\",replica=\"{replica}\"}} 2"
        )),
        "{prom}"
    );
    assert!(prom.contains(&format!(
        "creatorflow_orders{{tenant=\"{TENANT}\",state=\"delivered\"}} 1"
    )));
    assert!(prom.contains(&format!(
        "creatorflow_webhook_ack_seconds_count{{replica=\"{replica}\"}} 2"
    )));
    let health = call(&base, reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(
        health,
        (200, r#"{"status":"ok"}"#.to_owned()),
        "no token needed"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_mid_workflow_runs_the_rollbacks() {
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("77", "AWAITING_SHIPMENT"));
    let store: SharedStore = creatorflow::store::open("memory:").await.unwrap();
    // A slow carrier keeps the order in `inventory_reserved` while its label
    // is being made, long enough for the customer to cancel.
    let slow = DefaultHandlers::new(
        SimConfig::default(),
        SimConfig {
            latency: Duration::from_millis(1500),
            ..SimConfig::default()
        },
        None,
    );
    let cfg = config();
    let mut list = Vec::new();
    for e in engines(&store, &cfg).expect("engines") {
        list.push(
            // One step per claim: each state is written as it is reached
            // (a chain would write received → … → label_generated at once).
            EngineBuilder::new(store.clone())
                .tenant(e.tenant())
                .handlers(slow.registry())
                .max_chain(1)
                .build()
                .expect("engine"),
        );
    }
    let running = start_with(cfg, list, store.clone(), http_api(&api))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let push = status_push(Some("a1"), "77", "AWAITING_SHIPMENT", 10);
    assert_eq!(post_signed(&base, &push).await.0, 200);
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "77", "inventory_reserved")
    })
    .await
    .expect("reserved");
    assert_eq!(
        post_signed(&base, &cancel_push("c1", "77", 20)).await.0,
        200
    );
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "77", "cancelled")
    })
    .await
    .expect("cancelled");
    let id = store.find_order(TENANT, "77").await.unwrap().unwrap().id;
    let h = store.order_with_history(TENANT, id).await.unwrap().unwrap();
    let cancel = h
        .history
        .iter()
        .find(|t| t.to == "cancelled")
        .expect("a cancellation row");
    assert!(
        cancel
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("cancellation request by BUYER")
    );
    let actions = cancel.actions_executed.to_value();
    let actions = actions.as_array().expect("actions");
    assert!(
        actions.iter().any(|a| a["phase"] == "rollback"
            && a["type"] == "reserve_inventory"
            && a["operation"] == "release"
            && a["ok"] == true),
        "{actions:?}"
    );
    // The label step that was in flight lost its race: nothing after the cancellation.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let h = store.order_with_history(TENANT, id).await.unwrap().unwrap();
    assert_eq!(h.history.last().unwrap().to, "cancelled");
    assert_eq!(h.order.order.current_state, "cancelled");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_shop_goes_to_its_tenant_and_reads_see_one_tenant() {
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("800", "AWAITING_SHIPMENT"));
    let store: SharedStore = creatorflow::store::open("memory:").await.unwrap();
    let mut cfg = config();
    cfg.shops.push((SHOP2.to_owned(), "creator-2".to_owned()));
    let running = start(cfg, store.clone(), http_api(&api)).await.unwrap();
    let base = format!("http://{}", running.addr);
    let push = String::from_utf8(status_push(Some("t2"), "800", "AWAITING_SHIPMENT", 10))
        .unwrap()
        .replace(SHOP, SHOP2);
    assert_eq!(post_signed(&base, push.as_bytes()).await.0, 200);
    let seen = wait_for(Duration::from_secs(10), || {
        let base = base.clone();
        async move {
            let v = get_json(&base, "/api/orders?tenant=creator-2&state=shipped").await;
            (v["total"] == 1).then_some(v)
        }
    })
    .await
    .expect("creator-2 sees its order");
    assert_eq!(seen["orders"][0]["tiktok_order_id"], "800");
    // The default tenant (creator-1) sees nothing of it.
    let mine = get_json(&base, "/api/orders?state=shipped").await;
    assert_eq!(
        (mine["tenant"].as_str(), mine["total"].as_u64()),
        (Some(TENANT), Some(0))
    );
    let m1 = get_json(&base, "/api/metrics").await;
    assert_eq!(m1["orders_total"], 0);
    assert_eq!(m1["inbox"]["received"], 0);
    let m2 = get_json(&base, "/api/metrics?tenant=creator-2").await;
    assert_eq!(m2["orders_total"], 1);
    assert_eq!(m2["inbox"]["received"], 1);
    assert!(store.find_order(TENANT, "800").await.unwrap().is_none());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_come_most_urgent_first_and_filter_by_priority_and_state() {
    let (_mock, api) = mock_api().await;
    let store: SharedStore = creatorflow::store::open("memory:").await.unwrap();
    // Orders stored directly (no work queued, so they stay `received`).
    for (id, priority, impact, minute) in [
        ("a", "standard", "MED", 1),
        ("b", "high", "MED", 2),
        ("c", "urgent", "MED", 3),
        ("d", "high", "VIRAL", 4),
        ("e", "automated", "AUTO", 5),
        ("f", "high", "MED", 0),
    ] {
        let o = creatorflow::Order::from_json(&format!(
            r#"{{"tiktok_order_id":"{id}","customer_handle":"@x","product_name":"Lamp","product_id":"p1",
            "quantity":1,"price":"20","priority":"{priority}","impact":"{impact}",
            "created_at":"2025-06-12T10:0{minute}:00Z"}}"#
        ))
        .unwrap();
        store.create_order(TENANT, &o).await.unwrap();
    }
    let running = start(config(), store.clone(), http_api(&api))
        .await
        .unwrap();
    let base = format!("http://{}", running.addr);
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["tiktok_order_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // High first (VIRAL first within it, then oldest), then urgent, standard, automated.
    let all = get_json(&base, "/api/orders").await;
    assert_eq!(ids(&all), ["d", "f", "b", "c", "a", "e"]);
    assert_eq!(all["total"], 6);
    let high = get_json(&base, "/api/orders?priority=high&limit=2").await;
    assert_eq!(
        (ids(&high), high["total"].as_u64()),
        (vec!["d".to_owned(), "f".to_owned()], Some(3))
    );
    let received = get_json(&base, "/api/orders?state=received&priority=urgent").await;
    assert_eq!(ids(&received), ["c"]);
    let none = get_json(&base, "/api/orders?state=delivered").await;
    assert_eq!(none["total"], 0);
    assert_eq!(
        get_admin(&base, "/api/orders?state=teleported").await.0,
        400
    );
    assert_eq!(get_admin(&base, "/api/orders?limit=0").await.0, 400);
    running.stop().await;
}

/// No webhook at all: the reconciliation poll finds the order, it is
/// ingested and shipped, and the high-water mark is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_picks_up_orders_no_webhook_announced() {
    let (mock, api) = mock_api().await;
    mock.orders
        .lock()
        .unwrap()
        .push(order_json("555", "AWAITING_SHIPMENT"));
    let store: SharedStore = creatorflow::store::open("memory:").await.unwrap();
    let mut cfg = config();
    cfg.poll_every = Some(Duration::from_millis(200));
    let running = start(cfg, store.clone(), http_api(&api)).await.unwrap();
    let base = format!("http://{}", running.addr);
    wait_for(Duration::from_secs(10), || {
        in_state(&base, "555", "shipped")
    })
    .await
    .expect("shipped without a webhook");
    let mark = store
        .cursor(TENANT, &creatorflow::tiktok::cursor_name(SHOP))
        .await
        .unwrap();
    assert!(mark.is_some_and(|m| m > 1_700_000_000), "{mark:?}");
    // Later polls apply nothing new: one order, ingested once.
    wait_for(Duration::from_secs(5), || {
        let calls = *mock.search_calls.lock().unwrap();
        async move { (calls >= 3).then_some(()) }
    })
    .await
    .expect("polled again");
    let m = get_json(&base, "/api/metrics").await;
    assert_eq!(m["orders_total"], 1);
    assert_eq!(m["processor"]["outcomes"]["ingested"], 1);
    running.stop().await;
}

/// The load run, short: every acknowledged notification processed exactly
/// once (the figures themselves come from `examples/webhook_load.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_run_processes_every_acknowledged_notification_exactly_once() {
    let report = load(&LoadConfig {
        rate: 300,
        duration: Duration::from_secs(3),
        concurrency: 32,
        duplicate_every: 10,
        store: "memory:".into(),
        drain_timeout: Duration::from_secs(30),
        replicas: 1,
    })
    .await
    .expect("load run");
    eprintln!("{}", serde_json::to_string(&report).unwrap());
    assert_eq!(report.sent, 900);
    assert_eq!(report.failed, 0);
    assert_eq!(report.acked, 900);
    assert_eq!(report.duplicates_sent, 90);
    assert_eq!(report.distinct_acked, 810);
    assert!(report.exactly_once, "{report:?}");
    assert!(report.ack_ms.p99 < 1000.0, "{report:?}");
}
