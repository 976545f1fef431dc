//! TikTok Shop ingestion: the Order API's HTTP client against a local mock
//! server (loopback only), and the processor and reconciliation against
//! the in-memory fake API and a real engine.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{get, post};
use creatorflow::engine::{Engine, EngineBuilder};
use creatorflow::store::{Inbox, InboxEntry, MemoryStore, OrderStore};
use creatorflow::tiktok::{
    ApiError, Applied, Envelope, FakeOrderApi, HttpConfig, HttpOrderApi, OrderApi, PollConfig,
    Processor, SearchQuery, command_for, poll_all, sign_request, sign_webhook,
};
use creatorflow::{Clock, SystemClock};

const APP_KEY: &str = "app-key";
const SECRET: &str = "app-secret";
const TOKEN: &str = "access-token";
const SHOP: &str = "7494049642642441621";
const CIPHER: &str = "ROW_cipher1";

/// The Order API's JSON for one order.
fn order_json(id: &str, status: &str, update_time: i64) -> String {
    format!(
        r#"{{"id":"{id}","status":"{status}","user_id":7494560109732334000,
        "create_time":1718305585,"update_time":{update_time},"rts_sla_time":1718564785,
        "shipping_provider":"USPS","is_on_hold_order":false,
        "line_items":[
          {{"id":"1","product_id":"1729587769570529000","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99","currency":"USD"}},
          {{"id":"2","product_id":"1729587769570529000","product_name":"Glow Serum","sku_id":"s1","sale_price":"11.99","currency":"USD"}}],
        "payment":{{"total_amount":"23.98","sub_total":"23.98","currency":"USD"}},
        "recipient_address":{{"region_code":"US","postal_code":"94107","full_address":"1 Main St",
          "district_info":[{{"address_level":"L1","address_level_name":"State","address_name":"California"}}]}}}}"#
    )
}

// ---- the HTTP client against a mock -------------------------------------------

#[derive(Default)]
struct Mock {
    /// Fail this many requests with 503 first.
    fail: AtomicU64,
    /// Sleep this long before answering.
    delay_ms: AtomicU64,
    requests: AtomicU64,
    /// Requests whose signature or token did not check out.
    bad: AtomicU64,
    orders: Mutex<Vec<String>>,
    /// The last search body.
    search_body: Mutex<String>,
}

impl Mock {
    /// Checks signature and token as TikTok does.
    fn check(&self, uri: &Uri, q: &HashMap<String, String>, headers: &HeaderMap, body: &[u8]) {
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let expected = sign_request(SECRET, uri.path(), &pairs, body);
        let token = headers
            .get("x-tts-access-token")
            .and_then(|v| v.to_str().ok());
        if q.get("sign") != Some(&expected)
            || token != Some(TOKEN)
            || q.get("app_key").map(String::as_str) != Some(APP_KEY)
            || !q.contains_key("timestamp")
        {
            self.bad.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn gate(&self) -> Option<(StatusCode, String)> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let failing = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        failing
            .is_ok()
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned()))
    }
}

async fn shops(
    State(m): State<Arc<Mock>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if let Some(r) = m.gate().await {
        return r;
    }
    m.check(&uri, &q, &headers, b"");
    (
        StatusCode::OK,
        format!(
            r#"{{"code":0,"message":"Success","request_id":"r","data":{{"shops":[{{"id":"{SHOP}","cipher":"{CIPHER}","code":"US1","name":"Glow","region":"US","seller_type":"LOCAL"}},{{"id":"999","cipher":"ROW_wrong"}}]}}}}"#
        ),
    )
}

