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

/// A backend's armed fault: shared by the store's clones, taken once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fault(std::sync::Arc<std::sync::Mutex<Option<FaultPoint>>>);

impl Fault {
    /// Arms a one-shot fault at `point`.
    pub(crate) fn arm(&self, point: FaultPoint) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(point);
    }

    /// Whether a fault is armed at `point` (disarming it).
    pub(crate) fn take(&self, point: FaultPoint) -> bool {
        let mut fault = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *fault == Some(point) {
            *fault = None;
            true
        } else {
            false
        }
    }
}
