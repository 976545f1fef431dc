//! CreatorFlow: an embeddable order-workflow engine for TikTok Shop creators.

#![warn(missing_docs)]

pub mod actions;
mod clock;
pub mod diag;
pub mod machine;
pub mod model;
pub mod rules;
pub mod script;
pub mod viral;
pub mod yaml;

pub use clock::{Clock, ManualClock, SystemClock, parse_duration};
pub use model::{Order, OrderError};
