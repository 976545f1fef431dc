//! Store URLs: `memory:`, `sqlite://PATH[?options]`, `postgres://…`, and
//! password redaction for messages.

use std::path::PathBuf;
use std::time::Duration;

use super::StoreError;

/// Where a store URL points.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// `memory:`.
    Memory,
    /// `sqlite://PATH`.
    Sqlite(SqliteTarget),
    /// `postgres://…` or `postgresql://…`.
    Postgres(PostgresTarget),
}

/// A parsed `sqlite://PATH?synchronous=full|normal&busy_timeout_ms=N`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SqliteTarget {
    /// The database file.
    pub path: PathBuf,
    /// `synchronous=full` (default: every commit is on disk when it returns)
    /// or `normal` (a commit survives a process crash, not a power loss).
    pub synchronous_full: bool,
    /// How long a writer waits for another process's lock.
    pub busy_timeout: Duration,
}

/// A parsed `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?options]`.
///
/// CreatorFlow's own options are taken out of the query (`schema`,
/// `max_connections`); every other option (`sslmode`, `application_name`,
/// …) is left for the driver.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostgresTarget {
    /// The URL for the driver: the given one without CreatorFlow's options.
    pub url: String,
    /// The schema holding CreatorFlow's tables (created if missing).
    pub schema: String,
    /// The most connections the store's pool opens.
    pub max_connections: u32,
}

/// The default schema of the PostgreSQL store.
pub(crate) const DEFAULT_PG_SCHEMA: &str = "creatorflow";

/// The default pool size of the PostgreSQL store.
const DEFAULT_PG_CONNECTIONS: u32 = 10;

/// The default busy timeout for SQLite.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Parses a store URL.
pub(crate) fn parse(url: &str) -> Result<Target, StoreError> {
    let bad = |reason: &str| StoreError::BadUrl {
        url: redact(url),
        reason: reason.to_owned(),
    };
    if url == "memory:" || url == "memory://" {
        return Ok(Target::Memory);
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "expected `memory:`, `sqlite://PATH` or `postgres://USER@HOST/DB`",
        ));
    };
    match scheme {
        "sqlite" => parse_sqlite(rest).map(Target::Sqlite).map_err(|r| bad(&r)),
        "postgres" | "postgresql" => parse_postgres(url, rest)
            .map(Target::Postgres)
            .map_err(|r| bad(&r)),
        "memory" => Err(bad("`memory:` takes no path")),
        other => Err(bad(&format!(
            "unknown scheme `{other}`; expected memory, sqlite or postgres"
        ))),
    }
}

/// One non-empty `key=value` option of a URL's query (a bare `key` has
/// the value ``).
struct QueryOption<'a> {
    /// The option as written.
    written: &'a str,
    key: &'a str,
    value: &'a str,
}

/// `text` split at its first `?`: the part before, and the query's options.
fn split_query(text: &str) -> (&str, Vec<QueryOption<'_>>) {
    let (before, query) = text.split_once('?').unwrap_or((text, ""));
    let options = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|written| {
            let (key, value) = written.split_once('=').unwrap_or((written, ""));
            QueryOption {
                written,
                key,
                value,
            }
        })
        .collect();
    (before, options)
}

fn parse_sqlite(rest: &str) -> Result<SqliteTarget, String> {
    let (path, options) = split_query(rest);
    if path.is_empty() {
        return Err("missing database path (`sqlite://creatorflow.db`)".into());
    }
    let mut target = SqliteTarget {
        path: PathBuf::from(path),
        synchronous_full: true,
        busy_timeout: DEFAULT_BUSY_TIMEOUT,
    };
    for QueryOption { key, value, .. } in options {
        match (key, value) {
            ("synchronous", "full") => target.synchronous_full = true,
            ("synchronous", "normal") => target.synchronous_full = false,
            ("synchronous", other) => {
                return Err(format!(
                    "synchronous must be `full` or `normal`, not `{other}`"
                ));
            }
            ("busy_timeout_ms", v) => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("busy_timeout_ms must be a whole number, not `{v}`"))?;
                target.busy_timeout = Duration::from_millis(ms);
            }
            (other, _) => {
                return Err(format!(
                    "unknown option `{other}`; known: synchronous, busy_timeout_ms"
                ));
            }
        }
    }
    Ok(target)
}

