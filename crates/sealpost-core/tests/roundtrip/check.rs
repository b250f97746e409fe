//! `round_trip`: seals, wraps, extracts and opens one message and checks every promise listed
//! at the top of `main.rs`.

use mail_parser::{MessageParser, MimeHeaders};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::rfc5322::{self, fields};
use sealpost_core::mail::{extract_envelope, message_html, wrap};
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, Sealer, open_with_tenant_keys, seal};

use crate::fixtures::{NOW, TestTenant, settings};

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

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn is_bcc(name: &str) -> bool {
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
pub fn round_trip(name: &str, m: &[u8], tenant: &TestTenant, show_subject: bool, seed: u64) {
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
