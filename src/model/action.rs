//! Action declarations as rule and machine files write them: the action
//! types, their parameters, timeouts, retry and rollback, and their parsing.
//! Part of the pure core (rules and machines declare actions); what runs
//! them is the `actions` layer, which re-exports these types.

use std::fmt;

use compact_str::CompactString;
use serde::Serialize;

use crate::diag::{Code, Diagnostics, Pos, did_you_mean};
use crate::model::{Impact, Priority};
use crate::yaml::{MapReader, Node, NodeKind, reader};

macro_rules! action_types {
    ($($variant:ident = $name:literal),+ $(,)?) => {
        /// The type of an action: one of the 14 built-in types, or one a host registered.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ActionType {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )+
            /// A type the host application registered through the library API.
            Custom(CompactString),
        }

        impl ActionType {
            /// The built-in types.
            pub const BUILTIN: &'static [ActionType] = &[$(ActionType::$variant),+];

            /// The type's name in files.
            pub fn as_str(&self) -> &str {
                match self { $(ActionType::$variant => $name,)+ ActionType::Custom(name) => name }
            }

            /// Resolves a built-in type name.
            pub fn builtin(name: &str) -> Option<ActionType> {
                match name { $($name => Some(ActionType::$variant),)+ _ => None }
            }
        }
    };
}

action_types! {
    ValidateAddress = "validate_address",
    CheckInventory = "check_inventory",
    ReserveInventory = "reserve_inventory",
    GenerateShippingLabel = "generate_shipping_label",
    SendCustomerNotification = "send_customer_notification",
    UpdateTiktokStatus = "update_tiktok_status",
    LogAnalyticsEvent = "log_analytics_event",
    TriggerWebhook = "trigger_webhook",
    ScheduleFollowUp = "schedule_follow_up",
    EscalateToManual = "escalate_to_manual",
    AutoReorderInventory = "auto_reorder_inventory",
    EscalatePriority = "escalate_priority",
    SelectCarrier = "select_carrier",
    EnableFastTrack = "enable_fast_track",
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ActionType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How the delay between retries grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffStrategy {
    /// `initial * 2^(attempt-1)`.
    Exponential,
    /// `initial * attempt`.
    Linear,
    /// `initial` every time.
    Fixed,
}

/// An action's retry policy (`retry:` in files).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrySpec {
    /// Attempts in all, the first included (>= 1).
    pub max_attempts: u32,
    /// Delay growth.
    pub backoff_strategy: BackoffStrategy,
    /// First delay.
    pub initial_delay_ms: u64,
    /// Cap on any delay.
    pub max_delay_ms: u64,
    /// Error kinds worth retrying; empty means every retryable error.
    pub retry_conditions: Vec<String>,
    /// Consecutive failures of the action type that open its circuit breaker.
    pub circuit_breaker_threshold: Option<u32>,
}

/// One action as declared in a rule or a transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSpec {
    /// What to do.
    #[serde(rename = "type")]
    pub kind: ActionType,
    /// Free-form parameters, as JSON.
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Timeout; the action type's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retry policy; the lane's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// The compensating action that undoes this one (machine files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Box<ActionSpec>>,
    /// Where it was declared.
    #[serde(skip)]
    pub pos: Pos,
}

impl ActionSpec {
    /// An action of `kind` with `parameters`, as code (not a file) declares
    /// it: no timeout, retry policy or rollback of its own (the defaults
    /// apply), no position.
    pub fn new(kind: ActionType, parameters: serde_json::Map<String, serde_json::Value>) -> Self {
        ActionSpec {
            kind,
            parameters,
            timeout_ms: None,
            retry: None,
            rollback: None,
            pos: Pos::default(),
        }
    }

    /// For `escalate_priority`: the `new_priority` parameter.
    pub fn new_priority(&self) -> Option<Priority> {
        self.parameters
            .get("new_priority")
            .and_then(|v| v.as_str())
            .and_then(Priority::parse)
    }

