//! Decoding stored rows, once for every SQL backend: a backend says how to
//! read one column ([`Columns`]); the mapping of an `orders` row to a
//! [`StoredOrder`] and the checks on stored values live here.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::logic::to_u64;
use super::{OrderId, StoreError, StoredOrder};
use crate::model::{
    AutomationStatus, CustomerTier, Impact, Order, Priority, StateName, UserRef, ViralIndicator,
};

/// How a backend reads the columns of one row.
pub(crate) trait Columns {
    /// A non-NULL text column.
    fn text(&self, col: &str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// An integer column.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// A boolean column.
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
    /// An order id column.
    fn id(&self, col: &str) -> Result<OrderId, StoreError>;
    /// A nullable time column.
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// A time column that is never NULL.
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(col)?
            .ok_or_else(|| StoreError::database(format!("stored {col} is NULL")))
    }
}

/// Serializes a value for a JSON column.
pub(crate) fn json<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::invalid(format!("{what} cannot be stored as JSON: {e}")))
}

/// Reads a JSON column (as text).
/// A JSON column read as [`JsonText`](super::JsonText), checked.
pub(crate) fn json_text(text: &str, what: &str) -> Result<super::JsonText, StoreError> {
    super::JsonText::parse(text)
        .map_err(|e| StoreError::database(format!("stored {what} is not valid JSON: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} is not valid JSON: {e}")))
}

/// Reads a stored enum spelling.
pub(crate) fn parse_enum<T>(
    text: &str,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::database(format!("stored {what} `{text}` is unknown")))
}

/// Reads a stored exact decimal.
pub(crate) fn decimal(text: &str, what: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text)
        .map_err(|e| StoreError::database(format!("stored {what} `{text}` is not a decimal: {e}")))
}

/// Reads an integer column into a narrower type.
fn small<T: TryFrom<i64>>(row: &impl Columns, col: &str) -> Result<T, StoreError> {
    let v = row.int(col)?;
    T::try_from(v).map_err(|_| StoreError::database(format!("stored {col} {v} is out of range")))
}

/// Decodes an `orders` row (the columns every backend selects for an order).
pub(crate) fn order(row: &impl Columns) -> Result<StoredOrder, StoreError> {
    let id = row.id("id")?;
    let text = |col: &str| row.text(col);
    let opt = |col: &str| row.opt_text(col);
    let user: Option<UserRef> = opt("user_ref")?
        .map(|u| from_json(&u, "user_ref"))
        .transpose()?;
    let viral_indicators: Vec<ViralIndicator> =
        from_json(&text("viral_indicators")?, "viral_indicators")?;
    let order = Order {
        id: Some(id),
        user_id: Some(text("user_id")?),
        tiktok_order_id: text("tiktok_order_id")?,
        current_state: StateName::new(&text("current_state")?),
        previous_state: opt("previous_state")?.map(|s| StateName::new(&s)),
        priority: parse_enum(&text("priority")?, Priority::parse, "priority")?,
        impact: parse_enum(&text("impact")?, Impact::parse, "impact")?,
        automation_status: parse_enum(
            &text("automation_status")?,
            AutomationStatus::parse,
            "automation_status",
        )?,
        customer_handle: text("customer_handle")?,
        customer_tier: parse_enum(
            &text("customer_tier")?,
            CustomerTier::parse,
            "customer_tier",
        )?,
        customer_id: opt("customer_id")?,
        product_name: text("product_name")?,
        product_id: text("product_id")?,
        quantity: small(row, "quantity")?,
        price: decimal(&text("price")?, "price")?,
        processing_time_ms: to_u64(row.int("processing_time_ms")?, "processing_time_ms")?,
        automation_score: small(row, "automation_score")?,
        flow_progress: small(row, "flow_progress")?,
        viral_indicators,
        orders_per_hour_current: decimal(
            &text("orders_per_hour_current")?,
            "orders_per_hour_current",
        )?,
        velocity_multiplier: decimal(&text("velocity_multiplier")?, "velocity_multiplier")?,
        shipping_location: opt("shipping_location")?,
        carrier_preference: opt("carrier_preference")?,
        shipping_zone: opt("shipping_zone")?,
        deadline: row.opt_time("deadline")?,
        created_at: row.time("created_at")?,
        updated_at: Some(row.time("updated_at")?),
        state_changed_at: Some(row.time("state_changed_at")?),
        user,
    };
    Ok(StoredOrder {
        id,
        version: to_u64(row.int("version")?, "version")?,
        terminal: row.flag("terminal")?,
        order,
    })
}
