//! State names: short strings, stored inline (no allocation for names up to 24 bytes).

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// The name of a workflow state (`received`, `shipped`, ...). States are
/// declared by the machine file, so the name is a string rather than a closed enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StateName(CompactString);

impl StateName {
    /// A state name.
    pub fn new(name: &str) -> Self {
        StateName(CompactString::new(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for StateName {
    /// `received`, the initial state of the default workflow.
    fn default() -> Self {
        StateName::new("received")
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StateName {
    fn from(s: &str) -> Self {
        StateName::new(s)
    }
}

impl PartialEq<str> for StateName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StateName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
