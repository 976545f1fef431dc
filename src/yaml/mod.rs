//! A located YAML tree for the strict loaders.
//!
//! Rule packs, machines and scenarios are parsed with [`saphyr_parser`] (safe
//! Rust, YAML 1.2) into a [`Node`] tree in which every value keeps its line and
//! column. The loaders then walk that tree themselves instead of going through
//! serde, so that they can report every problem of a file at once (unknown
//! keys, wrong types, bad values) and point at the exact place. Duplicate keys
//! are reported here, never silently folded.
//!
//! The tree is bounded, so that no file can exhaust the stack or the memory
//! of the process reading it (found by fuzzing, `docs/fuzzing.md`): it nests
//! at most [`MAX_DEPTH`] levels and holds at most [`MAX_VALUES`] values,
//! counting every use of an alias as a copy of its anchor (a "billion
//! laughs" file of a few lines is refused, `E0115`, instead of expanding).

pub mod reader;

pub use reader::MapReader;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::{Code, Diagnostics, Pos};

/// One YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub kind: NodeKind,
}

/// The shape of a YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar, not yet typed.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order. Keys are scalars (other keys are reported and dropped).
    Map(Vec<(Node, Node)>),
}

/// A scalar as written, with enough of its style to type it the YAML 1.2 way.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The scalar's text, escapes resolved.
    pub text: String,
    /// `true` for a plain (unquoted, non-block) scalar: only those can be
    /// null, booleans or numbers.
    pub plain: bool,
}

/// A scalar typed by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Typed<'a> {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// Any other number; the text is kept for exact decimal parsing.
    Float(f64, &'a str),
    /// Anything else, and every quoted scalar.
    Str(&'a str),
}

impl Scalar {
    /// Types the scalar with the YAML 1.2 core schema (quoted scalars are strings).
    pub fn typed(&self) -> Typed<'_> {
        let t = self.text.as_str();
        if !self.plain {
            return Typed::Str(t);
        }
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
            "true" | "True" | "TRUE" => return Typed::Bool(true),
            "false" | "False" | "FALSE" => return Typed::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Typed::Float(f64::INFINITY, t);
            }
            "-.inf" | "-.Inf" | "-.INF" => return Typed::Float(f64::NEG_INFINITY, t),
            ".nan" | ".NaN" | ".NAN" => return Typed::Float(f64::NAN, t),
            _ => {}
        }
        if let Some(hex) = t.strip_prefix("0x")
            && let Ok(i) = i64::from_str_radix(hex, 16)
        {
            return Typed::Int(i);
        }
        if let Some(oct) = t.strip_prefix("0o")
            && let Ok(i) = i64::from_str_radix(oct, 8)
        {
            return Typed::Int(i);
        }
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = t.parse::<i64>()
        {
            return Typed::Int(i);
        }
        if is_float_syntax(t)
            && let Ok(f) = t.parse::<f64>()
        {
            return Typed::Float(f, t);
        }
        Typed::Str(t)
    }
}

/// The YAML 1.2 core schema's float syntax: `[-+]? (\.[0-9]+ | [0-9]+(\.[0-9]*)?) ([eE][-+]?[0-9]+)?`.
fn is_float_syntax(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

impl Node {
    /// A short name of the node's YAML type, for messages ("a string", "a list", ...).
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
            NodeKind::Scalar(s) => match s.typed() {
                Typed::Null => "null",
                Typed::Bool(_) => "a boolean",
                Typed::Int(_) => "an integer",
                Typed::Float(..) => "a number",
                Typed::Str(_) => "a string",
            },
        }
    }

    /// The scalar, if this is one.
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the node is a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(self.scalar().map(Scalar::typed), Some(Typed::Null))
    }

    /// The value as JSON: numbers keep their exact text, keys become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.scalar().map(|s| s.text.clone()).unwrap_or_default(),
                            v.to_json(),
                        )
                    })
                    .collect(),
            ),
            NodeKind::Scalar(s) => match s.typed() {
                Typed::Null => Value::Null,
                Typed::Bool(b) => Value::Bool(b),
                Typed::Int(i) => Value::from(i),
                Typed::Float(f, text) => serde_json::from_str::<serde_json::Number>(text)
                    .map(Value::Number)
                    .unwrap_or_else(|_| {
                        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                    }),
                Typed::Str(t) => Value::String(t.to_owned()),
            },
        }
    }
}

