//! The facts a condition can read: every field of the order's serialized
//! form, the derived facts and the window facts, each with a static type.
//!
//! A condition's `field` is resolved to a [`Field`] once, when the pack loads;
//! evaluation then reads the order's typed field directly, with no path
//! splitting, lookup or allocation.
//!
//! Derived facts beyond the rule-file specification's table:
//! `content_spike_confidence`, the highest `confidence` among the order's
//! `content_spike` indicators (missing when it has none): the shipped viral
//! rules trust the velocity detector through it (`rules/README.md`).

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

use super::Order;

/// The static type of a fact, as its serialized form shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactType {
    /// A string.
    Str,
    /// A string with a closed set of values.
    Enum(&'static [&'static str]),
    /// An integer.
    Int,
    /// An exact decimal number.
    Decimal,
    /// A floating-point number (derived facts).
    Float,
    /// An RFC 3339 time (a string in the serialized form).
    Time,
    /// A list of strings.
    StrList,
    /// A list of objects or an object, compared by JSON equality.
    Json,
}

impl FactType {
    /// Whether values of this type are JSON numbers.
    pub fn is_number(self) -> bool {
        matches!(self, FactType::Int | FactType::Decimal | FactType::Float)
    }

    /// Whether values of this type are JSON strings.
    pub fn is_string(self) -> bool {
        matches!(self, FactType::Str | FactType::Enum(_) | FactType::Time)
    }

    /// A name for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FactType::Str | FactType::Enum(_) => "a string",
            FactType::Int => "an integer",
            FactType::Decimal | FactType::Float => "a number",
            FactType::Time => "a time (a string)",
            FactType::StrList => "a list of strings",
            FactType::Json => "a list or object",
        }
    }
}

macro_rules! fields {
    ($($variant:ident = $name:literal : $ty:expr, $kind:ident;)+) => {
        /// A fact a condition can read.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Field { $($variant),+ }

        impl Field {
            /// Every fact, in the order of the serialized order, then derived, then window facts.
            pub const ALL: &'static [Field] = &[$(Field::$variant),+];

            /// The name a rule uses.
            pub const fn name(self) -> &'static str {
                match self { $(Field::$variant => $name),+ }
            }

            /// The fact's static type.
            pub const fn ty(self) -> FactType {
                match self { $(Field::$variant => $ty),+ }
            }

            /// Stored, derived or window fact.
            pub const fn kind(self) -> FieldKind {
                match self { $(Field::$variant => FieldKind::$kind),+ }
            }

            /// Resolves a rule's `field` path.
            pub fn lookup(name: &str) -> Option<Field> {
                match name { $($name => Some(Field::$variant),)+ _ => None }
            }
        }
    };
}

/// Where a fact comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A field of the order.
    Stored,
    /// Computed from the order and the evaluation time.
    Derived,
    /// Counted over the orders ingested so far; needs `time_window`.
    Window,
}

const PRIORITIES: &[&str] = &["high", "urgent", "standard", "automated"];
const IMPACTS: &[&str] = &["VIRAL", "HIGH", "MED", "AUTO"];
const TIERS: &[&str] = &["vip", "regular", "new"];
const AUTOMATION: &[&str] = &["Processing", "Shipped", "Delivered", "Manual Review"];

