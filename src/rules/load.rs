//! Loading a rule pack: strict, and every problem of every file at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use compact_str::CompactString;

use super::def::{Category, Condition, ConditionLogic, Rule, WindowKind, WindowSlot};
use super::facts::{FactType, Field, FieldKind};
use super::ops::{Operand, Operator};
use super::pack::RulePack;
use crate::diag::{self, Code, Diagnostic, Diagnostics, Pos, did_you_mean};
use crate::model::action::parse_actions;
use crate::script::{Limits, Sandbox};
use crate::yaml::{self, MapReader, Node, NodeKind, Typed, reader};

/// Why a pack could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The files have errors; every one found is listed, warnings included.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl PackError {
    /// The diagnostics, when the pack was invalid.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PackError::Invalid(d) => d,
            PackError::Io { .. } => &[],
        }
    }
}

/// Loads rule packs; configure it for host-registered action types or other sandbox limits.
///
/// ```
/// use creatorflow::rules::PackLoader;
/// let pack = PackLoader::new().load_str("mine.yaml", r#"
/// rules:
///   - id: big-basket
///     name: Big basket
///     category: priority_classification
///     priority: 50
///     conditions: [{field: quantity, operator: greater_than, value: 10}]
///     actions: [{type: escalate_priority, parameters: {new_priority: urgent}}]
/// "#).unwrap();
/// assert_eq!(pack.rules()[0].id, "big-basket");
/// ```
#[derive(Debug, Clone, Default)]
pub struct PackLoader {
    custom_actions: Vec<CompactString>,
    limits: Limits,
}

impl PackLoader {
    /// A loader that knows the built-in action types only.
    pub fn new() -> Self {
        PackLoader::default()
    }

    /// Accepts `name` as an action type besides the built-in ones.
    pub fn register_action(mut self, name: &str) -> Self {
        self.custom_actions.push(name.into());
        self
    }

    /// Sets the Rhai sandbox limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Loads every `*.yaml` / `*.yml` file of `dir` (not recursive), in file-name order.
    /// A file whose top-level key is `machine:` is a state-machine file and is skipped.
    pub fn load_dir(&self, dir: impl AsRef<Path>) -> Result<RulePack, PackError> {
        let dir = dir.as_ref();
        let io = |source| PackError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        let mut sources = Vec::with_capacity(paths.len());
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|source| PackError::Io {
                path: p.clone(),
                source,
            })?;
            sources.push((p.display().to_string(), text));
        }
        self.load_sources(&sources)
    }

    /// Loads one file's text.
    pub fn load_str(&self, name: &str, text: &str) -> Result<RulePack, PackError> {
        self.load_sources(&[(name.to_owned(), text.to_owned())])
    }

    /// Loads several files, given as (name, text), in the order given.
    pub fn load_sources(&self, sources: &[(String, String)]) -> Result<RulePack, PackError> {
        let sandbox = Arc::new(Sandbox::new(self.limits));
        let mut all = Vec::new();
        let mut rules = Vec::new();
        let mut seen: HashMap<String, (Arc<str>, Pos)> = HashMap::new();
        for (name, text) in sources {
            let mut diags = Diagnostics::new(name.as_str());
            for rule in self.load_file(text, &sandbox, &mut diags) {
                match seen.get(&rule.id) {
                    Some((file, pos)) => diags.emit(
                        Code::RuleDuplicateId,
                        rule.pos,
                        format!(
                            "duplicate rule id `{}` (first defined at {file}:{pos})",
                            rule.id
                        ),
                    ),
                    None => {
                        seen.insert(rule.id.clone(), (rule.file.clone(), rule.pos));
                        rules.push(rule);
                    }
                }
            }
            all.extend(diags.into_vec());
        }
        diag::sort(&mut all);
        if all.iter().any(|d| d.severity() == diag::Severity::Error) {
            return Err(PackError::Invalid(all));
        }
        Ok(RulePack::new(
            rules,
            all,
            sandbox,
            RulePack::version_of(sources),
        ))
    }

    fn load_file(&self, text: &str, sandbox: &Sandbox, diags: &mut Diagnostics) -> Vec<Rule> {
        let Some(root) = yaml::parse(text, diags) else {
            return Vec::new();
        };
        if let NodeKind::Map(entries) = &root.kind
            && entries
                .iter()
                .any(|(k, _)| k.scalar().is_some_and(|s| s.text == "machine"))
        {
            return Vec::new();
        }
        let Some(mut top) = MapReader::new(&root, "a rule file", &["rules"], diags) else {
            return Vec::new();
        };
        let list = top
            .req("rules", diags)
            .and_then(|n| reader::seq(n, "rules", diags));
        top.finish(diags);
        let file = diags.file().clone();
        list.unwrap_or_default()
            .iter()
            .filter_map(|node| {
                RuleParser {
                    loader: self,
                    sandbox,
                    file: &file,
                }
                .parse(node, diags)
            })
            .collect()
    }
}

