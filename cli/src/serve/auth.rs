//! Bearer tokens: who a request acts for.
//!
//! Tokens come from the configuration (`admin_tokens`, each tenant's
//! `api_tokens`, `metrics_token`), themselves read from the environment.
//! They are kept only as SHA-256 hashes; a presented token is hashed and
//! compared with every known hash in constant time (no early exit, so the
//! time taken says nothing about which token came close).

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use creatorflow::tiktok::OrderApi;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AppState;

/// Who a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Every tenant.
    Admin {
        /// The token's name, for the record (`admin-1`, …).
        name: String,
    },
    /// One tenant only.
    Tenant {
        /// The tenant.
        tenant: String,
        /// The token's name, for the record (`creator-1-1`, …).
        name: String,
    },
    /// `/metrics` only.
    Metrics,
}

impl Principal {
    /// Whether it may act on `tenant`.
    pub fn may_act_on(&self, tenant: &str) -> bool {
        match self {
            Principal::Admin { .. } => true,
            Principal::Tenant { tenant: t, .. } => t == tenant,
            Principal::Metrics => false,
        }
    }
}

/// The known tokens, hashed. `Debug` shows how many, never a hash.
#[derive(Clone, Default)]
pub struct Tokens {
    known: Vec<([u8; 32], Principal)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.known.len())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// No tokens: every route that needs one answers 401.
    pub fn none() -> Self {
        Tokens::default()
    }

    /// Adds an admin token, named `admin-N`.
    pub fn admin(mut self, token: &str) -> Self {
        let n = self.count(|p| matches!(p, Principal::Admin { .. })) + 1;
        self.add(
            token,
            Principal::Admin {
                name: format!("admin-{n}"),
            },
        );
        self
    }

    /// Adds a token of `tenant`, named `TENANT-N`.
    pub fn tenant(mut self, tenant: &str, token: &str) -> Self {
        let n = self.count(|p| matches!(p, Principal::Tenant { tenant: t, .. } if t == tenant)) + 1;
        self.add(
            token,
            Principal::Tenant {
                tenant: tenant.to_owned(),
                name: format!("{tenant}-{n}"),
            },
        );
        self
    }

    /// Adds the metrics token.
    pub fn metrics(mut self, token: &str) -> Self {
        self.add(token, Principal::Metrics);
        self
    }

    fn count(&self, f: impl Fn(&Principal) -> bool) -> usize {
        self.known.iter().filter(|(_, p)| f(p)).count()
    }

    fn add(&mut self, token: &str, who: Principal) {
        if !token.is_empty() {
            self.known.push((digest(token), who));
        }
    }

    /// Who `token` acts for, if anyone. Every known hash is compared, each
    /// in constant time.
    pub fn identify(&self, token: &str) -> Option<&Principal> {
        let presented = digest(token);
        let mut found = None;
        for (hash, who) in &self.known {
            let diff = hash
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            if diff == 0 && found.is_none() {
                found = Some(who);
            }
        }
        found
    }

    /// Who the request's `Authorization: Bearer TOKEN` acts for, if anyone.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<&Principal> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)?
            .to_str()
            .ok()?;
        let token = value.strip_prefix("Bearer ")?.trim();
        self.identify(token)
    }
}

/// What a request may act on: who it is, and the one tenant it acts for.
#[derive(Debug, Clone)]
#[allow(dead_code)] // `who` and `actor` serve the operator routes (issue 14)
pub(crate) struct Access<'a> {
    /// Who the token acts for.
    pub who: &'a Principal,
    /// The tenant the request acts on (its own for a tenant token; the
    /// requested one, else the default, for an admin token).
    pub tenant: String,
}

#[allow(dead_code)]
impl Access<'_> {
    /// The token's name, for the order's history ("who did it").
    pub fn actor(&self) -> &str {
        match self.who {
            Principal::Admin { name } | Principal::Tenant { name, .. } => name,
            Principal::Metrics => "metrics",
        }
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// 401: no token, or one nobody issued.
pub(crate) fn unauthorized() -> Response {
    refuse(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
}

/// 404, worded as for anything absent: another tenant's data looks exactly
/// like data that does not exist.
pub(crate) fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "not found")
}

/// Who may act, on which tenant: the bearer token (401 without a known
/// one), and the tenant `requested` (`?tenant=`) or, without one, the
/// token's own tenant (an admin's: the server's default tenant). A tenant
/// token naming another tenant, the metrics token, or a tenant the server
/// does not serve: 404, as for an absent order.
pub(crate) fn authorize<'a, A: OrderApi + 'static>(
    s: &'a AppState<A>,
    headers: &HeaderMap,
    requested: Option<&str>,
) -> Result<Access<'a>, Response> {
    let who = s
        .config
        .tokens
        .of_request(headers)
        .ok_or_else(unauthorized)?;
    let tenant = match (who, requested) {
        (_, Some(t)) => t.to_owned(),
        (Principal::Tenant { tenant, .. }, None) => tenant.clone(),
        (Principal::Admin { .. }, None) => s.config.default_tenant.clone(),
        (Principal::Metrics, None) => return Err(not_found()),
    };
    if !who.may_act_on(&tenant) || s.processor.engine(&tenant).is_none() {
        return Err(not_found());
    }
    Ok(Access { who, tenant })
}

/// For `/metrics`: an admin token or the metrics token (401 otherwise; a
/// tenant's token is known but may not read every tenant's figures: 404).
#[allow(dead_code)] // `/metrics` takes it (issue 14)
pub(crate) fn authorize_metrics<A: OrderApi + 'static>(
    s: &AppState<A>,
    headers: &HeaderMap,
) -> Result<(), Response> {
    match s.config.tokens.of_request(headers) {
        None => Err(unauthorized()),
        Some(Principal::Admin { .. } | Principal::Metrics) => Ok(()),
        Some(Principal::Tenant { .. }) => Err(not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_identify_their_principal_and_nothing_else() {
        let t = Tokens::none()
            .admin("a-secret")
            .tenant("c1", "c1-secret")
            .tenant("c1", "c1-other")
            .metrics("m-secret");
        assert!(
            matches!(t.identify("a-secret"), Some(Principal::Admin { name }) if name == "admin-1")
        );
        assert!(
            matches!(t.identify("c1-other"), Some(Principal::Tenant { tenant, name }) if tenant == "c1" && name == "c1-2")
        );
        assert_eq!(t.identify("m-secret"), Some(&Principal::Metrics));
        assert_eq!(t.identify("a-secre"), None);
        assert_eq!(t.identify(""), None);
        assert!(!format!("{t:?}").contains("secret"));
        let c1 = t.identify("c1-secret").expect("c1");
        assert!(c1.may_act_on("c1") && !c1.may_act_on("c2"));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer a-secret".parse().expect("header"));
        assert!(t.of_request(&h).is_some());
        h.insert("authorization", "a-secret".parse().expect("header"));
        assert!(t.of_request(&h).is_none(), "the Bearer prefix is required");
    }
}
