//! Mutations of a seed: structural (on its [`Tree`]: keys dropped,
//! duplicated, swapped, scalars of other types, huge numbers, deep nesting,
//! unicode, anchors and aliases) then textual (tabs, a BOM, CRLF,
//! truncation, byte flips), and raw byte mutation.

use proptest::prelude::*;

use super::tree::Tree;

/// A scalar to put somewhere.
#[derive(Debug, Clone)]
pub enum Value {
    /// Written plain: a number, a boolean, null, a duration, a word.
    Plain(String),
    /// Written quoted.
    Quoted(String),
}

fn value() -> impl Strategy<Value = Value> {
    let plain = prop_oneof![
        Just("~".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("-0".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("99999999999999999999999999999999999999999".to_owned()),
        Just("1e400".to_owned()),
        Just("-1e-400".to_owned()),
        Just("1.0000000000000000000000000000001".to_owned()),
        Just(".nan".to_owned()),
        Just("-.inf".to_owned()),
        Just("0x7fffffff".to_owned()),
        Just("0o17".to_owned()),
        Just("7d".to_owned()),
        Just("0m".to_owned()),
        Just("-5m".to_owned()),
        Just("99999999999999999999h".to_owned()),
        Just("2025-02-30T25:61:61Z".to_owned()),
        Just("9999-12-31T23:59:59Z".to_owned()),
        Just("-262144-01-01T00:00:00Z".to_owned()),
        Just("CUSTOM".to_owned()),
        Just("order.quantity > 1".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "[a-z_]{1,12}",
    ];
    let quoted = prop_oneof![
        Just(String::new()),
        Just("${HOOK_SECRET}".to_owned()),
        Just("${UNSET}".to_owned()),
        Just("x${HOOK_SECRET}".to_owned()),
        Just("\u{FEFF}\u{200B}\u{0301}".to_owned()),
        Just("\t\r\n\u{0}".to_owned()),
        Just("a".repeat(5000)),
        Just("loop { }".to_owned()),
        Just("fn f(x) { f(x) } f(1)".to_owned()),
        Just(format!("{}1{}", "(".repeat(300), ")".repeat(300))),
        "\\PC{0,24}",
        any::<String>(),
    ];
    prop_oneof![
        3 => plain.prop_map(Value::Plain),
        2 => quoted.prop_map(Value::Quoted),
    ]
}

/// An edit of the tree; node selectors are taken modulo the node count.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Removes an entry of a mapping (or an item of a sequence).
    Drop(usize, usize),
    /// Repeats an entry (a duplicate key) or an item.
    Duplicate(usize, usize),
    /// Swaps two subtrees.
    Swap(usize, usize),
    /// Replaces a node by a scalar.
    Scalar(usize, Value),
    /// A mapping becomes the list of its values, a list a mapping, a scalar a list.
    Reshape(usize),
    /// Renames a key.
    Rename(usize, usize, String),
    /// Wraps a node in `depth` lists or mappings.
    Nest(usize, usize, bool),
    /// Anchors one node and makes another an alias of it.
    Alias(usize, usize),
    /// Repeats a list's items `n` times.
    Grow(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let sel = any::<usize>();
    prop_oneof![
        3 => (sel, sel).prop_map(|(a, b)| Edit::Drop(a, b)),
        2 => (sel, sel).prop_map(|(a, b)| Edit::Duplicate(a, b)),
        2 => (sel, sel).prop_map(|(a, b)| Edit::Swap(a, b)),
        4 => (sel, value()).prop_map(|(a, v)| Edit::Scalar(a, v)),
        2 => sel.prop_map(Edit::Reshape),
        1 => (sel, sel, "[a-z_]{0,10}|\\PC{1,6}").prop_map(|(a, b, k)| Edit::Rename(a, b, k)),
        1 => (sel, prop_oneof![1..8usize, 60..200usize], any::<bool>())
            .prop_map(|(a, d, m)| Edit::Nest(a, d, m)),
        1 => (sel, sel).prop_map(|(a, b)| Edit::Alias(a, b)),
        1 => (sel, 2..40usize).prop_map(|(a, n)| Edit::Grow(a, n)),
    ]
}

/// How the edited tree is written, and what is done to the text then.
#[derive(Debug, Clone)]
pub enum Text {
    /// Nothing.
    Keep,
    /// A byte-order mark in front.
    Bom,
    /// `\r\n` line ends.
    Crlf,
    /// A tab at the start of a line.
    Tab(usize),
    /// Cut at a byte.
    Truncate(usize),
    /// One byte's bits flipped.
    Flip(usize, u8),
    /// A line repeated.
    RepeatLine(usize),
    /// An anchor and a billion-laughs chain of aliases appended.
    Laughs(usize),
    /// A value nested `depth` deep appended (flow lists or block mappings).
    Deep(usize, bool),
}

fn text_edit() -> impl Strategy<Value = Text> {
    let sel = any::<usize>();
    prop_oneof![
        6 => Just(Text::Keep),
        1 => Just(Text::Bom),
        1 => Just(Text::Crlf),
        1 => sel.prop_map(Text::Tab),
        1 => sel.prop_map(Text::Truncate),
        2 => (sel, 1..=255u8).prop_map(|(a, b)| Text::Flip(a, b)),
        1 => sel.prop_map(Text::RepeatLine),
        1 => (2..12usize).prop_map(Text::Laughs),
        1 => (prop_oneof![200..2000usize, 10_000..100_000usize], any::<bool>())
            .prop_map(|(d, f)| Text::Deep(d, f)),
    ]
}

/// A structured mutation of a seed.
#[derive(Debug, Clone)]
pub struct Mutation {
    /// The seed, by index.
    pub seed: usize,
    /// The tree edits, in order.
    pub edits: Vec<Edit>,
    /// Written as flow YAML instead of block YAML (YAML targets).
    pub flow: bool,
    /// What is done to the text.
    pub text: Vec<Text>,
}

/// Structured mutations.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    (
        any::<usize>(),
        prop::collection::vec(edit(), 1..6),
        prop::bool::weighted(0.2),
        prop::collection::vec(text_edit(), 0..3),
    )
        .prop_map(|(seed, edits, flow, text)| Mutation {
            seed,
            edits,
            flow,
            text,
        })
}

/// A raw byte mutation: a seed and byte edits (position, operation, byte).
pub fn raw() -> impl Strategy<Value = (usize, Vec<(usize, u8, u8)>)> {
    (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), 0..4u8, any::<u8>()), 1..24),
    )
}

