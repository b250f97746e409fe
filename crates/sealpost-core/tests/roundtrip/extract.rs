//! `extract_envelope` on garbage, near-misses and cut-short wrappers.

use mail_parser::MessageParser;
use sealpost_core::mail::{ENVELOPE_SCRIPT_TYPE, ExtractError, extract_envelope};

use crate::fixtures::sample_wrapper;

#[test]
fn extract_envelope_rejects_what_is_not_an_envelope() {
    use ExtractError::{BadEncoding, NotFound};
    let (envelope, wrapper, html) = sample_wrapper();
    let block_open = format!("<script type=\"{ENVELOPE_SCRIPT_TYPE}\">");

    let cases: Vec<(&str, Vec<u8>, Result<(), ExtractError>)> = vec![
        ("empty", Vec::new(), Err(NotFound)),
        (
            "garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            Err(NotFound),
        ),
        ("text", b"hello world\n".to_vec(), Err(NotFound)),
        (
            "plain mail",
            b"From: a@b.c\r\nSubject: hi\r\n\r\nno attachment\r\n".to_vec(),
            Err(NotFound),
        ),
        (
            "html without the block",
            b"<!DOCTYPE html><html><body><script>var x = 1;</script></body></html>".to_vec(),
            Err(NotFound),
        ),
        (
            "bad base64 in the block",
            format!("<html>{block_open}\nU0VBTFBPU1Q*not*base64*\n</script></html>").into_bytes(),
            Err(BadEncoding),
        ),
        (
            "block never closed",
            format!("<html>{block_open}\nU0VBTFBPU1QB\n").into_bytes(),
            Err(NotFound),
        ),
        ("magic prefix only", b"SEALPOS".to_vec(), Err(NotFound)),
        ("envelope", envelope.clone(), Ok(())),
        ("wrapper", wrapper.clone(), Ok(())),
        ("message.html", html.clone().into_bytes(), Ok(())),
    ];
    for (what, input, expected) in cases {
        let got = extract_envelope(&input);
        match expected {
            Ok(()) => assert_eq!(got.as_deref(), Ok(&envelope[..]), "{what}"),
            Err(e) => assert_eq!(got, Err(e), "{what}"),
        }
    }

    // message.html with one base64 character of its block made invalid.
    let start = html
        .find(&format!("type=\"{ENVELOPE_SCRIPT_TYPE}\""))
        .unwrap();
    let data = start + html[start..].find('>').unwrap() + 10;
    let mut bad_html = html.clone().into_bytes();
    bad_html[data] = b'*';
    assert_eq!(extract_envelope(&bad_html), Err(BadEncoding));

    // The same damage inside a wrapper mail's attachment.
    let parsed = MessageParser::default().parse(&wrapper).unwrap();
    let attachment = parsed.attachments().next().unwrap();
    assert!(attachment.contents() == html.as_bytes());
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&bad_html)
    };
    let mut bad_wrapper = Vec::new();
    bad_wrapper.extend_from_slice(
        b"From: a@example.com\r\nTo: b@example.org\r\nMIME-Version: 1.0\r\n\
          Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
          --b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Disposition: attachment; filename=\"message.html\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in encoded.as_bytes().chunks(76) {
        bad_wrapper.extend_from_slice(line);
        bad_wrapper.extend_from_slice(b"\r\n");
    }
    bad_wrapper.extend_from_slice(b"--b--\r\n");
    assert_eq!(extract_envelope(&bad_wrapper), Err(BadEncoding));

    // Cut short anywhere, flipped anywhere: an error or some bytes, never a panic.
    let step = (wrapper.len() / 300).max(1);
    for cut in (0..wrapper.len()).step_by(step) {
        let _ = extract_envelope(&wrapper[..cut]);
        let _ = extract_envelope(&html.as_bytes()[..cut.min(html.len())]);
        let mut flipped = wrapper.clone();
        flipped[cut] ^= 0x20;
        let _ = extract_envelope(&flipped);
    }
    // Cutting the wrapper before its attachment ends loses the envelope.
    assert_eq!(
        extract_envelope(&wrapper[..wrapper.len() / 2]),
        Err(NotFound)
    );
}

/// Fuzzing found a mail that reaches a `debug_assert!(false)` inside mail-parser; with the
/// workspace's profile setting it must come back as "not found", not a panic.
#[test]
fn fuzz_regression_mail_parser_debug_assert() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/fuzz/mail-parser-debug-assert.bin"
    ))
    .unwrap();
    assert!(sealpost_core::mail::extract_envelope(&input).is_err());
}
