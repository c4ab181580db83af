//! Spec errors: located at file:line:column, with the offending snippet, what was
//! expected, and a hint the user can act on.

use std::fmt;
use std::ops::Range;

/// One problem in a spec, pointing at the text that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The full source line the error points at.
    pub snippet: String,
    /// Width of the underlined part of `snippet` (at least 1).
    pub width: usize,
    pub message: String,
    pub expected: Option<String>,
    pub hint: Option<String>,
}

/// Everything wrong with a spec that could be found in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// The errors in the order of the file (errors found by different passes interleave),
    /// each once.
    pub fn sorted(mut errors: Vec<SpecError>) -> Self {
        errors.sort_by_key(|error| (error.line, error.column));
        errors.dedup();
        SpecErrors(errors)
    }
}

impl std::error::Error for SpecErrors {}
impl std::error::Error for SpecError {}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        writeln!(f, "  --> {}:{}:{}", self.file, self.line, self.column)?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.snippet)?;
        let pad: String = self
            .snippet
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{:gutter$} | {}{}", "", pad, "^".repeat(self.width.max(1)))?;
        if let Some(expected) = &self.expected {
            writeln!(f, "{:gutter$} = expected: {}", "", expected)?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{:gutter$} = hint: {}", "", hint)?;
        }
        Ok(())
    }
}

/// Maps byte offsets of one source text to lines and columns.
pub struct SourceMap<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl<'a> SourceMap<'a> {
    pub fn new(file: &'a str, text: &'a str) -> Self {
        SourceMap { file, text }
    }

    /// Builds an error at `span`. Columns count characters, 1-based.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> SpecError {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let end = floor_char_boundary(self.text, span.end.min(self.text.len())).max(start);
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..].find('\n').map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let snippet = self.text[line_start..line_end].trim_end_matches('\r').to_string();
        // An error at the `\r` of a CRLF ending points just past the snippet's last char.
        let column = (self.text[line_start..start].chars().count() + 1).min(snippet.chars().count() + 1);
        let width = self.text[start..end.min(line_end)].chars().count();
        SpecError {
            file: self.file.to_string(),
            line,
            column,
            snippet,
            width,
            message: message.into(),
            expected: None,
            hint: None,
        }
    }
}

impl SpecError {
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo:
/// similar spelling (`adress` → `address`), one edit or swap (`tpc` → `tcp`), or an
/// abbreviation spelled out (`database` → `db`).
pub fn nearest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let candidates: Vec<&'c str> = candidates.into_iter().collect();
    let word_lower = word.to_lowercase();
    let similar = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&word_lower, &c.to_lowercase()), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
        .map(|(_, c)| c);
    if similar.is_some() {
        return similar;
    }
    // Short words score low on Jaro-Winkler although one swap apart.
    let one_edit: Vec<&'c str> = candidates
        .iter()
        .copied()
        .filter(|c| c.len() >= 3 && strsim::osa_distance(&word_lower, &c.to_lowercase()) == 1)
        .collect();
    if one_edit.len() == 1 {
        return Some(one_edit[0]);
    }
    let abbreviations: Vec<&'c str> = candidates
        .iter()
        .copied()
        .filter(|c| c.len() >= 2 && c.len() < word_lower.len() && is_abbreviation(c, &word_lower))
        .collect();
    match abbreviations.as_slice() {
        [only] => Some(*only),
        _ => None,
    }
}

/// Whether `short` is `long` with letters left out, starting with the same letter.
fn is_abbreviation(short: &str, long: &str) -> bool {
    let mut long_chars = long.chars();
    let mut short_chars = short.chars();
    if short_chars.next() != long_chars.next() {
        return false;
    }
    short_chars.all(|c| long_chars.by_ref().any(|l| l == c))
}