/// `raw` applied to `bytes`: overwrite, insert, delete or repeat a run.
pub fn apply_raw(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, op, b) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % bytes.len()
        };
        match op {
            0 if !bytes.is_empty() => bytes[at] = b,
            1 => bytes.insert(at, b),
            2 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ => {
                let end = (at + usize::from(b % 32)).min(bytes.len());
                let run = bytes[at..end].to_vec();
                bytes.splice(at..at, run);
            }
        }
    }
    bytes
}

fn pick(paths: &[Vec<usize>], sel: usize) -> Vec<usize> {
    paths[sel % paths.len()].clone()
}

fn apply(tree: &mut Tree, edit: &Edit, anchors: &mut usize) {
    let paths = tree.paths();
    match edit {
        Edit::Drop(a, b) => match tree.at_mut(&pick(&paths, *a)) {
            Tree::Map(e) if !e.is_empty() => {
                e.remove(b % e.len());
            }
            Tree::Seq(s) if !s.is_empty() => {
                s.remove(b % s.len());
            }
            _ => {}
        },
        Edit::Duplicate(a, b) => match tree.at_mut(&pick(&paths, *a)) {
            Tree::Map(e) if !e.is_empty() => {
                let i = b % e.len();
                let entry = e[i].clone();
                e.insert(i, entry);
            }
            Tree::Seq(s) if !s.is_empty() => {
                let i = b % s.len();
                let item = s[i].clone();
                s.insert(i, item);
            }
            _ => {}
        },
        Edit::Swap(a, b) => {
            let (pa, pb) = (pick(&paths, *a), pick(&paths, *b));
            // Only unrelated nodes: neither inside the other.
            if !pa.starts_with(&pb) && !pb.starts_with(&pa) {
                let ta = std::mem::replace(tree.at_mut(&pa), Tree::Plain(String::new()));
                let tb = std::mem::replace(tree.at_mut(&pb), ta);
                *tree.at_mut(&pa) = tb;
            }
        }
        Edit::Scalar(a, v) => {
            *tree.at_mut(&pick(&paths, *a)) = match v {
                Value::Plain(s) => Tree::Plain(s.clone()),
                Value::Quoted(s) => Tree::Quoted(s.clone()),
            };
        }
        Edit::Reshape(a) => {
            let node = tree.at_mut(&pick(&paths, *a));
            let old = std::mem::replace(node, Tree::Plain(String::new()));
            *node = match old {
                Tree::Map(e) => Tree::Seq(e.into_iter().map(|(_, v)| v).collect()),
                Tree::Seq(s) => Tree::Map(
                    s.into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("k{i}"), v))
                        .collect(),
                ),
                other => Tree::Seq(vec![other]),
            };
        }
        Edit::Rename(a, b, k) => {
            if let Tree::Map(e) = tree.at_mut(&pick(&paths, *a))
                && !e.is_empty()
            {
                let i = b % e.len();
                e[i].0 = k.clone();
            }
        }
        Edit::Nest(a, depth, map) => {
            let node = tree.at_mut(&pick(&paths, *a));
            let mut t = std::mem::replace(node, Tree::Plain(String::new()));
            for _ in 0..*depth {
                t = if *map {
                    Tree::Map(vec![("k".into(), t)])
                } else {
                    Tree::Seq(vec![t])
                };
            }
            *node = t;
        }
        Edit::Alias(a, b) => {
            let (pa, pb) = (pick(&paths, *a), pick(&paths, *b));
            if !pa.starts_with(&pb) && !pb.starts_with(&pa) {
                *anchors += 1;
                let name = format!("a{anchors}");
                let node = tree.at_mut(&pa);
                let old = std::mem::replace(node, Tree::Plain(String::new()));
                *node = Tree::Anchored(name.clone(), Box::new(old));
                // The alias goes after the anchor in document order only
                // sometimes; an alias before its anchor is an error to report.
                *tree.at_mut(&pb) = Tree::Alias(name);
            }
        }
        Edit::Grow(a, n) => {
            if let Tree::Seq(s) = tree.at_mut(&pick(&paths, *a)) {
                let items = s.clone();
                for _ in 1..*n {
                    s.extend(items.iter().cloned());
                    if s.len() > 4000 {
                        break;
                    }
                }
            }
        }
    }
}

