//! Reading the `actions:` section: one binding per action type.
//!
//! A binding is a mapping of exactly one kind: `{ http: { url, secret,
//! timeout } }`, `{ tiktok: OP }`, `{ log: {} }`, `{ simulated: {} }`;
//! `log` and `simulated` take no settings and may also be written bare
//! (`check_inventory: simulated`).

use creatorflow::actions::ActionType;
use creatorflow::diag::{Code, did_you_mean};
use creatorflow::yaml::reader::{self, MapReader};
use creatorflow::yaml::{Node, NodeKind};

use creatorflow::actions::HttpTarget;

use super::bindings::{Binding, BindingKind, ENGINE_TYPES, TIKTOK_OPS};
use super::load::Reader;
use super::{Actions, Located};
use creatorflow::tiktok::TikTokOp;

const HTTP_KEYS: &[&str] = &["url", "secret", "timeout"];

fn type_names() -> impl Iterator<Item = &'static str> {
    ActionType::BUILTIN.iter().map(|t| t.as_str())
}

impl Reader<'_, '_> {
    /// The `actions:` mapping.
    pub(super) fn actions(&mut self, node: &Node) -> Actions {
        let mut out = Actions::default();
        let NodeKind::Map(entries) = &node.kind else {
            self.d.emit(
                Code::YamlNotMapping,
                node.pos,
                format!("`actions` must be a mapping, found {}", node.type_name()),
            );
            return out;
        };
        for (k, v) in entries {
            let name = k.scalar().map_or("", |s| s.text.as_str());
            let Some(kind) = ActionType::builtin(name) else {
                self.d.emit(
                    Code::ConfigUnknownActionType,
                    k.pos,
                    format!(
                        "unknown action type `{name}`{}",
                        did_you_mean(name, type_names())
                    ),
                );
                continue;
            };
            if ENGINE_TYPES.contains(&kind) {
                self.d.emit(
                    Code::ConfigEngineAction,
                    k.pos,
                    format!("`{name}` is carried out by the engine itself and takes no binding"),
                );
                continue;
            }
            if let Some(value) = self.binding(v, name) {
                out.bindings.push((kind, Located { value, pos: v.pos }));
            }
        }
        out
    }

    /// One binding.
    fn binding(&mut self, node: &Node, ty: &str) -> Option<Binding> {
        let kinds = || BindingKind::ALL.iter().map(|k| k.as_str());
        let (kind_name, kind_pos, settings) = match &node.kind {
            NodeKind::Scalar(s) => (s.text.as_str(), node.pos, None),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                (k.scalar().map_or("", |s| s.text.as_str()), k.pos, Some(v))
            }
            _ => {
                self.d.emit(
                    Code::ConfigUnknownBinding,
                    node.pos,
                    format!(
                        "`{ty}` must be bound to exactly one of {}",
                        kinds().collect::<Vec<_>>().join(", ")
                    ),
                );
                return None;
            }
        };
        let Some(kind) = BindingKind::parse(kind_name) else {
            self.d.emit(
                Code::ConfigUnknownBinding,
                kind_pos,
                format!(
                    "`{ty}`: unknown binding `{kind_name}`: expected one of {}{}",
                    kinds().collect::<Vec<_>>().join(", "),
                    did_you_mean(kind_name, kinds())
                ),
            );
            return None;
        };
        match (kind, settings) {
            (BindingKind::Log | BindingKind::Simulated, None) => Some(kind.settingless()),
            (BindingKind::Log | BindingKind::Simulated, Some(v))
                if v.is_null() || matches!(&v.kind, NodeKind::Map(e) if e.is_empty()) =>
            {
                Some(kind.settingless())
            }
            (BindingKind::Log | BindingKind::Simulated, Some(v)) => {
                self.d.emit(
                    Code::ConfigUnknownBinding,
                    v.pos,
                    format!("`{kind_name}` takes no settings (write `{kind_name}: {{}}`)"),
                );
                None
            }
            (BindingKind::Http | BindingKind::TikTok, None) => {
                self.d.emit(
                    Code::ConfigUnknownBinding,
                    node.pos,
                    format!("`{ty}`: `{kind_name}` needs its settings (see docs/config.md)"),
                );
                None
            }
            (BindingKind::Http, Some(v)) => self.http(v).map(Binding::Http),
            (BindingKind::TikTok, Some(v)) => self.tiktok_op(v).map(Binding::TikTok),
        }
    }

    fn http(&mut self, node: &Node) -> Option<HttpTarget> {
        let mut m = MapReader::new(node, "`http`", HTTP_KEYS, self.d)?;
        let url = m.req("url", self.d).and_then(|n| self.url(n, "url"));
        let secret = m.req("secret", self.d).and_then(|n| self.text(n, "secret"));
        let timeout = match m.opt("timeout") {
            Some(n) => Some(self.duration(n, "timeout", false)?),
            None => None,
        }
        .flatten();
        m.finish(self.d);
        Some(HttpTarget {
            url: url?,
            secret: secret?,
            timeout,
        })
    }

    fn tiktok_op(&mut self, node: &Node) -> Option<TikTokOp> {
        let op = reader::string(node, "tiktok", self.d)?;
        let found = TikTokOp::parse(op);
        if found.is_none() {
            self.d.emit(
                Code::ConfigUnknownTikTokOp,
                node.pos,
                format!(
                    "unknown TikTok operation `{op}`: expected one of {}{}",
                    TIKTOK_OPS.join(", "),
                    did_you_mean(op, TIKTOK_OPS.iter().copied())
                ),
            );
        }
        found
    }
}
