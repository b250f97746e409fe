//! Protect → wrap → extract → open, for every self-made fixture in `tests/fixtures/mail/` and,
//! when it is there, every file of the shared mail corpus beside the checkout.
//!
//! What must hold for each message `m`:
//! - the opened plaintext is `strip_bcc(m)` byte for byte, and `m` itself when `m` has no Bcc;
//! - the envelope comes back identical from the wrapper mail and from `message.html` alone;
//! - the wrapper has no Bcc field, leaks no blind address, and keeps the original addressing
//!   and threading fields byte for byte (line endings made CRLF);
//! - mail-parser reads the wrapper and finds exactly one attachment, `message.html`, holding
//!   exactly what `message_html` builds.
//!
//! `extract_envelope_rejects_what_is_not_an_envelope` feeds it garbage, near-misses and
//! cut-short wrappers. Tests named `regression_*` pin bugs found and fixed earlier.

use std::path::{Path, PathBuf};

use mail_parser::{MessageParser, MimeHeaders};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::rfc5322::{self, fields};
use sealpost_core::mail::{
    ENVELOPE_SCRIPT_TYPE, ExtractError, WrapperSettings, extract_envelope, message_html, wrap,
};
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, open_with_tenant_keys, seal};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/mail");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const NOW: u64 = 1_800_000_000;
const FALLBACK_SENDER: &str = "sender@sealpost.test";
const FALLBACK_RECIPIENT: &str = "recipient@sealpost.test";

/// Fields the wrapper must keep byte for byte.
const KEPT: [&str; 7] = [
    "from",
    "to",
    "cc",
    "date",
    "message-id",
    "in-reply-to",
    "references",
];

struct TestTenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

impl TestTenant {
    fn new(seed: u8) -> TestTenant {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        TestTenant {
            license: LicenseSecretKey::generate(&mut rng),
            signing: SigningKey::generate(&mut rng),
        }
    }
}

fn settings(show_subject: bool) -> WrapperSettings {
    WrapperSettings {
        organization: "Example & Co <Test>".into(),
        portal_url: "https://portal.sealpost.test/open".into(),
        show_subject,
        replacement_subject: "Encrypted message from Example & Co".into(),
    }
}

/// Every regular file under `dir`, recursively, sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(p);
        }
    }
}

fn fixture_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(Path::new(FIXTURES), &mut out);
    out.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    out
}

/// What `wrap` promises to do to a copied field: every bare LF made CRLF, CRLF at the end.
fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
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
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn is_bcc(name: &str) -> bool {
    name.eq_ignore_ascii_case("bcc")
}

/// The header block of `raw` (up to the end of its last field).
fn header_block(raw: &[u8]) -> &[u8] {
    &raw[..fields(raw).last().map_or(0, |f| f.range.end)]
}

/// Addresses mail-parser reads from the Bcc fields of `raw`.
fn bcc_addresses(raw: &[u8]) -> Vec<String> {
    let Some(msg) = MessageParser::default().parse_headers(header_block(raw)) else {
        return Vec::new();
    };
    msg.all_bcc()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .filter(|a| !a.is_empty())
        .collect()
}

