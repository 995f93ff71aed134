//! Diagnostics: errors as values with spans, and their rendering.
//!
//! Every stage reports problems as [`Diagnostic`]s that point into the [`SourceMap`]; nothing
//! is printed until a client (the CLI, the REPL, a test) calls [`render`]. This module owns the
//! error codes (`codes.rs`) and the ariadne rendering (`render.rs`); it knows nothing of the
//! language itself.

mod codes;
mod render;
mod source_map;

pub use codes::ErrorCode;
pub use render::{render, render_all, ColorChoice};
pub use source_map::{FileId, SourceFile, SourceMap};

use crate::syntax::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A message attached to a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in a program: a code, a message, the span it is about, further spans
/// that explain it, and suggestions. Boxed, so that `Result<T, Diagnostic>` stays small on the
/// hot path; its parts are reached through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic(Box<DiagnosticData>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagnosticData {
    pub severity: Severity,
    pub code: ErrorCode,
    pub message: String,
    pub primary: Option<Label>,
    pub secondary: Vec<Label>,
    pub help: Vec<String>,
    pub notes: Vec<String>,
}

impl std::ops::Deref for Diagnostic {
    type Target = DiagnosticData;

    fn deref(&self) -> &DiagnosticData {
        &self.0
    }
}

impl std::ops::DerefMut for Diagnostic {
    fn deref_mut(&mut self) -> &mut DiagnosticData {
        &mut self.0
    }
}

impl Diagnostic {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Diagnostic(Box::new(DiagnosticData {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: Vec::new(),
            notes: Vec::new(),
        }))
    }

    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.primary = Some(Label { span, message: message.into() });
        self
    }

    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label { span, message: message.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where the diagnostic points: its primary span, for sorting and for tests.
    pub fn span(&self) -> Option<Span> {
        self.primary.as_ref().map(|label| label.span)
    }
}

/// Names longer than this get no "did you mean" suggestion.
const MAX_SUGGESTED_LENGTH: usize = 64;

/// The closest candidate to a misspelt name, if one is close enough to be the likely intent.
pub fn closest_name<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // One edit turns any short name into any other: suggest only for names long enough, and
    // not for absurdly long ones, whose comparison would cost time quadratic in their length.
    let length = name.chars().count();
    if length > MAX_SUGGESTED_LENGTH {
        return None;
    }
    let limit = if length < 3 { 0 } else { (length / 3).max(1) };
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name && candidate.chars().count().abs_diff(length) <= limit)
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, counting a swap of two adjacent characters as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut table = vec![0usize; (a.len() + 1) * width];
    for (i, row) in table.chunks_mut(width).enumerate() {
        row[0] = i;
    }
    for (j, cell) in table.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (table[(i - 1) * width + j] + 1)
                .min(table[i * width + j - 1] + 1)
                .min(table[(i - 1) * width + j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(table[(i - 2) * width + j - 2] + 1);
            }
            table[i * width + j] = best;
        }
    }
    table[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest_name("nromal", ["normal", "gamma"]), Some("normal"));
        assert_eq!(closest_name("mu", ["mu_q", "sigma"]), None);
        assert_eq!(closest_name("elbow", ["elbo", "iwelbo"]), Some("elbo"));
        assert_eq!(closest_name("zzzz", ["normal"]), None);
        assert_eq!(closest_name("w", ["x", "y"]), None);
    }

    #[test]
    fn transposition_is_one_edit() {
        assert_eq!(edit_distance("reparm", "reparam"), 1);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
