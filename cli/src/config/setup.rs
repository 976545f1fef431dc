//! From a configuration (and the flags that override it) to what a command
//! runs with: the machine, each tenant's rule pack, the action types they
//! use and the bindings' coverage of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use creatorflow::Clock;
use creatorflow::actions::{DefaultHandlers, HandlerRegistry};
use creatorflow::diag::{Code, Diagnostic, Severity};
use creatorflow::machine::Machine;
use creatorflow::rules::{PackError, RulePack};
use creatorflow::tiktok::HttpOrderApi;

use super::bindings::{self, EffectError, Uses};
use super::{Located, ServiceConfig};

/// Flags that override the file: `--rules DIR` replaces every pack (the
/// default one and the tenants' own), `--machine FILE` the machine.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--rules DIR`.
    pub rules: Option<PathBuf>,
    /// `--machine FILE`.
    pub machine: Option<PathBuf>,
}

/// Why a setup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configuration, a pack or the machine is wrong: every diagnostic
    /// (exit 1).
    #[error("{} problem(s) found", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// A path given by a flag could not be read (exit 2).
    #[error("{0}")]
    Failed(String),
}

/// What a command runs with.
#[derive(Debug)]
pub struct Setup {
    /// The configuration (`None`: flags only, every action type simulated).
    pub config: Option<ServiceConfig>,
    /// The state machine.
    pub machine: Machine,
    /// The pack of every tenant without its own.
    pub default_pack: RulePack,
    /// The tenants with a pack of their own.
    pub tenant_packs: BTreeMap<String, RulePack>,
    /// The action types the machine and the packs use.
    pub uses: Uses,
    /// The warnings of the packs and the machine.
    pub warnings: Vec<Diagnostic>,
}

impl Setup {
    /// The pack `tenant`'s engine evaluates.
    pub fn pack_of(&self, tenant: &str) -> &RulePack {
        self.tenant_packs.get(tenant).unwrap_or(&self.default_pack)
    }

    /// The start-up report's lines (see [`bindings::report`]).
    pub fn report(&self) -> Vec<String> {
        bindings::report(self.config.as_ref().map(|c| &c.actions), &self.uses)
    }

    /// The handlers: from the bindings, or (without a configuration) the
    /// simulated ones, `sims`.
    pub fn registry(
        &self,
        sims: &DefaultHandlers,
        clock: &Arc<dyn Clock>,
        tiktok: Option<&Arc<HttpOrderApi>>,
    ) -> Result<HandlerRegistry, EffectError> {
        match &self.config {
            Some(c) => bindings::registry(&c.actions, sims, clock, tiktok),
            None => Ok(sims.registry()),
        }
    }

    /// Whether the machine waits for TikTok's shipping events
    /// ([`bindings::waits_for_world`]).
    pub fn waits_for_world(&self) -> bool {
        self.config
            .as_ref()
            .is_some_and(|c| bindings::waits_for_world(&c.actions))
    }

    /// Prints the start-up report on stderr: the bindings, or that every
    /// action type is simulated.
    pub fn print_report(&self) {
        if self.config.is_none() {
            eprintln!(
                "no --config: every action type is simulated (no effect in the world; see docs/config.md)"
            );
        }
        for line in self.report() {
            eprintln!("action {line}");
        }
    }
}