/// Seals, wraps, extracts and opens `m`, checking every promise. Panics with `name` on failure.
fn round_trip(name: &str, m: &[u8], tenant: &TestTenant, show_subject: bool, seed: u64) {
    let settings = settings(show_subject);
    let stripped = rfc5322::strip_bcc(m);
    let original_fields = fields(m);
    let has_bcc = original_fields.iter().any(|f| is_bcc(&f.name));
    if has_bcc {
        assert_ne!(
            stripped, m,
            "{name}: has a Bcc field but strip_bcc changed nothing"
        );
        assert!(
            !fields(&stripped).iter().any(|f| is_bcc(&f.name)),
            "{name}: Bcc left after strip_bcc"
        );
    } else {
        assert_eq!(
            stripped, m,
            "{name}: strip_bcc changed a message without Bcc"
        );
    }

    let addrs = rfc5322::addresses(m);
    let sender = addrs.from.clone().unwrap_or_else(|| FALLBACK_SENDER.into());
    let recipients = if addrs.recipients.is_empty() {
        vec![FALLBACK_RECIPIENT.to_string()]
    } else {
        addrs.recipients.clone()
    };
    let subject = if show_subject {
        addrs.subject.clone()
    } else {
        None
    };
    let policy = Template::do_not_forward().policy(&sender, &recipients, NOW);
    let license_pk = tenant.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.sealpost.test",
        license_key: &license_pk,
        signing_key: &tenant.signing,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let envelope = seal(
        &sealer,
        &policy,
        subject.as_deref(),
        NOW,
        &stripped,
        &mut rng,
    )
    .unwrap_or_else(|e| panic!("{name}: seal failed: {e}"));
    let header = Envelope::parse(&envelope)
        .unwrap_or_else(|e| panic!("{name}: fresh envelope does not parse: {e}"))
        .header()
        .clone();
    let wrapper = wrap(m, &envelope, &header, &settings);
    let html = message_html(&envelope, &header, &settings);

    // The envelope comes back, identical, from both carriers; and it opens.
    let from_wrapper =
        extract_envelope(&wrapper).unwrap_or_else(|e| panic!("{name}: extract from wrapper: {e}"));
    let from_html = extract_envelope(html.as_bytes())
        .unwrap_or_else(|e| panic!("{name}: extract from html: {e}"));
    assert!(
        from_wrapper == envelope,
        "{name}: envelope from the wrapper differs"
    );
    assert!(
        from_html == envelope,
        "{name}: envelope from message.html differs"
    );
    for (carrier, bytes) in [("wrapper", &from_wrapper), ("message.html", &from_html)] {
        let env =
            Envelope::parse(bytes).unwrap_or_else(|e| panic!("{name}: parse ({carrier}): {e}"));
        assert_eq!(env.header(), &header, "{name}: header ({carrier})");
        let opened = open_with_tenant_keys(
            &env,
            &[tenant.signing.verifying_key()],
            std::slice::from_ref(&tenant.license),
        )
        .unwrap_or_else(|e| panic!("{name}: open ({carrier}): {e}"));
        assert!(
            opened.plaintext[..] == stripped[..],
            "{name}: plaintext ({carrier}) is not strip_bcc(m)"
        );
        if !has_bcc {
            assert!(
                opened.plaintext[..] == m[..],
                "{name}: plaintext ({carrier}) is not m"
            );
        }
        assert_eq!(opened.policy, policy, "{name}: policy ({carrier})");
        assert_eq!(
            opened.header.subject, subject,
            "{name}: sealed subject ({carrier})"
        );
    }

    // The wrapper: no Bcc, no blind address, original addressing kept.
    let wrapper_fields = fields(&wrapper);
    assert!(
        !wrapper_fields.iter().any(|f| is_bcc(&f.name)),
        "{name}: the wrapper has a Bcc field"
    );
    let wrapper_field_bytes: Vec<&[u8]> = wrapper_fields
        .iter()
        .map(|f| &wrapper[f.range.clone()])
        .collect();
    for kept in KEPT {
        let originals: Vec<Vec<u8>> = original_fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(kept))
            .map(|f| crlf(&m[f.range.clone()]))
            .collect();
        if originals.is_empty() {
            continue;
        }
        let copies: Vec<&[u8]> = wrapper_fields
            .iter()
            .zip(&wrapper_field_bytes)
            .filter(|(f, _)| f.name.eq_ignore_ascii_case(kept))
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(
            copies.len(),
            originals.len(),
            "{name}: number of {kept} fields in the wrapper"
        );
        for (copy, original) in copies.iter().zip(&originals) {
            assert!(
                *copy == &original[..],
                "{name}: {kept} changed:\n  original {:?}\n  wrapper  {:?}",
                String::from_utf8_lossy(original),
                String::from_utf8_lossy(copy)
            );
        }
    }
    let rest_of_header = header_block(&stripped).to_ascii_lowercase();
    let wrapper_lower = wrapper.to_ascii_lowercase();
    for blind in bcc_addresses(m) {
        if !contains(&rest_of_header, blind.as_bytes()) {
            assert!(
                !contains(&wrapper_lower, blind.as_bytes()),
                "{name}: Bcc address {blind} leaks into the wrapper"
            );
        }
    }
    // The decrypted message is what the recipients read (the portal parses it with
    // mail-parser): no Bcc there either.
    let inner = MessageParser::default().parse_headers(&stripped);
    assert!(
        inner.is_none_or(|msg| msg.bcc().is_none()),
        "{name}: mail-parser still sees a Bcc after strip_bcc"
    );

    // mail-parser reads the wrapper and finds exactly message.html attached.
    let parsed = MessageParser::default()
        .parse(&wrapper)
        .unwrap_or_else(|| panic!("{name}: mail-parser cannot parse the wrapper"));
    assert!(
        parsed.bcc().is_none(),
        "{name}: mail-parser sees a Bcc in the wrapper"
    );
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 1, "{name}: attachments in the wrapper");
    assert_eq!(
        attachments[0].attachment_name(),
        Some("message.html"),
        "{name}: attachment name"
    );
    assert!(
        attachments[0].contents() == html.as_bytes(),
        "{name}: attachment is not message_html(..)"
    );
    assert!(
        contains(header_block(&wrapper), b"X-Sealpost-Envelope: v1; id="),
        "{name}: wrapper lacks its marker field"
    );
}

