//! One rule-pack version across replicas: the active versions are recorded
//! in the store, and every replica follows them.
//!
//! A successful reload (`POST /api/rules/reload` or SIGHUP) on any replica
//! records each tenant's new pack version (the content hash) as the store's
//! shared value `rules` ([`Cluster::set_shared`]); the first replica to start
//! on an empty store records the versions it started with. Every replica
//! reads that value every [`FOLLOW_EVERY`]; when its revision moves and the
//! versions differ from those it runs, it loads the packs again **from its
//! own pack source** (its `--rules` directory, its configuration) and swaps
//! them only if they are exactly the recorded versions. A replica whose
//! directory yields other versions does not switch to them and does not
//! keep quiet: it logs an error naming both, and `GET /api/rules` and the
//! gauge `creatorflow_rules_in_sync` say it is out of step until its files
//! match and a reload is made. An invalid pack never gets recorded (the
//! reload answers 422 on the replica that tried and changes nothing), so
//! nothing changes anywhere.
//!
//! Why hashes and not the pack's bytes in the store: a pack is a directory
//! (and a tenant's pack may come from the configuration), deployed with the
//! binary and the configuration by the same tooling; recording the hash
//! keeps one source of truth for the files while making a drift visible
//! instead of silent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use creatorflow::store::{Cluster, StoreError};
use creatorflow::tiktok::{OrderApi, Processor};
use serde_json::{Value, json};

use super::auth::{Principal, authorize};
use super::reload::{PackSource, reload_if};
use super::{AppState, SharedStore};

/// The shared value the active versions are recorded under.
pub const RULES: &str = "rules";

/// How often a replica reads the recorded versions.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// What this replica knows of the recorded versions.
#[derive(Debug, Default, Clone)]
struct State_ {
    /// The revision last acted on (0: none yet).
    revision: i64,
    /// The recorded versions, per tenant.
    recorded: Option<BTreeMap<String, String>>,
    /// Why this replica does not run the recorded versions, if it does not.
    problem: Option<String>,
}

/// This replica's view of the recorded versions. Cheap to share.
#[derive(Debug, Default)]
pub struct RulesSync {
    state: Mutex<State_>,
}

impl RulesSync {
    fn state(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this replica runs the recorded versions (`true` while none
    /// are recorded).
    pub fn in_sync(&self) -> bool {
        self.state().problem.is_none()
    }
}

/// The versions each served tenant's engine runs now.
fn running<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
) -> BTreeMap<String, String> {
    processor
        .tenants()
        .filter_map(|t| {
            processor
                .engine(t)
                .map(|e| (t.to_owned(), e.rules_version()))
        })
        .collect()
}

/// Records `versions` as the active ones (a reload succeeded here): the
/// other replicas follow within [`FOLLOW_EVERY`].
pub async fn record(
    store: &SharedStore,
    versions: &BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    let value = json!({ "versions": versions }).to_string();
    store.set_shared(RULES, &value, now).await
}

/// [`record`] through the served engines' store and clock: what a reload
/// on this replica calls once it swapped.
pub async fn record_reload<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    versions: &BTreeMap<String, String>,
) -> Result<i64, StoreError> {
    let engine = processor
        .tenants()
        .next()
        .and_then(|t| processor.engine(t))
        .ok_or_else(|| StoreError::Invalid {
            message: "no tenant is served".to_owned(),
        })?;
    record(engine.store(), versions, engine.now()).await
}

/// The versions a recorded value names (`None`: not ours to read).
fn versions_of(value: &str) -> Option<BTreeMap<String, String>> {
    let v: Value = serde_json::from_str(value).ok()?;
    serde_json::from_value(v.get("versions")?.clone()).ok()
}

