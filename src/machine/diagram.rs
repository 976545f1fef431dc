//! Diagrams of a machine: Mermaid (`stateDiagram-v2`) and Graphviz DOT.

use std::fmt::Write as _;

use super::{Machine, StateDef, TimeoutAction};

impl Machine {
    /// The machine as a Mermaid `stateDiagram-v2`: `[*] --> initial`, one
    /// `from --> to : name` line per transition (in file order), and
    /// `state --> [*]` for every terminal state, and a note on each state that
    /// waits for an external confirmation or has a timeout. States whose
    /// names are not plain identifiers (a `-` in them) are declared with an
    /// alias.
    ///
    /// ```
    /// let m = creatorflow::machine::Machine::default_order_workflow();
    /// let text = m.to_mermaid();
    /// assert!(text.starts_with("stateDiagram-v2\n"));
    /// assert!(text.contains("    received --> validated : validate\n"));
    /// assert!(text.contains("    delivered --> [*]\n"));
    /// ```
    pub fn to_mermaid(&self) -> String {
        let id = |name: &str| -> String {
            if is_plain_id(name) {
                name.to_owned()
            } else {
                let i = self
                    .states
                    .iter()
                    .position(|s| s.name == name)
                    .unwrap_or(usize::MAX);
                format!("state_{i}")
            }
        };
        let mut out = String::from("stateDiagram-v2\n");
        for s in &self.states {
            if !is_plain_id(s.name.as_str()) {
                let _ = writeln!(
                    out,
                    "    state \"{}\" as {}",
                    s.name.as_str().replace('"', "'"),
                    id(s.name.as_str())
                );
            }
        }
        let _ = writeln!(out, "    [*] --> {}", id(self.initial.as_str()));
        for t in &self.transitions {
            let _ = writeln!(
                out,
                "    {} --> {} : {}",
                id(t.from.as_str()),
                id(t.to.as_str()),
                mermaid_label(&t.name)
            );
        }
        for s in self.states.iter().filter(|s| s.terminal) {
            let _ = writeln!(out, "    {} --> [*]", id(s.name.as_str()));
        }
        for s in &self.states {
            if let Some(note) = state_note(s, ", ") {
                let _ = writeln!(
                    out,
                    "    note right of {} : {}",
                    id(s.name.as_str()),
                    mermaid_label(&note)
                );
            }
        }
        out
    }

    /// The machine as a Graphviz `digraph`: a point-shaped start node pointing
    /// at the initial state, terminal states drawn as `doublecircle`, one edge
    /// per transition labelled with its name and, when it has one, its guard
    /// in brackets (`reserve [quantity > 0]`). States that wait for an
    /// external confirmation or have a timeout say so in their label.
    ///
    /// ```
    /// let m = creatorflow::machine::Machine::default_order_workflow();
    /// let dot = m.to_dot();
    /// assert!(dot.contains("\"received\" -> \"validated\" [label=\"validate\"];"));
    /// assert!(dot.contains("\"delivered\" [shape=doublecircle"));
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph \"{}\" {{", dot_escape(&self.name));
        out.push_str("    rankdir=LR;\n");
        out.push_str("    node [shape=ellipse];\n");
        out.push_str("    \"__start\" [shape=point, label=\"\"];\n");
        for s in &self.states {
            let mut label = format!("{}\\n{}%", dot_escape(s.name.as_str()), s.progress);
            if let Some(note) = state_note(s, "\n") {
                let _ = write!(label, "\\n{}", dot_escape(&note));
            }
            let shape = if s.terminal {
                "doublecircle"
            } else {
                "ellipse"
            };
            let _ = writeln!(
                out,
                "    \"{}\" [shape={shape}, label=\"{label}\"];",
                dot_escape(s.name.as_str())
            );
        }
        let _ = writeln!(
            out,
            "    \"__start\" -> \"{}\";",
            dot_escape(self.initial.as_str())
        );
        for t in &self.transitions {
            let mut label = dot_escape(&t.name);
            if let Some(guard) = &t.guard {
                let _ = write!(label, " [{}]", dot_escape(&guard.describe()));
            }
            let _ = writeln!(
                out,
                "    \"{}\" -> \"{}\" [label=\"{label}\"];",
                dot_escape(t.from.as_str()),
                dot_escape(t.to.as_str())
            );
        }
        out.push_str("}\n");
        out
    }
}

/// What a diagram notes about a state, parts joined by `sep`: what it waits
/// for (`waits for in_transit`) and its timeout (`timeout 72h → fail`).
fn state_note(s: &StateDef, sep: &str) -> Option<String> {
    let parts: Vec<String> = s
        .waits_for
        .map(|w| format!("waits for {w}"))
        .into_iter()
        .chain(
            s.timeout
                .as_ref()
                .map(|t| format!("timeout {}", describe_timeout(t.after, &t.action))),
        )
        .collect();
    (!parts.is_empty()).then(|| parts.join(sep))
}

/// `72h → fail` or `7d → escalate urgent/HIGH`.
fn describe_timeout(after: chrono::TimeDelta, action: &TimeoutAction) -> String {
    let secs = after.num_seconds();
    let after = if secs % 86_400 == 0 {
        format!("{}d", secs / 86_400)
    } else if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    };
    match action {
        TimeoutAction::Transition(name) => format!("{after} → {name}"),
        TimeoutAction::Escalate {
            new_priority,
            new_impact,
        } => {
            let what: Vec<&str> = new_priority
                .map(|p| p.as_str())
                .into_iter()
                .chain(new_impact.map(|i| i.as_str()))
                .collect();
            format!("{after} → escalate {}", what.join("/"))
        }
    }
}

fn is_plain_id(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Mermaid ends a label at a newline and treats `;` and `:` specially.
fn mermaid_label(text: &str) -> String {
    text.replace(['\n', ';'], " ").replace(':', "#58;")
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
