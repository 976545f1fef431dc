//! The operator API through the real HTTP server on 127.0.0.1:0: the
//! review queue, an order with its history, approve / reject / retry /
//! cancel with who did it and why, 409 with the current state, and the
//! tokens (401 without a known one, 404 for another tenant's order, the
//! same as for an absent one).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use creatorflow::Order;
use creatorflow::tiktok::FakeOrderApi;
use creatorflow_cli::serve::{Running, Tokens, start};
use serde_json::{Value, json};
use support::{OTHER, TENANT, two_tenants, wait_for};

const ADMIN: &str = "admin-token-secret";
const MINE: &str = "creator-1-token-secret";
const THEIRS: &str = "creator-2-token-secret";

struct Server {
    running: Running<FakeOrderApi>,
    base: String,
    http: reqwest::Client,
}

async fn server() -> Server {
    let c = two_tenants(
        Tokens::none()
            .admin(ADMIN)
            .tenant(TENANT, MINE)
            .tenant(OTHER, THEIRS),
    );
    let store = creatorflow::store::open("memory:").await.expect("store");
    let running = start(c, store, Arc::new(FakeOrderApi::new()))
        .await
        .expect("start");
    let base = format!("http://{}", running.addr);
    Server {
        running,
        base,
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call("GET", path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
        self.call("POST", path, Some(token), body).await
    }

    /// Ingests an order for `tenant`; a "new" customer's 450.00 order is
    /// held for a person by the shipped pack.
    async fn ingest(&self, tenant: &str, tiktok_id: &str, held: bool) -> String {
        let extra = if held {
            r#""price":"450.00","customer_tier":"new""#
        } else {
            r#""price":"25.00""#
        };
        let order = Order::from_json(&format!(
            r#"{{"tiktok_order_id":"{tiktok_id}","customer_handle":"@ana","product_name":"Lamp",
            "product_id":"p1","quantity":1,"created_at":"2025-06-12T10:00:00Z",{extra}}}"#
        ))
        .expect("order");
        let engine = self.running.processor().engine(tenant).expect("tenant");
        engine
            .ingest(order)
            .await
            .expect("ingest")
            .order
            .id
            .to_string()
    }

    /// Waits until the order is in `state` (as its own tenant's token reads it).
    async fn wait_state(&self, id: &str, token: &str, state: &str) -> Value {
        wait_for(Duration::from_secs(10), || async {
            let (_, v) = self.get(&format!("/api/orders/{id}"), token).await;
            (v["order"]["state"] == state).then_some(v)
        })
        .await
        .unwrap_or_else(|| panic!("order {id} never reached {state}"))
    }
}

