//! The service configuration file: `creatorflow serve|worker|ingest|status
//! --config FILE` and `creatorflow check --config FILE`.
//!
//! - [`load`](load::load): the strict loader (every problem at once as
//!   `file:line:col: error[E06xx]: message`, unknown keys with a did-you-mean,
//!   `${ENV_NAME}` values read from the environment, relative paths resolved
//!   against the file's directory) → [`ServiceConfig`];
//! - [`resolve`](setup::resolve): loads the machine and every rule pack the
//!   configuration names (flags override the file) and checks that every
//!   action type they use is bound → [`Setup`];
//! - [`bindings`]: the coverage check, the start-up report and the
//!   [`HandlerRegistry`](creatorflow::actions::HandlerRegistry) built from
//!   the bindings.
//!
//! The file's reference is `docs/config.md`.

mod actions;
pub mod bindings;
mod env;
pub mod load;
mod secret;
pub mod setup;
pub mod tiktok;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use creatorflow::actions::ActionType;
use creatorflow::diag::Pos;

pub use bindings::{Binding, TIKTOK_OPS};
pub use env::{EnvLookup, process_env};
pub use load::load;
pub use secret::Secret;
pub use setup::{Overrides, Setup, SetupError, resolve};
pub use tiktok::{TikTokApp, TikTokRuntime};

/// A value and where the file wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// Where it is written.
    pub pos: Pos,
}

/// The service configuration file, loaded and checked (on its own: the
/// packs and the machine it names are loaded by [`resolve`]).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The file, as it was named (diagnostics name it so).
    pub file: String,
    /// The store URL (a relative `sqlite://` path resolved against the
    /// file's directory).
    pub store: String,
    /// Where `serve` listens.
    pub listen: Option<SocketAddr>,
    /// The rule pack of every tenant without its own (else the shipped pack).
    pub rules: Option<Located<PathBuf>>,
    /// The state machine (else the shipped order workflow).
    pub machine: Option<Located<PathBuf>>,
    /// The TikTok Shop app.
    pub tiktok: Option<TikTokConfig>,
    /// The tenants (creators), in file order.
    pub tenants: Vec<TenantConfig>,
    /// Tokens that act on every tenant.
    pub admin_tokens: Vec<Secret>,
    /// A token that may read `/metrics` only.
    pub metrics_token: Option<Secret>,
    /// Where each action type's effect happens.
    pub actions: Actions,
}

/// The `tiktok:` section.
#[derive(Debug, Clone)]
pub struct TikTokConfig {
    /// The app key.
    pub app_key: Secret,
    /// The app secret.
    pub app_secret: Secret,
    /// The Open API's base URL (default: TikTok's).
    pub api_base: Option<String>,
    /// The token service's base URL (default: TikTok's).
    pub auth_base: Option<String>,
    /// The seller authorization page the connect link points at (default:
    /// TikTok's, `creatorflow::tiktok::DEFAULT_AUTHORIZE_URL`).
    pub authorize_url: Option<String>,
    /// The app's service id on TikTok Shop Partner Center (part of the
    /// connect link).
    pub service_id: Option<String>,
    /// How often reconciliation polls the Order API; `None`: off (`0`).
    pub poll_every: Option<Duration>,
}

/// The default reconciliation interval (`poll_every` absent).
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(300);

/// One tenant (creator).
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// Its id.
    pub id: Located<String>,
    /// Its TikTok shops (webhooks of these shops go to this tenant).
    pub shops: Vec<Located<String>>,
    /// Its own rule pack (else the top-level `rules`).
    pub rules: Option<Located<PathBuf>>,
    /// Tokens that act on this tenant only.
    pub api_tokens: Vec<Secret>,
}

/// The `actions:` section.
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// Where the `actions` key is written (`None`: no section).
    pub pos: Option<Pos>,
    /// Each bound type and its binding, in file order.
    pub bindings: Vec<(ActionType, Located<Binding>)>,
}

impl Actions {
    /// The binding of `kind`, if any.
    pub fn get(&self, kind: &ActionType) -> Option<&Binding> {
        self.bindings
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, b)| &b.value)
    }
}
