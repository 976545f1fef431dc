//! Located diagnostics: what strict loaders return instead of stopping at the
//! first problem.
//!
//! Every loader in the crate (rule packs, state machines, scenarios) reports
//! *all* problems it finds as [`Diagnostic`]s, each naming a file, a line and a
//! column, so that a rule author fixes a file in one pass. Each carries a
//! stable [`Code`] (`E0108`, `W0201`, ...), all defined in one table
//! (`code.rs`) and listed in `docs/diagnostics.md`.

mod code;

pub use code::Code;

use std::fmt;
use std::sync::Arc;

/// A position in a source file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column number (in characters).
    pub col: u32,
}

impl Pos {
    /// A position from a 1-based line and column.
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file loads, but something in it is almost certainly a mistake
    /// (for instance a condition that can never be true).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found while loading a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as it was named to the loader.
    pub file: Arc<str>,
    /// Where in the file.
    pub pos: Pos,
    /// What kind of problem, stable across releases.
    pub code: Code,
    /// A message a rule author can act on.
    pub message: String,
}

impl Diagnostic {
    /// Error or warning, as its code says.
    pub const fn severity(&self) -> Severity {
        self.code.severity()
    }

    /// A diagnostic of `code` (which decides its severity) at `pos` in `file`.
    pub fn new(
        file: impl Into<Arc<str>>,
        code: Code,
        pos: Pos,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            pos,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: error[E0108]: message` (`warning[W0201]` for warnings).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}[{}]: {}",
            self.file,
            self.pos,
            self.severity(),
            self.code,
            self.message
        )
    }
}

/// A collector of diagnostics for one file.
#[derive(Debug)]
pub struct Diagnostics {
    file: Arc<str>,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// An empty collector for `file`.
    pub fn new(file: impl Into<Arc<str>>) -> Self {
        Diagnostics {
            file: file.into(),
            items: Vec::new(),
        }
    }

    /// The file these diagnostics are about.
    pub fn file(&self) -> &Arc<str> {
        &self.file
    }

    /// Records a diagnostic of `code` at `pos`; the code decides whether it
    /// is an error or a warning.
    pub fn emit(&mut self, code: Code, pos: Pos, message: impl Into<String>) {
        self.items
            .push(Diagnostic::new(self.file.clone(), code, pos, message));
    }

    /// Whether any error (not warning) was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity() == Severity::Error)
    }

    /// Number of errors recorded so far.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    /// The diagnostics, in the order they were found.
    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.items
    }
}

/// Sorts diagnostics by file, position, then message, the order `check` prints them in.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| (&a.file, a.pos, &a.message).cmp(&(&b.file, b.pos, &b.message)));
}

/// The known name closest to `unknown`, if one is close enough to be a likely typo.
pub fn suggest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for k in known {
        let score = strsim::jaro_winkler(unknown, k);
        let lev = strsim::levenshtein(unknown, k);
        if (score >= 0.85 || lev <= 2) && best.is_none_or(|(_, s)| score > s) {
            best = Some((k, score));
        }
    }
    best.map(|(k, _)| k)
}

/// `"; did you mean `x`?"` or nothing.
pub fn did_you_mean<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match suggest(unknown, known) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let known = ["quantity", "price", "product_id"];
        assert_eq!(suggest("quantiy", known), Some("quantity"));
        assert_eq!(suggest("prise", known), Some("price"));
        assert_eq!(suggest("zzzzzz", known), None);
    }

    #[test]
    fn displays_file_line_col() {
        let mut d = Diagnostics::new("rules/a.yaml");
        d.emit(Code::YamlUnknownKey, Pos::new(3, 7), "bad");
        d.emit(Code::RuleTypesNeverEqual, Pos::new(4, 1), "odd");
        assert!(d.has_errors());
        let v = d.into_vec();
        assert_eq!(v[0].to_string(), "rules/a.yaml:3:7: error[E0108]: bad");
        assert_eq!(v[1].severity(), Severity::Warning);
        assert_eq!(v[1].to_string(), "rules/a.yaml:4:1: warning[W0204]: odd");
    }
}