async fn details(
    State(m): State<Arc<Mock>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    if let Some(r) = m.gate().await {
        return r;
    }
    m.check(&uri, &q, &headers, b"");
    if q.get("shop_cipher").map(String::as_str) != Some(CIPHER) {
        return (
            StatusCode::OK,
            r#"{"code":106013,"message":"shop_cipher is invalid","request_id":"r2"}"#.into(),
        );
    }
    let ids: Vec<&str> = q.get("ids").map_or(vec![], |s| s.split(',').collect());
    let orders: Vec<String> = m
        .orders
        .lock()
        .unwrap()
        .iter()
        .filter(|o| {
            let v: serde_json::Value = serde_json::from_str(o).unwrap();
            ids.contains(&v["id"].as_str().unwrap_or(""))
        })
        .cloned()
        .collect();
    (
        StatusCode::OK,
        format!(
            r#"{{"code":0,"message":"Success","request_id":"r","data":{{"orders":[{}]}}}}"#,
            orders.join(",")
        ),
    )
}

async fn search(
    State(m): State<Arc<Mock>>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    if let Some(r) = m.gate().await {
        return r;
    }
    m.check(&uri, &q, &headers, &body);
    *m.search_body.lock().unwrap() = String::from_utf8_lossy(&body).into_owned();
    let all = m.orders.lock().unwrap().clone();
    // One order per page, to exercise paging.
    let page: usize = q
        .get("page_token")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let next = if page + 1 < all.len() {
        format!(r#""{}""#, page + 1)
    } else {
        r#""""#.to_owned()
    };
    (
        StatusCode::OK,
        format!(
            r#"{{"code":0,"message":"Success","request_id":"r","data":{{"orders":[{}],"next_page_token":{next},"total_count":{}}}}}"#,
            all.get(page).cloned().unwrap_or_default(),
            all.len()
        ),
    )
}

async fn mock() -> (Arc<Mock>, String) {
    let m = Arc::new(Mock::default());
    let app = Router::new()
        .route("/authorization/202309/shops", get(shops))
        .route("/order/202309/orders", get(details))
        .route("/order/202309/orders/search", post(search))
        .with_state(m.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (m, format!("http://{addr}"))
}

fn client(base: &str, timeout_ms: u64, attempts: u32) -> HttpOrderApi {
    let mut c = HttpConfig::new(APP_KEY, SECRET, TOKEN);
    c.base_url = base.to_owned();
    c.timeout = Duration::from_millis(timeout_ms);
    c.attempts = attempts;
    c.backoff = Duration::from_millis(5);
    HttpOrderApi::new(c, Arc::new(SystemClock)).expect("client")
}

#[tokio::test]
async fn http_client_signs_requests_and_maps_answers() {
    let (m, base) = mock().await;
    m.orders.lock().unwrap().extend([
        order_json("576", "AWAITING_SHIPMENT", 1718305600),
        order_json("577", "IN_TRANSIT", 1718305700),
    ]);
    let api = client(&base, 2000, 1);
    let shops = api.authorized_shops().await.expect("shops");
    assert_eq!(shops.len(), 2);
    assert_eq!(
        (shops[0].id.as_str(), shops[0].cipher.as_str()),
        (SHOP, CIPHER)
    );

    let orders = api
        .order_details("creator-1", SHOP, &["576".to_owned()])
        .await
        .expect("details");
    assert_eq!(orders.len(), 1);
    let o = orders[0].to_order("creator-1", SHOP).expect("maps");
    assert_eq!(o.shop_id.as_deref(), Some(SHOP));
    assert_eq!((o.quantity, o.price.to_string()), (2, "23.98".to_owned()));
    assert_eq!(o.deadline.expect("deadline").timestamp(), 1718564785);
    assert_eq!(o.shipping_location.as_deref(), Some("California"));

    // Paging through Search Orders; the window goes in the signed body.
    let mut token = None;
    let mut seen = Vec::new();
    loop {
        let page = api
            .search_orders(
                "creator-1",
                SHOP,
                &SearchQuery {
                    update_time_ge: 100,
                    update_time_lt: 200,
                    page_size: 1,
                    page_token: token.take(),
                },
            )
            .await
            .expect("search");
        seen.extend(page.orders.into_iter().map(|o| o.id));
        match page.next_page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, ["576", "577"]);
    assert_eq!(
        *m.search_body.lock().unwrap(),
        r#"{"update_time_ge":100,"update_time_lt":200}"#
    );
    assert_eq!(
        m.bad.load(Ordering::SeqCst),
        0,
        "every request signed correctly"
    );

    // An API error (code != 0) is typed and not retried: one Get
    // Authorized Shops (the shop's cipher), one Get Order Detail.
    let before = m.requests.load(Ordering::SeqCst);
    let err = client(&base, 2000, 3)
        .order_details("creator-1", "999", &["576".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Api { code: 106013, .. }), "{err}");
    assert!(!err.is_transient());
    assert_eq!(m.requests.load(Ordering::SeqCst) - before, 2);
    // A shop the token does not act for.
    let err = client(&base, 2000, 3)
        .order_details("creator-1", "555", &["576".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::UnknownShop { .. }), "{err}");
}

#[tokio::test]
async fn http_client_retries_transient_failures_and_times_out() {
    let (m, base) = mock().await;
    // Two 503s, then success, within three attempts.
    m.fail.store(2, Ordering::SeqCst);
    let shops = client(&base, 2000, 3)
        .authorized_shops()
        .await
        .expect("retried");
    assert_eq!(shops.len(), 2);
    assert_eq!(m.requests.load(Ordering::SeqCst), 3);
    // Two 503s with two attempts: the 503 is reported.
    m.fail.store(2, Ordering::SeqCst);
    let err = client(&base, 2000, 2).authorized_shops().await.unwrap_err();
    assert!(matches!(err, ApiError::Status { status: 503, .. }), "{err}");
    assert!(err.is_transient());
    // A slow answer: a timeout per attempt, retried, then reported.
    m.fail.store(0, Ordering::SeqCst);
    m.delay_ms.store(500, Ordering::SeqCst);
    let before = m.requests.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    let err = client(&base, 100, 2).authorized_shops().await.unwrap_err();
    assert!(matches!(err, ApiError::Timeout { ms: 100 }), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(m.requests.load(Ordering::SeqCst) - before, 2);
    // Nothing listening: a transport error.
    let err = client("http://127.0.0.1:1", 500, 1)
        .authorized_shops()
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }), "{err}");
}

