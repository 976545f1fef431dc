//! Rule packs.

pub mod facts;
mod guard;

pub use guard::{Guard, compile_guard, compile_guard_script};