const RULE_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "category",
    "priority",
    "enabled",
    "version",
    "tags",
    "max_executions_per_hour",
    "valid_from",
    "valid_until",
    "condition_logic",
    "custom_logic",
    "conditions",
    "actions",
];
const CONDITION_KEYS: &[&str] = &["name", "field", "operator", "value", "time_window"];

struct RuleParser<'a> {
    loader: &'a PackLoader,
    sandbox: &'a Sandbox,
    file: &'a Arc<str>,
}

impl RuleParser<'_> {
    fn parse(&self, node: &Node, diags: &mut Diagnostics) -> Option<Rule> {
        let mut m = MapReader::new(node, "rule", RULE_KEYS, diags)?;
        let before = diags.error_count();
        let id = m.req("id", diags).and_then(|n| {
            let id = reader::string(n, "id", diags)?;
            let ok = !id.is_empty()
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                diags.emit(
                    Code::RuleBadId,
                    n.pos,
                    format!("rule id `{id}` must match [a-z0-9_-]+"),
                );
            }
            Some(id.to_owned())
        });
        let name = m
            .req("name", diags)
            .and_then(|n| reader::string(n, "name", diags))
            .map(str::to_owned);
        let description = m
            .opt("description")
            .and_then(|n| reader::string(n, "description", diags))
            .map(str::to_owned);
        let category = m
            .req("category", diags)
            .and_then(|n| reader::one_of(n, "category", Category::parse, Category::names, diags));
        let priority = m.req("priority", diags).and_then(|n| {
            let p = reader::int(n, "priority", diags)?;
            if !(0..=100).contains(&p) {
                diags.emit(
                    Code::RulePriorityRange,
                    n.pos,
                    format!("`priority` must be between 0 and 100, found {p}"),
                );
                return None;
            }
            Some(p as u8)
        });
        let enabled = m
            .opt("enabled")
            .and_then(|n| reader::boolean(n, "enabled", diags))
            .unwrap_or(true);
        let version = m
            .opt("version")
            .and_then(|n| positive(n, "version", diags))
            .unwrap_or(1);
        let tags = m
            .opt("tags")
            .and_then(|n| reader::string_list(n, "tags", diags))
            .unwrap_or_default();
        let max_executions_per_hour = m
            .opt("max_executions_per_hour")
            .and_then(|n| positive(n, "max_executions_per_hour", diags));
        let valid_from = m
            .opt("valid_from")
            .and_then(|n| reader::timestamp(n, "valid_from", diags));
        let until_node = m.opt("valid_until");
        let valid_until = until_node.and_then(|n| reader::timestamp(n, "valid_until", diags));
        if let (Some(f), Some(u), Some(n)) = (valid_from, valid_until, until_node)
            && u <= f
        {
            diags.emit(
                Code::RuleEmptyValidity,
                n.pos,
                "`valid_until` must be later than `valid_from`",
            );
        }
        let logic = match m.opt("condition_logic") {
            None => Some(ConditionLogic::And),
            Some(n) => reader::one_of(
                n,
                "condition_logic",
                |s| match s {
                    "AND" => Some(ConditionLogic::And),
                    "OR" => Some(ConditionLogic::Or),
                    "CUSTOM" => Some(ConditionLogic::Custom),
                    _ => None,
                },
                || ["AND", "OR", "CUSTOM"].into_iter(),
                diags,
            ),
        };
        let custom_node = m.opt("custom_logic");
        let conditions = m
            .req("conditions", diags)
            .and_then(|n| self.conditions(n, diags));
        let actions = m.req("actions", diags).and_then(|n| {
            let list = parse_actions(n, "actions", &self.loader.custom_actions, false, diags)?;
            if list.is_empty() {
                diags.emit(
                    Code::RuleNoActions,
                    n.pos,
                    "`actions` must have at least one action",
                );
            }
            Some(list)
        });
        let script = match (logic, custom_node, &conditions) {
            (Some(ConditionLogic::Custom), None, _) => {
                diags.emit(
                    Code::RuleCustomLogicMissing,
                    m.pos(),
                    "`custom_logic` is required when `condition_logic` is CUSTOM",
                );
                None
            }
            (Some(l), Some(n), _) if l != ConditionLogic::Custom => {
                diags.emit(Code::RuleCustomLogicUnused, n.pos, format!("`custom_logic` is only allowed with `condition_logic: CUSTOM` (this rule uses {})", l.as_str()));
                None
            }
            (Some(ConditionLogic::Custom), Some(n), Some(conds)) => self.script(n, conds, diags),
            _ => None,
        };
        let pos = m.pos();
        m.finish(diags);
        if diags.error_count() != before {
            return None;
        }
        let actions = actions?;
        Some(Rule {
            id: id?,
            name: name?,
            description,
            category: category?,
            priority: priority?,
            enabled,
            version,
            tags,
            max_executions_per_hour,
            valid_from,
            valid_until,
            condition_logic: logic?,
            custom_logic: script.as_ref().map(|s| s.source().to_owned()),
            conditions: conditions?,
            actions,
            file: self.file.clone(),
            pos,
            script,
        })
    }

    fn conditions(&self, node: &Node, diags: &mut Diagnostics) -> Option<Vec<Condition>> {
        let items = reader::seq(node, "conditions", diags)?;
        if items.is_empty() {
            diags.emit(
                Code::RuleNoConditions,
                node.pos,
                "`conditions` must have at least one condition",
            );
            return None;
        }
        let before = diags.error_count();
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(c) = parse_condition(item, false, diags) {
                if let Some(name) = &c.name
                    && let Some(first) = names.insert(name.clone(), c.pos)
                {
                    diags.emit(
                        Code::RuleDuplicateConditionName,
                        c.pos,
                        format!(
                            "duplicate condition name `{name}` (first used at line {})",
                            first.line
                        ),
                    );
                }
                out.push(c);
            }
        }
        (diags.error_count() == before).then_some(out)
    }

    fn script(
        &self,
        node: &Node,
        conds: &[Condition],
        diags: &mut Diagnostics,
    ) -> Option<crate::script::Script> {
        let src = reader::string(node, "custom_logic", diags)?;
        let mut vars: Vec<String> = (0..conds.len()).map(|i| format!("c{i}")).collect();
        vars.extend(conds.iter().filter_map(|c| c.name.clone()));
        let refs: Vec<&str> = vars.iter().map(String::as_str).collect();
        match self.sandbox.compile(src, &refs) {
            Ok(s) => Some(s),
            Err(e) => {
                let pos = script_pos(node, e.line, e.col);
                let mut msg = format!("custom_logic does not compile: {}", e.message);
                if e.message.contains("Variable not found")
                    || e.message.contains("Unknown variable")
                {
                    msg.push_str(&format!(
                        " (custom_logic can use `order`, c0..c{} and the conditions' names)",
                        conds.len().saturating_sub(1)
                    ));
                }
                diags.emit(Code::RuleCustomLogicCompile, pos, msg);
                None
            }
        }
    }
}

