//! [`JsonText`]: a JSON document kept as its text.

use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A JSON document kept as its text: written to the store as is, shared
/// without copying (cloning is a reference count), parsed only when a
/// reader asks for a [`Value`]. The history's `actions_executed` is one: a
/// step serialises its action records once, straight to text, instead of
/// building a `Value` tree that every layer would copy.
///
/// Always valid JSON: built by serialising ([`JsonText::encode`], `From<Value>`)
/// or by checking ([`JsonText::parse`]).
///
/// ```
/// use creatorflow::model::JsonText;
/// let j = JsonText::encode(&[("type", "validate_address")]).unwrap();
/// assert_eq!(j.as_str(), r#"[["type","validate_address"]]"#);
/// assert_eq!(j.to_value()[0][1], "validate_address");
/// assert_eq!(JsonText::empty_array().as_str(), "[]");
/// assert!(JsonText::parse("{oops").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// `[]`, shared.
    pub fn empty_array() -> Self {
        static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
        JsonText(EMPTY.get_or_init(|| Arc::from("[]")).clone())
    }

    /// `value` serialised to JSON text.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(|s| JsonText(s.into()))
    }

    /// `text`, checked to be one JSON document.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(JsonText(text.into()))
    }

    /// The text, shared (no copy): what a statement binds without copying
    /// it first.
    pub fn shared(&self) -> Arc<str> {
        self.0.clone()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document as a [`Value`] (parsed now).
    pub fn to_value(&self) -> Value {
        // Valid by construction; `Null` is unreachable in practice.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

impl Default for JsonText {
    fn default() -> Self {
        JsonText::empty_array()
    }
}

impl From<Value> for JsonText {
    fn from(value: Value) -> Self {
        JsonText(value.to_string().into())
    }
}

impl From<&Value> for JsonText {
    fn from(value: &Value) -> Self {
        JsonText(value.to_string().into())
    }
}

impl PartialEq<Value> for JsonText {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serialises as the JSON document itself (not as a string).
impl Serialize for JsonText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.0.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}
