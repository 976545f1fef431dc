//! `${ENV_NAME}` values: read from the environment when the file is loaded.
//!
//! Only a whole value is replaced (`"${HOOK_SECRET}"`); `${` anywhere else
//! in a value is an error, so that a half-substituted secret is never used.
//! Messages name the variable, never its value.

use creatorflow::diag::{Code, Diagnostics, Pos};

/// Where `${NAME}` values come from: the process environment, or a table
/// given by a test.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether `name` is an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `text` with a whole-value `${NAME}` replaced by the variable's value;
/// records E0602 (unset or empty) or E0603 (`${` not as the whole value)
/// at `pos` and returns `None`.
pub fn substitute(
    text: &str,
    key: &str,
    pos: Pos,
    env: EnvLookup<'_>,
    d: &mut Diagnostics,
) -> Option<String> {
    let whole = text
        .strip_prefix("${")
        .and_then(|t| t.strip_suffix('}'))
        .filter(|name| is_env_name(name));
    match whole {
        Some(name) => match env(name).filter(|v| !v.is_empty()) {
            Some(v) => Some(v),
            None => {
                d.emit(
                    Code::ConfigEnvMissing,
                    pos,
                    format!("`{key}`: the environment variable `{name}` is not set or empty"),
                );
                None
            }
        },
        None if text.contains("${") => {
            d.emit(
                Code::ConfigEnvNotWhole,
                pos,
                format!(
                    "`{key}`: `${{NAME}}` must be the whole value (write the value in the variable)"
                ),
            );
            None
        }
        None => Some(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("s3cret".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_whole_values_and_never_prints_them() {
        let mut d = Diagnostics::new("c.yaml");
        let p = Pos::new(1, 1);
        assert_eq!(
            substitute("${SET}", "k", p, &env, &mut d).as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            substitute("plain", "k", p, &env, &mut d).as_deref(),
            Some("plain")
        );
        assert!(substitute("${EMPTY}", "k", p, &env, &mut d).is_none());
        assert!(substitute("${UNSET}", "k", p, &env, &mut d).is_none());
        assert!(substitute("x${SET}", "k", p, &env, &mut d).is_none());
        let v = d.into_vec();
        let codes: Vec<&str> = v.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["E0602", "E0602", "E0603"]);
        assert!(v.iter().all(|d| !d.message.contains("s3cret")));
    }
}