fields! {
    Id = "id": FactType::Str, Stored;
    UserId = "user_id": FactType::Str, Stored;
    TiktokOrderId = "tiktok_order_id": FactType::Str, Stored;
    CurrentState = "current_state": FactType::Str, Stored;
    PreviousState = "previous_state": FactType::Str, Stored;
    Priority = "priority": FactType::Enum(PRIORITIES), Stored;
    Impact = "impact": FactType::Enum(IMPACTS), Stored;
    AutomationStatus = "automation_status": FactType::Enum(AUTOMATION), Stored;
    CustomerHandle = "customer_handle": FactType::Str, Stored;
    CustomerTier = "customer_tier": FactType::Enum(TIERS), Stored;
    CustomerId = "customer_id": FactType::Str, Stored;
    ProductName = "product_name": FactType::Str, Stored;
    ProductId = "product_id": FactType::Str, Stored;
    Quantity = "quantity": FactType::Int, Stored;
    Price = "price": FactType::Decimal, Stored;
    ProcessingTimeMs = "processing_time_ms": FactType::Int, Stored;
    AutomationScore = "automation_score": FactType::Int, Stored;
    FlowProgress = "flow_progress": FactType::Int, Stored;
    ViralIndicators = "viral_indicators": FactType::Json, Stored;
    OrdersPerHourCurrent = "orders_per_hour_current": FactType::Decimal, Stored;
    VelocityMultiplier = "velocity_multiplier": FactType::Decimal, Stored;
    ShippingLocation = "shipping_location": FactType::Str, Stored;
    CarrierPreference = "carrier_preference": FactType::Str, Stored;
    ShippingZone = "shipping_zone": FactType::Str, Stored;
    Deadline = "deadline": FactType::Time, Stored;
    CreatedAt = "created_at": FactType::Time, Stored;
    UpdatedAt = "updated_at": FactType::Time, Stored;
    StateChangedAt = "state_changed_at": FactType::Time, Stored;
    User = "user": FactType::Json, Stored;
    UserRefId = "user.id": FactType::Str, Stored;
    UserEmail = "user.email": FactType::Str, Stored;
    UserCreatorTier = "user.creator_tier": FactType::Str, Stored;
    OrderValue = "order_value": FactType::Decimal, Derived;
    ViralIndicatorTypes = "viral_indicator_types": FactType::StrList, Derived;
    MinutesSinceCreated = "minutes_since_created": FactType::Float, Derived;
    HoursUntilDeadline = "hours_until_deadline": FactType::Float, Derived;
    ContentSpikeConfidence = "content_spike_confidence": FactType::Float, Derived;
    ProductOrders = "product_orders": FactType::Int, Window;
    CustomerOrders = "customer_orders": FactType::Int, Window;
    ProductUnits = "product_units": FactType::Int, Window;
}

/// A fact's value for one order, borrowed from it where possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fact<'a> {
    /// The field is absent or null.
    Missing,
    /// A string (or an enum's spelling).
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// An exact decimal.
    Decimal(Decimal),
    /// A float.
    Float(f64),
    /// A time.
    Time(DateTime<Utc>),
    /// `viral_indicator_types`: the indicators, read through their type.
    IndicatorTypes(&'a [super::ViralIndicator]),
    /// A value compared by JSON equality (`viral_indicators`, `user`).
    Json(&'a Order, Field),
}

impl Fact<'_> {
    /// The fact as JSON, for explanations and the generic comparison path.
    pub(crate) fn to_json(self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Fact::Missing => Value::Null,
            Fact::Str(s) => Value::String(s.to_owned()),
            Fact::Int(i) => Value::from(i),
            Fact::Decimal(d) => serde_json::from_str(&d.to_string()).unwrap_or(Value::Null),
            Fact::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Fact::Time(t) => Value::String(format_time(t)),
            Fact::IndicatorTypes(list) => Value::Array(
                list.iter()
                    .map(|v| Value::String(v.kind.as_str().to_owned()))
                    .collect(),
            ),
            Fact::Json(order, Field::User) => {
                serde_json::to_value(&order.user).unwrap_or(Value::Null)
            }
            Fact::Json(order, Field::Id) => order
                .id
                .map_or(Value::Null, |id| Value::String(id.to_string())),
            Fact::Json(order, _) => {
                serde_json::to_value(&order.viral_indicators).unwrap_or(Value::Null)
            }
        }
    }
}

/// A time as the serialized order writes it (`2025-03-01T12:00:00Z`, fractions only when present).
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn opt_str(s: &Option<String>) -> Fact<'_> {
    s.as_deref().map_or(Fact::Missing, Fact::Str)
}

fn opt_time(t: Option<DateTime<Utc>>) -> Fact<'static> {
    t.map_or(Fact::Missing, Fact::Time)
}

