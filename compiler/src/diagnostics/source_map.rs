//! All source files of one compilation laid end to end in a single offset space, so that a
//! [`Span`] (two `u32`s) identifies its file too, as in rustc's `SourceMap`.

use crate::syntax::span::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(pub u32);

#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name diagnostics show: a path, `<stdlib>/vi.ppl`, `<repl>`.
    pub name: String,
    pub text: String,
    /// The offset of this file's first byte in the shared offset space.
    pub base: u32,
    /// Bytes of text the parser saw before and after this file's text that the user never
    /// wrote (the `print ` of an expression typed into the REPL): their offsets belong to this
    /// file, and a span reaching into them is shown on the file's first or last byte.
    pub hidden: (u32, u32),
    /// The text the parser read, where it differs from `text`: with the hidden text around it,
    /// and control characters as they were.
    parsed: Option<String>,
}

impl SourceFile {
    /// The text as the parser read it (to check the same program again).
    pub fn parsed_text(&self) -> &str {
        self.parsed.as_deref().unwrap_or(&self.text)
    }
}

#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        SourceMap::default()
    }

    /// Adds a file; its spans start one byte after the previous file's end so that an
    /// end-of-file span never coincides with the next file's first byte.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.add_wrapped(name, "", text.into(), "")
    }

    /// Adds a file that the parser reads as `before + text + after`, where diagnostics must
    /// show only `text` (see [`SourceFile::hidden`]). The parser's text starts at
    /// `file.base - file.hidden.0`.
    pub fn add_wrapped(&mut self, name: impl Into<String>, before: &str, text: String, after: &str) -> FileId {
        let hidden = (before.len() as u32, after.len() as u32);
        let end = self.files.last().map_or(0, |file| {
            file.base.saturating_add(file.text.len() as u32).saturating_add(file.hidden.1).saturating_add(1)
        });
        let base = end.saturating_add(hidden.0);
        let shown = printable(text.clone());
        let parsed =
            (!before.is_empty() || !after.is_empty() || shown != text).then(|| format!("{before}{text}{after}"));
        self.files.push(SourceFile { name: name.into(), text: shown, base, hidden, parsed });
        FileId(self.files.len() as u32 - 1)
    }

    pub fn file(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, file)| (FileId(i as u32), file))
    }

    /// The file a span lies in, and the span's byte range within that file.
    pub fn locate(&self, span: Span) -> Option<(&SourceFile, std::ops::Range<usize>)> {
        let index =
            self.files.partition_point(|file| file.base.saturating_sub(file.hidden.0) <= span.start).checked_sub(1)?;
        let file = &self.files[index];
        let len = file.text.len();
        let start = (span.start.saturating_sub(file.base) as usize).min(len);
        let end = (span.end.saturating_sub(file.base) as usize).clamp(start, len);
        Some((file, start..end))
    }

    /// The source text a span covers (empty if it is out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.locate(span).and_then(|(file, range)| file.text.get(range)).unwrap_or("")
    }
}

/// The text with every control character but tab and line breaks shown as `?` (as many as its
/// bytes, so spans still fit): quoting a file in a diagnostic must never send the terminal
/// escape sequences that the file holds.
fn printable(text: String) -> String {
    if !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return text;
    }
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r') {
            shown.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            shown.push(c);
        }
    }
    shown
}
