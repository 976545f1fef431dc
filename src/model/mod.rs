//! The order record (the plan's `Order`), its enums, and validation of input.
//!
//! Orders arrive as JSON (one object per line in batches). Parsing is strict:
//! unknown keys are refused, and every error names the field it is about
//! (`quantity must be > 0`, `customer_tier: unknown variant ...`). Prices are
//! exact decimals, accepted as a JSON number or a decimal string and never
//! rounded through a float.

pub(crate) mod action;
mod enums;
pub(crate) mod facts;
mod json_text;
mod state;

pub(crate) use enums::string_enum;
pub use enums::{AutomationStatus, CustomerTier, Impact, Priority, ViralIndicatorType};
pub use facts::{FactType, Field, FieldKind};
pub use json_text::JsonText;
pub use state::StateName;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order as the engine sees it. Field names are the plan's, in snake_case,
/// so that rule files, JSON and stored rows read the same everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Assigned on ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The creator (tenant) who owns the order; required when stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// TikTok Shop's order id; unique per `user_id`; the idempotency key of ingest.
    pub tiktok_order_id: String,
    /// The TikTok shop the order was placed in (a tenant may have several);
    /// effects on TikTok Shop act in this shop with its own access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    /// Current workflow state.
    #[serde(default)]
    pub current_state: StateName,
    /// The state before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<StateName>,
    /// Processing lane.
    #[serde(default)]
    pub priority: Priority,
    /// Business impact.
    #[serde(default)]
    pub impact: Impact,
    /// Dashboard status; follows the state.
    #[serde(default)]
    pub automation_status: AutomationStatus,
    /// The buyer's handle.
    pub customer_handle: String,
    /// The buyer's tier.
    #[serde(default)]
    pub customer_tier: CustomerTier,
    /// The buyer's id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Product name.
    pub product_name: String,
    /// Product id.
    pub product_id: String,
    /// Units ordered (> 0).
    pub quantity: u32,
    /// The order total (>= 0), exact.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub price: Decimal,
    /// Time spent processing so far.
    #[serde(default)]
    pub processing_time_ms: u64,
    /// 0..=100.
    #[serde(default)]
    pub automation_score: u8,
    /// 0..=100; follows the state.
    #[serde(default)]
    pub flow_progress: u8,
    /// Viral signals attached to the order.
    #[serde(default)]
    pub viral_indicators: Vec<ViralIndicator>,
    /// The product's current order rate.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision")]
    pub orders_per_hour_current: Decimal,
    /// Current rate over baseline.
    #[serde(default = "one", with = "rust_decimal::serde::arbitrary_precision")]
    pub velocity_multiplier: Decimal,
    /// Where the order ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_location: Option<String>,
    /// Preferred carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier_preference: Option<String>,
    /// Shipping zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_zone: Option<String>,
    /// Ship-by time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the order was placed.
    pub created_at: DateTime<Utc>,
    /// Last update; `created_at` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Last state change; `created_at` when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_changed_at: Option<DateTime<Utc>>,
    /// The creator, for nested rule fields such as `user.creator_tier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
}

fn one() -> Decimal {
    Decimal::ONE
}

/// A viral signal attached to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViralIndicator {
    /// What kind of signal.
    #[serde(rename = "type")]
    pub kind: ViralIndicatorType,
    /// Who raised it.
    pub source: String,
    /// 0..=1.
    pub confidence: f64,
    /// Expected demand multiplier.
    pub impact_multiplier: f64,
    /// When it was raised.
    pub detected_at: DateTime<Utc>,
    /// Free-form details.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The creator who owns an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRef {
    /// Creator id.
    pub id: String,
    /// Creator e-mail.
    #[serde(default)]
    pub email: String,
    /// Creator tier.
    #[serde(default)]
    pub creator_tier: String,
}

/// Why an order was refused. Every variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The JSON did not parse, or a field had the wrong type or an unknown value.
    #[error("{message}")]
    Json {
        /// The field path (`quantity`, `viral_indicators[0].confidence`), or `.` for the whole object.
        field: String,
        /// What is wrong, prefixed by the field.
        message: String,
    },
    /// A field's value is out of range.
    #[error("{field} {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong (`must be > 0`).
        message: String,
    },
}