/// How deep collections may nest in a file.
pub const MAX_DEPTH: usize = 128;

/// How many values (scalars and collections, an alias counting as a copy of
/// what it names) a file may hold.
pub const MAX_VALUES: usize = 100_000;

fn pos_of(span: &Span) -> Pos {
    Pos::new(span.start.line() as u32, span.start.col() as u32 + 1)
}

/// Parses one YAML document into a located tree.
///
/// Syntax errors, duplicate keys, non-scalar keys and extra documents are
/// recorded in `diags`. Returns `None` when the file could not be parsed at
/// all (a syntax error stops the parser; everything before it is discarded).
/// An empty file gives a null node. A file beyond [`MAX_DEPTH`] or
/// [`MAX_VALUES`] gets `E0115` and `None`.
pub fn parse(source: &str, diags: &mut Diagnostics) -> Option<Node> {
    let mut parser = Parser::new_from_str(source);
    let mut builder = Builder {
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        docs: 0,
        values: 0,
        too_large: false,
    };
    loop {
        match parser.next_event() {
            None => break,
            Some(Err(e)) => {
                let m = e.marker();
                diags.emit(
                    Code::YamlSyntax,
                    Pos::new(m.line() as u32, m.col() as u32 + 1),
                    format!("YAML syntax error: {}", e.info()),
                );
                return None;
            }
            Some(Ok((event, span))) => {
                if !builder.on_event(event, &span, diags) {
                    break;
                }
            }
        }
    }
    if builder.too_large {
        return None;
    }
    Some(builder.root.unwrap_or(Node {
        pos: Pos::new(1, 1),
        kind: NodeKind::Scalar(Scalar {
            text: String::new(),
            plain: true,
        }),
    }))
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        /// [`Builder::values`] when the sequence started.
        start: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        /// [`Builder::values`] when the mapping started.
        start: usize,
        entries: Vec<(Node, Node)>,
        /// The keys given so far and their lines (duplicates are found
        /// without a scan).
        keys: HashMap<String, u32>,
        key: Option<Node>,
    },
}

struct Builder {
    /// Anchored values and how many values each holds.
    anchors: HashMap<usize, (Node, usize)>,
    stack: Vec<Frame>,
    root: Option<Node>,
    docs: usize,
    /// Values so far, every use of an alias counting as a copy.
    values: usize,
    /// Set when a bound was passed: the tree is dropped.
    too_large: bool,
}

