//! Reading a YAML mapping field by field, with located diagnostics.

use chrono::{DateTime, Utc};

use super::{Node, NodeKind, Typed};
use crate::diag::{Code, Diagnostics, Pos, did_you_mean};

/// Reads the keys of one mapping: each `take_*` call consumes a key, and
/// [`MapReader::finish`] reports every key nobody asked for as unknown, with a
/// suggestion of the closest known key.
pub struct MapReader<'a> {
    pos: Pos,
    what: &'a str,
    entries: Vec<(&'a str, &'a Node, &'a Node)>,
    known: &'static [&'static str],
}

impl<'a> MapReader<'a> {
    /// Starts reading `node`, which must be a mapping; `what` names it in messages
    /// ("rule", "condition") and `known` lists its keys. Returns `None` (after
    /// recording an error) when `node` is not a mapping.
    pub fn new(
        node: &'a Node,
        what: &'a str,
        known: &'static [&'static str],
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        match &node.kind {
            NodeKind::Map(entries) => Some(MapReader {
                pos: node.pos,
                what,
                entries: entries
                    .iter()
                    .map(|(k, v)| (k.scalar().map_or("", |s| s.text.as_str()), k, v))
                    .collect(),
                known,
            }),
            _ => {
                diags.emit(
                    Code::YamlNotMapping,
                    node.pos,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                );
                None
            }
        }
    }

    /// Where the mapping starts.
    pub fn pos(&self) -> Pos {
        self.pos
    }

    /// Takes a key's value, if present (a null value counts as absent).
    pub fn opt(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|(k, _, _)| *k == key)?;
        let (_, _, v) = self.entries.remove(i);
        if v.is_null() { None } else { Some(v) }
    }

    /// Whether the mapping has `key` (still untaken).
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    /// Takes a required key's value; records "missing required key" if absent.
    pub fn req(&mut self, key: &str, diags: &mut Diagnostics) -> Option<&'a Node> {
        let v = self.opt(key);
        if v.is_none() {
            diags.emit(
                Code::YamlMissingKey,
                self.pos,
                format!("{} is missing required key `{key}`", self.what),
            );
        }
        v
    }

    /// Reports every key that was not taken.
    pub fn finish(self, diags: &mut Diagnostics) {
        for (k, key_node, _) in self.entries {
            diags.emit(
                Code::YamlUnknownKey,
                key_node.pos,
                format!(
                    "unknown key `{k}` in {}{}",
                    self.what,
                    did_you_mean(k, self.known.iter().copied())
                ),
            );
        }
    }
}

/// `value`, read from `node`; when it is `None`, records `code`: "`key` must
/// be `expected`, found ...".
fn expect<T>(
    value: Option<T>,
    node: &Node,
    key: &str,
    expected: &str,
    code: Code,
    diags: &mut Diagnostics,
) -> Option<T> {
    if value.is_none() {
        diags.emit(
            code,
            node.pos,
            format!("`{key}` must be {expected}, found {}", node.type_name()),
        );
    }
    value
}

/// A string scalar (quoted or plain; numbers written plain are accepted as text).
pub fn string<'a>(node: &'a Node, key: &str, diags: &mut Diagnostics) -> Option<&'a str> {
    let text = node
        .scalar()
        .filter(|s| matches!(s.typed(), Typed::Str(_) | Typed::Int(_) | Typed::Float(..)))
        .map(|s| s.text.as_str());
    expect(text, node, key, "a string", Code::YamlNotString, diags)
}

/// An integer scalar.
pub fn int(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<i64> {
    let int = match node.scalar().map(|s| s.typed()) {
        Some(Typed::Int(i)) => Some(i),
        _ => None,
    };
    expect(int, node, key, "an integer", Code::YamlNotInteger, diags)
}

/// A boolean scalar.
pub fn boolean(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<bool> {
    let b = match node.scalar().map(|s| s.typed()) {
        Some(Typed::Bool(b)) => Some(b),
        _ => None,
    };
    expect(b, node, key, "true or false", Code::YamlNotBoolean, diags)
}

/// An RFC 3339 timestamp scalar, converted to UTC.
pub fn timestamp(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<DateTime<Utc>> {
    let text = string(node, key, diags)?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            diags.emit(
                Code::YamlBadTimestamp,
                node.pos,
                format!("`{key}` must be an RFC 3339 time such as 2025-01-01T00:00:00Z: {e}"),
            );
            None
        }
    }
}

/// A list of strings.
pub fn string_list(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let items = seq(node, key, diags)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(string(item, key, diags)?.to_owned());
    }
    Some(out)
}

/// A sequence's items; records an error for any other node.
pub fn seq<'a>(node: &'a Node, key: &str, diags: &mut Diagnostics) -> Option<&'a [Node]> {
    let items = match &node.kind {
        NodeKind::Seq(items) => Some(items.as_slice()),
        _ => None,
    };
    expect(items, node, key, "a list", Code::YamlNotList, diags)
}

/// A string scalar that must be one of a closed set of `names`, parsed by
/// `parse`; otherwise records "unknown `key` `x`: expected one of ...; did you mean ...?".
pub fn one_of<T, I>(
    node: &Node,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
    names: impl Fn() -> I,
    diags: &mut Diagnostics,
) -> Option<T>
where
    I: Iterator<Item = &'static str>,
{
    let s = string(node, key, diags)?;
    let v = parse(s);
    if v.is_none() {
        diags.emit(
            Code::YamlNotOneOf,
            node.pos,
            format!(
                "unknown {key} `{s}`: expected one of {}{}",
                names().collect::<Vec<_>>().join(", "),
                did_you_mean(s, names())
            ),
        );
    }
    v
}