    /// For `escalate_priority`: the `new_impact` parameter.
    pub fn new_impact(&self) -> Option<Impact> {
        self.parameters
            .get("new_impact")
            .and_then(|v| v.as_str())
            .and_then(Impact::parse)
    }
}

const ACTION_KEYS: &[&str] = &["type", "parameters", "timeout_ms", "retry", "rollback"];
const RETRY_KEYS: &[&str] = &[
    "max_attempts",
    "backoff_strategy",
    "initial_delay_ms",
    "max_delay_ms",
    "retry_conditions",
    "circuit_breaker_threshold",
];

/// Parses a list of actions (`actions:`), recording every problem.
/// `custom` lists the action types a host registered; `allow_rollback`
/// permits the `rollback:` key (machine files).
pub(crate) fn parse_actions(
    node: &Node,
    key: &str,
    custom: &[CompactString],
    allow_rollback: bool,
    diags: &mut Diagnostics,
) -> Option<Vec<ActionSpec>> {
    let items = reader::seq(node, key, diags)?;
    let before = diags.error_count();
    let out: Vec<_> = items
        .iter()
        .filter_map(|n| parse_action(n, custom, allow_rollback, diags))
        .collect();
    (diags.error_count() == before).then_some(out)
}

/// Parses one action mapping, recording every problem.
fn parse_action(
    node: &Node,
    custom: &[CompactString],
    allow_rollback: bool,
    diags: &mut Diagnostics,
) -> Option<ActionSpec> {
    let known: &'static [&'static str] = if allow_rollback {
        ACTION_KEYS
    } else {
        &ACTION_KEYS[..4]
    };
    let mut m = MapReader::new(node, "action", known, diags)?;
    let before = diags.error_count();
    let kind = m.req("type", diags).and_then(|n| {
        let name = reader::string(n, "type", diags)?;
        let kind = ActionType::builtin(name).or_else(|| {
            custom
                .iter()
                .find(|c| c.as_str() == name)
                .map(|c| ActionType::Custom(c.clone()))
        });
        if kind.is_none() {
            let names = ActionType::BUILTIN
                .iter()
                .map(|t| t.as_str())
                .chain(custom.iter().map(|c| c.as_str()));
            diags.emit(
                Code::ActionUnknownType,
                n.pos,
                format!("unknown action type `{name}`{}", did_you_mean(name, names)),
            );
        }
        kind
    });
    let parameters = match m.opt("parameters") {
        None => serde_json::Map::new(),
        Some(p) => match (&p.kind, p.to_json()) {
            (NodeKind::Map(_), serde_json::Value::Object(map)) => map,
            _ => {
                diags.emit(
                    Code::ActionParametersNotMapping,
                    p.pos,
                    format!("`parameters` must be a mapping, found {}", p.type_name()),
                );
                serde_json::Map::new()
            }
        },
    };
    let timeout_ms = int_key(&mut m, "timeout_ms", positive, diags);
    let retry = m.opt("retry").and_then(|n| parse_retry(n, diags));
    let rollback = if allow_rollback {
        m.opt("rollback")
            .and_then(|n| parse_action(n, custom, false, diags))
            .map(Box::new)
    } else {
        None
    };
    let pos = m.pos();
    m.finish(diags);
    let kind = kind?;
    if kind == ActionType::EscalatePriority {
        check_escalation(node.pos, &parameters, diags);
    }
    (diags.error_count() == before).then_some(ActionSpec {
        kind,
        parameters,
        timeout_ms,
        retry,
        rollback,
        pos,
    })
}

