//! The strict loader of the service configuration file.
//!
//! Read with the library's located YAML reader, like rule packs and
//! scenarios: every problem of the file is reported at once, each as
//! `file:line:col: error[E0…]: message`; nothing half-loaded is returned.
//! Messages never show a value read from the environment (`${NAME}`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use creatorflow::diag::{Code, Diagnostic, Diagnostics, Pos};
use creatorflow::parse_duration;
use creatorflow::yaml::reader::{self, MapReader};
use creatorflow::yaml::{self, Node, NodeKind};

use super::env::{EnvLookup, process_env, substitute};
use super::{DEFAULT_POLL_EVERY, Located, Secret, ServiceConfig, TenantConfig, TikTokConfig};

/// The top-level keys.
const TOP_KEYS: &[&str] = &[
    "store",
    "listen",
    "rules",
    "machine",
    "tiktok",
    "tenants",
    "admin_tokens",
    "metrics_token",
    "actions",
];
const TIKTOK_KEYS: &[&str] = &[
    "app_key",
    "app_secret",
    "api_base",
    "authorize_url",
    "service_id",
    "auth_base",
    "poll_every",
];
const TENANT_KEYS: &[&str] = &["id", "shops", "rules", "api_tokens"];

/// Loads the configuration file at `path`, `${NAME}` values from the
/// process environment.
pub fn load(path: &Path) -> Result<ServiceConfig, Vec<Diagnostic>> {
    load_with_env(path, &process_env)
}

/// [`load`] with `${NAME}` values from `env`.
pub fn load_with_env(path: &Path, env: EnvLookup<'_>) -> Result<ServiceConfig, Vec<Diagnostic>> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file, path.parent().unwrap_or(Path::new("")), env),
        Err(e) => Err(vec![Diagnostic::new(
            file,
            Code::ConfigUnreadable,
            Pos::new(1, 1),
            format!("cannot read the configuration file: {e}"),
        )]),
    }
}

/// Parses configuration `text`; `file` names it in diagnostics, relative
/// paths resolve against `dir`, `${NAME}` values come from `env`.
pub fn parse(
    text: &str,
    file: &str,
    dir: &Path,
    env: EnvLookup<'_>,
) -> Result<ServiceConfig, Vec<Diagnostic>> {
    let mut d = Diagnostics::new(file);
    let config = yaml::parse(text, &mut d).and_then(|root| {
        let mut r = Reader {
            dir,
            env,
            d: &mut d,
        };
        r.config(&root, file)
    });
    match config {
        Some(c) if !d.has_errors() => Ok(c),
        _ => {
            let mut v = d.into_vec();
            if v.is_empty() {
                v.push(Diagnostic::new(
                    file,
                    Code::ConfigUnreadable,
                    Pos::new(1, 1),
                    "the configuration could not be read",
                ));
            }
            creatorflow::diag::sort(&mut v);
            Err(v)
        }
    }
}

/// Where `key` is written in the mapping `node`.
fn key_pos(node: &Node, key: &str) -> Option<Pos> {
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar().is_some_and(|s| s.text == key))
            .map(|(k, _)| k.pos),
        _ => None,
    }
}

/// Reads one file: where relative paths start, the environment, the diagnostics.
pub(super) struct Reader<'a, 'd> {
    dir: &'a Path,
    env: EnvLookup<'a>,
    pub(super) d: &'d mut Diagnostics,
}