/// Reads a stored or derived fact of `order` at evaluation time `now` (in ms
/// since the epoch). Window facts are not read here: the evaluator supplies them.
#[inline]
pub(crate) fn read(order: &Order, field: Field, now_ms: i64) -> Fact<'_> {
    match field {
        Field::Id => order
            .id
            .as_ref()
            .map_or(Fact::Missing, |_| Fact::Json(order, Field::Id)),
        Field::UserId => opt_str(&order.user_id),
        Field::TiktokOrderId => Fact::Str(&order.tiktok_order_id),
        Field::CurrentState => Fact::Str(order.current_state.as_str()),
        Field::PreviousState => order
            .previous_state
            .as_ref()
            .map_or(Fact::Missing, |s| Fact::Str(s.as_str())),
        Field::Priority => Fact::Str(order.priority.as_str()),
        Field::Impact => Fact::Str(order.impact.as_str()),
        Field::AutomationStatus => Fact::Str(order.automation_status.as_str()),
        Field::CustomerHandle => Fact::Str(&order.customer_handle),
        Field::CustomerTier => Fact::Str(order.customer_tier.as_str()),
        Field::CustomerId => opt_str(&order.customer_id),
        Field::ProductName => Fact::Str(&order.product_name),
        Field::ProductId => Fact::Str(&order.product_id),
        Field::Quantity => Fact::Int(i64::from(order.quantity)),
        Field::Price | Field::OrderValue => Fact::Decimal(order.price),
        Field::ProcessingTimeMs => Fact::Int(order.processing_time_ms as i64),
        Field::AutomationScore => Fact::Int(i64::from(order.automation_score)),
        Field::FlowProgress => Fact::Int(i64::from(order.flow_progress)),
        Field::ViralIndicators => Fact::Json(order, Field::ViralIndicators),
        Field::OrdersPerHourCurrent => Fact::Decimal(order.orders_per_hour_current),
        Field::VelocityMultiplier => Fact::Decimal(order.velocity_multiplier),
        Field::ShippingLocation => opt_str(&order.shipping_location),
        Field::CarrierPreference => opt_str(&order.carrier_preference),
        Field::ShippingZone => opt_str(&order.shipping_zone),
        Field::Deadline => opt_time(order.deadline),
        Field::CreatedAt => Fact::Time(order.created_at),
        Field::UpdatedAt => opt_time(order.updated_at),
        Field::StateChangedAt => opt_time(order.state_changed_at),
        Field::User => order
            .user
            .as_ref()
            .map_or(Fact::Missing, |_| Fact::Json(order, Field::User)),
        Field::UserRefId => order
            .user
            .as_ref()
            .map_or(Fact::Missing, |u| Fact::Str(&u.id)),
        Field::UserEmail => order
            .user
            .as_ref()
            .map_or(Fact::Missing, |u| Fact::Str(&u.email)),
        Field::UserCreatorTier => order
            .user
            .as_ref()
            .map_or(Fact::Missing, |u| Fact::Str(&u.creator_tier)),
        Field::ViralIndicatorTypes => Fact::IndicatorTypes(&order.viral_indicators),
        Field::MinutesSinceCreated => {
            Fact::Float((now_ms - order.created_at.timestamp_millis()) as f64 / 60_000.0)
        }
        Field::HoursUntilDeadline => order.deadline.map_or(Fact::Missing, |d| {
            Fact::Float((d.timestamp_millis() - now_ms) as f64 / 3_600_000.0)
        }),
        Field::ContentSpikeConfidence => {
            content_spike_confidence(order).map_or(Fact::Missing, Fact::Float)
        }
        Field::ProductOrders | Field::CustomerOrders | Field::ProductUnits => Fact::Missing,
    }
}

/// `content_spike_confidence`: the highest `confidence` among the order's
/// `content_spike` indicators (the velocity detector's when enrichment set
/// one, or the host's), `None` when it has none. The shipped viral rules
/// trust the detector through it.
#[inline]
pub(crate) fn content_spike_confidence(order: &Order) -> Option<f64> {
    order
        .viral_indicators
        .iter()
        .filter(|i| i.kind == super::ViralIndicatorType::ContentSpike)
        .map(|i| i.confidence)
        .reduce(f64::max)
}
