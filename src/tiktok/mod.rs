//! TikTok Shop: webhook verification and parsing, the mapping of events to
//! engine commands, and the Order API's request signing and order mapping.
//!
//! Everything here follows the spec's `tiktok-shop.md` (TikTok Shop
//! Partner Center, API version 202309), not the original plan's guessed
//! payload. This module is pure (no I/O): the HTTP server and the API client
//! build on it.

mod api;
mod event;
mod signature;

pub use api::{ApiOrder, ApiOrderError, OrderDetailResponse, sign_request};
pub use event::{
    CancelStatus, Command, DedupKey, Envelope, EventError, OrderStatus, Topic, command_for,
};
pub use signature::{sign_webhook, verify_webhook};
