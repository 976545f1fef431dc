//! A receiver of outbound `http` effects (see the crate docs).
