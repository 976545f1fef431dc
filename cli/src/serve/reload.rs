//! Reloading the rule packs of a running server: `POST /api/rules/reload`
//! (admin token) and SIGHUP.
//!
//! The packs are loaded again from where the configuration and the flags
//! said at start-up ([`PackSource`]: `--rules`, else the configuration's
//! `rules:` and each tenant's own, else the shipped pack), and checked as
//! at start-up (every diagnostic of every pack, and the bindings' coverage
//! of the action types they use). Anything wrong changes nothing: 422 with
//! every diagnostic, located. Otherwise every served tenant's engine is
//! checked to be able to run its new pack, then swapped
//! ([`Engine::reload_rules`](creatorflow::Engine::reload_rules)): new
//! evaluations use the new pack at once, evaluations in flight finish on
//! the old one. The answer names each tenant's pack version, which is
//! recorded in the store for the other replicas to follow (`sync.rs`). The machine
//! and the action bindings are not reloaded (a restart changes those).
//! Reloads run one at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use creatorflow::diag::{Code, Diagnostic, Pos};
use creatorflow::rules::RulePack;
use creatorflow::tiktok::{OrderApi, Processor};
use serde_json::{Value, json};

use super::auth::{Principal, authorize, not_found};
use super::{AppState, SharedStore};
use crate::config::{Overrides, ServiceConfig, SetupError, resolve};

/// The packs a reload loaded: the default one and the tenants' own.
#[derive(Debug, Clone)]
pub struct Packs {
    /// The pack of every tenant without its own.
    pub default: RulePack,
    /// The tenants with a pack of their own.
    pub tenants: BTreeMap<String, RulePack>,
}

impl Packs {
    /// The pack `tenant` evaluates.
    pub fn of(&self, tenant: &str) -> &RulePack {
        self.tenants.get(tenant).unwrap_or(&self.default)
    }
}

type Load = dyn Fn() -> Result<Packs, Vec<Diagnostic>> + Send + Sync;

/// Where a reload loads the packs from. Cheap to clone; reloads through
/// clones of one source run one at a time.
#[derive(Clone)]
pub struct PackSource {
    load: Arc<Load>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for PackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackSource").finish_non_exhaustive()
    }
}

impl PackSource {
    /// Packs from `load` (every diagnostic when they are wrong).
    pub fn new(load: impl Fn() -> Result<Packs, Vec<Diagnostic>> + Send + Sync + 'static) -> Self {
        PackSource {
            load: Arc::new(load),
            one_at_a_time: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The packs `config` and `overrides` name, loaded and checked as at
    /// start-up ([`resolve`]): the same directories, read again.
    pub fn from_config(config: Option<ServiceConfig>, overrides: Overrides) -> Self {
        PackSource::new(move || match resolve(config.clone(), &overrides) {
            Ok(setup) => Ok(Packs {
                default: setup.default_pack,
                tenants: setup.tenant_packs,
            }),
            Err(SetupError::Invalid(diags)) => Err(diags),
            Err(SetupError::Failed(message)) => {
                let flag = overrides
                    .rules
                    .as_ref()
                    .map_or_else(|| "--rules".to_owned(), |d| d.display().to_string());
                Err(vec![Diagnostic::new(
                    flag,
                    Code::ConfigMissingPath,
                    Pos::new(1, 1),
                    message,
                )])
            }
        })
    }
}

/// Why a reload changed nothing (or, for `Failed`, not everything).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The packs are wrong, or a tenant's engine cannot run its new pack:
    /// every diagnostic (errors; warnings alongside).
    #[error("{} problem(s) in the rule packs; nothing changed", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// A swap failed (the store, while rebuilding window facts): the
    /// tenants named in `swapped` evaluate their new pack, the others the old one.
    #[error("reloading the rules of {tenant} failed: {message}")]
    Failed {
        /// The tenant whose engine failed.
        tenant: String,
        /// Why.
        message: String,
        /// The tenants swapped before, with their new version.
        swapped: BTreeMap<String, String>,
    },
}

/// Loads the packs from `source` and swaps every served tenant's engine:
/// each tenant's new pack version, or nothing changed ([`ReloadError`]).
pub async fn reload<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    source: &PackSource,
) -> Result<BTreeMap<String, String>, ReloadError> {
    let _one = source.one_at_a_time.lock().await;
    let packs = load_checked(processor, source).await?;
    swap(processor, &packs).await
}

/// Reloads like [`reload`] only if the packs `source` yields now have
/// exactly the versions `wanted` (per tenant); otherwise changes nothing
/// and answers the versions found (`Ok(Err(found))`). What a replica does
/// when another one's reload recorded new versions in the store
/// (`sync.rs`).
pub async fn reload_if<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    source: &PackSource,
    wanted: &BTreeMap<String, String>,
) -> Result<Result<BTreeMap<String, String>, BTreeMap<String, String>>, ReloadError> {
    let _one = source.one_at_a_time.lock().await;
    let packs = load_checked(processor, source).await?;
    let found: BTreeMap<String, String> = processor
        .tenants()
        .map(|t| (t.to_owned(), packs.of(t).version().to_owned()))
        .collect();
    if &found != wanted {
        return Ok(Err(found));
    }
    swap(processor, &packs).await.map(Ok)
}

