//! Fuzz targets: one function per parser that takes untrusted bytes, runs
//! them through the real loader and checks its contract (never a panic,
//! never a hang; `Ok`, or a typed error whose diagnostics are located in the
//! file with a code that loader reports).
//!
//! The same functions are driven by the workspace's proptest runs
//! (`cli/tests/fuzz/`, short in CI) and by the AFL++ harness in `fuzz/`
//! (coverage-guided, `scripts/fuzz.sh TARGET MINUTES`); see `docs/fuzzing.md`.
//! A target returns a [`Violation`] when the contract is broken; a panic in
//! the parser propagates as it is, so that both drivers report it.

pub mod contract;
mod targets;

pub use contract::Violation;

/// A parser under fuzzing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A rule pack file (`PackLoader::load_str`).
    Rules,
    /// A state-machine file (`Machine::from_str`).
    Machine,
    /// A simulator scenario file (`Scenario::parse`).
    Scenario,
    /// The service configuration file (`config::load::parse`).
    Config,
    /// One order JSON line (`Order::from_json`).
    Order,
    /// A TikTok Shop webhook body (`Envelope::parse`, then its command and
    /// de-duplication key).
    Webhook,
}

impl Target {
    /// Every target, in a fixed order.
    pub const ALL: [Target; 6] = [
        Target::Rules,
        Target::Machine,
        Target::Scenario,
        Target::Config,
        Target::Order,
        Target::Webhook,
    ];

    /// The target's name (the corpus directory `fuzz/corpus/NAME/`, the
    /// AFL binary `fuzz_NAME`).
    pub const fn name(self) -> &'static str {
        match self {
            Target::Rules => "rules",
            Target::Machine => "machine",
            Target::Scenario => "scenario",
            Target::Config => "config",
            Target::Order => "order",
            Target::Webhook => "webhook",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs `bytes` through the target's parser and checks its contract.
    pub fn run(self, bytes: &[u8]) -> Result<(), Violation> {
        match self {
            Target::Rules => targets::rules(bytes),
            Target::Machine => targets::machine(bytes),
            Target::Scenario => targets::scenario(bytes),
            Target::Config => targets::config(bytes),
            Target::Order => targets::order(bytes),
            Target::Webhook => targets::webhook(bytes),
        }
    }
}
