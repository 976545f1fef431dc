//! JSON Schemas (draft-07) of the files CreatorFlow reads, for editors:
//! `creatorflow schema rules|machine|tests|config` prints them, and
//! `schemas/*.schema.json` keeps them in the repository.
//!
//! The loaders are hand-written strict walkers over the located YAML tree,
//! not serde types, so the schemas are written here by hand, as JSON values,
//! with every closed set (facts, operators, categories, action types,
//! priorities, impacts, automation statuses, `waits_for`, bindings, TikTok
//! operations) taken from the very tables the loaders read: a name added
//! there appears here. `cli/tests/schema.rs` holds the schemas to the
//! loaders: every shipped file and every document a loader accepts
//! validates, and every document a loader refuses for a key, type or enum
//! reason is refused by the schema too.
//!
//! Where the loaders are more lenient than a schema can say cheaply, the
//! schemas are stricter, never looser: an optional key written with a null
//! value (which the loaders read as absent) is refused.

mod cases;
mod config;
mod defs;
mod machine;
mod rules;

use serde_json::Value;

/// The draft every YAML language server reads.
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// A file format CreatorFlow reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A rule file of a pack (`rules/*.yaml`).
    Rules,
    /// A state machine file (`rules/order-workflow.yaml`).
    Machine,
    /// A test case file of a pack (`rules/tests/*.yaml`).
    Tests,
    /// The service configuration file (`serve --config`).
    Config,
}

impl Kind {
    /// Every kind, in the order the command lists them.
    pub const ALL: [Kind; 4] = [Kind::Rules, Kind::Machine, Kind::Tests, Kind::Config];

    /// The name on the command line (`creatorflow schema NAME`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Rules => "rules",
            Kind::Machine => "machine",
            Kind::Tests => "tests",
            Kind::Config => "config",
        }
    }

    /// The file the schema is kept in under `schemas/`.
    pub const fn file_name(self) -> &'static str {
        match self {
            Kind::Rules => "rules.schema.json",
            Kind::Machine => "machine.schema.json",
            Kind::Tests => "tests.schema.json",
            Kind::Config => "config.schema.json",
        }
    }

    /// The schema as a JSON value.
    pub fn schema(self) -> Value {
        let (title, description, body) = match self {
            Kind::Rules => (
                "CreatorFlow rule file",
                "One file of a rule pack: `rules:`, a list of rules (spec rules.md, \"Files\").",
                rules::schema(),
            ),
            Kind::Machine => (
                "CreatorFlow state machine",
                "A state machine file: states, transitions, their actions, guards and timeouts.",
                machine::schema(),
            ),
            Kind::Tests => (
                "CreatorFlow rule tests",
                "A test case file of a rule pack (`tests/*.yaml`, run by `creatorflow test`).",
                cases::schema(),
            ),
            Kind::Config => (
                "CreatorFlow service configuration",
                "The configuration file of `creatorflow serve --config` (docs/config.md).",
                config::schema(),
            ),
        };
        let mut schema = body;
        if let Value::Object(map) = &mut schema {
            map.insert("$schema".into(), DRAFT_07.into());
            map.insert("title".into(), title.into());
            map.insert("description".into(), description.into());
        }
        schema
    }

    /// The schema as printed and kept: pretty JSON ending with a newline.
    pub fn render(self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema()).unwrap_or_default();
        text.push('\n');
        text
    }
}