/// Loads the machine and every pack `config` names (or the flags give), and
/// checks that every action type they use is bound. Every problem found is
/// returned at once.
pub fn resolve(config: Option<ServiceConfig>, overrides: &Overrides) -> Result<Setup, SetupError> {
    let mut diags = Vec::new();
    let file = config.as_ref().map_or("", |c| c.file.as_str());
    let machine = match (
        &overrides.machine,
        config.as_ref().and_then(|c| c.machine.as_ref()),
    ) {
        (Some(f), _) => Machine::from_file(f).map_err(|d| diags.extend(d)).ok(),
        (None, Some(f)) => {
            if exists(f, "machine", file, &mut diags) {
                Machine::from_file(&f.value)
                    .map_err(|d| diags.extend(d))
                    .ok()
            } else {
                None
            }
        }
        (None, None) => Some(Machine::default_order_workflow()),
    };
    let mut packs = Packs {
        file,
        loaded: BTreeMap::new(),
        diags: &mut diags,
    };
    let default_pack = match (
        &overrides.rules,
        config.as_ref().and_then(|c| c.rules.as_ref()),
    ) {
        (Some(dir), _) => packs.flag(dir)?,
        (None, Some(dir)) => packs.located(dir),
        (None, None) => Some(RulePack::shipped()),
    };
    let mut tenant_packs = BTreeMap::new();
    if overrides.rules.is_none() {
        for t in config.iter().flat_map(|c| &c.tenants) {
            if let Some(dir) = &t.rules
                && let Some(p) = packs.located(dir)
            {
                tenant_packs.insert(t.id.value.clone(), p);
            }
        }
    }
    let (Some(machine), Some(default_pack)) = (machine, default_pack) else {
        return Err(SetupError::Invalid(errors_first(diags)));
    };
    let labelled = std::iter::once((None, &default_pack))
        .chain(tenant_packs.iter().map(|(t, p)| (Some(t.as_str()), p)));
    let uses = Uses::of(&machine, labelled);
    if let Some(c) = &config {
        diags.extend(bindings::coverage(&c.actions, &uses, &c.file));
    }
    diags.extend(machine.warnings().iter().cloned());
    diags.extend(default_pack.warnings().iter().cloned());
    for p in tenant_packs.values() {
        diags.extend(p.warnings().iter().cloned());
    }
    if diags.iter().any(|d| d.severity() == Severity::Error) {
        return Err(SetupError::Invalid(errors_first(diags)));
    }
    Ok(Setup {
        config,
        machine,
        default_pack,
        tenant_packs,
        uses,
        warnings: diags,
    })
}

/// Sorted by file and position, repeats (a pack shared by two tenants) once.
fn errors_first(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    creatorflow::diag::sort(&mut diags);
    diags.dedup();
    diags
}

/// Whether the path the file names exists; otherwise a located E0611.
fn exists(path: &Located<PathBuf>, key: &str, file: &str, diags: &mut Vec<Diagnostic>) -> bool {
    if path.value.exists() {
        return true;
    }
    diags.push(Diagnostic::new(
        file,
        Code::ConfigMissingPath,
        path.pos,
        format!("`{key}`: {} does not exist", path.value.display()),
    ));
    false
}

/// Loads packs, each directory once.
struct Packs<'a> {
    file: &'a str,
    loaded: BTreeMap<PathBuf, Option<RulePack>>,
    diags: &'a mut Vec<Diagnostic>,
}

impl Packs<'_> {
    /// A pack the configuration names: problems are located diagnostics.
    fn located(&mut self, dir: &Located<PathBuf>) -> Option<RulePack> {
        if let Some(p) = self.loaded.get(&dir.value) {
            return p.clone();
        }
        let pack = if exists(dir, "rules", self.file, self.diags) {
            match RulePack::load_dir(&dir.value) {
                Ok(p) => Some(p),
                Err(PackError::Invalid(d)) => {
                    self.diags.extend(d);
                    None
                }
                Err(e) => {
                    self.diags.push(Diagnostic::new(
                        self.file,
                        Code::ConfigMissingPath,
                        dir.pos,
                        format!("`rules`: {e}"),
                    ));
                    None
                }
            }
        } else {
            None
        };
        self.loaded.insert(dir.value.clone(), pack.clone());
        pack
    }

    /// The pack `--rules` names: an unreadable directory is a failure to run.
    fn flag(&mut self, dir: &Path) -> Result<Option<RulePack>, SetupError> {
        match RulePack::load_dir(dir) {
            Ok(p) => Ok(Some(p)),
            Err(PackError::Invalid(d)) => {
                self.diags.extend(d);
                Ok(None)
            }
            Err(e) => Err(SetupError::Failed(e.to_string())),
        }
    }
}
