//! The Rhai sandbox for CUSTOM logic and guard scripts.

/// A sandboxed Rhai engine, shared by every script of a pack or machine.
#[derive(Debug)]
pub struct Sandbox {
    _todo: (),
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox { _todo: () }
    }
}
