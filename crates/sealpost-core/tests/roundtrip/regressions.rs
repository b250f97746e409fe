//! Regression tests for bugs found while writing this suite (all fixed).

use std::path::Path;

use mail_parser::MessageParser;
use sealpost_core::mail::rfc5322;

use crate::fixtures::{FIXTURES, sample_wrapper};

/// Every To, Cc and Bcc field counts, not only the last of each kind.
#[test]
fn regression_addresses_read_every_recipient_field() {
    let blind = rfc5322::addresses(
        &std::fs::read(Path::new(FIXTURES).join("13-bcc-two-fields.eml")).unwrap(),
    );
    assert_eq!(
        blind.recipients,
        [
            "xena@recipient.example",
            "first-blind@blind.example",
            "second-blind@blind.example",
            "third-blind@blind.example"
        ]
    );
    let two_to = b"From: a@x.example\r\nTo: t1@x.example\r\nTo: t2@x.example\r\nCc: c1@x.example\r\nCc: c2@x.example\r\n\r\nb\r\n";
    assert_eq!(
        rfc5322::addresses(two_to).recipients,
        [
            "t1@x.example",
            "t2@x.example",
            "c1@x.example",
            "c2@x.example"
        ]
    );
}

/// A Bcc field that mail-parser (and so the portal) reads must be cut out, including the
/// obsolete `Bcc :` form (RFC 5322 section 4.5.3) and one after a malformed header line.
#[test]
fn regression_strip_bcc_misses_fields_mail_parser_reads() {
    for m in [
        &b"From: a@x.example\r\nTo: t@x.example\r\nBcc : hidden@x.example\r\nSubject: s\r\n\r\nbody\r\n"[..],
        &b"From: a@x.example\r\nTo: t@x.example\r\nX-No-Colon\r\nBcc: hidden@x.example\r\n\r\nbody\r\n"[..],
    ] {
        let stripped = rfc5322::strip_bcc(m);
        let msg = MessageParser::default().parse(&stripped).unwrap();
        assert!(msg.bcc().is_none(), "{:?} keeps its Bcc", String::from_utf8_lossy(m));
    }
}

/// The wrapper goes out by SMTP: CRLF lines of at most 998 bytes (RFC 5321/5322), and the
/// message.html body must really be in the transfer encoding its part header names, or mail
/// clients decode it into garbage (mail-parser quietly falls back to the raw bytes, so the
/// round trip above does not notice).
#[test]
fn regression_wrapper_attachment_is_not_encoded() {
    use base64::Engine;
    let (_, wrapper, html) = sample_wrapper();
    for line in wrapper.split_inclusive(|&b| b == b'\n') {
        let shown = String::from_utf8_lossy(line);
        assert!(line.ends_with(b"\r\n"), "bare LF line: {shown:?}");
        assert!(line.len() <= 1000, "line of {} bytes", line.len());
    }
    let pos = |from: usize, needle: &[u8]| {
        from + wrapper[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let named = pos(0, b"filename=\"message.html\"");
    let part_start = wrapper[..named]
        .windows(4)
        .rposition(|w| w == b"\n--=")
        .unwrap();
    let body_start = pos(named, b"\r\n\r\n") + 4;
    let body_end = pos(body_start, b"\r\n--");
    let part_header =
        String::from_utf8_lossy(&wrapper[part_start..body_start]).to_ascii_lowercase();
    if part_header.contains("content-transfer-encoding: base64") {
        let text: Vec<u8> = wrapper[body_start..body_end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("the attachment body is base64");
        assert!(decoded == html.as_bytes());
    } else {
        assert!(
            part_header.contains("content-transfer-encoding: quoted-printable"),
            "{part_header}"
        );
    }
}