/// Loads the packs from `source` and checks every served tenant's engine
/// can run its new one; nothing is swapped.
async fn load_checked<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    source: &PackSource,
) -> Result<Packs, ReloadError> {
    let load = source.load.clone();
    let packs = tokio::task::spawn_blocking(move || load())
        .await
        .map_err(|e| {
            ReloadError::Invalid(vec![Diagnostic::new(
                "rules",
                Code::ConfigMissingPath,
                Pos::new(1, 1),
                format!("loading the packs failed: {e}"),
            )])
        })?
        .map_err(ReloadError::Invalid)?;
    let tenants: Vec<String> = processor.tenants().map(str::to_owned).collect();
    let mut refused = Vec::new();
    for t in &tenants {
        if let Some(engine) = processor.engine(t)
            && let Err(e) = engine.can_run(packs.of(t))
        {
            refused.push(Diagnostic::new(
                "rules",
                Code::ConfigUnbound,
                Pos::new(1, 1),
                format!("tenant `{t}`: {e}"),
            ));
        }
    }
    if !refused.is_empty() {
        return Err(ReloadError::Invalid(refused));
    }
    Ok(packs)
}

/// Swaps every served tenant's engine to its pack of `packs`.
async fn swap<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    packs: &Packs,
) -> Result<BTreeMap<String, String>, ReloadError> {
    let tenants: Vec<String> = processor.tenants().map(str::to_owned).collect();
    let mut swapped = BTreeMap::new();
    for t in tenants {
        let Some(engine) = processor.engine(&t) else {
            continue;
        };
        match engine.reload_rules(packs.of(&t).clone()).await {
            Ok(version) => {
                swapped.insert(t, version);
            }
            Err(e) => {
                return Err(ReloadError::Failed {
                    tenant: t,
                    message: e.to_string(),
                    swapped,
                });
            }
        }
    }
    Ok(swapped)
}

/// A diagnostic as JSON: where, which code, how severe, what.
fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "file": &*d.file,
        "line": d.pos.line,
        "column": d.pos.col,
        "code": d.code.as_str(),
        "severity": d.severity().to_string(),
        "message": d.message,
    })
}

/// `POST /api/rules/reload` (admin only; any other token: 404): 200
/// `{"versions": {tenant: version}, "revision": n}` (the versions are
/// recorded in the store, revision `n`: every replica follows, `sync.rs`); 422 `{"diagnostics": [...]}` when the
/// packs are wrong (nothing changed); 503 when the server was started
/// without a pack source; 500 when a swap failed half-way (`versions`
/// names the tenants swapped).
pub(crate) async fn reload_rules<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
) -> Response {
    let access = match authorize(&s, &headers, None) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if !matches!(access.who, Principal::Admin { .. }) {
        return not_found();
    }
    let Some(source) = &s.config.rules else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "this server cannot reload its rules (no pack source)"})),
        )
            .into_response();
    };
    match reload(&s.processor, source).await {
        Ok(versions) => match super::sync::record_reload(&s.processor, &versions).await {
            Ok(revision) => {
                Json(json!({ "versions": versions, "revision": revision })).into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "rules reloaded here but not recorded: other replicas keep theirs");
                Json(json!({ "versions": versions, "revision": null, "record_error": e.to_string() }))
                    .into_response()
            }
        },
        Err(ReloadError::Invalid(diags)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({
                "diagnostics": diags.iter().map(diagnostic_json).collect::<Vec<_>>()
            })),
        )
            .into_response(),
        Err(ReloadError::Failed {
            tenant,
            message,
            swapped,
        }) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({
                "error": format!("reloading the rules of {tenant} failed: {message}"),
                "versions": swapped,
            })),
        )
            .into_response(),
    }
}

/// Reloads on every SIGHUP (Unix) until dropped, writing the outcome on
/// stderr: each tenant's new version, or every diagnostic.
pub async fn reload_on_sighup<A: OrderApi + 'static>(
    processor: Arc<Processor<SharedStore, A>>,
    source: PackSource,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match reload(&processor, &source).await {
                Ok(versions) => {
                    let list: Vec<String> =
                        versions.iter().map(|(t, v)| format!("{t}={v}")).collect();
                    tracing::info!(signal = "SIGHUP", versions = %list.join(" "), "rules reloaded");
                    if let Err(e) = super::sync::record_reload(&processor, &versions).await {
                        tracing::error!(signal = "SIGHUP", error = %e, "rules reloaded here but not recorded: other replicas keep theirs");
                    }
                }
                Err(ReloadError::Invalid(diags)) => {
                    for d in &diags {
                        tracing::warn!(signal = "SIGHUP", diagnostic = %d, "invalid rule pack");
                    }
                    tracing::warn!(
                        signal = "SIGHUP",
                        problems = diags.len(),
                        "rules not reloaded; the running packs stay"
                    );
                }
                Err(e) => tracing::error!(signal = "SIGHUP", error = %e, "rules not reloaded"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (processor, source);
        std::future::pending::<()>().await;
    }
}