// ---- the processor and reconciliation ---------------------------------------------

type S = MemoryStore;

struct World {
    processor: Arc<Processor<S, FakeOrderApi>>,
    engine: Engine<S>,
    api: Arc<FakeOrderApi>,
}

const TENANT: &str = "creator-1";

fn world() -> World {
    let store = MemoryStore::new();
    let api = Arc::new(FakeOrderApi::new());
    api.add_shop(SHOP, CIPHER);
    // Delivery is never confirmed by the carrier check: only TikTok's
    // DELIVERED event moves a shipped order on.
    // One step per claim round, so a test can stop an order mid-workflow.
    let engine = EngineBuilder::new(store)
        .tenant(TENANT)
        .delivery_confirmation(|_, _| false)
        .max_chain(1)
        .simulated_handlers()
        .build()
        .expect("engine");
    let mut p = Processor::new(api.clone());
    p.add_engine(engine.clone());
    p.add_shop(SHOP, TENANT);
    World {
        processor: Arc::new(p),
        engine,
        api,
    }
}

fn webhook(notification: Option<&str>, order: &str, status: &str, update_time: i64) -> Vec<u8> {
    let n = notification.map_or(String::new(), |n| {
        format!(r#""tts_notification_id":"{n}","#)
    });
    format!(
        r#"{{"type":1,{n}"shop_id":"{SHOP}","timestamp":{update_time},"data":{{"order_id":"{order}","order_status":"{status}","is_on_hold_order":false,"update_time":{update_time}}}}}"#
    )
    .into_bytes()
}

/// Verifies, parses and appends a push as the server does; `true` if new.
async fn receive(w: &World, body: &[u8]) -> bool {
    let sig = sign_webhook(APP_KEY, SECRET, body);
    assert!(creatorflow::tiktok::verify_webhook(
        APP_KEY, SECRET, body, &sig
    ));
    let e = Envelope::parse(body).expect("parses");
    let entry = InboxEntry {
        dedup_key: e.dedup_key().0,
        topic: e.code,
        body: body.to_vec(),
        received_at: SystemClock.now(),
    };
    w.engine
        .store()
        .inbox_append(TENANT, &[entry])
        .await
        .expect("append")[0]
}

async fn state(w: &World, order: &str) -> String {
    w.engine
        .find_by_tiktok_id(order)
        .await
        .expect("find")
        .map_or("absent".into(), |o| o.order.current_state.to_string())
}

#[tokio::test]
async fn awaiting_shipment_is_fetched_ingested_and_shipped_then_delivered_by_webhook() {
    let w = world();
    w.api
        .put_order_json(CIPHER, &order_json("576", "AWAITING_SHIPMENT", 20))
        .unwrap();
    assert!(receive(&w, &webhook(Some("n1"), "576", "ON_HOLD", 10)).await);
    assert_eq!(w.processor.drain_once(100).await.unwrap(), 1);
    assert_eq!(state(&w, "576").await, "absent", "ON_HOLD is not fulfilled");

    assert!(receive(&w, &webhook(Some("n2"), "576", "AWAITING_SHIPMENT", 20)).await);
    assert!(
        !receive(&w, &webhook(Some("n2"), "576", "AWAITING_SHIPMENT", 20)).await,
        "duplicate"
    );
    assert_eq!(w.processor.drain_once(100).await.unwrap(), 1);
    let o = w
        .engine
        .find_by_tiktok_id("576")
        .await
        .unwrap()
        .expect("ingested");
    assert_eq!(
        (o.order.quantity, o.order.price.to_string()),
        (2, "23.98".to_owned())
    );
    assert_eq!(o.order.user_id.as_deref(), Some(TENANT));
    w.engine.run_until_idle().await.unwrap();
    assert_eq!(state(&w, "576").await, "shipped");

    // IN_TRANSIT: already shipped, nothing to do; DELIVERED: delivered with history.
    receive(&w, &webhook(Some("n3"), "576", "IN_TRANSIT", 30)).await;
    receive(&w, &webhook(Some("n4"), "576", "DELIVERED", 40)).await;
    assert_eq!(w.processor.drain_once(100).await.unwrap(), 2);
    let h = w
        .engine
        .store()
        .order_with_history(TENANT, o.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.order.order.current_state, "delivered");
    let last = h.history.last().unwrap();
    assert!(
        last.reason
            .as_deref()
            .unwrap_or("")
            .contains("confirmed by TikTok Shop (DELIVERED)"),
        "{last:?}"
    );
    // The pending delivery check finds nothing left to do.
    let idle = w.engine.run_until_idle().await.unwrap();
    assert_eq!(idle.recorded, 0);
    let stats = w.processor.stats();
    assert_eq!(stats.processed, 4);
    assert_eq!(stats.outcomes.get("confirmed"), Some(&1));
    assert_eq!(stats.outcomes.get("unchanged"), Some(&1));
    let inbox = w.engine.store().inbox_stats(TENANT).await.unwrap();
    assert_eq!((inbox.received, inbox.pending, inbox.processed), (4, 0, 4));
}

#[tokio::test]
async fn cancellation_mid_workflow_runs_the_rollbacks() {
    let w = world();
    w.api
        .put_order_json(CIPHER, &order_json("900", "AWAITING_SHIPMENT", 20))
        .unwrap();
    receive(&w, &webhook(None, "900", "AWAITING_SHIPMENT", 20)).await;
    w.processor.drain_once(100).await.unwrap();
    // received → validated → processing → inventory_reserved → label_generated.
    for _ in 0..4 {
        w.engine.run_once().await.unwrap();
    }
    assert_eq!(state(&w, "900").await, "label_generated");
    // A cancellation request succeeds (topic 11).
    let body = format!(
        r#"{{"type":11,"tts_notification_id":"c1","shop_id":"{SHOP}","timestamp":25,"data":{{"order_id":"900","cancellations_role":"BUYER","cancel_status":"CANCELLATION_REQUEST_SUCCESS","cancel_id":"5","create_time":25}}}}"#
    );
    receive(&w, body.as_bytes()).await;
    w.processor.drain_once(100).await.unwrap();
    let id = w.engine.find_by_tiktok_id("900").await.unwrap().unwrap().id;
    let h = w
        .engine
        .store()
        .order_with_history(TENANT, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.order.order.current_state, "cancelled");
    let last = h.history.last().unwrap();
    assert!(
        last.reason
            .as_deref()
            .unwrap_or("")
            .contains("cancellation request by BUYER")
    );
    let actions = last.actions_executed.to_value();
    let actions = actions.as_array().expect("actions");
    let rollbacks: Vec<(String, String)> = actions
        .iter()
        .filter(|a| a["phase"] == "rollback")
        .map(|a| {
            (
                a["type"].as_str().unwrap_or("").to_owned(),
                a["operation"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rollbacks,
        [
            ("generate_shipping_label".to_owned(), "void".to_owned()),
            ("reserve_inventory".to_owned(), "release".to_owned())
        ],
        "{actions:?}"
    );
    assert!(actions.iter().all(|a| a["ok"] == true));
    // The worker's queued step finds a terminal order.
    w.engine.run_until_idle().await.unwrap();
    assert_eq!(state(&w, "900").await, "cancelled");
}

#[tokio::test]
async fn stale_and_out_of_order_events_never_move_an_order_backwards() {
    let w = world();
    w.api
        .put_order_json(CIPHER, &order_json("1", "IN_TRANSIT", 30))
        .unwrap();
    let apply = |order: &'static str, status: &'static str, t: i64| {
        let p = w.processor.clone();
        async move {
            let body = webhook(None, order, status, t);
            let cmd = command_for(&Envelope::parse(&body).unwrap());
            p.apply(TENANT, SHOP, &cmd, None).await.unwrap()
        }
    };
    // IN_TRANSIT arrives first (the AWAITING_SHIPMENT push was delayed):
    // the order is fetched, ingested and taken to shipped at once.
    assert_eq!(apply("1", "IN_TRANSIT", 30).await, Applied::Confirmed);
    assert_eq!(state(&w, "1").await, "shipped");
    assert_eq!(apply("1", "AWAITING_SHIPMENT", 20).await, Applied::Stale);
    assert_eq!(apply("1", "ON_HOLD", 10).await, Applied::Stale);
    // A cancellation is final whatever its time; everything after it is stale.
    w.api
        .put_order_json(CIPHER, &order_json("2", "AWAITING_SHIPMENT", 20))
        .unwrap();
    assert_eq!(apply("2", "CANCEL", 15).await, Applied::CancelledUnknown);
    assert_eq!(apply("2", "AWAITING_SHIPMENT", 20).await, Applied::Stale);
    assert_eq!(state(&w, "2").await, "absent");
    // Delivered is terminal: a later cancellation is refused by the machine.
    assert_eq!(apply("1", "DELIVERED", 40).await, Applied::Confirmed);
    assert_eq!(apply("1", "CANCELLED", 50).await, Applied::Unchanged);
    assert_eq!(state(&w, "1").await, "delivered");
}

#[tokio::test]
async fn a_transient_api_failure_leaves_the_entry_pending_until_it_succeeds() {
    let w = world();
    w.api
        .put_order_json(CIPHER, &order_json("7", "AWAITING_SHIPMENT", 20))
        .unwrap();
    receive(&w, &webhook(Some("n7"), "7", "AWAITING_SHIPMENT", 20)).await;
    w.api.fail_next(1);
    assert_eq!(w.processor.drain_once(100).await.unwrap(), 0);
    assert_eq!(w.processor.stats().retried, 1);
    assert_eq!(
        w.engine.store().inbox_stats(TENANT).await.unwrap().pending,
        1
    );
    // The entry is leased: claimable again once its lease lapses (60 s); a
    // fresh claim at a later time picks it up.
    let later = w.engine.now() + chrono::TimeDelta::seconds(61);
    let items = w
        .engine
        .store()
        .inbox_claim(TENANT, 10, chrono::TimeDelta::seconds(60), later)
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].attempt, 2);
    assert_eq!(
        w.processor.process_item(&items[0]).await.unwrap(),
        "ingested"
    );
}

#[tokio::test]
async fn reconciliation_applies_missed_changes_once_and_keeps_its_high_water_mark() {
    let w = world();
    let now = w.engine.now().timestamp();
    w.api
        .put_order_json(CIPHER, &order_json("r1", "AWAITING_SHIPMENT", now - 100))
        .unwrap();
    w.api
        .put_order_json(CIPHER, &order_json("r2", "ON_HOLD", now - 90))
        .unwrap();
    w.api
        .put_order_json(CIPHER, &order_json("r3", "CANCELLED", now - 80))
        .unwrap();
    let config = PollConfig {
        page_size: 1,
        ..PollConfig::default()
    };
    let reports = poll_all(&w.processor, &config).await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].orders, reports[0].applied), (3, 3));
    assert_eq!(state(&w, "r1").await, "received");
    assert_eq!(state(&w, "r2").await, "absent");
    assert_eq!(state(&w, "r3").await, "absent");
    let mark = w
        .engine
        .store()
        .cursor(TENANT, &creatorflow::tiktok::cursor_name(SHOP))
        .await
        .unwrap()
        .expect("high-water mark");
    assert_eq!(mark, reports[0].window.1);
    // Nothing changed since: the overlap re-reads nothing new.
    let again = poll_all(&w.processor, &config).await.unwrap();
    assert_eq!(again[0].applied, 0);
    assert!(again[0].window.0 >= mark - config.overlap_s);
    // The order moves on TikTok without a webhook: the next poll catches it.
    w.engine.run_until_idle().await.unwrap();
    let t = w.engine.now().timestamp();
    w.api
        .put_order_json(CIPHER, &order_json("r1", "DELIVERED", t - 1))
        .unwrap();
    let third = poll_all(&w.processor, &config).await.unwrap();
    assert_eq!(third[0].applied, 1);
    assert_eq!(state(&w, "r1").await, "delivered");
}

