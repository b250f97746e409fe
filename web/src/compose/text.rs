//! The words of a reply: the subject's prefix, the quoted original, and the body's light
//! formatting.
//!
//! Formatting is plain-text markup the toolbar buttons write into the text: `**bold**`,
//! `_italic_` and lines starting with `- ` for a bulleted list. The `text/plain` body is the
//! text exactly as written (readable as it is); when the text uses any of the markup,
//! [`to_html`] also gives a `text/html` alternative in which every character of the text is
//! escaped and only the markup becomes `<strong>`, `<em>` and `<ul><li>` (quoted `> ` lines
//! become a `<blockquote>`, their content never formatted). Nothing typed can become a tag,
//! an attribute or a link.
//!
//! The toolbar works on the textarea's selection, which the browser counts in UTF-16 code
//! units: [`utf16_to_byte`] and [`byte_to_utf16`] convert.

use super::Kind;
use super::original::Original;
use sealpost_core::mail::escape_html;

/// `Re: subject`, or `Fwd: subject`, without doubling a prefix already there.
pub fn subject(kind: Kind, original: &str) -> String {
    let s = original.trim();
    let lower = s.to_ascii_lowercase();
    let (prefix, known): (&str, &[&str]) = match kind {
        Kind::Reply | Kind::ReplyAll => ("Re:", &["re:"]),
        Kind::Forward => ("Fwd:", &["fwd:", "fw:"]),
    };
    if known.iter().any(|p| lower.starts_with(p)) {
        return s.to_string();
    }
    format!("{prefix} {s}").trim_end().to_string()
}

/// The text the composer starts with: two empty lines, then the original quoted with `> `
/// under "On DATE, AUTHOR wrote:" (reply, reply-all), or under a "Forwarded message" block
/// with its header fields (forward).
pub fn prefill(kind: Kind, original: &Original) -> String {
    let text = original.text.replace("\r\n", "\n");
    let text = text.trim_end();
    match kind {
        Kind::Reply | Kind::ReplyAll => {
            let said = if original.date.is_empty() {
                format!("{} wrote:", original.author())
            } else {
                format!("On {}, {} wrote:", original.date, original.author())
            };
            let mut out = format!("\n\n{said}\n");
            for line in text.lines() {
                out.push_str(&quote_line(line));
                out.push('\n');
            }
            out
        }
        Kind::Forward => {
            let list = super::address::display_list;
            let mut out = String::from("\n\n---------- Forwarded message ----------\n");
            for (name, value) in [
                ("From", list(&original.from)),
                ("Date", original.date.clone()),
                ("Subject", original.subject.clone()),
                ("To", list(&original.to)),
                ("Cc", list(&original.cc)),
            ] {
                if !value.is_empty() {
                    out.push_str(&format!("{name}: {value}\n"));
                }
            }
            out.push('\n');
            out.push_str(text);
            out.push('\n');
            out
        }
    }
}

fn quote_line(line: &str) -> String {
    let line = line.trim_end();
    if line.is_empty() {
        ">".into()
    } else if line.starts_with('>') {
        format!(">{line}")
    } else {
        format!("> {line}")
    }
}

/// A toolbar button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `**…**`.
    Bold,
    /// `_…_`.
    Italic,
    /// `- ` at the start of each selected line.
    List,
}

impl Style {
    /// The button's text (also its accessible name).
    pub fn label(self) -> &'static str {
        match self {
            Style::Bold => "Bold",
            Style::Italic => "Italic",
            Style::List => "Bulleted list",
        }
    }
}

/// The edited text and the new selection, byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The whole text after the edit.
    pub text: String,
    /// Selection start.
    pub start: usize,
    /// Selection end.
    pub end: usize,
}

