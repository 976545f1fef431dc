//! The declarative state machine.
