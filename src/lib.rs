//! CreatorFlow: an embeddable order-workflow engine for TikTok Shop creators.
//!
//! The core is two declarative pieces a host loads once and then runs on
//! every order:
//!
//! - a **rule pack** ([`rules`]): YAML rules with typed conditions, AND / OR /
//!   CUSTOM (sandboxed Rhai) logic, priorities, rate limits, validity windows,
//!   sliding-window facts, statistics and explanations;
//! - a **state machine** ([`machine`]): the order lifecycle, with guards,
//!   actions, rollbacks and timeouts.
//!
//! # Quick start
//!
//! ```
//! use std::sync::Arc;
//! use creatorflow::{Order, machine::Machine, rules::{RuleEngine, RulePack}};
//!
//! let mut rules = RuleEngine::new(Arc::new(RulePack::shipped()));
//! let machine = Machine::default_order_workflow();
//!
//! let order = Order::from_json(r#"{"tiktok_order_id":"576461413038785752",
//!     "customer_handle":"@ana","customer_tier":"vip","product_name":"Lamp",
//!     "product_id":"p1","quantity":1,"price":"250.00",
//!     "created_at":"2025-06-12T10:00:00Z"}"#).unwrap();
//!
//! let decision = rules.evaluate(&order, None);
//! let report = decision.report(rules.pack(), &order.tiktok_order_id);
//! assert_eq!(report.priority.as_str(), "high");          // VIP fast track
//! assert!(report.matched.contains(&"high-value-order"));
//!
//! let plan = machine.transition(&order, "validated", order.created_at).unwrap();
//! assert_eq!(plan.progress, 25);
//! ```
//!
//! Rule files follow the spec's `rules.md`; the machine format is documented
//! in [`machine`]. Where the spec is silent, the choices are documented in
//! [`rules`] and in `ARCHITECTURE.md`.
//!
//! # Layers
//!
//! The modules form layers; a lower one never names a higher one
//! (`tests/tidy.rs` checks it, its table is the reference):
//!
//! - the **core**, pure and synchronous: [`model`], [`rules`], [`machine`],
//!   [`viral`], [`packtest`] (tests next to the rules), [`diag`] and the internals `script` (the Rhai sandbox) and
//!   `yaml` (the located YAML reader). No storage, no runtime, no `tokio`;
//! - [`actions`]: handlers and the executor (async) of the actions the core
//!   declares (the action types and specs live in the core, re-exported here), knowing nothing of storage or of the loops that drive it;
//! - [`store`]: orders, queue and inbox, over [`model`] and [`actions`]
//!   types only;
//! - [`engine`], [`service`] (the runtime a host starts) and [`tiktok`] at
//!   the top, using everything below.
//!
//! # Features
//!
//! `sqlite`, `postgres` (the store backends), `tiktok-api` (the HTTP
//! Order API client) and `http-effect` (actions delivered as signed POSTs,
//! [`actions::HttpEffect`]) are on by default; the library builds without
//! any of them. `internals` makes `script` and `yaml` public for the workspace's
//! own tools (the simulator's scenario loader); they are not API.

#![warn(missing_docs)]

pub mod actions;
mod clock;
pub mod diag;
pub mod engine;
pub mod machine;
pub mod model;
pub mod packtest;
pub mod rules;
pub mod service;
pub mod store;
pub mod tiktok;
pub mod viral;

// Internals (rhai's way): the sandbox and the located YAML tree the loaders
// are built on are not API; the `internals` feature exposes them to the
// workspace's own tools (the scenario loader of the simulator), unstable.
#[cfg(feature = "internals")]
pub mod script;
#[cfg(not(feature = "internals"))]
mod script;
#[cfg(feature = "internals")]
pub mod yaml;
#[cfg(not(feature = "internals"))]
mod yaml;

pub use clock::{Clock, ManualClock, SystemClock, parse_duration};
pub use engine::{BuildError, Engine, EngineBuilder, EngineError};
pub use machine::{Machine, TransitionError, TransitionPlan};
pub use model::{Order, OrderError};
pub use rules::{Decision, PackError, RuleEngine, RulePack};
pub use service::{Running, Service};
pub use store::{AnyStore, Store, StoreError};

/// A hash map with foldhash's fast hasher (randomly seeded per map), for
/// keys that are ours (ids, state names, action types), not attacker-chosen
/// strings.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
