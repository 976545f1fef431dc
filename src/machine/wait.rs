//! States that wait for the world: `waits_for:`, an external confirmation
//! (TikTok's `IN_TRANSIT` / `DELIVERED`, or a carrier's) that moves an order
//! on instead of the engine's own schedule.
//!
//! The machine only declares the wait and checks it makes sense (a waiting
//! state is left by an automatic step, so it is neither terminal nor a
//! manual-review state); whether the engine honours it is the engine's
//! choice (`EngineBuilder::external_events`): the simulator, with a simulated
//! carrier, moves such orders on as any other.

use std::fmt;

/// What a state waits for (`waits_for:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WaitFor {
    /// `in_transit`: the parcel is with the carrier (TikTok's `IN_TRANSIT`,
    /// or a carrier's pickup confirmation).
    InTransit,
    /// `delivered`: the parcel reached the buyer (TikTok's `DELIVERED`, or
    /// a carrier's delivery confirmation).
    Delivered,
}

impl WaitFor {
    /// Every value, in the order files are told about them.
    pub const ALL: &'static [WaitFor] = &[WaitFor::InTransit, WaitFor::Delivered];

    /// The value's name in files.
    pub const fn as_str(self) -> &'static str {
        match self {
            WaitFor::InTransit => "in_transit",
            WaitFor::Delivered => "delivered",
        }
    }

    /// The value a file names, if it is one.
    pub fn parse(name: &str) -> Option<WaitFor> {
        Self::ALL.iter().copied().find(|w| w.as_str() == name)
    }

    /// The names files may use.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|w| w.as_str())
    }
}

impl fmt::Display for WaitFor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::WaitFor;

    #[test]
    fn names_parse_back() {
        for w in WaitFor::ALL {
            assert_eq!(WaitFor::parse(w.as_str()), Some(*w));
            assert_eq!(w.to_string(), w.as_str());
        }
        assert_eq!(WaitFor::parse("IN_TRANSIT"), None);
        assert_eq!(
            WaitFor::names().collect::<Vec<_>>(),
            ["in_transit", "delivered"]
        );
    }
}
