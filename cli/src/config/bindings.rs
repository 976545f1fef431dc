//! Action bindings: where each action type's effect happens.
//!
//! - [`Uses`]: every action type the machine and the rule packs in use name,
//!   and who names it;
//! - [`coverage`]: each used type must be bound (or be carried out by the
//!   engine itself, [`ENGINE_TYPES`]), else a located `E0617`;
//! - [`report`]: the start-up lines `serve` and `worker` print
//!   (`trigger_webhook -> http https://…`, never a secret);
//! - [`registry`]: the [`HandlerRegistry`] the bindings make (`http` → an
//!   [`HttpEffect`] per bound type, `log` → [`LogHandler`], `simulated` →
//!   the simulated handlers; `tiktok` is completed at merge).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use creatorflow::Clock;
use creatorflow::actions::{
    ActionHandler, ActionType, DefaultHandlers, HandlerRegistry, HttpEffect, HttpEffectError,
    HttpTarget, LogHandler,
};
use creatorflow::diag::{Code, Diagnostic, Pos};
use creatorflow::machine::Machine;
use creatorflow::rules::RulePack;
use creatorflow::tiktok::{HttpOrderApi, TikTokEffect, TikTokOp};

use super::Actions;

/// The TikTok operations a `tiktok:` binding may name
/// ([`TikTokOp::ALL`], by name).
pub const TIKTOK_OPS: &[&str] = &{
    let mut names = [""; TikTokOp::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = TikTokOp::ALL[i].as_str();
        i += 1;
    }
    names
};

/// The action types the engine carries out itself: never bound.
pub const ENGINE_TYPES: &[ActionType] =
    &[ActionType::EscalatePriority, ActionType::EscalateToManual];

/// Where one action type's effect happens.
#[derive(Debug, Clone, PartialEq)]
pub enum Binding {
    /// A signed POST to a URL (its `Debug` hides the secret).
    Http(HttpTarget),
    /// A TikTok Shop API operation.
    TikTok(TikTokOp),
    /// Recorded in the order's history only.
    Log,
    /// The simulated handlers (inventory, carrier; others logged).
    Simulated,
}

impl Binding {
    /// Its kind.
    pub const fn kind(&self) -> BindingKind {
        match self {
            Binding::Http(_) => BindingKind::Http,
            Binding::TikTok(_) => BindingKind::TikTok,
            Binding::Log => BindingKind::Log,
            Binding::Simulated => BindingKind::Simulated,
        }
    }
}

impl fmt::Display for Binding {
    /// `http URL` (credentials and query redacted), `tiktok OP`, `log`,
    /// `simulated`: never a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::Http(t) => write!(f, "http {}", t.redacted_url()),
            Binding::TikTok(op) => write!(f, "tiktok {}", op.as_str()),
            Binding::Log | Binding::Simulated => f.write_str(self.kind().as_str()),
        }
    }
}

/// The kinds of binding, as the file names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingKind {
    /// `http`.
    Http,
    /// `tiktok`.
    TikTok,
    /// `log`.
    Log,
    /// `simulated`.
    Simulated,
}

impl BindingKind {
    /// Every kind, in the order messages list them.
    pub const ALL: &'static [BindingKind] = &[
        BindingKind::Http,
        BindingKind::TikTok,
        BindingKind::Log,
        BindingKind::Simulated,
    ];

    /// The name in files.
    pub const fn as_str(self) -> &'static str {
        match self {
            BindingKind::Http => "http",
            BindingKind::TikTok => "tiktok",
            BindingKind::Log => "log",
            BindingKind::Simulated => "simulated",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<BindingKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The binding of a kind that takes no settings (`log`, `simulated`).
    pub(super) fn settingless(self) -> Binding {
        match self {
            BindingKind::Log => Binding::Log,
            _ => Binding::Simulated,
        }
    }
}

/// Every action type the machine and the packs in use name, and who names
/// each (`machine transition `reserve``, `rule `vip_fast``), by type name.
#[derive(Debug, Clone, Default)]
pub struct Uses(BTreeMap<String, (ActionType, Vec<String>)>);

