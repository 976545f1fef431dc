//! TikTok Shop: webhook verification and parsing, the mapping of events to
//! engine commands, the Order API (request signing, order mapping, a client
//! trait with an HTTP implementation and an in-memory fake), the processor
//! that applies events to the engines, and reconciliation.
//!
//! Per shop: each call names the tenant and shop; `TokenManager` keeps the
//! shops' tokens (stored, refreshed before expiry and once after an
//! expired-token answer) and connects shops (authorization code → tokens);
//! `effects` binds action types to real effects on TikTok (ship a package,
//! update inventory, read an order's status).
//!
//! Everything follows the spec's `tiktok-shop.md` (TikTok Shop Partner
//! Center, API version 202309), not the original plan's guessed payload.
//! `signature`, `event` and `api` are pure (no I/O); the HTTP server
//! (`creatorflow serve`) builds on them.

#[cfg(feature = "tiktok-api")]
mod access;
mod api;
#[cfg(feature = "tiktok-api")]
mod auth;
mod client;
#[cfg(feature = "tiktok-api")]
mod effects;
mod event;
#[cfg(feature = "tiktok-api")]
mod http;
mod ops;
mod processor;
mod reconcile;
mod signature;

#[cfg(feature = "tiktok-api")]
pub use access::{
    AccessSource, AuthError, DEFAULT_AUTHORIZE_URL, ShopAccess, StaticAccess, TokenConfig,
    TokenManager, per_shop_api,
};
pub use api::{
    Address, ApiOrder, ApiOrderError, District, LineItem, OrderDetailResponse, Payment,
    sign_request,
};
#[cfg(feature = "tiktok-api")]
pub use auth::{AuthClient, DEFAULT_AUTH_BASE};
pub use client::{
    ApiError, EXPIRED_TOKEN, FakeOrderApi, OrderApi, OrderPage, RATE_LIMITED, SearchQuery, Shop,
};
#[cfg(feature = "tiktok-api")]
pub use effects::{ALREADY_SHIPPED, ORDER_CANCELLED, TikTokEffect};
pub use event::{
    CancelStatus, Command, DedupKey, Envelope, EventError, OrderStatus, Topic, command_for,
};
#[cfg(feature = "tiktok-api")]
pub use http::{DEFAULT_BASE_URL, HttpConfig, HttpOrderApi};
pub use ops::TikTokOp;
pub use processor::{Applied, ProcessError, Processor, ProcessorStats, command_for_api_order};
pub use reconcile::{PollConfig, PollReport, cursor_name, poll_all, poll_shop};
pub use signature::{sign_webhook, verify_webhook};
