//! Fault injection for the conformance suite (not part of the public API).

/// Where an injected fault strikes.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultPoint {
    /// In the next transition write, after the orders are updated and
    /// before the history rows are inserted.
    AfterOrderUpdate,
}

/// Backends that can be made to fail at a chosen point, to prove that a
/// failure leaves nothing half-written. Test support only.
#[doc(hidden)]
pub trait InjectFault {
    /// Arms a one-shot fault at `point`.
    fn inject_fault(&self, point: FaultPoint);
}

/// The error an injected fault produces.
pub(crate) fn injected() -> super::StoreError {
    super::StoreError::database("injected fault")
}