impl Uses {
    /// The uses of `machine` (transitions' actions, rollbacks and their
    /// compensations) and of `packs` (each rule's actions), a pack labelled
    /// by the tenant it belongs to (`None`: the default pack).
    pub fn of<'a>(
        machine: &Machine,
        packs: impl IntoIterator<Item = (Option<&'a str>, &'a RulePack)>,
    ) -> Uses {
        let mut uses = Uses::default();
        for t in machine.transitions() {
            for a in t.actions.iter().chain(&t.rollback) {
                for spec in std::iter::once(a).chain(a.rollback.as_deref()) {
                    uses.add(&spec.kind, format!("machine transition `{}`", t.name));
                }
            }
        }
        for (tenant, pack) in packs {
            for r in pack.rules() {
                for a in &r.actions {
                    for spec in std::iter::once(a).chain(a.rollback.as_deref()) {
                        let who = match tenant {
                            Some(t) => format!("rule `{}` of tenant `{t}`", r.id),
                            None => format!("rule `{}`", r.id),
                        };
                        uses.add(&spec.kind, who);
                    }
                }
            }
        }
        uses
    }

    fn add(&mut self, kind: &ActionType, who: String) {
        let (_, whos) = self
            .0
            .entry(kind.as_str().to_owned())
            .or_insert_with(|| (kind.clone(), Vec::new()));
        if !whos.contains(&who) {
            whos.push(who);
        }
    }

    /// The used types, by name.
    pub fn types(&self) -> impl Iterator<Item = &ActionType> {
        self.0.values().map(|(k, _)| k)
    }
}

/// Who uses a type, for a message: at most three, then how many more.
fn users(whos: &[String]) -> String {
    let mut s = whos.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if whos.len() > 3 {
        s.push_str(&format!(" and {} more", whos.len() - 3));
    }
    s
}

/// Every used type bound to nothing (and not the engine's own), as a
/// located `E0617` at the `actions:` key of `file` (or its top when there
/// is none).
pub fn coverage(actions: &Actions, uses: &Uses, file: &str) -> Vec<Diagnostic> {
    let pos = actions.pos.unwrap_or(Pos::new(1, 1));
    uses.0
        .iter()
        .filter(|(_, (kind, _))| !ENGINE_TYPES.contains(kind) && actions.get(kind).is_none())
        .map(|(name, (_, whos))| {
            Diagnostic::new(
                file,
                Code::ConfigUnbound,
                pos,
                format!(
                    "`{name}` ({}) is bound to nothing; bind it to http, tiktok, log or simulated",
                    users(whos)
                ),
            )
        })
        .collect()
}

/// The start-up report: one line per action type in use, `TYPE -> BINDING`
/// (`engine` for the engine's own; `simulated` for every type without a
/// configuration, `actions` = `None`). Never a secret.
pub fn report(actions: Option<&Actions>, uses: &Uses) -> Vec<String> {
    uses.0
        .iter()
        .map(|(name, (kind, _))| {
            let to = if ENGINE_TYPES.contains(kind) {
                "engine".to_owned()
            } else {
                match actions {
                    Some(a) => a
                        .get(kind)
                        .map_or_else(|| "nothing".to_owned(), ToString::to_string),
                    None => "simulated".to_owned(),
                }
            };
            format!("{name} -> {to}")
        })
        .collect()
}

/// Whether the machine waits for the world (TikTok's shipping events)
/// instead of a simulated carrier: exactly when `generate_shipping_label`
/// is bound to `tiktok`.
pub fn waits_for_world(actions: &Actions) -> bool {
    matches!(
        actions.get(&ActionType::GenerateShippingLabel),
        Some(Binding::TikTok(_))
    )
}

/// Why the handler of a binding could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// A `tiktok` binding with no TikTok app to act as.
    #[error(
        "`{action}` is bound to `tiktok`, but no TikTok app is configured (the `tiktok:` section, or TIKTOK_APP_KEY and TIKTOK_APP_SECRET)"
    )]
    NoTikTokApp {
        /// The action type.
        action: String,
    },
    /// The `http` effect could not be built (its message never shows the
    /// secret or the URL's credentials).
    #[error("`{action}`: {source}")]
    Http {
        /// The action type.
        action: String,
        /// Why.
        source: HttpEffectError,
    },
}

