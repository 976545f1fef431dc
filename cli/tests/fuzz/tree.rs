//! A document as a tree the mutations edit (duplicate keys, anchors and
//! aliases allowed), read from YAML or JSON seeds and written back as block
//! YAML, flow YAML or JSON.

use creatorflow::diag::Diagnostics;
use creatorflow::yaml::{self, Node, NodeKind};

/// One value of a document.
#[derive(Debug, Clone)]
pub enum Tree {
    /// A mapping; keys may repeat.
    Map(Vec<(String, Tree)>),
    /// A sequence.
    Seq(Vec<Tree>),
    /// A scalar written as is (numbers, booleans, null, plain words).
    Plain(String),
    /// A scalar written quoted.
    Quoted(String),
    /// A value with an anchor (`&name`).
    Anchored(String, Box<Tree>),
    /// An alias (`*name`).
    Alias(String),
}

impl Tree {
    /// The tree of a YAML text (which must parse).
    pub fn from_yaml(text: &str) -> Tree {
        let mut d = Diagnostics::new("seed.yaml");
        let node = yaml::parse(text, &mut d).expect("a seed parses");
        Tree::from_node(&node)
    }

    fn from_node(node: &Node) -> Tree {
        match &node.kind {
            NodeKind::Scalar(s) if s.plain => Tree::Plain(s.text.clone()),
            NodeKind::Scalar(s) => Tree::Quoted(s.text.clone()),
            NodeKind::Seq(items) => Tree::Seq(items.iter().map(Tree::from_node).collect()),
            NodeKind::Map(entries) => Tree::Map(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = k.scalar().map(|s| s.text.clone()).unwrap_or_default();
                        (key, Tree::from_node(v))
                    })
                    .collect(),
            ),
        }
    }

    /// The tree of a JSON text (which must parse).
    pub fn from_json(text: &str) -> Tree {
        let v: serde_json::Value = serde_json::from_str(text).expect("a seed parses");
        Tree::from_value(&v)
    }

    fn from_value(v: &serde_json::Value) -> Tree {
        use serde_json::Value;
        match v {
            Value::Object(o) => Tree::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Tree::from_value(v)))
                    .collect(),
            ),
            Value::Array(a) => Tree::Seq(a.iter().map(Tree::from_value).collect()),
            Value::String(s) => Tree::Quoted(s.clone()),
            other => Tree::Plain(other.to_string()),
        }
    }

    /// Every node, pre-order, as paths of child indices.
    pub fn paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        let mut stack = vec![(self, Vec::new())];
        while let Some((t, path)) = stack.pop() {
            match t {
                Tree::Map(entries) => {
                    for (i, (_, v)) in entries.iter().enumerate() {
                        let mut p = path.clone();
                        p.push(i);
                        stack.push((v, p));
                    }
                }
                Tree::Seq(items) => {
                    for (i, v) in items.iter().enumerate() {
                        let mut p = path.clone();
                        p.push(i);
                        stack.push((v, p));
                    }
                }
                Tree::Anchored(_, inner) => {
                    let mut p = path.clone();
                    p.push(0);
                    stack.push((inner, p));
                }
                _ => {}
            }
            out.push(path);
        }
        out
    }

    /// The node at `path`.
    pub fn at_mut(&mut self, path: &[usize]) -> &mut Tree {
        let mut t = self;
        for &i in path {
            t = match t {
                Tree::Map(entries) => &mut entries[i].1,
                Tree::Seq(items) => &mut items[i],
                Tree::Anchored(_, inner) => inner,
                _ => unreachable!("paths lead to children"),
            };
        }
        t
    }

    /// Block YAML.
    pub fn to_block_yaml(&self) -> String {
        let mut out = String::new();
        self.block(&mut out, 0);
        out
    }

    fn block(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        match self {
            Tree::Map(entries) if !entries.is_empty() => {
                for (k, v) in entries {
                    out.push_str(&pad);
                    out.push_str(&scalar(k, false));
                    out.push(':');
                    v.block_value(out, indent);
                }
            }
            Tree::Seq(items) if !items.is_empty() => {
                for v in items {
                    out.push_str(&pad);
                    out.push('-');
                    v.block_value(out, indent);
                }
            }
            other => {
                out.push_str(&pad);
                out.push_str(&other.to_flow_yaml());
                out.push('\n');
            }
        }
    }

    /// After `key:` or `-`: inline for scalars and empty collections, else on
    /// the next lines, indented.
    fn block_value(&self, out: &mut String, indent: usize) {
        match self {
            Tree::Map(e) if !e.is_empty() => {
                out.push('\n');
                self.block(out, indent + 2);
            }
            Tree::Seq(s) if !s.is_empty() => {
                out.push('\n');
                self.block(out, indent + 2);
            }
            Tree::Anchored(name, inner) if matches!(**inner, Tree::Map(_) | Tree::Seq(_)) => {
                out.push_str(" &");
                out.push_str(name);
                match &**inner {
                    Tree::Map(e) if !e.is_empty() => {
                        out.push('\n');
                        inner.block(out, indent + 2);
                    }
                    Tree::Seq(s) if !s.is_empty() => {
                        out.push('\n');
                        inner.block(out, indent + 2);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&inner.to_flow_yaml());
                        out.push('\n');
                    }
                }
            }
            other => {
                out.push(' ');
                out.push_str(&other.to_flow_yaml());
                out.push('\n');
            }
        }
    }

    /// Flow YAML on one line.
    pub fn to_flow_yaml(&self) -> String {
        match self {
            Tree::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", scalar(k, false), v.to_flow_yaml()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Tree::Seq(items) => {
                let inner: Vec<String> = items.iter().map(Tree::to_flow_yaml).collect();
                format!("[{}]", inner.join(", "))
            }
            Tree::Plain(s) => scalar(s, false),
            Tree::Quoted(s) => scalar(s, true),
            Tree::Anchored(name, inner) => format!("&{name} {}", inner.to_flow_yaml()),
            Tree::Alias(name) => format!("*{name}"),
        }
    }

    /// JSON (keys repeated as the tree repeats them; an alias is `null`).
    pub fn to_json(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            Tree::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}:{}", q(k), v.to_json()))
                    .collect();
                format!("{{{}}}", inner.join(","))
            }
            Tree::Seq(items) => {
                let inner: Vec<String> = items.iter().map(Tree::to_json).collect();
                format!("[{}]", inner.join(","))
            }
            Tree::Plain(s) => s.clone(),
            Tree::Quoted(s) => q(s),
            Tree::Anchored(_, inner) => inner.to_json(),
            Tree::Alias(_) => "null".into(),
        }
    }
}

/// A scalar as YAML: plain when it reads back the same, else double-quoted.
fn scalar(s: &str, quoted: bool) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || " _-.+/@()$".contains(c))
        && !s.starts_with([' ', '-', '@'])
        && !s.ends_with(' ');
    if safe && !quoted {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}