/// Maps a position inside a script to the file: exact for single-line scalars.
fn script_pos(node: &Node, line: Option<u32>, col: Option<u32>) -> Pos {
    let Some(s) = node.scalar() else {
        return node.pos;
    };
    match (line, col) {
        (Some(1), Some(c)) if !s.text.contains('\n') => {
            let quote = u32::from(!s.plain);
            Pos::new(node.pos.line, node.pos.col + quote + c - 1)
        }
        _ => node.pos,
    }
}

fn positive(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<u32> {
    let v = reader::int(node, key, diags)?;
    if v <= 0 || v > i64::from(u32::MAX) {
        diags.emit(
            Code::RuleNotPositive,
            node.pos,
            format!("`{key}` must be a positive integer, found {v}"),
        );
        return None;
    }
    Some(v as u32)
}

/// Parses one condition. `guard` refuses window facts (guards have no order stream).
pub(crate) fn parse_condition(
    node: &Node,
    guard: bool,
    diags: &mut Diagnostics,
) -> Option<Condition> {
    let mut m = MapReader::new(node, "condition", CONDITION_KEYS, diags)?;
    let before = diags.error_count();
    let name = m.opt("name").and_then(|n| {
        let s = reader::string(n, "name", diags)?;
        let ident = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let reserved = s == "order" || (s.starts_with('c') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()));
        if !ident || reserved {
            diags.emit(Code::RuleBadConditionName, n.pos, format!("condition name `{s}` must be an identifier ([A-Za-z_][A-Za-z0-9_]*) other than `order` and c0, c1, ..."));
        }
        Some(s.to_owned())
    });
    let field = m.req("field", diags).and_then(|n| {
        let s = reader::string(n, "field", diags)?;
        let f = Field::lookup(s);
        if f.is_none() {
            diags.emit(
                Code::RuleUnknownField,
                n.pos,
                format!(
                    "unknown field `{s}`{}",
                    did_you_mean(s, Field::ALL.iter().map(|f| f.name()))
                ),
            );
        }
        f.map(|f| (f, n.pos))
    });
    let operator = m
        .req("operator", diags)
        .and_then(|n| reader::one_of(n, "operator", Operator::parse, Operator::names, diags));
    let value_node = m.opt("value");
    let window_node = m.opt("time_window");
    let has_value_key = m.has("value");
    let pos = m.pos();
    m.finish(diags);
    let (field, field_pos) = field?;
    let operator = operator?;
    let time_window = match (field.kind(), window_node) {
        (FieldKind::Window, _) if guard => {
            diags.emit(
                Code::RuleWindowInGuard,
                field_pos,
                format!("window fact `{}` cannot be used in a guard", field.name()),
            );
            None
        }
        (FieldKind::Window, None) => {
            diags.emit(
                Code::RuleWindowMissing,
                field_pos,
                format!(
                    "window fact `{}` needs a `time_window` (such as 1h, 24h or 7d)",
                    field.name()
                ),
            );
            None
        }
        (FieldKind::Window, Some(w)) => {
            reader::string(w, "time_window", diags).and_then(|s| match crate::parse_duration(s) {
                Ok(d) => Some((d, s.to_owned())),
                Err(e) => {
                    diags.emit(Code::RuleBadWindow, w.pos, e);
                    None
                }
            })
        }
        (_, Some(w)) => {
            diags.emit(
                Code::RuleWindowNotApplicable,
                w.pos,
                format!("`time_window` only applies to window facts (product_orders, customer_orders, product_units), not `{}`", field.name()),
            );
            None
        }
        (_, None) => None,
    };
    let value = match value_node {
        Some(v) => v.to_json(),
        None if operator == Operator::Exists => serde_json::Value::Null,
        None => {
            let what = if has_value_key {
                "is null"
            } else {
                "is missing"
            };
            diags.emit(
                Code::RuleValueMissing,
                pos,
                format!("condition `value` {what}; operator `{operator}` needs a value"),
            );
            serde_json::Value::Null
        }
    };
    if let Some(v) = value_node {
        check_value(field, operator, v, diags);
    }
    if diags.error_count() != before {
        return None;
    }
    Some(Condition {
        name,
        field,
        operator,
        operand: if operator == Operator::Exists {
            Operand::None
        } else {
            Operand::from_json(&value)
        },
        value,
        time_window: time_window.as_ref().map(|(d, _)| *d),
        time_window_text: time_window.map(|(_, s)| s),
        pos,
        slot: None,
    })
}