fn apply_text(mut text: String, edit: &Text) -> Vec<u8> {
    match edit {
        Text::Keep => text.into_bytes(),
        Text::Bom => format!("\u{FEFF}{text}").into_bytes(),
        Text::Crlf => text.replace('\n', "\r\n").into_bytes(),
        Text::Tab(at) => {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .filter(|&i| i <= text.len())
                .collect();
            text.insert(starts[at % starts.len()], '\t');
            text.into_bytes()
        }
        Text::Truncate(at) => {
            let mut b = text.into_bytes();
            let len = b.len();
            b.truncate(if len == 0 { 0 } else { at % len });
            b
        }
        Text::Flip(at, bits) => {
            let mut b = text.into_bytes();
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= bits;
            }
            b
        }
        Text::RepeatLine(at) => {
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            if lines.is_empty() {
                return text.into_bytes();
            }
            let i = at % lines.len();
            let mut out = String::new();
            for (j, l) in lines.iter().enumerate() {
                out.push_str(l);
                if j == i {
                    out.push_str(l);
                }
            }
            out.into_bytes()
        }
        Text::Laughs(levels) => {
            text.push_str("\nlol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
            for i in 1..*levels {
                let p = i - 1;
                text.push_str(&format!(
                    "lol{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
                ));
            }
            text.into_bytes()
        }
        Text::Deep(depth, flow) => {
            if *flow {
                let deep = format!("{}1{}", "[".repeat(*depth), "]".repeat(*depth));
                if text.trim_start().starts_with('{') {
                    // JSON: a key in front, so the document stays one object.
                    let at = text.find('{').map_or(0, |i| i + 1);
                    text.insert_str(at, &format!("\"deep\":{deep},"));
                } else {
                    text.push_str(&format!("\ndeep: {deep}\n"));
                }
            } else {
                text.push_str("\ndeep:\n");
                for i in 1..=*depth.min(&3000) {
                    text.push_str(&" ".repeat(i));
                    text.push_str("k:\n");
                }
            }
            text.into_bytes()
        }
    }
}

/// The input a mutation makes of `seed`, written as YAML (`json` false) or JSON.
pub fn render(seed: &Tree, m: &Mutation, json: bool) -> Vec<u8> {
    let mut tree = seed.clone();
    let mut anchors = 0;
    for e in &m.edits {
        apply(&mut tree, e, &mut anchors);
    }
    let text = if json {
        tree.to_json()
    } else if m.flow {
        tree.to_flow_yaml()
    } else {
        tree.to_block_yaml()
    };
    let mut bytes = text.into_bytes();
    for t in &m.text {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        bytes = apply_text(text, t);
    }
    bytes
}