impl OrderError {
    /// The field the error is about.
    pub fn field(&self) -> &str {
        match self {
            OrderError::Json { field, .. } => field,
            OrderError::Invalid { field, .. } => field,
        }
    }
}

impl Order {
    /// Parses and validates one order from JSON.
    ///
    /// ```
    /// use creatorflow::Order;
    /// let o = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@a",
    ///     "product_name":"Lamp","product_id":"p1","quantity":2,"price":49.99,
    ///     "created_at":"2025-03-01T12:00:00Z"}"#).unwrap();
    /// assert_eq!(o.price.to_string(), "49.99");
    /// let e = Order::from_json(r#"{"tiktok_order_id":"1","customer_handle":"@a",
    ///     "product_name":"Lamp","product_id":"p1","quantity":0,"price":1,
    ///     "created_at":"2025-03-01T12:00:00Z"}"#).unwrap_err();
    /// assert_eq!(e.to_string(), "quantity must be > 0");
    /// ```
    pub fn from_json(text: &str) -> Result<Order, OrderError> {
        // The fast path parses directly; only a failing line is parsed again
        // with path tracking, to name the field in the error.
        let mut order: Order = match serde_json::from_str(text) {
            Ok(o) => o,
            Err(_) => return Err(Self::json_error(text)),
        };
        order.normalize();
        order.validate()?;
        Ok(order)
    }

    /// The located error for JSON that failed to parse as an order.
    fn json_error(text: &str) -> OrderError {
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed: Result<Order, _> = serde_path_to_error::deserialize(&mut de);
        match parsed.map(|_| de.end()) {
            Ok(Ok(())) => OrderError::Json {
                field: ".".into(),
                message: "invalid order".into(),
            },
            Ok(Err(e)) => OrderError::Json {
                field: ".".into(),
                message: e.to_string(),
            },
            Err(e) => {
                let mut field = e.path().to_string();
                // A key written `""` has an empty path: the object is meant.
                if field.is_empty() {
                    field = ".".into();
                }
                let inner = e.into_inner();
                let message = if field == "." {
                    inner.to_string()
                } else {
                    format!("{field}: {inner}")
                };
                OrderError::Json { field, message }
            }
        }
    }

    /// Fills the defaults that depend on other fields (`updated_at` and
    /// `state_changed_at` default to `created_at`).
    pub fn normalize(&mut self) {
        self.updated_at.get_or_insert(self.created_at);
        self.state_changed_at.get_or_insert(self.created_at);
    }

    /// Checks every range the model sets, naming the first field out of range.
    pub fn validate(&self) -> Result<(), OrderError> {
        fn bad(field: &'static str, message: &str) -> Result<(), OrderError> {
            Err(OrderError::Invalid {
                field,
                message: message.to_owned(),
            })
        }
        if self.tiktok_order_id.trim().is_empty() {
            return bad("tiktok_order_id", "must not be empty");
        }
        if self.customer_handle.trim().is_empty() {
            return bad("customer_handle", "must not be empty");
        }
        if self.product_id.trim().is_empty() {
            return bad("product_id", "must not be empty");
        }
        if self.product_name.trim().is_empty() {
            return bad("product_name", "must not be empty");
        }
        if self.quantity == 0 {
            return bad("quantity", "must be > 0");
        }
        if self.price.is_sign_negative() && !self.price.is_zero() {
            return bad("price", "must be >= 0");
        }
        if self.automation_score > 100 {
            return bad("automation_score", "must be between 0 and 100");
        }
        if self.flow_progress > 100 {
            return bad("flow_progress", "must be between 0 and 100");
        }
        if self.orders_per_hour_current.is_sign_negative()
            && !self.orders_per_hour_current.is_zero()
        {
            return bad("orders_per_hour_current", "must be >= 0");
        }
        if self.velocity_multiplier.is_sign_negative() && !self.velocity_multiplier.is_zero() {
            return bad("velocity_multiplier", "must be >= 0");
        }
        for v in &self.viral_indicators {
            if !(0.0..=1.0).contains(&v.confidence) {
                return bad("viral_indicators.confidence", "must be between 0 and 1");
            }
            if !v.impact_multiplier.is_finite() || v.impact_multiplier < 0.0 {
                return bad(
                    "viral_indicators.impact_multiplier",
                    "must be a number >= 0",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