/// One look at the recorded versions: records ours if none are, follows
/// a new revision, and notes whether this replica is in step.
async fn follow_once<A: OrderApi + 'static>(
    processor: &Processor<SharedStore, A>,
    source: Option<&PackSource>,
    sync: &RulesSync,
    replica: &str,
) -> Result<(), StoreError> {
    let Some(engine) = processor.tenants().next().and_then(|t| processor.engine(t)) else {
        return Ok(());
    };
    let store = engine.store().clone();
    let now = engine.now();
    let Some(shared) = store.shared(RULES).await? else {
        let ours = running(processor);
        let revision = record(&store, &ours, now).await?;
        tracing::info!(
            task = "rules",
            replica,
            revision,
            "recorded the rule-pack versions this replica started with"
        );
        return Ok(());
    };
    let ours = running(processor);
    let Some(recorded) = versions_of(&shared.value) else {
        let mut st = sync.state();
        st.revision = shared.revision;
        st.problem = Some(format!(
            "the recorded rule versions (revision {}) cannot be read",
            shared.revision
        ));
        return Ok(());
    };
    let wanted: BTreeMap<String, String> = ours
        .keys()
        .map(|t| (t.clone(), recorded.get(t).cloned().unwrap_or_default()))
        .collect();
    let moved = sync.state().revision != shared.revision;
    if wanted == ours {
        let mut st = sync.state();
        if st.problem.is_some() {
            tracing::info!(
                task = "rules",
                replica,
                revision = shared.revision,
                "in step with the recorded rule-pack versions again"
            );
        }
        *st = State_ {
            revision: shared.revision,
            recorded: Some(recorded),
            problem: None,
        };
        return Ok(());
    }
    if !moved {
        return Ok(());
    }
    let problem = match source {
        None => Some("this replica cannot reload its rules (no pack source)".to_owned()),
        Some(source) => match reload_if(processor, source, &wanted).await {
            Ok(Ok(versions)) => {
                let list: Vec<String> = versions.iter().map(|(t, v)| format!("{t}={v}")).collect();
                tracing::info!(task = "rules", replica, revision = shared.revision, versions = %list.join(" "), "rules reloaded to follow another replica's reload");
                None
            }
            Ok(Err(found)) => Some(format!(
                "this replica's pack source yields {} but the recorded versions are {}",
                show(&found),
                show(&wanted)
            )),
            Err(e) => Some(format!(
                "reloading to follow the recorded versions failed: {e}"
            )),
        },
    };
    if let Some(p) = &problem {
        tracing::error!(task = "rules", replica, revision = shared.revision, problem = %p, "RULE PACK MISMATCH: this replica keeps running its own pack versions");
    }
    *sync.state() = State_ {
        revision: shared.revision,
        recorded: Some(recorded),
        problem,
    };
    Ok(())
}

/// `tenant=version …`.
fn show(versions: &BTreeMap<String, String>) -> String {
    let list: Vec<String> = versions.iter().map(|(t, v)| format!("{t}={v}")).collect();
    list.join(" ")
}

/// Follows the recorded versions every [`FOLLOW_EVERY`], for ever (the
/// task is dropped with the server).
pub async fn follow<A: OrderApi + 'static>(
    processor: Arc<Processor<SharedStore, A>>,
    source: Option<PackSource>,
    sync: Arc<RulesSync>,
    replica: String,
) {
    let mut failing = false;
    loop {
        match follow_once(&processor, source.as_ref(), &sync, &replica).await {
            Ok(()) => failing = false,
            Err(e) => {
                if !failing {
                    tracing::warn!(task = "rules", replica = %replica, error = %e, "cannot read the recorded rule-pack versions; retrying");
                }
                failing = true;
            }
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// `GET /api/rules` (a tenant's token: its own tenant only; admin: every
/// tenant): this replica's name, the versions it runs, the recorded
/// (active) versions and their revision, and whether it is in step
/// (`in_sync`, with the `problem` when not).
pub(crate) async fn rules<A: OrderApi + 'static>(
    State(s): State<Arc<AppState<A>>>,
    headers: HeaderMap,
) -> Response {
    let access = match authorize(&s, &headers, None) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let only = match access.who {
        Principal::Admin { .. } => None,
        Principal::Tenant { tenant, .. } => Some(tenant.clone()),
        Principal::Metrics => return super::auth::not_found(),
    };
    let keep = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.into_iter()
            .filter(|(t, _)| only.as_ref().is_none_or(|o| o == t))
            .collect()
    };
    let st = s.rules_sync.state().clone();
    Json(json!({
        "replica": s.config.replica,
        "running": keep(running(&s.processor)),
        "active": st.recorded.map(keep),
        "revision": st.revision,
        "in_sync": st.problem.is_none(),
        "problem": st.problem,
    }))
    .into_response()
}
