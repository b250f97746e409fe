//! The parts of a message that rules look at, read once with mail-parser.
//!
//! A [`MessageView`] holds the decoded subject, the From address, every header field as text,
//! the text of each body (HTML converted to text, for word search), attachment file names and
//! the raw size. It never changes the message; mail that mail-parser cannot read gives a view
//! with only the size, so rules on size and recipients still work.
//!
//! Fast path ([`ascii_single_part`]): mail-parser decodes every text part through its charset
//! decoder while parsing, and for `us-ascii`, `iso-8859-1` and `windows-1252` that decoder
//! builds the text one `char` at a time (about 20 instructions a byte). For the commonest
//! shape of mail, one text part (no multipart) without a transfer encoding, in an
//! ASCII-compatible charset, whose body bytes are all ASCII, the decoded text is the raw bytes
//! themselves: then only the header section is given to mail-parser and the body is taken as
//! it is. The view is the same as the full parse's (`message_tests.rs` compares the two on
//! every shape the fast path takes and on the ones it must leave to the full parse).

use mail_parser::decoders::html::html_to_text;
use mail_parser::{Encoding, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

/// What the rules see of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageView {
    /// The decoded subject ("" when absent).
    pub subject: String,
    /// The first From address, lowercase.
    pub from: Option<String>,
    /// Every header field: name as written, value as text (decoded where mail-parser decodes).
    pub headers: Vec<(String, String)>,
    /// The text of every body part, and of every HTML body converted to text.
    pub bodies: Vec<String>,
    /// The file names of the attachments that have one.
    pub attachments: Vec<String>,
    /// The To, Cc and Bcc addresses, lowercase, in order, without repeats.
    pub recipients: Vec<String>,
    /// The size of the raw message in bytes.
    pub size: u64,
    /// Whether mail-parser could read the message at all (false: every field above is empty
    /// except `size`).
    pub readable: bool,
}

impl MessageView {
    /// Reads a raw RFC 5322 message.
    pub fn parse(raw: &[u8]) -> MessageView {
        match ascii_single_part(raw) {
            Some(msg) => MessageView::from_message(&msg, raw),
            None => MessageView::parse_full(raw),
        }
    }

    /// Reads a raw message with mail-parser's full parse (no fast path).
    fn parse_full(raw: &[u8]) -> MessageView {
        match MessageParser::default().parse(raw) {
            Some(msg) => MessageView::from_message(&msg, raw),
            None => MessageView {
                size: raw.len() as u64,
                readable: false,
                ..MessageView::default()
            },
        }
    }

    /// The view of a parsed message (`raw`: the whole message, for header offsets and size).
    fn from_message(msg: &Message<'_>, raw: &[u8]) -> MessageView {
        let size = raw.len() as u64;
        let headers = msg
            .headers()
            .iter()
            .map(|h| {
                let text = match h.value() {
                    HeaderValue::Text(t) => t.to_string(),
                    HeaderValue::TextList(l) => l.join(", "),
                    _ => {
                        let start = (h.offset_start() as usize).min(raw.len());
                        let end = (h.offset_end() as usize).clamp(start, raw.len());
                        unfold(&String::from_utf8_lossy(&raw[start..end]))
                    }
                };
                (h.name().to_string(), text)
            })
            .collect();
        let mut bodies = Vec::new();
        let mut i = 0;
        while let Some(text) = msg.body_text(i) {
            bodies.push(text.into_owned());
            i += 1;
        }
        // HTML alternatives may say more than the text part: search them too, as text.
        for part in msg.html_bodies() {
            if let PartType::Html(html) = &part.body {
                let text = html_to_text(html);
                if !bodies.contains(&text) {
                    bodies.push(text);
                }
            }
        }
        let attachments = msg
            .attachments()
            .filter_map(|p| p.attachment_name().map(str::to_string))
            .collect();
        let mut recipients: Vec<String> = Vec::new();
        for list in [msg.to(), msg.cc(), msg.bcc()].into_iter().flatten() {
            for a in list.iter() {
                if let Some(addr) = a.address() {
                    let addr = addr.trim().to_ascii_lowercase();
                    if !addr.is_empty() && !recipients.contains(&addr) {
                        recipients.push(addr);
                    }
                }
            }
        }
        MessageView {
            subject: msg.subject().unwrap_or("").to_string(),
            from: msg
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address())
                .map(|a| a.trim().to_ascii_lowercase()),
            headers,
            bodies,
            attachments,
            recipients,
            size,
            readable: true,
        }
    }

    /// The values of every header field called `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Charsets whose decoder in mail-parser maps every ASCII byte to itself and reads bytes one
/// at a time (no escape or shift sequences, unlike UTF-7, ISO-2022-* or UTF-16), compared
/// ASCII case-insensitively, as mail-parser compares them.
const ASCII_IDENTITY_CHARSETS: &[&str] = &[
    "us-ascii",
    "ascii",
    "utf-8",
    "utf8",
    "iso-8859-1",
    "latin1",
    "iso-8859-15",
    "windows-1252",
    "cp1252",
];

/// The message as mail-parser's full parse reads it, when it is one text part with no
/// transfer encoding, an ASCII-compatible charset and an ASCII body: the header section is
/// parsed by mail-parser and the body borrowed from `raw` as it is. `None` for every other
/// message (the caller then parses it whole).
fn ascii_single_part(raw: &[u8]) -> Option<Message<'_>> {
    let body_start = memchr_blank_line(raw)?;
    let body = &raw[body_start..];
    if !body.is_ascii() {
        return None;
    }
    let mut msg = MessageParser::default().parse(&raw[..body_start])?;
    if msg.parts.len() != 1 {
        return None;
    }
    let root = &msg.parts[0];
    // mail-parser must have ended the header section where we did.
    if root.offset_body as usize != body_start
        || root.is_encoding_problem
        || root.encoding != Encoding::None
    {
        return None;
    }
    // Only `text/*` (or no Content-Type, which mail-parser reads as text/plain): a multipart
    // or message/* type reads differently without its body.
    if let Some(ct) = root.content_type() {
        if !ct.ctype().eq_ignore_ascii_case("text") {
            return None;
        }
        if let Some(charset) = ct.attribute("charset")
            && !ASCII_IDENTITY_CHARSETS
                .iter()
                .any(|c| c.eq_ignore_ascii_case(charset))
        {
            return None;
        }
    }
    // ASCII is valid UTF-8, so this never fails.
    let text = std::str::from_utf8(body).ok()?;
    let part = &mut msg.parts[0];
    part.body = match &part.body {
        PartType::Text(_) => PartType::Text(text.into()),
        PartType::Html(_) => PartType::Html(text.into()),
        _ => return None,
    };
    part.offset_end = raw.len() as u32;
    Some(msg)
}

/// Where the body starts: just after the first empty line (`\n\n` or `\n\r\n`), or `None`
/// when there is no empty line.
fn memchr_blank_line(raw: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = raw[from..].iter().position(|&b| b == b'\n') {
        let nl = from + i;
        match raw.get(nl + 1..) {
            Some([b'\n', ..]) => return Some(nl + 2),
            Some([b'\r', b'\n', ..]) => return Some(nl + 3),
            _ => from = nl + 1,
        }
    }
    None
}

/// Joins folded lines and trims.
fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