// ---- a crash between "applied" and "marked processed" -------------------------

#[allow(dead_code)]
#[path = "store/pg.rs"]
mod pg;

/// One "process" over the store at `url`: a fresh store, engine and
/// processor (nothing remembered from an earlier one), on `clock`.
async fn boot(
    url: &str,
    api: &Arc<FakeOrderApi>,
    clock: &Arc<creatorflow::ManualClock>,
) -> (
    Engine<creatorflow::AnyStore>,
    Arc<Processor<creatorflow::AnyStore, FakeOrderApi>>,
) {
    let store = creatorflow::store::open(url).await.expect("open");
    let engine = EngineBuilder::new(store)
        .tenant(TENANT)
        .clock(clock.clone())
        .delivery_confirmation(|_, _| false)
        .simulated_handlers()
        .build()
        .expect("engine");
    let mut p = Processor::new(api.clone());
    p.add_engine(engine.clone());
    p.add_shop(SHOP, TENANT);
    (engine, Arc::new(p))
}

/// Appends `body`, claims it, applies it and "crashes" before marking it
/// processed; returns the outcome of that first application.
async fn apply_then_crash(
    engine: &Engine<creatorflow::AnyStore>,
    processor: &Processor<creatorflow::AnyStore, FakeOrderApi>,
    key: &str,
    body: &[u8],
) -> String {
    let entry = InboxEntry {
        dedup_key: key.into(),
        topic: Envelope::parse(body).expect("parses").code,
        body: body.to_vec(),
        received_at: engine.now(),
    };
    let store = engine.store();
    assert_eq!(store.inbox_append(TENANT, &[entry]).await.unwrap(), [true]);
    let items = store
        .inbox_claim(TENANT, 10, chrono::TimeDelta::seconds(60), engine.now())
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    processor.process_item(&items[0]).await.expect("applied")
}