fn check_escalation(
    pos: Pos,
    params: &serde_json::Map<String, serde_json::Value>,
    diags: &mut Diagnostics,
) {
    let p = params.get("new_priority");
    let i = params.get("new_impact");
    if p.is_none() && i.is_none() {
        diags.emit(
            Code::ActionEscalationEmpty,
            pos,
            "`escalate_priority` needs `new_priority` or `new_impact` in its parameters",
        );
    }
    let check = |key: &str,
                 value: Option<&serde_json::Value>,
                 valid: bool,
                 names: Vec<&str>,
                 diags: &mut Diagnostics| {
        if let (Some(v), false) = (value, valid) {
            diags.emit(
                Code::ActionEscalationValue,
                pos,
                format!("`{key}` must be one of {}, found {v}", names.join(", ")),
            );
        }
    };
    let p_ok = p
        .and_then(|v| v.as_str())
        .and_then(Priority::parse)
        .is_some();
    check("new_priority", p, p_ok, Priority::names().collect(), diags);
    let i_ok = i.and_then(|v| v.as_str()).and_then(Impact::parse).is_some();
    check("new_impact", i, i_ok, Impact::names().collect(), diags);
}

/// Reads the optional integer `key` of `m`, checked by `check`
/// ([`positive`], [`non_negative`]).
fn int_key(
    m: &mut MapReader<'_>,
    key: &str,
    check: fn(&Node, &str, &mut Diagnostics) -> Option<u64>,
    diags: &mut Diagnostics,
) -> Option<u64> {
    m.opt(key).and_then(|n| check(n, key, diags))
}

fn positive(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<u64> {
    let v = reader::int(node, key, diags)?;
    if v <= 0 {
        diags.emit(
            Code::ActionNotPositive,
            node.pos,
            format!("`{key}` must be a positive integer, found {v}"),
        );
        return None;
    }
    Some(v as u64)
}

fn non_negative(node: &Node, key: &str, diags: &mut Diagnostics) -> Option<u64> {
    let v = reader::int(node, key, diags)?;
    if v < 0 {
        diags.emit(
            Code::ActionNegative,
            node.pos,
            format!("`{key}` must not be negative, found {v}"),
        );
        return None;
    }
    Some(v as u64)
}

fn parse_retry(node: &Node, diags: &mut Diagnostics) -> Option<RetrySpec> {
    let mut m = MapReader::new(node, "retry", RETRY_KEYS, diags)?;
    let before = diags.error_count();
    let max_attempts = int_key(&mut m, "max_attempts", positive, diags).unwrap_or(3);
    let backoff_strategy = m
        .opt("backoff_strategy")
        .and_then(|n| {
            let s = reader::string(n, "backoff_strategy", diags)?;
            let b = match s {
                "exponential" => Some(BackoffStrategy::Exponential),
                "linear" => Some(BackoffStrategy::Linear),
                "fixed" => Some(BackoffStrategy::Fixed),
                _ => None,
            };
            if b.is_none() {
                diags.emit(
                    Code::ActionUnknownBackoff,
                    n.pos,
                    format!(
                        "unknown backoff_strategy `{s}`: expected exponential, linear or fixed{}",
                        did_you_mean(s, ["exponential", "linear", "fixed"])
                    ),
                );
            }
            b
        })
        .unwrap_or(BackoffStrategy::Exponential);
    let initial_delay_ms = int_key(&mut m, "initial_delay_ms", non_negative, diags).unwrap_or(100);
    let max_delay_ms = int_key(&mut m, "max_delay_ms", non_negative, diags).unwrap_or(30_000);
    let retry_conditions = m
        .opt("retry_conditions")
        .and_then(|n| reader::string_list(n, "retry_conditions", diags))
        .unwrap_or_default();
    let circuit_breaker_threshold = int_key(&mut m, "circuit_breaker_threshold", positive, diags)
        .map(|v| v.min(u64::from(u32::MAX)) as u32);
    if max_delay_ms < initial_delay_ms {
        diags.emit(
            Code::ActionDelayOrder,
            m.pos(),
            "`max_delay_ms` must be >= `initial_delay_ms`",
        );
    }
    m.finish(diags);
    (diags.error_count() == before).then_some(RetrySpec {
        max_attempts: max_attempts.min(u64::from(u32::MAX)) as u32,
        backoff_strategy,
        initial_delay_ms,
        max_delay_ms,
        retry_conditions,
        circuit_breaker_threshold,
    })
}