/// Applies a toolbar button to the selection `start..end` (byte offsets; clamped to the text
/// and to character boundaries). Bold and italic wrap the selection in their markers, or
/// remove them when it is already wrapped; with nothing selected they insert an empty pair
/// with the cursor inside. List prefixes every selected line with `- `, or removes the prefix
/// when every selected line has it.
pub fn apply(text: &str, start: usize, end: usize, style: Style) -> Edit {
    let clamp = |i: usize| {
        let mut i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (mut start, mut end) = (clamp(start.min(end)), clamp(start.max(end)));
    match style {
        Style::List => list(text, start, end),
        Style::Bold | Style::Italic => {
            let marker = if style == Style::Bold { "**" } else { "_" };
            // Markers around white space would not format: wrap the words only.
            while start < end && text[start..].starts_with(char::is_whitespace) {
                start += text[start..].chars().next().map_or(1, char::len_utf8);
            }
            while end > start && text[..end].ends_with(char::is_whitespace) {
                end -= text[..end].chars().next_back().map_or(1, char::len_utf8);
            }
            let m = marker.len();
            if start >= m && text[..start].ends_with(marker) && text[end..].starts_with(marker) {
                let text = format!(
                    "{}{}{}",
                    &text[..start - m],
                    &text[start..end],
                    &text[end + m..]
                );
                return Edit {
                    text,
                    start: start - m,
                    end: end - m,
                };
            }
            let text = format!(
                "{}{marker}{}{marker}{}",
                &text[..start],
                &text[start..end],
                &text[end..]
            );
            Edit {
                text,
                start: start + m,
                end: end + m,
            }
        }
    }
}

fn list(text: &str, start: usize, end: usize) -> Edit {
    let first = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let last = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let block = &text[first..last];
    let lines: Vec<&str> = block.split('\n').collect();
    let all_listed = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .all(|l| l.starts_with("- "))
        && lines.iter().any(|l| !l.trim().is_empty());
    let new_block = lines
        .iter()
        .map(|l| {
            if all_listed {
                l.strip_prefix("- ").unwrap_or(l).to_string()
            } else if (l.trim().is_empty() && lines.len() > 1) || l.starts_with("- ") {
                l.to_string()
            } else {
                format!("- {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{}{new_block}{}", &text[..first], &text[last..]);
    Edit {
        start: first,
        end: first + new_block.len(),
        text,
    }
}

/// The byte offset of the UTF-16 offset `n` in `text` (the end, past its length).
pub fn utf16_to_byte(text: &str, n: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= n {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}

/// The UTF-16 offset of the byte offset `b` in `text`.
pub fn byte_to_utf16(text: &str, b: usize) -> usize {
    text.char_indices()
        .take_while(|(i, _)| *i < b)
        .map(|(_, c)| c.len_utf16())
        .sum()
}

enum Block {
    Para(Vec<String>),
    List(Vec<String>),
    Quote(Vec<String>),
}

fn list_item(line: &str) -> Option<&str> {
    ["- ", "* ", "• "]
        .iter()
        .find_map(|p| line.trim_start().strip_prefix(p))
}

/// The `text/html` alternative of `text`, or `None` when the text uses no formatting (then
/// the message is sent as `text/plain` only). Every character of the text is escaped; only
/// the markup of this module becomes markup.
pub fn to_html(text: &str) -> Option<String> {
    let mut formatted = false;
    let mut blocks: Vec<Block> = Vec::new();
    for line in text.replace("\r\n", "\n").split('\n') {
        if let Some(rest) = line.strip_prefix('>') {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match blocks.last_mut() {
                Some(Block::Quote(q)) => q.push(escape_html(rest)),
                _ => blocks.push(Block::Quote(vec![escape_html(rest)])),
            }
        } else if let Some(item) = list_item(line) {
            formatted = true;
            let item = inline(item, &mut formatted);
            match blocks.last_mut() {
                Some(Block::List(l)) => l.push(item),
                _ => blocks.push(Block::List(vec![item])),
            }
        } else if line.trim().is_empty() {
            blocks.push(Block::Para(Vec::new()));
        } else {
            let line = inline(line, &mut formatted);
            match blocks.last_mut() {
                Some(Block::Para(p)) if !p.is_empty() => p.push(line),
                _ => blocks.push(Block::Para(vec![line])),
            }
        }
    }
    if !formatted {
        return None;
    }
    let mut body = String::new();
    for block in blocks {
        match block {
            Block::Para(lines) if lines.is_empty() => {}
            Block::Para(lines) => body.push_str(&format!("<p>{}</p>\n", lines.join("<br>\n"))),
            Block::List(items) => {
                body.push_str("<ul>\n");
                for item in items {
                    body.push_str(&format!("<li>{item}</li>\n"));
                }
                body.push_str("</ul>\n");
            }
            Block::Quote(lines) => body.push_str(&format!(
                "<blockquote style=\"margin:0 0 0 .8ex;border-left:2px solid #ccc;padding-left:1ex\">{}</blockquote>\n",
                lines.join("<br>\n")
            )),
        }
    }
    Some(format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n{body}</body></html>\n"
    ))
}

/// One line's `**bold**` and `_italic_`, escaped; sets `formatted` when it found any.
fn inline(line: &str, formatted: &mut bool) -> String {
    let mut out = String::new();
    let mut rest = line;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        if let Some((tag, marker)) = opening(rest, prev) {
            let after = &rest[marker.len()..];
            if let Some(close) = closing(after, marker) {
                *formatted = true;
                let inner = inline(&after[..close], formatted);
                out.push_str(&format!("<{tag}>{inner}</{tag}>"));
                rest = &after[close + marker.len()..];
                prev = marker.chars().last();
                continue;
            }
        }
        out.push_str(&escape_html(&c.to_string()));
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A marker that may open formatting here: followed by a non-space; `_` also not inside a word.
fn opening(rest: &str, prev: Option<char>) -> Option<(&'static str, &'static str)> {
    let (tag, marker) = if rest.starts_with("**") {
        ("strong", "**")
    } else if rest.starts_with('_') && !prev.is_some_and(char::is_alphanumeric) {
        ("em", "_")
    } else {
        return None;
    };
    rest[marker.len()..]
        .chars()
        .next()
        .is_some_and(|c| !c.is_whitespace())
        .then_some((tag, marker))
}

/// Where the closing `marker` is in `after`: preceded by a non-space; `_` not followed by a
/// letter or digit.
fn closing(after: &str, marker: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = after[from..].find(marker).map(|i| from + i) {
        let before_ok = i > 0
            && after[..i]
                .chars()
                .next_back()
                .is_some_and(|c| !c.is_whitespace());
        let next = after[i + marker.len()..].chars().next();
        let after_ok = marker != "_" || !next.is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            return Some(i);
        }
        from = i + marker.len();
    }
    None
}
