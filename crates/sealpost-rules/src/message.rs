//! The parts of a message that rules look at, read once with mail-parser.
//!
//! A [`MessageView`] holds the decoded subject, the From address, every header field as text,
//! the text of each body (HTML converted to text, for word search), attachment file names and
//! the raw size. It never changes the message; mail that mail-parser cannot read gives a view
//! with only the size, so rules on size and recipients still work.

use mail_parser::decoders::html::html_to_text;
use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};

/// What the rules see of one message.
#[derive(Debug, Clone, Default)]
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
        let size = raw.len() as u64;
        let Some(msg) = MessageParser::default().parse(raw) else {
            return MessageView {
                size,
                readable: false,
                ..MessageView::default()
            };
        };
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

/// Joins folded lines and trims.
fn unfold(s: &str) -> String {
    s.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
