//! Just enough RFC 5322 to protect a message without changing it: find the header block,
//! list its fields with their exact byte ranges, cut out `Bcc`, and read the addresses.
//!
//! Works on raw bytes with CRLF or bare-LF line endings and any charset; the message body is
//! never looked at. Address parsing (groups, encoded words, comments) is delegated to
//! `mail-parser`. This module does not judge whether a message is well-formed beyond
//! "does it start with a header field".

use std::ops::Range;

use mail_parser::{Address, MessageParser};

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
fn lines(raw: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= raw.len() {
            return None;
        }
        let end = raw[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |p| start + p + 1);
        let r = start..end;
        start = end;
        Some(r)
    })
}

fn is_blank_line(line: &[u8]) -> bool {
    line == b"\n" || line == b"\r\n"
}

/// The field name of a line that starts a header field (`name:`), if it is one.
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

/// The header fields of `raw`, in order, stopping at the blank line (or at the first line
/// that is neither a field nor a continuation, where a malformed message's body begins).
pub fn fields(raw: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for line in lines(raw) {
        let bytes = &raw[line.clone()];
        if is_blank_line(bytes) {
            break;
        }
        if matches!(bytes.first(), Some(b' ' | b'\t')) {
            match out.last_mut() {
                Some(f) => {
                    f.range.end = line.end;
                    continue;
                }
                None => break,
            }
        }
        match field_name(bytes) {
            Some(name) => out.push(Field {
                name: name.to_string(),
                range: line,
            }),
            None => break,
        }
    }
    out
}

/// Whether `raw` looks like a mail message: it starts with a header field.
pub fn looks_like_mail(raw: &[u8]) -> bool {
    lines(raw)
        .next()
        .is_some_and(|l| field_name(&raw[l]).is_some())
}

/// `raw` without its `Bcc` fields; every other byte is kept as it was.
pub fn strip_bcc(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for f in fields(raw) {
        if f.name.eq_ignore_ascii_case("bcc") {
            out.extend_from_slice(&raw[pos..f.range.start]);
            pos = f.range.end;
        }
    }
    out.extend_from_slice(&raw[pos..]);
    out
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

/// Reads From, To, Cc, Bcc and Subject.
pub fn addresses(raw: &[u8]) -> Addresses {
    let end = fields(raw).last().map_or(0, |f| f.range.end);
    let Some(msg) = MessageParser::default().parse_headers(&raw[..end]) else {
        return Addresses::default();
    };
    let list = |a: Option<&Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .map(crate::policy::normalize_address)
                .collect()
        })
        .unwrap_or_default()
    };
    let mut recipients: Vec<String> = Vec::new();
    for addr in list(msg.to())
        .into_iter()
        .chain(list(msg.cc()))
        .chain(list(msg.bcc()))
    {
        if !addr.is_empty() && !recipients.contains(&addr) {
            recipients.push(addr);
        }
    }
    Addresses {
        from: list(msg.from()).into_iter().next(),
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