fn last_row(v: &Value) -> &Value {
    v["history"]
        .as_array()
        .and_then(|h| h.last())
        .expect("a history row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_queue_and_approve_with_who_and_why() {
    let s = server().await;
    let held = s.ingest(TENANT, "101", true).await;
    let fine = s.ingest(TENANT, "102", false).await;
    let theirs = s.ingest(OTHER, "201", true).await;
    s.wait_state(&held, MINE, "failed").await;
    s.wait_state(&fine, MINE, "shipped").await;
    s.wait_state(&theirs, THEIRS, "failed").await;

    // The queue: the tenant's own held orders only.
    let (status, q) = s.get("/api/review", MINE).await;
    assert_eq!(status, 200, "{q}");
    let ids: Vec<&str> = q["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, [held.as_str()]);
    assert_eq!(q["orders"][0]["automation_status"], "Manual Review");
    let (_, q) = s.get("/api/review", THEIRS).await;
    assert_eq!(q["orders"][0]["id"], theirs.as_str());
    let (status, q) = s.get(&format!("/api/review?tenant={OTHER}"), ADMIN).await;
    assert_eq!(
        (status, q["orders"][0]["id"].as_str()),
        (200, Some(theirs.as_str()))
    );
    // Paging: one per page, then the cursor.
    s.ingest(TENANT, "103", true).await;
    let (_, p1) = s.get("/api/review?limit=1", MINE).await;
    assert_eq!(p1["orders"][0]["id"], held.as_str());
    let next = p1["next"].as_str().expect("a next page").to_owned();
    let (_, p2) = wait_for(Duration::from_secs(10), || async {
        let r = s
            .get(&format!("/api/review?limit=1&after={next}"), MINE)
            .await;
        (r.1["orders"].as_array().is_some_and(|o| !o.is_empty())).then_some(r)
    })
    .await
    .expect("the second held order");
    assert_ne!(p2["orders"][0]["id"], held.as_str());
    assert_eq!(s.get("/api/review?limit=0", MINE).await.0, 400);
    assert_eq!(s.get("/api/review?after=nonsense", MINE).await.0, 400);

    // The order in full, by store id or TikTok id: history, decisions.
    let (status, o) = s.get(&format!("/api/orders/{held}"), MINE).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["order"]["tiktok_order_id"], "101");
    assert_eq!(last_row(&o)["to"], "failed");
    assert!(last_row(&o).get("actor").is_some() && last_row(&o).get("pack_version").is_some());
    let rules = &o["decisions"][0]["rules"];
    assert!(
        rules
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "new-customer-large-order-review")),
        "{o}"
    );
    assert_eq!(
        o["commands"],
        json!(["approve", "reject", "retry", "cancel"])
    );
    let (status, by_tiktok) = s.get("/api/orders/101", MINE).await;
    assert_eq!((status, &by_tiktok["order"]["id"]), (200, &json!(held)));

    // Approve: it goes on; the history says who and why.
    let (status, a) = s
        .post(
            &format!("/api/orders/{held}/approve"),
            MINE,
            Some(r#"{"reason":"called the buyer"}"#),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["order"]["state"], "processing");
    let o = s.wait_state(&held, MINE, "shipped").await;
    let row = o["history"]
        .as_array()
        .expect("history")
        .iter()
        .find(|r| r["from"] == "failed")
        .expect("the approval")
        .clone();
    assert_eq!(row["to"], "processing");
    assert_eq!(row["actor"], "creator-1-1");
    assert_eq!(row["reason"], "approve: called the buyer");
    assert_eq!(row["automated"], false);
    // Not in review any more: 409 with the state it is in.
    let (status, e) = s
        .post(&format!("/api/orders/{held}/approve"), MINE, None)
        .await;
    assert_eq!((status, &e["state"]), (409, &json!("shipped")), "{e}");
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("manual review")),
        "{e}"
    );
    let (_, q) = s.get("/api/review", MINE).await;
    assert!(!q.to_string().contains(&held));
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_retry_cancel_and_the_tokens() {
    let s = server().await;
    let held = s.ingest(TENANT, "301", true).await;
    let other = s.ingest(TENANT, "302", true).await;
    s.wait_state(&held, MINE, "failed").await;
    s.wait_state(&other, MINE, "failed").await;
    let reject = format!("/api/orders/{held}/reject");

    // No token, an unknown one: 401, on every operator route.
    for (method, path) in [
        ("GET", "/api/review".to_owned()),
        ("GET", format!("/api/orders/{held}")),
        ("POST", reject.clone()),
    ] {
        for token in [None, Some("not-a-token")] {
            let (status, _) = s.call(method, &path, token, None).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}");
        }
    }
    // Another tenant's token: exactly as an order that does not exist.
    let (status, theirs) = s.get(&format!("/api/orders/{held}"), THEIRS).await;
    let (absent_status, absent) = s
        .get(&format!("/api/orders/{}", uuid::Uuid::nil()), MINE)
        .await;
    assert_eq!((status, &theirs), (absent_status, &absent));
    assert_eq!(status, 404);
    let (status, v) = s.post(&reject, THEIRS, Some(r#"{"reason":"x"}"#)).await;
    assert_eq!((status, &v), (404, &absent));
    assert_eq!(
        s.get(&format!("/api/review?tenant={TENANT}"), THEIRS)
            .await
            .0,
        404
    );
    assert_eq!(
        s.post(&format!("/api/orders/{held}/delete"), MINE, None)
            .await
            .0,
        404
    );

    // Reject needs a reason; a body that is not one is refused.
    for body in [None, Some("{}"), Some(r#"{"reason":"  "}"#)] {
        let (status, e) = s.post(&reject, MINE, body).await;
        assert_eq!(status, 422, "{body:?}: {e}");
    }
    for body in ["not json", r#"{"reason":5}"#, "[]"] {
        assert_eq!(s.post(&reject, MINE, Some(body)).await.0, 400, "{body}");
    }
    let (status, v) = s
        .post(&reject, ADMIN, Some(r#"{"reason":"stolen card"}"#))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["order"]["state"], "cancelled");
    let (_, o) = s.get(&format!("/api/orders/{held}"), MINE).await;
    let row = last_row(&o);
    assert_eq!(
        (&row["actor"], &row["reason"], &row["automated"]),
        (
            &json!("admin-1"),
            &json!("reject: stolen card"),
            &json!(false)
        )
    );
    assert_eq!(o["commands"], json!([]));
    // Terminal: every command is a 409 naming the state.
    for c in ["approve", "reject", "retry", "cancel"] {
        let (status, e) = s
            .post(
                &format!("/api/orders/{held}/{c}"),
                MINE,
                Some(r#"{"reason":"r"}"#),
            )
            .await;
        assert_eq!(
            (status, &e["state"]),
            (409, &json!("cancelled")),
            "{c}: {e}"
        );
    }

    // Retry then cancel, by TikTok id.
    let (status, v) = s.post("/api/orders/302/retry", MINE, None).await;
    assert_eq!(
        (status, &v["order"]["state"]),
        (200, &json!("processing")),
        "{v}"
    );
    let o = s.wait_state(&other, MINE, "shipped").await;
    assert_eq!(o["commands"], json!(["cancel"]));
    let (status, v) = s
        .post(
            "/api/orders/302/cancel",
            MINE,
            Some(r#"{"reason":"buyer phoned"}"#),
        )
        .await;
    assert_eq!(
        (status, &v["order"]["state"]),
        (200, &json!("cancelled")),
        "{v}"
    );
    let (_, o) = s.get(&format!("/api/orders/{other}"), MINE).await;
    let rows = o["history"].as_array().expect("history");
    let retry = rows
        .iter()
        .find(|r| r["from"] == "failed")
        .expect("retry row");
    assert_eq!(
        (&retry["actor"], &retry["reason"]),
        (&json!("creator-1-1"), &json!("retry"))
    );
    assert_eq!(last_row(&o)["reason"], "cancel: buyer phoned");
    s.running.stop().await;
}