/// Type checks of a condition's value against its field: errors where the
/// spec says so, warnings where the condition can simply never be true.
fn check_value(field: Field, op: Operator, value: &Node, diags: &mut Diagnostics) {
    let ty = field.ty();
    let name = field.name();
    match op {
        Operator::Exists => {}
        Operator::In | Operator::NotIn => match &value.kind {
            NodeKind::Seq(items) => {
                for item in items {
                    check_equatable(field, item, diags);
                }
            }
            _ => diags.emit(
                Code::RuleListValueNeeded,
                value.pos,
                format!(
                    "operator `{op}` needs a list value, found {}",
                    value.type_name()
                ),
            ),
        },
        _ if op.is_numeric() => {
            if !matches!(
                value.scalar().map(|s| s.typed()),
                Some(Typed::Int(_) | Typed::Float(..))
            ) {
                diags.emit(
                    Code::RuleNumberValueNeeded,
                    value.pos,
                    format!(
                        "operator `{op}` needs a number value, found {}",
                        value.type_name()
                    ),
                );
            } else if !ty.is_number() {
                diags.emit(
                    Code::RuleNumericOpNeverTrue,
                    value.pos,
                    format!("`{name}` is {}, so `{op}` is never true", ty.describe()),
                );
            }
        }
        Operator::Contains | Operator::NotContains => {
            let ok = match ty {
                FactType::Str | FactType::Enum(_) | FactType::Time => {
                    matches!(value.scalar().map(|s| s.typed()), Some(Typed::Str(_)))
                }
                FactType::StrList => {
                    check_equatable_str_list_elem(field, value, diags);
                    true
                }
                FactType::Json => true,
                _ => false,
            };
            if !ok {
                diags.emit(
                    Code::RuleContainsNeverTrue,
                    value.pos,
                    format!(
                        "`{name}` is {} and the value is {}, so `{op}` is never true",
                        ty.describe(),
                        value.type_name()
                    ),
                );
            }
        }
        _ => check_equatable(field, value, diags),
    }
}

