//! The schema of the service configuration file (docs/config.md; the
//! loader is `crate::config::load`).

use creatorflow::actions::ActionType;
use serde_json::{Map, Value, json};

use super::defs::{self, doc, names, object, r, text};
use crate::config::TIKTOK_OPS;
use crate::config::bindings::{BindingKind, ENGINE_TYPES};

/// Every key but `store` is optional.
pub fn schema() -> Value {
    let mut s = object(
        json!({
            "store": doc(json!({ "type": "string" }), "memory:, sqlite://PATH or postgres://USER@HOST/DB"),
            "listen": doc(json!({ "type": "string" }), "an address such as 0.0.0.0:8080"),
            "rules": doc(text(), "the rule pack directory of every tenant without its own"),
            "machine": doc(text(), "the state machine file"),
            "tiktok": r("tiktok"),
            "tenants": { "type": "array", "items": r("tenant") },
            "admin_tokens": { "type": "array", "items": text() },
            "metrics_token": text(),
            "actions": r("actions"),
        }),
        &["store"],
    );
    s["definitions"] = defs::definitions(vec![
        ("tiktok", tiktok()),
        ("tenant", tenant()),
        ("actions", actions()),
        ("binding", binding()),
        ("http", http()),
        ("duration", defs::duration()),
    ]);
    s
}

fn tiktok() -> Value {
    let url = json!({ "type": "string" });
    object(
        json!({
            "app_key": text(),
            "app_secret": text(),
            "api_base": url,
            "auth_base": url,
            "authorize_url": url,
            "service_id": text(),
            "poll_every": doc(json!({ "anyOf": [r("duration"), { "enum": [0, "0"] }] }),
                "how often reconciliation polls (default 5m; 0: off)"),
        }),
        &["app_key", "app_secret"],
    )
}

fn tenant() -> Value {
    object(
        json!({
            "id": text(),
            "shops": { "type": "array", "items": text() },
            "rules": doc(text(), "the tenant's own rule pack directory"),
            "api_tokens": { "type": "array", "items": text() },
        }),
        &["id"],
    )
}

/// One binding per action type; the engine's own types take none.
fn actions() -> Value {
    let properties: Map<String, Value> = ActionType::BUILTIN
        .iter()
        .filter(|t| !ENGINE_TYPES.contains(t))
        .map(|t| (t.as_str().to_owned(), r("binding")))
        .collect();
    object(Value::Object(properties), &[])
}

/// `{ http: {...} }`, `{ tiktok: OP }`, `{ log: {} }`, `{ simulated: {} }`,
/// or `log` / `simulated` written bare.
fn binding() -> Value {
    let bare = BindingKind::ALL
        .iter()
        .filter(|k| matches!(k, BindingKind::Log | BindingKind::Simulated))
        .map(|k| k.as_str());
    let mut one_of = vec![json!({ "enum": names(bare) })];
    for kind in BindingKind::ALL {
        let settings = match kind {
            BindingKind::Http => r("http"),
            BindingKind::TikTok => json!({ "enum": names(TIKTOK_OPS.iter().copied()) }),
            BindingKind::Log | BindingKind::Simulated => {
                json!({ "anyOf": [{ "type": "null" }, { "type": "object", "maxProperties": 0 }] })
            }
        };
        one_of.push(object(json!({ kind.as_str(): settings }), &[kind.as_str()]));
    }
    json!({ "oneOf": one_of })
}

fn http() -> Value {
    object(
        json!({
            "url": doc(json!({ "type": "string" }), "an http:// or https:// URL"),
            "secret": doc(text(), "the signing secret, usually ${NAME}"),
            "timeout": r("duration"),
        }),
        &["url", "secret"],
    )
}
