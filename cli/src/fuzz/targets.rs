//! The six targets: bytes in, the contract checked (see [`super::contract`]).
//!
//! Text loaders receive the bytes decoded lossily: the real ones refuse a
//! file that is not UTF-8 before parsing (an I/O error), so the parser only
//! ever sees text; decoding lossily lets every input reach it.

use std::path::Path;

use creatorflow::Order;
use creatorflow::machine::Machine;
use creatorflow::rules::{PackError, PackLoader};
use creatorflow::tiktok::{Envelope, command_for};
use creatorflow_simulator::scenario::{Scenario, ScenarioError};

use super::contract::{Violation, check_located, check_message};
use crate::config::load::parse;

/// The file name every text target loads its input as.
pub const FILE: &str = "fuzz.yaml";

/// `${NAME}` values of the configuration target: a few set, one empty,
/// every other name unset.
fn env(name: &str) -> Option<String> {
    match name {
        "HOOK_SECRET" | "ADMIN_TOKEN" | "TIKTOK_APP_KEY" | "TIKTOK_APP_SECRET" => {
            Some(format!("{name}-value"))
        }
        "EMPTY_VAR" => Some(String::new()),
        _ => None,
    }
}

fn text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A rule pack file.
pub fn rules(bytes: &[u8]) -> Result<(), Violation> {
    const FAMILIES: &[&str] = &["E01", "E02", "W02", "E04"];
    let text = text(bytes);
    match PackLoader::new().load_str(FILE, &text) {
        Ok(pack) => check_located("rules", pack.warnings(), FILE, &text, false, FAMILIES),
        Err(PackError::Invalid(d)) => check_located("rules", &d, FILE, &text, true, FAMILIES),
        Err(e) => check_message("rules", &e.to_string()),
    }
}

/// A state-machine file; a loaded machine is drawn too (Mermaid, DOT).
pub fn machine(bytes: &[u8]) -> Result<(), Violation> {
    const FAMILIES: &[&str] = &["E01", "E02", "W02", "E03", "W03", "E04"];
    let text = text(bytes);
    match Machine::from_str(&text, FILE) {
        Ok(m) => {
            let _ = (m.to_mermaid(), m.to_dot());
            check_located("machine", m.warnings(), FILE, &text, false, FAMILIES)
        }
        Err(d) => check_located("machine", &d, FILE, &text, true, FAMILIES),
    }
}

/// A simulator scenario file.
pub fn scenario(bytes: &[u8]) -> Result<(), Violation> {
    const FAMILIES: &[&str] = &["E01", "E05"];
    let text = text(bytes);
    match Scenario::parse(&text, FILE) {
        Ok(s) => {
            let _ = s.end();
            Ok(())
        }
        Err(ScenarioError::Invalid(d)) => {
            check_located("scenario", &d, FILE, &text, true, FAMILIES)
        }
        Err(e) => check_message("scenario", &e.to_string()),
    }
}

/// The service configuration file (on its own: the packs and machine it
/// names are other targets). Relative paths resolve against a directory
/// that does not exist.
pub fn config(bytes: &[u8]) -> Result<(), Violation> {
    const FAMILIES: &[&str] = &["E01", "E06"];
    let text = text(bytes);
    match parse(
        &text,
        FILE,
        Path::new("/nonexistent-creatorflow-fuzz"),
        &env,
    ) {
        Ok(_) => Ok(()),
        Err(d) => check_located("config", &d, FILE, &text, true, FAMILIES),
    }
}

/// One order JSON line.
pub fn order(bytes: &[u8]) -> Result<(), Violation> {
    match Order::from_json(&text(bytes)) {
        Ok(_) => Ok(()),
        Err(e) => {
            check_message("order", e.field())?;
            check_message("order", &e.to_string())
        }
    }
}

/// A TikTok Shop webhook body: parsed, mapped to its command, keyed.
pub fn webhook(bytes: &[u8]) -> Result<(), Violation> {
    match Envelope::parse(bytes) {
        Ok(e) => {
            let _ = (command_for(&e), e.dedup_key(), e.order_id());
            Ok(())
        }
        Err(e) => check_message("webhook", &e.to_string()),
    }
}
