//! The Rhai sandbox for CUSTOM rule logic and machine guard scripts.
//!
//! One [`Sandbox`] engine serves every script of a pack. It has no file,
//! network, module import or `eval` access, no clock (the time package is left
//! out: time comes from the injected clock), `print`/`debug` go nowhere, and
//! operations, call depth, expression depth and string/array/map sizes are
//! limited, so a script that loops or allocates without bound fails with an
//! error within milliseconds instead of hanging the engine. Scripts are
//! compiled once, in strict-variables mode, so a misspelt variable is a load
//! error, not a runtime surprise.

mod order_map;

pub use order_map::{OrderAccess, order_map};

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package,
};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};

/// Resource limits of the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Operations per evaluation (100,000 stops an infinite loop in a few milliseconds).
    pub max_operations: u64,
    /// Function call nesting.
    pub max_call_levels: usize,
    /// Expression nesting, at top level and inside functions.
    pub max_expr_depth: usize,
    /// Longest string, in bytes.
    pub max_string_size: usize,
    /// Largest array.
    pub max_array_size: usize,
    /// Largest object map.
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 100_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_size: 16 * 1024,
            max_array_size: 4 * 1024,
            max_map_size: 1024,
        }
    }
}

/// A sandboxed Rhai engine; cloning shares the engine.
#[derive(Clone)]
pub struct Sandbox {
    engine: std::sync::Arc<Engine>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(Limits::default())
    }
}

/// A script that failed to compile, with its position inside the script text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    /// What is wrong.
    pub message: String,
    /// 1-based line inside the script, when known.
    pub line: Option<u32>,
    /// 1-based column inside the script, when known.
    pub col: Option<u32>,
}

/// A compiled script and the order facts it reads.
#[derive(Debug, Clone)]
pub struct Script {
    ast: AST,
    source: String,
    access: OrderAccess,
}

impl Script {
    /// The script as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Which order facts the script reads through `order`.
    pub fn access(&self) -> &OrderAccess {
        &self.access
    }
}

impl Sandbox {
    /// A sandbox with the given limits.
    pub fn new(limits: Limits) -> Self {
        let mut engine = Engine::new_raw();
        engine.register_global_module(CorePackage::new().as_shared_module());
        engine.register_global_module(LogicPackage::new().as_shared_module());
        engine.register_global_module(BasicMathPackage::new().as_shared_module());
        engine.register_global_module(BasicArrayPackage::new().as_shared_module());
        engine.register_global_module(BasicMapPackage::new().as_shared_module());
        engine.register_global_module(MoreStringPackage::new().as_shared_module());
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.disable_symbol("eval");
        engine.set_strict_variables(true);
        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_levels);
        engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        Sandbox {
            engine: std::sync::Arc::new(engine),
        }
    }

    /// Compiles `source`. `variables` are the names the script may read
    /// besides `order` and its own locals; any other name is a compile error,
    /// and so is an `order.<name>` that names no fact.
    pub fn compile(&self, source: &str, variables: &[&str]) -> Result<Script, CompileError> {
        let access = order_map::scan(source)?;
        let mut scope = Scope::new();
        scope.push("order", rhai::Map::new());
        for v in variables {
            scope.push(v.to_string(), false);
        }
        let ast = self
            .engine
            .compile_with_scope(&scope, source)
            .map_err(|e| {
                let p = e.position();
                CompileError {
                    message: format!("Rhai: {}", e.err_type()),
                    line: p.line().map(|l| l as u32),
                    col: p.position().map(|c| c as u32),
                }
            })?;
        Ok(Script {
            ast,
            source: source.to_owned(),
            access,
        })
    }

    /// Runs a compiled script in `scope`, which must hold the variables it was
    /// compiled with; the script must return a bool.
    pub fn eval_bool(&self, script: &Script, scope: &mut Scope<'_>) -> Result<bool, String> {
        let out: Dynamic = self
            .engine
            .eval_ast_with_scope(scope, &script.ast)
            .map_err(|e| describe(&e))?;
        match out.as_bool() {
            Ok(b) => Ok(b),
            Err(ty) => Err(format!("script returned {ty}, expected a bool")),
        }
    }
}

fn describe(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorTooManyOperations(_) => {
            "script exceeded its operation limit (endless loop?)".into()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "script exceeded its call depth limit (endless recursion?)".into()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            format!("script exceeded its size limit: {what}")
        }
        other => format!("script error: {other}"),
    }
}

#[cfg(test)]
mod tests;
