//! The decrypted RFC 5322 message, read with `mail-parser` into what the portal shows: the
//! header fields, the bodies, the attachments and any nested `message/rfc822` parts
//! (recursively, to a fixed depth).
//!
//! Text stays text and HTML stays raw here: HTML is sanitized only when it is rendered
//! ([`super::sanitize`]), because what is allowed depends on the recipient's choice about
//! remote content. Inline parts referenced by `cid:` are kept as data URLs for the sanitizer
//! and are not listed as attachments.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mail_parser::{Address, MessageParser, MimeHeaders, PartType};

/// How deep nested messages are unpacked; deeper ones are listed as attachments.
pub const MAX_DEPTH: usize = 8;

/// A message ready to show.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageView {
    /// `From`, formatted.
    pub from: String,
    /// `To`, formatted.
    pub to: String,
    /// `Cc`, formatted (empty when absent).
    pub cc: String,
    /// `Date`, formatted (empty when absent).
    pub date: String,
    /// `Subject` (empty when absent).
    pub subject: String,
    /// The bodies, in order.
    pub bodies: Vec<Body>,
    /// Attachments (not inline images the HTML refers to, not nested messages).
    pub attachments: Vec<Attachment>,
    /// Nested messages, unpacked.
    pub nested: Vec<MessageView>,
    /// `cid:` targets: Content-ID (without angle brackets) → `data:` URL.
    pub inline: Arc<HashMap<String, String>>,
}

/// One body part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Plain text.
    Text(String),
    /// Raw HTML (sanitized when rendered).
    Html(String),
}

/// An attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name (a fallback when the part has none).
    pub name: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The decoded bytes.
    pub data: Arc<[u8]>,
}

impl Attachment {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.data.len()
    }
}

/// Why the message cannot be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// Not an RFC 5322 message.
    #[error("the decrypted message is not an e-mail message")]
    NotAMessage,
}

/// Reads the decrypted message.
pub fn read_message(bytes: &[u8]) -> Result<MessageView, MimeError> {
    let message = MessageParser::default()
        .parse(bytes)
        .ok_or(MimeError::NotAMessage)?;
    Ok(view(&message, 0))
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    a.iter()
        .map(|addr| match (addr.name(), addr.address()) {
            (Some(n), Some(e)) if !n.is_empty() => format!("{n} <{e}>"),
            (_, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

fn mime_type(part: &mail_parser::MessagePart<'_>) -> String {
    part.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

/// Content-ID without surrounding angle brackets or white space.
fn content_id(part: &mail_parser::MessagePart<'_>) -> Option<String> {
    let id = part.content_id()?.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    let id = id.strip_suffix('>').unwrap_or(id);
    (!id.is_empty()).then(|| id.to_string())
}

fn view(message: &mail_parser::Message<'_>, depth: usize) -> MessageView {
    let mut inline = HashMap::new();
    for part in &message.parts {
        if let (Some(id), PartType::Binary(data) | PartType::InlineBinary(data)) =
            (content_id(part), &part.body)
        {
            let ty = mime_type(part);
            if ty.starts_with("image/") {
                inline.insert(id, format!("data:{ty};base64,{}", B64.encode(data)));
            }
        }
    }

    let has_html = message.html_body.iter().any(|&i| {
        matches!(
            message.parts.get(i as usize).map(|p| &p.body),
            Some(PartType::Html(_))
        )
    });
    let list = if has_html {
        &message.html_body
    } else {
        &message.text_body
    };
    let bodies: Vec<Body> = list
        .iter()
        .filter_map(|&i| match &message.parts.get(i as usize)?.body {
            PartType::Html(h) => Some(Body::Html(h.to_string())),
            PartType::Text(t) => Some(Body::Text(t.to_string())),
            _ => None,
        })
        .collect();
    let html_text: String = bodies
        .iter()
        .filter_map(|b| match b {
            Body::Html(h) => Some(h.as_str()),
            Body::Text(_) => None,
        })
        .collect();

    let mut attachments = Vec::new();
    let mut nested = Vec::new();
    for &i in &message.attachments {
        let Some(part) = message.parts.get(i as usize) else {
            continue;
        };
        if let (PartType::Message(inner), true) = (&part.body, depth + 1 < MAX_DEPTH) {
            nested.push(view(inner, depth + 1));
            continue;
        }
        if content_id(part).is_some_and(|id| html_text.contains(&format!("cid:{id}"))) {
            continue;
        }
        let content_type = mime_type(part);
        let name = part
            .attachment_name()
            .map(sanitize_file_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| fallback_name(&content_type, attachments.len() + 1));
        attachments.push(Attachment {
            name,
            content_type,
            data: Arc::from(part.contents()),
        });
    }

    MessageView {
        from: addresses(message.from()),
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        date: message.date().map(|d| d.to_rfc822()).unwrap_or_default(),
        subject: message.subject().unwrap_or_default().to_string(),
        bodies,
        attachments,
        nested,
        inline: Arc::new(inline),
    }
}

/// A file name safe to offer for download: no path, no control characters.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(200)
        .collect()
}

fn fallback_name(content_type: &str, n: usize) -> String {
    let ext = match content_type {
        "message/rfc822" => "eml",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        _ => "bin",
    };
    format!("attachment-{n}.{ext}")
}

/// A size for people: `532 bytes`, `12.3 KB`, `4.0 MB` (integer arithmetic only, so the
/// bundle needs no floating-point formatting).
pub fn human_size(n: usize) -> String {
    const UNITS: [(&str, u128); 3] = [("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)];
    for (name, unit) in UNITS {
        if n as u128 >= unit {
            let tenths = (n as u128 * 10 + unit / 2) / unit;
            return format!("{}.{} {name}", tenths / 10, tenths % 10);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
#[path = "mime_tests.rs"]
mod tests;