fn parse_postgres(url: &str, rest: &str) -> Result<PostgresTarget, String> {
    let (base, options) = split_query(url);
    if rest.is_empty() {
        return Err("missing host (`postgres://USER@HOST[:PORT]/DB`)".into());
    }
    let mut target = PostgresTarget {
        url: base.to_owned(),
        schema: DEFAULT_PG_SCHEMA.to_owned(),
        max_connections: DEFAULT_PG_CONNECTIONS,
    };
    let mut kept: Vec<&str> = Vec::new();
    for QueryOption {
        written,
        key,
        value,
    } in options
    {
        match key {
            "schema" => {
                if !is_identifier(value) {
                    return Err(format!(
                        "schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 bytes), not `{value}`"
                    ));
                }
                target.schema = value.to_owned();
            }
            "max_connections" => {
                target.max_connections = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        format!("max_connections must be a number from 1 to 1000, not `{value}`")
                    })?;
            }
            _ => kept.push(written),
        }
    }
    if !kept.is_empty() {
        target.url = format!("{base}?{}", kept.join("&"));
    }
    Ok(target)
}

/// Whether `name` is a plain lower-case SQL identifier (safe to splice into
/// SQL and `search_path` unquoted).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && name.len() <= 63
}

/// The URL with its password (in the authority or a `password=` query
/// option) replaced by `***`, for messages and logs.
///
/// ```
/// use creatorflow::store::redact_url;
/// assert_eq!(
///     redact_url("postgres://app:s3cr%40t@db.local:5432/cf?sslmode=require"),
///     "postgres://app:***@db.local:5432/cf?sslmode=require"
/// );
/// assert_eq!(redact_url("sqlite://creatorflow.db"), "sqlite://creatorflow.db");
/// ```
pub fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return redact_query(url);
    };
    let tail = &url[start..];
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let authority = &tail[..end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&redact_query(&tail[end..]));
    out
}

/// The password a URL carries (in the authority, or a `password=` option),
/// as written and percent-decoded, to scrub it from driver messages.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn password(url: &str) -> Option<String> {
    let start = url.find("://")? + 3;
    let tail = &url[start..];
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    let authority = &tail[..end];
    let from_authority = authority
        .rfind('@')
        .and_then(|at| authority[..at].split_once(':'))
        .map(|(_, p)| p);
    let from_query = tail[end..]
        .split_once('?')
        .and_then(|(_, q)| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("password"))
        })
        .map(|(_, p)| p);
    from_authority
        .or(from_query)
        .map(|p| percent_decode(p).unwrap_or_else(|| p.to_owned()))
}

