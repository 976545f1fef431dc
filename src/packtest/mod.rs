//! Tests next to the rules: case files that say what a pack decides for
//! given orders, loaded as strictly as a rule file and checked against it
//! (`creatorflow test`; the spec's `rules.md`, "Tools for rule authors").
//!
//! A pack directory may hold `tests/*.yaml`; each file is
//!
//! ```yaml
//! cases:
//!   - name: vip orders skip the queue
//!     now: 2025-06-12T10:00:00Z     # optional; default: the order's created_at
//!     enrich: false                 # optional; true runs viral detection first
//!     history:                      # optional: earlier orders, feeding window facts
//!       - {tiktok_order_id: "h1", customer_handle: "@a", ...}
//!     order: {tiktok_order_id: "1", customer_tier: vip, ...}
//!     expect:                       # every key optional; only what is given is checked
//!       matched: [vip-fast-track]   # exactly these, in evaluation order
//!       fired: [vip-fast-track]     # these among the matched (order-free)
//!       not_fired: [high-value-order]
//!       priority: high
//!       impact: HIGH
//!       actions: [enable_fast_track] # these among the actions (order-free)
//!       errors: 0                   # how many rules errored
//! ```
//!
//! `history` and `order` are orders in the format of `creatorflow eval` (a
//! YAML mapping instead of a JSON line). Each case runs on a fresh
//! [`Evaluator`]: its history is recorded, oldest first as written, into the
//! window facts (and, with `enrich: true`, into the viral enricher) without
//! being evaluated, so it neither counts towards rate limits nor statistics;
//! then the order is evaluated at `now` (the order's `created_at` by
//! default), exactly as `eval` evaluates a line.
//!
//! Loading reports every problem of every file at once, located
//! (`file:line:col`, codes `E07xx`, `docs/diagnostics.md`): besides the YAML
//! shape, an order that is not valid, a rule id the pack does not have, an
//! action type no rule of the pack takes, a rule asked both to fire and not
//! to fire, two cases of one name.
//!
//! ```
//! use std::sync::Arc;
//! use creatorflow::packtest::{CaseSet, run_case};
//! use creatorflow::rules::RulePack;
//!
//! let pack = Arc::new(RulePack::shipped());
//! let cases = CaseSet::load_sources(&pack, &[("vip.yaml".into(), r#"
//! cases:
//!   - name: a VIP goes to the high lane
//!     order: {tiktok_order_id: "1", customer_handle: "@ana", customer_tier: vip,
//!             product_name: Lamp, product_id: p1, quantity: 1, price: "20.00",
//!             created_at: 2025-03-01T12:00:00Z}
//!     expect: {fired: [vip-fast-track], priority: high}
//! "#.into())]).unwrap();
//! let result = run_case(&pack, &cases.cases[0]);
//! assert!(result.passed(), "{:?}", result.failures);
//! ```
//!
//! | file | what it is |
//! |---|---|
//! | `evaluator.rs` | [`Evaluator`]: optional viral enrichment, then the pack: what `eval` runs per order |
//! | `case.rs` | [`Case`] and [`Expect`], as a file says them, checked |
//! | `load.rs` | [`CaseSet`]: strict loading of case files against a pack |
//! | `run.rs` | [`run_case`]: a case's [`CaseResult`], its [`Failure`]s and explanations |

mod case;
mod evaluator;
mod load;
mod run;

pub use case::{Case, Expect};
pub use evaluator::Evaluator;
pub use load::{CaseError, CaseSet};
pub use run::{CaseResult, Failure, run_case};

/// The case files of the shipped pack (`rules/tests/` of this crate), built
/// into the crate: (file name, text).
pub(crate) const SHIPPED_TESTS: &[(&str, &str)] =
    &include!(concat!(env!("OUT_DIR"), "/shipped_rule_tests.rs"));
