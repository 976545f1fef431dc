//! TikTok Shop: webhook verification and parsing, the mapping of events to
//! engine commands, the Order API (request signing, order mapping, a client
//! trait with an HTTP implementation and an in-memory fake), the processor
//! that applies events to the engines, and reconciliation.
//!
//! Everything follows the spec's `tiktok-shop.md` (TikTok Shop Partner
//! Center, API version 202309), not the original plan's guessed payload.
//! `signature`, `event` and `api` are pure (no I/O); the HTTP server
//! (`creatorflow serve`) builds on them.

mod api;
mod client;
mod event;
#[cfg(feature = "tiktok-api")]
mod http;
mod processor;
mod reconcile;
mod signature;

pub use api::{
    Address, ApiOrder, ApiOrderError, District, LineItem, OrderDetailResponse, Payment,
    sign_request,
};
pub use client::{ApiError, FakeOrderApi, OrderApi, OrderPage, SearchQuery, Shop};
pub use event::{
    CancelStatus, Command, DedupKey, Envelope, EventError, OrderStatus, Topic, command_for,
};
#[cfg(feature = "tiktok-api")]
pub use http::{DEFAULT_BASE_URL, HttpConfig, HttpOrderApi};
pub use processor::{Applied, ProcessError, Processor, ProcessorStats, command_for_api_order};
pub use reconcile::{PollConfig, PollReport, cursor_name, poll_all, poll_shop};
pub use signature::{sign_webhook, verify_webhook};
