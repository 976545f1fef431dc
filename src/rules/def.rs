//! A rule's definition: what the file declares, checked and resolved
//! (fields to [`Field`]s, values to operands). The evaluation form is built
//! from it by the pack (`compiled`, `custom`); nothing here depends on it.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::facts::{Fact, Field, read};
use super::ops::{Operand, Operator, apply};
use crate::diag::Pos;
use crate::model::Order;
use crate::model::action::{ActionSpec, ActionType};
use crate::model::{Impact, Priority};
use crate::script::Script;

crate::model::string_enum! {
    /// A rule's category.
    Category {
        /// `viral_detection`
        ViralDetection = "viral_detection",
        /// `priority_classification`
        PriorityClassification = "priority_classification",
        /// `inventory_management`
        InventoryManagement = "inventory_management",
        /// `shipping_optimization`
        ShippingOptimization = "shipping_optimization",
        /// `customer_segmentation`
        CustomerSegmentation = "customer_segmentation",
        /// `fraud_prevention`
        FraudPrevention = "fraud_prevention",
        /// `performance_optimization`
        PerformanceOptimization = "performance_optimization",
        /// `exception_handling`
        ExceptionHandling = "exception_handling",
    }
}

/// How a rule combines its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionLogic {
    /// All conditions hold.
    And,
    /// At least one condition holds.
    Or,
    /// `custom_logic`, a Rhai expression over `c0..`, condition names and `order`.
    Custom,
}

impl ConditionLogic {
    /// The spelling in files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionLogic::And => "AND",
            ConditionLogic::Or => "OR",
            ConditionLogic::Custom => "CUSTOM",
        }
    }
}

/// Which window fact a condition counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowKind {
    /// Orders of the same product.
    ProductOrders,
    /// Orders of the same customer handle.
    CustomerOrders,
    /// Units of the same product.
    ProductUnits,
}

/// One window the pack counts over: a window fact and a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowSlot {
    /// What is counted.
    pub kind: WindowKind,
    /// Over how long, in milliseconds.
    pub window_ms: i64,
}

/// One condition of a rule.
#[derive(Debug, Clone)]
pub struct Condition {
    /// Optional name, usable in `custom_logic`.
    pub name: Option<String>,
    /// The fact read.
    pub field: Field,
    /// The operator.
    pub operator: Operator,
    /// The value as written (null for `exists` without a value).
    pub value: serde_json::Value,
    /// The window, on window facts.
    pub time_window: Option<TimeDelta>,
    /// The `time_window` as written (`1h`).
    pub time_window_text: Option<String>,
    /// Where the condition starts.
    pub pos: Pos,
    pub(crate) operand: Operand,
    /// Index into the evaluator's window values, for window facts.
    pub(crate) slot: Option<usize>,
}

impl Condition {
    /// Reads the condition's fact for `order` (window facts from `windows`).
    #[inline]
    pub(crate) fn fact<'a>(&self, order: &'a Order, now_ms: i64, windows: &[i64]) -> Fact<'a> {
        match self.slot {
            Some(s) => Fact::Int(windows[s]),
            None => read(order, self.field, now_ms),
        }
    }

    /// Evaluates the condition.
    #[inline]
    pub(crate) fn test(&self, order: &Order, now_ms: i64, windows: &[i64]) -> bool {
        apply(
            self.operator,
            &self.fact(order, now_ms, windows),
            &self.operand,
        )
    }
}

/// A loaded, compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id across the pack.
    pub id: String,
    /// Display name.
    pub name: String,
    /// What the rule is for.
    pub description: Option<String>,
    /// Category.
    pub category: Category,
    /// 0..=100, higher runs first.
    pub priority: u8,
    /// Disabled rules never fire.
    pub enabled: bool,
    /// Rule version.
    pub version: u32,
    /// Free tags.
    pub tags: Vec<String>,
    /// Fires at most this many times in any hour.
    pub max_executions_per_hour: Option<u32>,
    /// Applicable from this time on.
    pub valid_from: Option<DateTime<Utc>>,
    /// Applicable before this time.
    pub valid_until: Option<DateTime<Utc>>,
    /// How conditions combine.
    pub condition_logic: ConditionLogic,
    /// The Rhai expression under CUSTOM.
    pub custom_logic: Option<String>,
    /// Conditions, in file order (`c0`, `c1`, ...).
    pub conditions: Vec<Condition>,
    /// Actions taken when the rule fires.
    pub actions: Vec<ActionSpec>,
    /// The file the rule comes from.
    pub file: Arc<str>,
    /// Where the rule starts.
    pub pos: Pos,
    /// `custom_logic` parsed by the sandbox (what the file says, checked).
    pub(crate) script: Option<Script>,
}

/// Why a rule does not apply at a time (see [`Rule::applicability`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applicability {
    /// Enabled and within its validity window.
    Applicable,
    /// `enabled: false`.
    Disabled,
    /// Before `valid_from`.
    NotYetValid,
    /// At or after `valid_until`.
    Expired,
}

impl Applicability {
    /// Whether a rule (`enabled`, valid over `[from_ms, until_ms)`) applies at `t_ms`.
    #[inline(always)]
    pub(crate) fn at(enabled: bool, from_ms: i64, until_ms: i64, t_ms: i64) -> Applicability {
        if !enabled {
            Applicability::Disabled
        } else if t_ms < from_ms {
            Applicability::NotYetValid
        } else if t_ms >= until_ms {
            Applicability::Expired
        } else {
            Applicability::Applicable
        }
    }
}

impl Rule {
    /// Whether the rule applies at `t` (in ms since the epoch).
    #[inline]
    pub fn applicability(&self, t_ms: i64) -> Applicability {
        Applicability::at(
            self.enabled,
            self.valid_from_ms(),
            self.valid_until_ms(),
            t_ms,
        )
    }

    /// `valid_from` in ms (`i64::MIN` when unset).
    pub(crate) fn valid_from_ms(&self) -> i64 {
        self.valid_from.map_or(i64::MIN, |t| t.timestamp_millis())
    }

    /// `valid_until` in ms (`i64::MAX` when unset).
    pub(crate) fn valid_until_ms(&self) -> i64 {
        self.valid_until.map_or(i64::MAX, |t| t.timestamp_millis())
    }

    /// First `new_priority` / `new_impact` among the rule's `escalate_priority` actions.
    pub(crate) fn escalation(&self) -> (Option<Priority>, Option<Impact>) {
        let escalations = || {
            self.actions
                .iter()
                .filter(|a| a.kind == ActionType::EscalatePriority)
        };
        (
            escalations().find_map(|a| a.new_priority()),
            escalations().find_map(|a| a.new_impact()),
        )
    }
}