impl Builder {
    /// Handles one event; `false` stops the parse.
    fn on_event(&mut self, event: Event<'_>, span: &Span, diags: &mut Diagnostics) -> bool {
        if self.too_large {
            return false;
        }
        let pos = pos_of(span);
        match event {
            Event::DocumentStart(_) => {
                self.docs += 1;
                if self.docs > 1 {
                    diags.emit(
                        Code::YamlManyDocuments,
                        pos,
                        "only one YAML document is allowed per file",
                    );
                    return false;
                }
            }
            Event::SequenceStart(anchor, _) => {
                if !self.open(pos, diags) {
                    return false;
                }
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    start: self.values,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                if !self.open(pos, diags) {
                    return false;
                }
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    start: self.values,
                    entries: Vec::new(),
                    keys: HashMap::new(),
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, start) = match self.stack.pop() {
                    Some(Frame::Seq {
                        pos,
                        anchor,
                        start,
                        items,
                    }) => (
                        Node {
                            pos,
                            kind: NodeKind::Seq(items),
                        },
                        anchor,
                        start,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        start,
                        entries,
                        ..
                    }) => (
                        Node {
                            pos,
                            kind: NodeKind::Map(entries),
                        },
                        anchor,
                        start,
                    ),
                    None => return true,
                };
                // The collection's own value was counted when it opened.
                let size = self.values - start + 1;
                self.value(node, anchor, size, diags);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !forced_str;
                if !self.count(1, pos, diags) {
                    return false;
                }
                let node = Node {
                    pos,
                    kind: NodeKind::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    }),
                };
                self.value(node, anchor, 1, diags);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((node, size)) => {
                    let (mut node, size) = (node.clone(), *size);
                    // Counted before the copy is made: a chain of aliases
                    // stops here, not after exhausting the memory.
                    if !self.count(size, pos, diags) {
                        return false;
                    }
                    node.pos = pos;
                    self.value(node, 0, size, diags);
                }
                None => diags.emit(Code::YamlUnknownAnchor, pos, "alias to an unknown anchor"),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        true
    }

    /// A collection opens at `pos`: within [`MAX_DEPTH`] and counted.
    fn open(&mut self, pos: Pos, diags: &mut Diagnostics) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            diags.emit(
                Code::YamlTooLarge,
                pos,
                format!("values nest deeper than {MAX_DEPTH} levels"),
            );
            self.too_large = true;
            return false;
        }
        self.count(1, pos, diags)
    }

    /// Counts `n` more values at `pos`; past [`MAX_VALUES`], E0115 and `false`.
    fn count(&mut self, n: usize, pos: Pos, diags: &mut Diagnostics) -> bool {
        self.values = self.values.saturating_add(n);
        if self.values > MAX_VALUES {
            diags.emit(
                Code::YamlTooLarge,
                pos,
                format!(
                    "the file holds more than {MAX_VALUES} values (each use of an alias counts as a copy)"
                ),
            );
            self.too_large = true;
            return false;
        }
        true
    }

    fn value(&mut self, node: Node, anchor: usize, size: usize, diags: &mut Diagnostics) {
        // An anchor's copy counts too: nested anchors cannot multiply the
        // memory either.
        if anchor != 0 && self.count(size, node.pos, diags) {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, keys, key, ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    let Some(name) = k.scalar().map(|s| s.text.as_str()) else {
                        diags.emit(
                            Code::YamlKeyNotString,
                            k.pos,
                            "mapping keys must be plain strings",
                        );
                        return;
                    };
                    if let Some(first) = keys.get(name) {
                        diags.emit(
                            Code::YamlDuplicateKey,
                            k.pos,
                            format!("duplicate key `{name}` (first given at line {first})"),
                        );
                        return;
                    }
                    keys.insert(name.to_owned(), k.pos.line);
                    entries.push((k, node));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> (Option<Node>, Vec<crate::diag::Diagnostic>) {
        let mut d = Diagnostics::new("t.yaml");
        let n = parse(src, &mut d);
        (n, d.into_vec())
    }

    #[test]
    fn types_scalars_the_yaml_1_2_way() {
        let (n, d) = parse_ok("[1, 1.5, '1', true, ~, abc, -3, 1e3, .5, 0x10, 1.2.3]");
        assert!(d.is_empty());
        let NodeKind::Seq(items) = n.unwrap().kind else {
            panic!("not a seq")
        };
        let t: Vec<_> = items.iter().map(|n| n.scalar().unwrap().typed()).collect();
        assert_eq!(t[0], Typed::Int(1));
        assert_eq!(t[1], Typed::Float(1.5, "1.5"));
        assert_eq!(t[2], Typed::Str("1"));
        assert_eq!(t[3], Typed::Bool(true));
        assert_eq!(t[4], Typed::Null);
        assert_eq!(t[5], Typed::Str("abc"));
        assert_eq!(t[6], Typed::Int(-3));
        assert_eq!(t[7], Typed::Float(1000.0, "1e3"));
        assert_eq!(t[8], Typed::Float(0.5, ".5"));
        assert_eq!(t[9], Typed::Int(16));
        assert_eq!(t[10], Typed::Str("1.2.3"));
    }

    #[test]
    fn positions_are_one_based() {
        let (n, _) = parse_ok("a:\n  b: 3\n");
        let NodeKind::Map(e) = n.unwrap().kind else {
            panic!()
        };
        let NodeKind::Map(inner) = &e[0].1.kind else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos::new(2, 3));
        assert_eq!(inner[0].1.pos, Pos::new(2, 6));
    }

    #[test]
    fn reports_duplicate_keys_and_syntax_errors() {
        let (_, d) = parse_ok("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].pos, d[0].code),
            (Pos::new(3, 1), Code::YamlDuplicateKey)
        );
        let (n, d) = parse_ok("a: [1, 2\nb: 3\n");
        assert!(n.is_none());
        assert_eq!(d[0].code, Code::YamlSyntax);
    }

    #[test]
    fn resolves_aliases() {
        let (n, d) = parse_ok("a: &x {k: 1}\nb: *x\n");
        assert!(d.is_empty());
        let NodeKind::Map(e) = n.unwrap().kind else {
            panic!()
        };
        assert_eq!(e[1].1.to_json(), serde_json::json!({"k": 1}));
    }
}