#[test]
fn fixtures_round_trip() {
    let paths = fixture_paths();
    assert!(
        (15..=40).contains(&paths.len()),
        "expected the self-made fixtures in {FIXTURES}, found {}",
        paths.len()
    );
    let tenant = TestTenant::new(7);
    for (i, path) in paths.iter().enumerate() {
        let m = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        round_trip(&name, &m, &tenant, i % 2 == 0, i as u64);
        round_trip(&name, &m, &tenant, i % 2 == 1, 1000 + i as u64);
    }
}

#[test]
fn fixtures_cover_what_they_claim() {
    let read =
        |n: &str| std::fs::read(Path::new(FIXTURES).join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let bcc_count = |n: &str| fields(&read(n)).iter().filter(|f| is_bcc(&f.name)).count();
    assert!(!read("02-bare-lf.eml").contains(&b'\r'));
    assert!(read("04-latin1-8bit.eml").iter().any(|&b| b >= 0x80));
    assert!(
        std::str::from_utf8(&read("04-latin1-8bit.eml")).is_err(),
        "Latin-1, not UTF-8"
    );
    assert!(!read("15-no-trailing-newline.eml").ends_with(b"\n"));
    assert!(read("17-nul-bytes.eml").contains(&0));
    assert!(
        read("16-long-header-line.eml")
            .split(|&b| b == b'\n')
            .any(|l| l.len() > 998)
    );
    assert!(!contains(
        &read("19-headers-only-no-blank-line.eml"),
        b"\r\n\r\n"
    ));
    assert_eq!(bcc_count("11-bcc-single.eml"), 1);
    assert_eq!(bcc_count("12-bcc-folded.eml"), 1);
    assert_eq!(bcc_count("13-bcc-two-fields.eml"), 2);
    let group = rfc5322::addresses(&read("14-group-syntax.eml"));
    assert_eq!(
        group.recipients,
        ["a@x.example", "b@y.example", "outside@recipient.example"]
    );
    let cc_only = rfc5322::addresses(&read("20-cc-only.eml"));
    assert_eq!(
        cc_only.recipients,
        ["kay@recipient.example", "lou@recipient.example"]
    );
}

// Regression tests for bugs found while writing this suite (all fixed).

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

#[test]
fn corpus_round_trip() {
    let mut paths = Vec::new();
    walk(Path::new(CORPUS), &mut paths);
    if paths.is_empty() {
        return;
    }
    let tenant = TestTenant::new(9);
    for (i, path) in paths.iter().enumerate() {
        let m = std::fs::read(path).unwrap();
        let name = path
            .strip_prefix(CORPUS)
            .unwrap_or(path)
            .display()
            .to_string();
        round_trip(&name, &m, &tenant, i % 2 == 0, 5000 + i as u64);
    }
    let dir = Path::new(CORPUS)
        .canonicalize()
        .unwrap_or_else(|_| CORPUS.into());
    println!(
        "corpus: {} files from {} round-tripped",
        paths.len(),
        dir.display()
    );
}

/// A wrapper built for `extract_envelope`'s negative tests.
fn sample_wrapper() -> (Vec<u8>, Vec<u8>, String) {
    let tenant = TestTenant::new(3);
    let pk = tenant.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.sealpost.test",
        license_key: &pk,
        signing_key: &tenant.signing,
    };
    let m = b"From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    let policy = Template::encrypt_only().policy("a@example.com", &["b@example.org".into()], NOW);
    let envelope = seal(
        &sealer,
        &policy,
        None,
        NOW,
        m,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let header = Envelope::parse(&envelope).unwrap().header().clone();
    let wrapper = wrap(m, &envelope, &header, &settings(false));
    let html = message_html(&envelope, &header, &settings(false));
    (envelope, wrapper, html)
}

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
