//! Just enough RFC 5322 to protect a message without changing it: find the header block,
//! list its fields with their exact byte ranges, cut out `Bcc`, and read the addresses.
//!
//! Works on raw bytes with CRLF or bare-LF line endings and any charset; the message body is
//! never looked at. Field boundaries and address parsing (groups, encoded words, comments) are
//! `mail-parser`'s, so they match what a reader of the decrypted message sees. This module
//! does not judge whether a message is well-formed beyond "does it start with a header field".

use std::ops::Range;

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser};

/// One header field: its name and the byte range of the whole field (name, value, folded
/// continuation lines and the final line ending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name as written (case kept).
    pub name: String,
    /// Byte range of the complete field in the message.
    pub range: Range<usize>,
}

/// Lines of `raw` as byte ranges that include their line ending.
fn first_line(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |p| p + 1);
    &raw[..end]
}

/// The header fields of `raw`, in order, exactly as `mail-parser` reads them (the same parser
/// the portal renders with), so that what this module strips or copies is what a reader
/// would see: field names may have white space before the colon, lines without a colon are
/// skipped, and the block ends at the first empty line.
pub fn fields(raw: &[u8]) -> Vec<Field> {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    msg.headers()
        .iter()
        .map(|h| Field {
            name: h.name.as_str().to_string(),
            range: h.offset_field as usize..(h.offset_end as usize).min(raw.len()),
        })
        .collect()
}

/// Whether `raw` looks like a mail message: its first line is a header field (`Name: ...`,
/// white space allowed before the colon).
pub fn looks_like_mail(raw: &[u8]) -> bool {
    let line = first_line(raw);
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

/// `raw` without its `Bcc` fields; every other byte is kept as it was.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let mut current = raw.to_vec();
    // Cutting a field can, in contrived input, let the parser see a new one: repeat until no
    // Bcc is left (bounded; each pass removes at least one field).
    for _ in 0..64 {
        let bcc: Vec<Range<usize>> = fields(&current)
            .into_iter()
            .filter(|f| f.name.eq_ignore_ascii_case("bcc"))
            .map(|f| f.range)
            .collect();
        if bcc.is_empty() {
            break;
        }
        let mut out = Vec::with_capacity(current.len());
        let mut pos = 0;
        for r in bcc {
            out.extend_from_slice(&current[pos..r.start]);
            pos = r.end;
        }
        out.extend_from_slice(&current[pos..]);
        current = out;
    }
    current
}

/// The addresses a message is from and to, as read from its header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// The first `From` address.
    pub from: Option<String>,
    /// `To`, `Cc` and `Bcc` addresses, normalized, without duplicates, in order.
    pub recipients: Vec<String>,
    /// The decoded subject.
    pub subject: Option<String>,
}

/// Reads From, To, Cc, Bcc (every field of each kind, not only the last) and Subject.
pub fn addresses(raw: &[u8]) -> Addresses {
    let Some(msg) = MessageParser::default().parse_headers(raw) else {
        return Addresses::default();
    };
    let list = |name: HeaderName<'static>| -> Vec<String> {
        msg.header_values(name)
            .filter_map(|v| match v {
                HeaderValue::Address(a) => Some(a),
                _ => None,
            })
            .flat_map(|a: &Address<'_>| a.iter())
            .filter_map(|x| x.address())
            .map(crate::policy::normalize_address)
            .collect()
    };
    let mut recipients: Vec<String> = Vec::new();
    let all = [HeaderName::To, HeaderName::Cc, HeaderName::Bcc];
    for addr in all.into_iter().flat_map(list) {
        if !addr.is_empty() && !recipients.contains(&addr) {
            recipients.push(addr);
        }
    }
    Addresses {
        from: list(HeaderName::From).into_iter().next(),
        recipients,
        subject: msg.subject().map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: Alice <alice@example.com>\r\nTo: bob@gmail.com,\r\n  Carol <CAROL@yahoo.com>\r\nBcc: secret@example.net,\r\n\tcontinued@example.net\r\nSubject: =?utf-8?q?Caf=C3=A9?=\r\n\r\nBody\r\nBcc: not-a-header@example.com\r\n";

    #[test]
    fn fields_and_folding() {
        let f = fields(MSG);
        let names: Vec<_> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["From", "To", "Bcc", "Subject"]);
        assert_eq!(
            &MSG[f[2].range.clone()],
            b"Bcc: secret@example.net,\r\n\tcontinued@example.net\r\n"
        );
    }

    #[test]
    fn bcc_is_cut_and_nothing_else_changes() {
        let out = strip_bcc(MSG);
        let find = |needle: &[u8]| MSG.windows(needle.len()).position(|w| w == needle).unwrap();
        let expected = [&MSG[..find(b"Bcc: secret")], &MSG[find(b"Subject:")..]].concat();
        assert_eq!(out, expected);
        assert!(
            out.ends_with(b"Bcc: not-a-header@example.com\r\n"),
            "body untouched"
        );
        let lf = b"To: a@b.c\nBcc: x@y.z\nSubject: s\n\nbody";
        assert_eq!(strip_bcc(lf), b"To: a@b.c\nSubject: s\n\nbody");
    }

    #[test]
    fn addresses_include_bcc() {
        let a = addresses(MSG);
        assert_eq!(a.from.as_deref(), Some("alice@example.com"));
        assert_eq!(
            a.recipients,
            [
                "bob@gmail.com",
                "carol@yahoo.com",
                "secret@example.net",
                "continued@example.net"
            ]
        );
        assert_eq!(a.subject.as_deref(), Some("Café"));
    }

    #[test]
    fn mail_detection() {
        assert!(looks_like_mail(b"Subject: x\n\n"));
        assert!(!looks_like_mail(b""));
        assert!(!looks_like_mail(b"\x89PNG\r\n"));
        assert!(!looks_like_mail(b"hello world\n"));
        assert!(!looks_like_mail(b": no name\n"));
    }
}
