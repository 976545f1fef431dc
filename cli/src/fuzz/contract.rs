//! The contract every loader keeps on any input: a refusal carries at least
//! one error, and every diagnostic names the file, points inside it (line
//! and column from 1, no further than its last line and longest line) and
//! has a code of the loader's own families.

use creatorflow::diag::{Diagnostic, Severity};

/// How a parser broke its contract on an input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The input was refused without any error diagnostic.
    #[error("the {target} loader refused the input without an error diagnostic")]
    NoError {
        /// The target's name.
        target: &'static str,
    },
    /// A diagnostic names another file than the one loaded.
    #[error("a diagnostic names another file than `{expected}`: {diagnostic}")]
    WrongFile {
        /// The file name given to the loader.
        expected: String,
        /// The diagnostic, as shown to users.
        diagnostic: String,
    },
    /// A diagnostic points outside the file.
    #[error(
        "a diagnostic points outside the file ({lines} lines, longest {width} characters): {diagnostic}"
    )]
    OutsideFile {
        /// The file's line count.
        lines: u32,
        /// Its longest line, in characters.
        width: u32,
        /// The diagnostic, as shown to users.
        diagnostic: String,
    },
    /// A diagnostic's code is not one of the loader's families.
    #[error("the {target} loader reported a code of another loader: {diagnostic}")]
    ForeignCode {
        /// The target's name.
        target: &'static str,
        /// The diagnostic, as shown to users.
        diagnostic: String,
    },
    /// A typed error whose message says nothing.
    #[error("the {target} parser returned an error with an empty message")]
    EmptyMessage {
        /// The target's name.
        target: &'static str,
    },
}

/// The extent of a text as the YAML reader counts it: lines (`\n`, `\r\n`
/// and a lone `\r` end one) and the longest line in characters.
fn extent(text: &str) -> (u32, u32) {
    let (mut lines, mut width, mut col) = (1u32, 0u32, 0u32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines = lines.saturating_add(1);
                col = 0;
            }
            _ => {
                col = col.saturating_add(1);
                width = width.max(col);
            }
        }
    }
    (lines, width)
}

/// Checks `diags` of the loader `target` on `text` loaded as `file`;
/// `refused` says whether the loader refused the file (then one diagnostic
/// at least must be an error). `families` are the code prefixes the loader
/// may report (`"E01"`, `"W02"`).
pub fn check_located(
    target: &'static str,
    diags: &[Diagnostic],
    file: &str,
    text: &str,
    refused: bool,
    families: &[&str],
) -> Result<(), Violation> {
    if refused && !diags.iter().any(|d| d.severity() == Severity::Error) {
        return Err(Violation::NoError { target });
    }
    let (lines, width) = extent(text);
    for d in diags {
        if &*d.file != file {
            return Err(Violation::WrongFile {
                expected: file.to_owned(),
                diagnostic: d.to_string(),
            });
        }
        // One past the last line or column: where an unexpected end is met.
        let inside = d.pos.line >= 1
            && d.pos.col >= 1
            && d.pos.line <= lines.saturating_add(1)
            && d.pos.col <= width.saturating_add(2);
        if !inside {
            return Err(Violation::OutsideFile {
                lines,
                width,
                diagnostic: d.to_string(),
            });
        }
        if !families.iter().any(|f| d.code.as_str().starts_with(f)) {
            return Err(Violation::ForeignCode {
                target,
                diagnostic: d.to_string(),
            });
        }
        if d.message.trim().is_empty() {
            return Err(Violation::EmptyMessage { target });
        }
    }
    Ok(())
}

/// Checks a typed error's message (`Display`) is not empty.
pub fn check_message(target: &'static str, message: &str) -> Result<(), Violation> {
    if message.trim().is_empty() {
        return Err(Violation::EmptyMessage { target });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extent_counts_every_line_break() {
        assert_eq!(extent(""), (1, 0));
        assert_eq!(extent("ab\r\ncde\rf\n"), (4, 3));
        assert_eq!(extent("é€"), (1, 2));
    }
}
