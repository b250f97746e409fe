//! The wrapper mail: what the recipient's mailbox receives instead of the protected message.
//!
//! It keeps the original's addressing and threading fields byte for byte (`From`, `Sender`,
//! `Reply-To`, `To`, `Cc`, `Date`, `Message-ID`, `In-Reply-To`, `References`; `Subject` only
//! when the tenant shows subjects), adds `X-Sealpost-Envelope`, and carries a short text and
//! HTML explanation plus the `message.html` attachment. `Bcc` is never copied. Other fields of
//! the original (including `Received` and custom headers) stay inside the encryption.

use mail_builder::headers::Header as _;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;

use super::escape_html;
use super::html::message_html;
use super::rfc5322::fields;
use crate::header::Header;

/// How a tenant presents its wrapper mails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapperSettings {
    /// The organization's display name.
    pub organization: String,
    /// Where recipients open messages (the portal's URL).
    pub portal_url: String,
    /// Whether the original subject is shown on the wrapper (and in the envelope header).
    pub show_subject: bool,
    /// The wrapper's subject when the original is hidden.
    pub replacement_subject: String,
}

/// Fields copied from the original, compared case-insensitively.
const COPIED: [&str; 9] = [
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "date",
    "message-id",
    "in-reply-to",
    "references",
];

/// The name of the header field that marks a wrapper mail.
pub const MARKER_FIELD: &str = "X-Sealpost-Envelope";

/// Appends `bytes` with every line ending made CRLF.
fn push_crlf(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut prev = 0u8;
    for &b in bytes {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
}

fn text_body(header: &Header, s: &WrapperSettings) -> String {
    format!(
        "{org} sent you a protected message.\r\n\r\n\
         From: {sender}\r\n\
         Reference: {reference}\r\n\r\n\
         To read it, open the attached file \"message.html\" in a web\r\n\
         browser and sign in with the e-mail address it was sent to.\r\n\r\n\
         If the attachment does not open, go to\r\n\
         {portal}\r\n\
         and drop message.html onto the page.\r\n",
        org = s.organization,
        sender = header.sender,
        reference = header.message_id.reference(),
        portal = s.portal_url,
    )
}

fn html_body(header: &Header, s: &WrapperSettings) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"font-family:sans-serif\">\
         <p><strong>{org}</strong> sent you a protected message.</p>\
         <p>From: {sender}<br>Reference: {reference}</p>\
         <p>To read it, open the attached file <strong>message.html</strong> in a web browser \
         and sign in with the e-mail address this message was sent to.</p>\
         <p>If the attachment does not open, go to <a href=\"{portal}\">{portal}</a> and drop \
         message.html onto the page.</p></body></html>",
        org = escape_html(&s.organization),
        sender = escape_html(&header.sender),
        reference = header.message_id.reference(),
        portal = escape_html(&s.portal_url),
    )
}

/// Standard base64 in 76-character lines, each ending in CRLF (RFC 2045).
fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out
}

/// Builds the wrapper mail for `original`, sealed as `envelope` with readable `header`.
pub fn wrap(
    original: &[u8],
    envelope: &[u8],
    header: &Header,
    settings: &WrapperSettings,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(envelope.len() * 4 / 3 + 8192);
    let mut has_date = false;
    let mut has_message_id = false;
    for f in fields(original) {
        let name = f.name.to_ascii_lowercase();
        let copy = COPIED.contains(&name.as_str()) || (name == "subject" && settings.show_subject);
        if copy {
            has_date |= name == "date";
            has_message_id |= name == "message-id";
            push_crlf(&mut out, &original[f.range]);
        }
    }
    if !has_date {
        out.extend_from_slice(b"Date: ");
        Date::new(header.created.min(i64::MAX as u64) as i64).write_rfc822(&mut out);
        out.extend_from_slice(b"\r\n");
    }
    if !has_message_id {
        out.extend_from_slice(
            format!(
                "Message-ID: <{}@{}>\r\n",
                header.message_id,
                header.tenant_id.replace(
                    |c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'),
                    ""
                )
            )
            .as_bytes(),
        );
    }
    if !settings.show_subject {
        out.extend_from_slice(b"Subject: ");
        Text::new(settings.replacement_subject.as_str()).write_header(&mut out, 9);
    }
    out.extend_from_slice(
        format!(
            "{MARKER_FIELD}: v1; id={}; tenant={}\r\nMIME-Version: 1.0\r\n",
            header.message_id,
            header.tenant_id.replace(['\r', '\n', ';'], "")
        )
        .as_bytes(),
    );

    let id = header.message_id.to_hex();
    let alternative = MimePart::new(
        ContentType::new("multipart/alternative").attribute("boundary", format!("=_sp_alt_{id}")),
        vec![
            MimePart::new(
                ContentType::new("text/plain").attribute("charset", "utf-8"),
                text_body(header, settings),
            ),
            MimePart::new(
                ContentType::new("text/html").attribute("charset", "utf-8"),
                html_body(header, settings),
            ),
        ],
    );
    // mail-builder writes a part with an explicit transfer encoding as is, so the body is
    // base64-encoded here: 76-character lines, CRLF.
    let attachment = MimePart::new(
        ContentType::new("text/html").attribute("charset", "utf-8"),
        base64_lines(message_html(envelope, header, settings).as_bytes()),
    )
    .attachment("message.html")
    .transfer_encoding("base64");
    let mixed = MimePart::new(
        ContentType::new("multipart/mixed").attribute("boundary", format!("=_sp_mixed_{id}")),
        vec![alternative, attachment],
    );
    mixed.write_part(&mut out);
    out
}