impl Reader<'_, '_> {
    /// A string value, `${NAME}` substituted.
    pub(super) fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        let raw = reader::string(node, key, self.d)?;
        substitute(raw, key, node.pos, self.env, self.d)
    }

    /// A non-empty string value, `${NAME}` substituted.
    fn non_empty(&mut self, node: &Node, key: &str) -> Option<String> {
        let v = self.text(node, key)?;
        if v.trim().is_empty() {
            self.d
                .emit(Code::ConfigEmpty, node.pos, format!("`{key}` is empty"));
            return None;
        }
        Some(v)
    }

    /// A secret: a non-empty string, usually `${NAME}`.
    fn secret(&mut self, node: &Node, key: &str) -> Option<Secret> {
        self.non_empty(node, key).map(Secret::new)
    }

    /// A list of secrets.
    fn secrets(&mut self, node: &Node, key: &str) -> Vec<Secret> {
        let items = reader::seq(node, key, self.d).unwrap_or_default();
        items.iter().filter_map(|n| self.secret(n, key)).collect()
    }

    /// A path, resolved against the file's directory.
    fn path(&mut self, node: &Node, key: &str) -> Option<Located<PathBuf>> {
        let p = PathBuf::from(self.non_empty(node, key)?);
        Some(Located {
            value: if p.is_relative() { self.dir.join(p) } else { p },
            pos: node.pos,
        })
    }

    /// An absolute http(s) URL.
    pub(super) fn url(&mut self, node: &Node, key: &str) -> Option<String> {
        let v = self.text(node, key)?;
        // The parser's reasons never quote the URL (it may hold credentials).
        let problem = match reqwest::Url::parse(&v) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => return Some(v),
            Ok(u) => format!("scheme `{}`", u.scheme()),
            Err(e) => e.to_string(),
        };
        self.d.emit(
            Code::ConfigBadUrl,
            node.pos,
            format!("`{key}` must be an http:// or https:// URL ({problem})"),
        );
        None
    }

    /// A positive duration (`5s`, `5m`, `1h`); with `zero_is_off`, `0`
    /// gives `Some(None)`.
    pub(super) fn duration(
        &mut self,
        node: &Node,
        key: &str,
        zero_is_off: bool,
    ) -> Option<Option<Duration>> {
        let text = reader::string(node, key, self.d)?;
        if zero_is_off && text == "0" {
            return Some(None);
        }
        match parse_duration(text).map(|t| t.to_std()) {
            Ok(Ok(t)) => Some(Some(t)),
            Ok(Err(_)) | Err(_) => {
                let zero = if zero_is_off { " (or 0: off)" } else { "" };
                self.d.emit(
                    Code::ConfigBadDuration,
                    node.pos,
                    format!(
                        "`{key}` must be a positive duration such as 5s, 5m or 1h{zero}, found `{text}`"
                    ),
                );
                None
            }
        }
    }

    fn config(&mut self, root: &Node, file: &str) -> Option<ServiceConfig> {
        let mut m = MapReader::new(root, "the configuration", TOP_KEYS, self.d)?;
        let store = m.req("store", self.d).and_then(|n| self.store(n));
        let listen = m.opt("listen").and_then(|n| self.listen(n));
        let rules = m.opt("rules").and_then(|n| self.path(n, "rules"));
        let machine = m.opt("machine").and_then(|n| self.path(n, "machine"));
        let tiktok = m.opt("tiktok").and_then(|n| self.tiktok(n));
        let tenants = m
            .opt("tenants")
            .map(|n| self.tenants(n))
            .unwrap_or_default();
        let admin_tokens = m
            .opt("admin_tokens")
            .map(|n| self.secrets(n, "admin_tokens"))
            .unwrap_or_default();
        let metrics_token = m
            .opt("metrics_token")
            .and_then(|n| self.secret(n, "metrics_token"));
        let actions_pos = key_pos(root, "actions");
        let mut actions = m
            .opt("actions")
            .map(|n| self.actions(n))
            .unwrap_or_default();
        actions.pos = actions_pos;
        m.finish(self.d);
        // A `tiktok:` section written but wrong has its own diagnostics.
        if key_pos(root, "tiktok").is_none() {
            for (_, b) in &actions.bindings {
                if let super::Binding::TikTok(op) = b.value {
                    self.d.emit(
                        Code::ConfigTikTokNotSet,
                        b.pos,
                        format!(
                            "`tiktok: {}` needs the `tiktok:` section (app_key, app_secret)",
                            op.as_str()
                        ),
                    );
                }
            }
        }
        Some(ServiceConfig {
            file: file.to_owned(),
            store: store?,
            listen,
            rules,
            machine,
            tiktok,
            tenants,
            admin_tokens,
            metrics_token,
            actions,
        })
    }

    /// The store URL; a relative SQLite path resolves against the file's directory.
    fn store(&mut self, node: &Node) -> Option<String> {
        let url = self.text(node, "store")?;
        // `store: memory:` is not valid YAML (a second mapping indicator): accept `memory`.
        if matches!(url.as_str(), "memory" | "memory:" | "memory://") {
            return Some("memory:".to_owned());
        }
        match url.split_once("://") {
            Some(("sqlite", rest)) if !rest.is_empty() => {
                let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
                let p = Path::new(path);
                if p.is_relative() {
                    Some(format!("sqlite://{}{query}", self.dir.join(p).display()))
                } else {
                    Some(url)
                }
            }
            Some(("postgres" | "postgresql", rest)) if !rest.is_empty() => Some(url),
            _ => {
                self.d.emit(
                    Code::ConfigBadStore,
                    node.pos,
                    "`store` must be `memory:`, `sqlite://PATH` or `postgres://USER@HOST/DB`",
                );
                None
            }
        }
    }

    fn listen(&mut self, node: &Node) -> Option<SocketAddr> {
        let text = self.text(node, "listen")?;
        match text.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.d.emit(
                    Code::ConfigBadAddress,
                    node.pos,
                    format!("`listen` must be an address such as 0.0.0.0:8080, found `{text}`"),
                );
                None
            }
        }
    }

    fn tiktok(&mut self, node: &Node) -> Option<TikTokConfig> {
        let mut m = MapReader::new(node, "`tiktok`", TIKTOK_KEYS, self.d)?;
        let app_key = m
            .req("app_key", self.d)
            .and_then(|n| self.secret(n, "app_key"));
        let app_secret = m
            .req("app_secret", self.d)
            .and_then(|n| self.secret(n, "app_secret"));
        let api_base = m.opt("api_base").and_then(|n| self.url(n, "api_base"));
        let auth_base = m.opt("auth_base").and_then(|n| self.url(n, "auth_base"));
        let authorize_url = m
            .opt("authorize_url")
            .and_then(|n| self.url(n, "authorize_url"));
        let service_id = m.opt("service_id").and_then(|n| self.text(n, "service_id"));
        let poll_every = match m.opt("poll_every") {
            Some(n) => self.duration(n, "poll_every", true).flatten(),
            None => Some(DEFAULT_POLL_EVERY),
        };
        m.finish(self.d);
        Some(TikTokConfig {
            app_key: app_key?,
            app_secret: app_secret?,
            api_base,
            auth_base,
            authorize_url,
            service_id,
            poll_every,
        })
    }

    fn tenants(&mut self, node: &Node) -> Vec<TenantConfig> {
        let items = reader::seq(node, "tenants", self.d).unwrap_or_default();
        let tenants: Vec<TenantConfig> = items.iter().filter_map(|n| self.tenant(n)).collect();
        let mut ids: BTreeMap<&str, Pos> = BTreeMap::new();
        let mut shops: BTreeMap<&str, (&str, Pos)> = BTreeMap::new();
        for t in &tenants {
            if let Some(first) = ids.insert(&t.id.value, t.id.pos) {
                ids.insert(&t.id.value, first);
                self.d.emit(
                    Code::ConfigDuplicateTenant,
                    t.id.pos,
                    format!(
                        "tenant `{}` is defined twice (first at {first})",
                        t.id.value
                    ),
                );
            }
            for s in &t.shops {
                if let Some((other, first)) = shops.insert(&s.value, (&t.id.value, s.pos)) {
                    shops.insert(&s.value, (other, first));
                    self.d.emit(
                        Code::ConfigShopTwoTenants,
                        s.pos,
                        format!(
                            "shop `{}` is already listed under tenant `{other}` (at {first}); a shop belongs to one tenant",
                            s.value
                        ),
                    );
                }
            }
        }
        tenants
    }

    fn tenant(&mut self, node: &Node) -> Option<TenantConfig> {
        let mut m = MapReader::new(node, "a tenant", TENANT_KEYS, self.d)?;
        let id = m.req("id", self.d).and_then(|n| {
            let value = self.non_empty(n, "id")?;
            Some(Located { value, pos: n.pos })
        });
        let shops = match m.opt("shops") {
            Some(n) => reader::seq(n, "shops", self.d)
                .unwrap_or_default()
                .iter()
                .filter_map(|s| {
                    let value = self.non_empty(s, "shops")?;
                    Some(Located { value, pos: s.pos })
                })
                .collect(),
            None => Vec::new(),
        };
        let rules = m.opt("rules").and_then(|n| self.path(n, "rules"));
        let api_tokens = m
            .opt("api_tokens")
            .map(|n| self.secrets(n, "api_tokens"))
            .unwrap_or_default();
        m.finish(self.d);
        Some(TenantConfig {
            id: id?,
            shops,
            rules,
            api_tokens,
        })
    }
}
