//! Local stand-ins of the outside world for CreatorFlow's tests, on
//! loopback only:
//!
//! - [`receiver`]: a receiver of the service's outbound `http` effects that
//!   verifies `X-CreatorFlow-Signature`, counts deliveries per idempotency
//!   key, and fails on purpose when told to;
//! - [`tiktok`]: a mock of TikTok Shop's token endpoints and Open API
//!   (authorized shops, orders, fulfillment, inventory) with expiring,
//!   rotating tokens and rate-limit answers.
//!
//! Independent of the `creatorflow` crate: it checks the wire format as a
//! third party would, not our own code against itself.

pub mod receiver;
pub mod tiktok;