/// The handler of every bound type: `log` → [`LogHandler`], `simulated` →
/// the simulated handler of that type in `sims`, `http` → an
/// [`HttpEffect`] of its own (one client per bound type), `tiktok` → a
/// [`TikTokEffect`] over `tiktok` (the per-shop Open API; `None` when no
/// TikTok app is configured: such a binding is refused).
pub fn registry(
    actions: &Actions,
    sims: &DefaultHandlers,
    clock: &Arc<dyn Clock>,
    tiktok: Option<&Arc<HttpOrderApi>>,
) -> Result<HandlerRegistry, EffectError> {
    let simulated = sims.registry();
    let log: Arc<dyn ActionHandler> = Arc::new(LogHandler);
    let mut r = HandlerRegistry::empty();
    for (kind, b) in &actions.bindings {
        let h: Arc<dyn ActionHandler> = match &b.value {
            Binding::Log => log.clone(),
            Binding::Simulated => simulated.get(kind).cloned().unwrap_or_else(|| log.clone()),
            Binding::Http(target) => HttpEffect::new(target.clone(), clock.clone())
                .map(|e| Arc::new(e) as Arc<dyn ActionHandler>)
                .map_err(|source| EffectError::Http {
                    action: kind.as_str().to_owned(),
                    source,
                })?,
            Binding::TikTok(op) => match tiktok {
                Some(api) => Arc::new(TikTokEffect::new(*op, api.clone())),
                None => {
                    return Err(EffectError::NoTikTokApp {
                        action: kind.as_str().to_owned(),
                    });
                }
            },
        };
        r.register(kind.clone(), h);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load::parse;

    fn env(name: &str) -> Option<String> {
        (name == "HOOK_SECRET").then(|| "hook-s3cret".to_owned())
    }

    fn actions(yaml: &str) -> Actions {
        let text =
            format!("store: memory\ntiktok: {{ app_key: k, app_secret: s }}\nactions:\n{yaml}");
        match parse(&text, "t.yaml", Path::new(""), &env) {
            Ok(c) => c.actions,
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_report_names_each_binding_and_never_a_secret() {
        let a = actions(
            "  trigger_webhook: { http: { url: \"https://h.example.com/e\", secret: \"${HOOK_SECRET}\" } }\n  check_inventory: simulated\n",
        );
        let uses = Uses::of(
            &Machine::default_order_workflow(),
            [(None, &RulePack::shipped())],
        );
        let lines = report(Some(&a), &uses);
        assert!(lines.contains(&"trigger_webhook -> http https://h.example.com/e".to_owned()));
        assert!(lines.contains(&"check_inventory -> simulated".to_owned()));
        assert!(lines.contains(&"escalate_priority -> engine".to_owned()));
        assert!(lines.contains(&"select_carrier -> nothing".to_owned()));
        assert!(lines.iter().all(|l| !l.contains("hook-s3cret")));
        assert!(
            !format!("{a:?}").contains("hook-s3cret"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn the_machine_waits_for_the_world_exactly_when_shipping_is_bound_to_tiktok() {
        let tiktok = actions("  generate_shipping_label: { tiktok: ship_package }\n");
        let simulated = actions("  generate_shipping_label: simulated\n");
        let other = actions("  update_tiktok_status: { tiktok: order_status }\n");
        assert!(waits_for_world(&tiktok));
        assert!(!waits_for_world(&simulated));
        assert!(!waits_for_world(&other));
    }

    #[test]
    fn every_binding_makes_a_handler_and_tiktok_needs_the_app() {
        let a = actions("  update_tiktok_status: { tiktok: order_status }\n");
        let clock: Arc<dyn Clock> = Arc::new(creatorflow::SystemClock);
        let err =
            registry(&a, &DefaultHandlers::default(), &clock, None).expect_err("no TikTok app");
        assert_eq!(
            err.to_string(),
            "`update_tiktok_status` is bound to `tiktok`, but no TikTok app is configured (the `tiktok:` section, or TIKTOK_APP_KEY and TIKTOK_APP_SECRET)"
        );
        let api = creatorflow::tiktok::HttpOrderApi::new(
            creatorflow::tiktok::HttpConfig::new("k", "s", ""),
            clock.clone(),
        )
        .expect("client");
        let with = registry(
            &a,
            &DefaultHandlers::default(),
            &clock,
            Some(&Arc::new(api)),
        )
        .expect("tiktok with the app");
        assert_eq!(with.types().count(), 1);
        let ok = registry(
            &actions(
                "  check_inventory: simulated\n  validate_address: log\n  trigger_webhook: { http: { url: \"https://h.example.com/e\", secret: s, timeout: 5s } }\n",
            ),
            &DefaultHandlers::default(),
            &clock,
            None,
        )
        .expect("log, simulated and http");
        assert_eq!(ok.types().count(), 3);
    }
}