fn check_equatable_str_list_elem(field: Field, value: &Node, diags: &mut Diagnostics) {
    if field == Field::ViralIndicatorTypes
        && let Some(Typed::Str(s)) = value.scalar().map(|s| s.typed())
        && crate::model::ViralIndicatorType::parse(s).is_none()
    {
        let names = crate::model::ViralIndicatorType::names();
        diags.emit(
            Code::RuleUnknownIndicatorType,
            value.pos,
            format!(
                "unknown viral indicator type `{s}`{}",
                did_you_mean(s, names)
            ),
        );
    }
}

/// Whether a value can ever equal the field: an unknown enum spelling is an
/// error (with a suggestion), a value of another JSON type a warning.
fn check_equatable(field: Field, value: &Node, diags: &mut Diagnostics) {
    let ty = field.ty();
    let typed = value.scalar().map(|s| s.typed());
    let fits = match (ty, &typed) {
        (FactType::Str, Some(Typed::Str(_))) => true,
        (FactType::Enum(names), Some(Typed::Str(s))) => {
            if !names.contains(s) {
                diags.emit(
                    Code::RuleUnknownEnumValue,
                    value.pos,
                    format!(
                        "`{}` is one of {}; `{s}` never matches{}",
                        field.name(),
                        names.join(", "),
                        did_you_mean(s, names.iter().copied())
                    ),
                );
            }
            true
        }
        (
            FactType::Int | FactType::Decimal | FactType::Float,
            Some(Typed::Int(_) | Typed::Float(..)),
        ) => true,
        (FactType::Time, Some(Typed::Str(s))) => {
            let ok = matches!(
                Operand::from_json(&serde_json::Value::String((*s).to_owned())),
                Operand::Str(_, Some(_))
            );
            if !ok {
                diags.emit(
                    Code::RuleTimeNeverEqual,
                    value.pos,
                    format!(
                        "`{}` is written like 2025-03-01T12:00:00Z; `{s}` never equals it",
                        field.name()
                    ),
                );
            }
            true
        }
        (FactType::StrList, _) => {
            matches!(value.kind, NodeKind::Seq(_)) || matches!(typed, Some(Typed::Str(_)))
        }
        (FactType::Json, _) => true,
        _ => false,
    };
    if !fits {
        diags.emit(
            Code::RuleTypesNeverEqual,
            value.pos,
            format!(
                "`{}` is {} and the value is {}, so they are never equal",
                field.name(),
                ty.describe(),
                value.type_name()
            ),
        );
    }
}

/// Assigns window slots to the pack's window conditions; returns the distinct windows.
pub(crate) fn assign_window_slots(rules: &mut [Rule]) -> Vec<WindowSlot> {
    let mut slots: Vec<WindowSlot> = Vec::new();
    for c in rules.iter_mut().flat_map(|r| r.conditions.iter_mut()) {
        let (Some(w), kind) = (
            c.time_window,
            match c.field {
                Field::ProductOrders => Some(WindowKind::ProductOrders),
                Field::CustomerOrders => Some(WindowKind::CustomerOrders),
                Field::ProductUnits => Some(WindowKind::ProductUnits),
                _ => None,
            },
        ) else {
            continue;
        };
        let Some(kind) = kind else { continue };
        let slot = WindowSlot {
            kind,
            window_ms: w.num_milliseconds(),
        };
        let idx = slots.iter().position(|s| *s == slot).unwrap_or_else(|| {
            slots.push(slot);
            slots.len() - 1
        });
        c.slot = Some(idx);
    }
    slots
}
