//! Which rule pack decides, and swapping it while the engine runs.
//!
//! Every transition the engine writes carries the version
//! ([`RulePack::version`]) of the pack this engine evaluates at that moment,
//! and every new order is stored with the rules' decision at ingest
//! ([`ingest_decision`]), so one can always tell which pack decided what.
//!
//! [`Engine::reload_rules`] swaps the pack atomically for new evaluations:
//! an evaluation holds the rules' lock, so an ingest batch already being
//! evaluated finishes on the old pack, and every later one uses the new
//! pack. Work already queued runs the actions its ingest decided (they are
//! in the work item's payload, see `rule_actions`), whichever pack decided.
//!
//! # Window facts across a reload
//!
//! The window facts (orders per product and customer) do not depend on the
//! pack, so they **carry over** when the new pack counts nothing the old
//! one did not keep (same kinds of keys, no longer window): the swap then
//! loses nothing and costs nothing. Otherwise they are **replayed** from the
//! store, as after a restart (`restore`): the reload holds the ingest gate
//! alone meanwhile, so no order is evaluated or stored between the read and
//! the swap, and none is missed; ingests wait for it. Rate limits and
//! per-rule statistics carry over by rule id in the first case and start
//! afresh in the second.

use std::sync::Arc;

use serde::Serialize;

use super::builder::used_action_types;
use super::{BuildError, Engine, EngineError, Inner, lock};
use crate::model::{Impact, JsonText, Priority};
use crate::rules::{Decision, RuleEngine, RulePack};
use crate::store::Store;

impl<S: Store + 'static> Engine<S> {
    /// Evaluates `pack` from now on and returns its version. Refused, with
    /// nothing changed, when `pack` uses an action type this engine has no
    /// handler for ([`EngineError::Build`]). See the module docs (`src/engine/reload.rs`)
    /// for what happens to the window facts.
    pub async fn reload_rules(&self, pack: RulePack) -> Result<String, EngineError> {
        let inner = &*self.inner;
        self.can_run(&pack)?;
        // The windows as a restart would rebuild them, before they move on.
        self.restore().await?;
        let pack = Arc::new(pack);
        let version = pack.version().to_owned();
        let _alone = inner.gate.write().await;
        let held = lock(&inner.rules).holds_windows_for(&pack);
        if held {
            lock(&inner.rules).swap_pack(pack.clone());
        } else {
            let reach = chrono::TimeDelta::milliseconds(pack.max_window_ms());
            let mut fresh = RuleEngine::new(pack.clone());
            self.replay_recent(reach, |page| page.iter().for_each(|o| fresh.record(o)))
                .await?;
            *lock(&inner.rules) = fresh;
        }
        *lock(&inner.pack) = pack;
        Ok(version)
    }

    /// Whether this engine can run `pack`: every action type its rules use
    /// has a handler (what [`EngineBuilder::build`](super::EngineBuilder::build)
    /// checks, and [`Engine::reload_rules`] before swapping).
    pub fn can_run(&self, pack: &RulePack) -> Result<(), BuildError> {
        let inner = &*self.inner;
        let missing = inner
            .executor
            .registry()
            .missing(used_action_types(&inner.machine, pack));
        if missing.is_empty() {
            Ok(())
        } else {
            Err(BuildError::MissingHandlers { missing })
        }
    }

    /// The version of the pack this engine evaluates now.
    pub fn rules_version(&self) -> String {
        self.inner.pack_version()
    }

    /// The pack this engine evaluates now.
    pub fn rules(&self) -> Arc<RulePack> {
        self.inner.current_pack()
    }
}

impl<S> Inner<S> {
    /// The pack the engine evaluates now.
    pub(super) fn current_pack(&self) -> Arc<RulePack> {
        lock(&self.pack).clone()
    }

    /// Its version, for the transitions the engine writes.
    pub(super) fn pack_version(&self) -> String {
        lock(&self.pack).version().to_owned()
    }
}

/// The rules' decision at ingest as stored with the order
/// ([`NewOrder::decision`](crate::store::NewOrder::decision)): the pack's
/// version, the fired rules' ids (evaluation order), the priority and
/// impact they gave, the rules over their hourly limit and the rules that
/// errored (`{"rule", "message"}`).
#[derive(Debug, Serialize)]
struct IngestDecision<'a> {
    pack_version: &'a str,
    rules: Vec<&'a str>,
    priority: Priority,
    impact: Impact,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rate_limited: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RuleError<'a>>,
}

#[derive(Debug, Serialize)]
struct RuleError<'a> {
    rule: &'a str,
    message: &'a str,
}

/// `decision` of `pack` as JSON text (see [`IngestDecision`]); `None` only
/// if it cannot be encoded (it always can: strings and enums).
pub(super) fn ingest_decision(pack: &RulePack, decision: &Decision) -> Option<JsonText> {
    let id = |i: &u32| pack.rules().get(*i as usize).map_or("?", |r| r.id.as_str());
    JsonText::encode(&IngestDecision {
        pack_version: pack.version(),
        rules: decision.matched.iter().map(id).collect(),
        priority: decision.priority,
        impact: decision.impact,
        rate_limited: decision.rate_limited.iter().map(id).collect(),
        errors: decision
            .errors
            .iter()
            .map(|(i, m)| RuleError {
                rule: id(i),
                message: m,
            })
            .collect(),
    })
    .ok()
}