async fn crash_between_applied_and_processed(url: &str) {
    let api = Arc::new(FakeOrderApi::new());
    api.add_shop(SHOP, CIPHER);
    api.put_order_json(CIPHER, &order_json("900", "AWAITING_SHIPMENT", 20))
        .unwrap();
    let clock = Arc::new(creatorflow::ManualClock::new(
        "2025-06-12T10:00:00Z".parse().unwrap(),
    ));
    let history = |e: Engine<creatorflow::AnyStore>| async move {
        let id = e
            .find_by_tiktok_id("900")
            .await
            .unwrap()
            .expect("stored")
            .id;
        e.store()
            .order_with_history(TENANT, id)
            .await
            .unwrap()
            .unwrap()
    };

    // An ingest: applied, then the process dies before marking it.
    let (engine, processor) = boot(url, &api, &clock).await;
    let first = apply_then_crash(
        &engine,
        &processor,
        "n1",
        &webhook(Some("n1"), "900", "AWAITING_SHIPMENT", 20),
    )
    .await;
    assert_eq!(first, "ingested");
    let before = history(engine.clone()).await;
    drop((engine, processor));
    // A new process, once the lease lapsed: the entry is applied again,
    // changing nothing, and marked processed.
    clock.advance(chrono::TimeDelta::seconds(61));
    let (engine, processor) = boot(url, &api, &clock).await;
    assert_eq!(processor.drain_once(100).await.unwrap(), 1);
    assert_eq!(processor.stats().outcomes.get("known"), Some(&1));
    assert_eq!(processor.stats().outcomes.get("ingested"), None);
    assert_eq!(history(engine.clone()).await, before, "not ingested twice");
    let orders = engine.store().list_orders(TENANT, None, 10).await.unwrap();
    assert_eq!(orders.len(), 1);

    // A cancellation: applied (with its history row), crash, again.
    let body = format!(
        r#"{{"type":11,"tts_notification_id":"c1","shop_id":"{SHOP}","timestamp":25,"data":{{"order_id":"900","cancellations_role":"BUYER","cancel_status":"CANCELLATION_REQUEST_SUCCESS","cancel_id":"5","create_time":25}}}}"#
    );
    let first = apply_then_crash(&engine, &processor, "c1", body.as_bytes()).await;
    assert_eq!(first, "cancelled");
    let cancelled = history(engine.clone()).await;
    drop((engine, processor));
    clock.advance(chrono::TimeDelta::seconds(61));
    let (engine, processor) = boot(url, &api, &clock).await;
    assert_eq!(processor.drain_once(100).await.unwrap(), 1);
    assert_eq!(processor.stats().outcomes.get("unchanged"), Some(&1));
    let after = history(engine.clone()).await;
    assert_eq!(after, cancelled, "cancelled once");
    assert_eq!(
        after.history.iter().filter(|h| h.to == "cancelled").count(),
        1
    );
    let inbox = engine.store().inbox_stats(TENANT).await.unwrap();
    assert_eq!(
        (
            inbox.received,
            inbox.pending,
            inbox.processed,
            inbox.reclaimed
        ),
        (2, 0, 2, 2)
    );
}

/// A crash between applying an entry and marking it processed (the inbox
/// and the orders are separate transactions, on SQLite separate files)
/// does not apply it twice: the entry is claimed again after its lease and
/// its second application changes nothing. SQLite always; PostgreSQL when
/// `CREATORFLOW_TEST_PG` names a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_applying_and_marking_processed_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    crash_between_applied_and_processed(&format!(
        "sqlite://{}",
        dir.path().join("cf.db").display()
    ))
    .await;
    if let Some(url) = pg::url() {
        let schema = pg::fresh_schema("crash");
        crash_between_applied_and_processed(&pg::with_schema(&url, &schema)).await;
        pg::drop_schema(&url, &schema).await;
    }
}