/// `%XX`-decodes `text`; `None` if the result is not UTF-8 or an escape is bad.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Replaces the value of any `password=` query option.
fn redact_query(rest: &str) -> String {
    let Some((before, query)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{before}?{}", parts.join("&"))
}

/// The error for a URL whose backend this build lacks.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
pub(super) fn not_built(url: &str, scheme: &'static str) -> StoreError {
    StoreError::NotBuilt {
        url: redact(url),
        scheme,
        detail: if scheme == "sqlite" {
            "enable the cargo feature `sqlite`"
        } else {
            "enable the cargo feature `postgres`"
        },
    }
}

/// The error for a URL of another backend than the one asked for.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(super) fn expected(url: &str, scheme: &str) -> StoreError {
    StoreError::BadUrl {
        url: redact(url),
        reason: format!("expected a {scheme}:// URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_schemes() {
        assert_eq!(parse("memory:").unwrap(), Target::Memory);
        let Target::Sqlite(t) = parse("sqlite://data/cf.db").unwrap() else {
            panic!("not sqlite")
        };
        assert_eq!(t.path, PathBuf::from("data/cf.db"));
        assert!(t.synchronous_full);
        assert_eq!(t.busy_timeout, DEFAULT_BUSY_TIMEOUT);
        let Target::Sqlite(t) =
            parse("sqlite:///tmp/x.db?synchronous=normal&busy_timeout_ms=250").unwrap()
        else {
            panic!("not sqlite")
        };
        assert_eq!(t.path, PathBuf::from("/tmp/x.db"));
        assert!(!t.synchronous_full);
        assert_eq!(t.busy_timeout, Duration::from_millis(250));
        let Target::Postgres(t) = parse("postgres://u:p@h/db").unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(
            t,
            PostgresTarget {
                url: "postgres://u:p@h/db".into(),
                schema: DEFAULT_PG_SCHEMA.into(),
                max_connections: DEFAULT_PG_CONNECTIONS,
            }
        );
        let Target::Postgres(t) = parse(
            "postgresql://h/db?sslmode=disable&schema=cf_1&max_connections=3&application_name=x",
        )
        .unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(
            t,
            PostgresTarget {
                url: "postgresql://h/db?sslmode=disable&application_name=x".into(),
                schema: "cf_1".into(),
                max_connections: 3,
            }
        );
    }

    #[test]
    fn bad_urls_are_typed_errors_with_the_password_redacted() {
        for (url, needle) in [
            ("", "expected `memory:`"),
            ("creatorflow.db", "expected `memory:`"),
            ("sqlite://", "missing database path"),
            ("sqlite://x.db?synchronous=sometimes", "synchronous must be"),
            ("sqlite://x.db?busy_timeout_ms=soon", "whole number"),
            ("sqlite://x.db?mode=ro", "unknown option `mode`"),
            ("mysql://root:hunter2@h/db", "unknown scheme `mysql`"),
            ("memory://x", "takes no path"),
            ("postgres://", "missing host"),
            (
                "postgres://root:hunter2@h/db?schema=Bad-Name",
                "schema must be",
            ),
            ("postgres://h/db?schema=", "schema must be"),
            (
                "postgres://h/db?max_connections=0",
                "max_connections must be",
            ),
            (
                "postgres://h/db?max_connections=many",
                "max_connections must be",
            ),
        ] {
            let err = parse(url).unwrap_err();
            let StoreError::BadUrl { url: shown, reason } = &err else {
                panic!("{url}: {err:?}")
            };
            assert!(reason.contains(needle), "{url}: {reason}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        let err = parse("mysql://root:hunter2@h/db").unwrap_err().to_string();
        assert_eq!(
            err,
            "bad store URL `mysql://root:***@h/db`: unknown scheme `mysql`; expected memory, sqlite or postgres"
        );
    }

    #[test]
    fn passwords_are_found_for_scrubbing() {
        assert_eq!(
            password("postgres://app:s3cr%40t@h/db").as_deref(),
            Some("s3cr@t")
        );
        assert_eq!(
            password("postgres://h/db?user=a&password=pw").as_deref(),
            Some("pw")
        );
        assert_eq!(password("postgres://app@h/db"), None);
        assert_eq!(password("postgres://app:%zz@h/db").as_deref(), Some("%zz"));
    }

    #[test]
    fn redaction() {
        for (url, shown) in [
            (
                "postgres://app:pw@h:5432/db",
                "postgres://app:***@h:5432/db",
            ),
            ("postgres://app@h/db", "postgres://app@h/db"),
            (
                "postgres://h/db?user=a&password=pw",
                "postgres://h/db?user=a&password=***",
            ),
            ("postgres://a:b:c@d@h/db", "postgres://a:***@h/db"),
            ("postgres://app:pw@h", "postgres://app:***@h"),
            ("memory:", "memory:"),
            ("sqlite://a@b.db", "sqlite://a@b.db"),
            ("x?password=pw", "x?password=***"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }
}
