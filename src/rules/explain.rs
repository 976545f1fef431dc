//! Explanations: why a rule did or did not fire.

use serde::Serialize;

use super::def::Rule;

/// Why a rule did or did not fire for an order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", content = "message", rename_all = "snake_case")]
pub enum Verdict {
    /// The conditions held and the rule fired.
    Matched,
    /// The conditions did not hold.
    NotMatched,
    /// The evaluation time is before `valid_from`.
    NotYetValid,
    /// The evaluation time is at or after `valid_until`.
    Expired,
    /// `enabled: false`.
    Disabled,
    /// The conditions held, but the rule already fired `max_executions_per_hour` times in the past hour.
    RateLimited,
    /// The custom logic failed; the message says how.
    Error(String),
}

/// One condition of an explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionExplanation {
    /// Position in the rule (`c{index}` in custom logic).
    pub index: usize,
    /// The condition's name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The fact read.
    pub field: &'static str,
    /// The window, for window facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_window: Option<String>,
    /// The fact's value for this order; `None` when missing or null.
    pub actual: Option<serde_json::Value>,
    /// The operator.
    pub operator: &'static str,
    /// The rule's value.
    pub expected: serde_json::Value,
    /// Whether the condition held.
    pub result: bool,
}

/// Why one rule did or did not fire for one order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The rule id.
    pub rule: String,
    /// `AND`, `OR` or `CUSTOM`.
    pub logic: &'static str,
    /// The custom logic, under CUSTOM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_logic: Option<String>,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Every condition, in file order.
    pub conditions: Vec<ConditionExplanation>,
}

impl Explanation {
    pub(crate) fn new(rule: &Rule) -> Self {
        Explanation {
            rule: rule.id.clone(),
            logic: rule.condition_logic.as_str(),
            custom_logic: rule.custom_logic.clone(),
            verdict: Verdict::NotMatched,
            conditions: Vec::with_capacity(rule.conditions.len()),
        }
    }
}

impl std::fmt::Display for Explanation {
    /// A human-readable account, one condition per line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = match &self.verdict {
            Verdict::Matched => "fired: its conditions held".to_owned(),
            Verdict::NotMatched => {
                format!("did not fire: its conditions did not hold ({})", self.logic)
            }
            Verdict::NotYetValid => "did not fire: not yet valid (before valid_from)".to_owned(),
            Verdict::Expired => "did not fire: expired (at or after valid_until)".to_owned(),
            Verdict::Disabled => "did not fire: disabled".to_owned(),
            Verdict::RateLimited => {
                "did not fire: rate-limited (max_executions_per_hour reached)".to_owned()
            }
            Verdict::Error(m) => format!("did not fire: error: {m}"),
        };
        writeln!(f, "rule {} {verdict}", self.rule)?;
        if let Some(logic) = &self.custom_logic {
            writeln!(f, "  custom_logic: {logic}")?;
        }
        for c in &self.conditions {
            let actual = c
                .actual
                .as_ref()
                .map_or("(missing)".to_owned(), ToString::to_string);
            let window = c
                .time_window
                .as_ref()
                .map(|w| format!(" over {w}"))
                .unwrap_or_default();
            writeln!(
                f,
                "  c{} {}{window}: {actual} {} {} -> {}",
                c.index,
                c.field,
                c.operator,
                c.expected,
                if c.result { "true" } else { "false" }
            )?;
        }
        Ok(())
    }
}
