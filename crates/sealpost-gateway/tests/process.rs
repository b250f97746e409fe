//! `process`: every decision path of the mail-flow rules turned into copies, checked byte by
//! byte: originals (with added headers, without Bcc), wrappers that decrypt back to the
//! original with the tenant's secret key under the right policy, rejections, broken MIME, and
//! garbage input that must never panic.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sealpost_core::mail::{WrapperSettings, extract_envelope, rfc5322};
use sealpost_core::policy::Right;
use sealpost_core::{Envelope, LicenseSecretKey, Opened, SigningKey, open_with_tenant_keys};
use sealpost_gateway::process::{
    BROKEN_MIME_TEXT, BrokenMime, Copy, Processed, Processor, Protector,
};
use sealpost_rules::RuleSet;

const NOW: u64 = 1_800_000_000;
const REPLACEMENT: &str = "Protected message from Acme";

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[templates]]
name = "Legal 30 days"
rights = ["view", "reply"]
expires_after = "30days"

[[rules]]
name = "Block Secret"
priority = 1
conditions = { recipient_scope = "outside", classification = "Secret" }
actions = { reject = "Secret mail stays inside Acme" }

[[rules]]
name = "Blocked recipient"
priority = 2
conditions = { recipient = "blocked@other.example" }
actions = { reject = "This recipient is blocked" }

[[rules]]
name = "Contracts"
priority = 10
conditions = { recipient_scope = "outside", attachment_extension = "pdf" }
actions = { encrypt = "Do-Not-Forward", remove_subject = true, add_header = { name = "X-Acme-Protected", value = "contract" }, stop = true }

[[rules]]
name = "Secure on request"
priority = 20
conditions = { recipient_scope = "outside", subject_contains = "[secure]" }
actions = { encrypt = "Encrypt-Only" }

[[rules]]
name = "Legal"
priority = 30
conditions = { sender_domain = "legal.acme.example", recipient_domain = "counsel.example" }
actions = { encrypt = "Legal 30 days" }

[[rules]]
name = "Tag internal"
priority = 40
conditions = { recipient_scope = "inside", subject_contains = "[tag]" }
actions = { add_header = { name = "X-Acme-Tag", value = "tagged" } }

[[rules]]
name = "Trial IBAN"
priority = 50
mode = "test"
conditions = { subject_or_body_contains = "IBAN" }
actions = { encrypt = "Encrypt-Only" }
"#;

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

fn tenant() -> Tenant {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    Tenant {
        license: LicenseSecretKey::generate(&mut rng),
        signing: SigningKey::generate(&mut rng),
    }
}

fn processor(t: &Tenant, rules: &str, broken_mime: BrokenMime, show_subject: bool) -> Processor {
    Processor {
        rules: RuleSet::load(rules).expect("test rules load"),
        protector: Protector {
            tenant_id: "acme.example".into(),
            key_service_url: "https://keys.acme.example".into(),
            license_key: t.license.public_key(),
            signing_key: t.signing.clone(),
            verifying_keys: vec![t.signing.verifying_key()],
            wrapper: WrapperSettings {
                organization: "Acme".into(),
                portal_url: "https://portal.acme.example/open".into(),
                show_subject,
                replacement_subject: REPLACEMENT.into(),
            },
        },
        broken_mime,
        transport_decryption: false,
    }
}

fn run(p: &Processor, from: &str, rcpts: &[&str], raw: &[u8]) -> Processed {
    let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    p.process(from, &rcpts, raw, NOW, &mut rng)
        .expect("processing succeeds")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Opens a wrapper with the tenant's secret keys, as `sealpost decrypt` does.
fn open(t: &Tenant, wrapper: &[u8]) -> Opened {
    let bytes = extract_envelope(wrapper).expect("the wrapper carries an envelope");
    let env = Envelope::parse(&bytes).expect("the envelope parses");
    open_with_tenant_keys(
        &env,
        &[t.signing.verifying_key()],
        std::slice::from_ref(&t.license),
    )
    .expect("the tenant opens its own envelope")
}

/// The wrapper's header section as text.
fn header_text(data: &[u8]) -> String {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section");
    String::from_utf8_lossy(&data[..end + 2]).into_owned()
}

const PLAIN: &[u8] = b"From: Alice <alice@acme.example>\r\nTo: bob@other.example, carol@acme.example\r\nSubject: Lunch [tag]\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m1@acme.example>\r\n\r\nSee you at noon.\r\n";

const SECURE: &[u8] = b"From: Alice <alice@acme.example>\r\nTo: bob@other.example\r\nCc: carol@acme.example\r\nBcc: hidden@other.example\r\nSubject: Figures [secure]\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nMessage-ID: <m2@acme.example>\r\nIn-Reply-To: <m0@other.example>\r\nReferences: <m-1@acme.example>\r\n <m0@other.example>\r\n\r\nQ3 figures inside.\r\n";

fn contract() -> Vec<u8> {
    b"From: Legal <alice@acme.example>\r\nTo: bob@other.example, carol@acme.example\r\nSubject: Contract draft\r\nMessage-ID: <m3@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"draft.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n".to_vec()
}

fn deliver(p: Processed) -> (Vec<Copy>, Vec<(String, String)>, Vec<String>) {
    match p {
        Processed::Deliver {
            copies,
            rejected,
            summary,
            ..
        } => (copies, rejected, summary),
        Processed::RejectAll { text } => panic!("unexpected RejectAll: {text}"),
    }
}

#[test]
fn nothing_matches_one_original_for_everyone() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = b"From: a@acme.example\r\nTo: x@other.example\r\nSubject: hi\r\n\r\nbody\r\n";
    let (copies, rejected, summary) = deliver(run(
        &p,
        "a@acme.example",
        &["x@other.example", "y@acme.example"],
        raw,
    ));
    assert!(rejected.is_empty());
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].recipients, ["x@other.example", "y@acme.example"]);
    assert_eq!(copies[0].data, raw, "the original, byte for byte");
    assert_eq!(copies[0].label, "original");
    assert!(!copies[0].encrypted);
    assert_eq!(summary.len(), 2);
    assert!(summary[0].contains("x@other.example") && summary[0].contains("no rule matched"));
}

#[test]
fn split_inside_original_with_header_outside_wrapper_keeps_threading() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let (copies, rejected, summary) = deliver(run(
        &p,
        "alice@acme.example",
        &[
            "Bob@Other.example",
            "carol@acme.example",
            "hidden@other.example",
        ],
        SECURE,
    ));
    assert!(rejected.is_empty());
    assert_eq!(copies.len(), 2, "{copies:#?}");
    // Outside recipients (To and Bcc) share one wrapper, spelled as in RCPT TO.
    let w = &copies[0];
    assert_eq!(w.recipients, ["Bob@Other.example", "hidden@other.example"]);
    assert!(w.encrypted);
    assert_eq!(w.label, "encrypted (Encrypt-Only)");
    let opened = open(&t, &w.data);
    assert_eq!(
        &opened.plaintext[..],
        &rfc5322::strip_bcc(SECURE)[..],
        "decrypts to the original minus Bcc"
    );
    assert_eq!(opened.policy.template, "Encrypt-Only");
    assert_eq!(
        opened.policy.recipients,
        ["bob@other.example", "hidden@other.example"]
    );
    assert_eq!(opened.policy.sender, "alice@acme.example");
    assert_eq!(opened.policy.expires, None);
    assert_eq!(opened.header.created, NOW);
    assert_eq!(opened.header.subject.as_deref(), Some("Figures [secure]"));
    let h = header_text(&w.data);
    for line in [
        "Message-ID: <m2@acme.example>\r\n",
        "In-Reply-To: <m0@other.example>\r\n",
        "References: <m-1@acme.example>\r\n <m0@other.example>\r\n",
        "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n",
        "From: Alice <alice@acme.example>\r\n",
        "Subject: Figures [secure]\r\n",
    ] {
        assert!(h.contains(line), "wrapper keeps {line:?}:\n{h}");
    }
    assert!(!contains(&w.data, b"hidden@"), "Bcc never in the wrapper");
    assert!(
        !contains(&w.data, b"Q3 figures"),
        "no plaintext body in the wrapper"
    );
    // The inside recipient gets the original without its Bcc field.
    let o = &copies[1];
    assert_eq!(o.recipients, ["carol@acme.example"]);
    assert!(!o.encrypted);
    assert_eq!(o.data, rfc5322::strip_bcc(SECURE));
    assert!(!contains(&o.data, b"hidden@"));
    // Log lines: recipient, rule, action; never the subject.
    assert!(summary[0].starts_with("bob@other.example (outside): encrypt with Encrypt-Only"));
    assert!(summary[0].contains("\"Secure on request\""));
    assert!(summary.iter().all(|l| !l.contains("Figures")));
}

#[test]
fn do_not_forward_removes_subject_and_adds_header_on_the_wrapper() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = contract();
    let (copies, _, summary) = deliver(run(
        &p,
        "alice@acme.example",
        &["bob@other.example", "carol@acme.example"],
        &raw,
    ));
    assert_eq!(copies.len(), 2);
    let w = &copies[0];
    assert_eq!(w.label, "encrypted (Do-Not-Forward, subject removed)");
    assert!(w.data.starts_with(b"X-Acme-Protected: contract\r\n"));
    let h = header_text(&w.data);
    assert!(h.contains(&format!("Subject: {REPLACEMENT}\r\n")), "{h}");
    assert!(
        !contains(&w.data, b"Contract draft"),
        "subject gone from wrapper"
    );
    let opened = open(&t, &w.data);
    assert_eq!(&opened.plaintext[..], &raw[..]);
    assert_eq!(
        opened.header.subject, None,
        "subject gone from envelope header"
    );
    assert_eq!(opened.policy.template, "Do-Not-Forward");
    assert!(!opened.policy.rights.contains(Right::Forward));
    assert!(opened.policy.rights.contains(Right::Reply));
    assert_eq!(copies[1].data, raw, "inside gets the original untouched");
    assert!(summary[0].contains("Do-Not-Forward, subject removed"));
}

#[test]
fn custom_template_with_expiry_and_tenant_hiding_subjects() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, false);
    let raw = b"From: Counsel Team <Team@Legal.Acme.example>\r\nTo: ann@counsel.example\r\nSubject: Case 12\r\n\r\nPrivileged.\r\n";
    let (copies, _, _) = deliver(run(
        &p,
        "bounces@legal.acme.example",
        &["ann@counsel.example"],
        raw,
    ));
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].label, "encrypted (Legal 30 days)");
    let opened = open(&t, &copies[0].data);
    assert_eq!(&opened.plaintext[..], &raw[..]);
    assert_eq!(opened.policy.template, "Legal 30 days");
    assert_eq!(opened.policy.expires, Some(NOW + 30 * 86_400));
    assert!(!opened.policy.rights.contains(Right::ReplyAll));
    assert_eq!(
        opened.policy.sender, "team@legal.acme.example",
        "the header From, not the envelope sender"
    );
    assert_eq!(opened.header.subject, None);
    assert!(header_text(&copies[0].data).contains(&format!("Subject: {REPLACEMENT}\r\n")));
}

#[test]
fn sender_falls_back_to_envelope_sender_without_from() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = b"To: bob@other.example\r\nSubject: [secure] no from\r\n\r\nbody\r\n";
    let (copies, _, _) = deliver(run(&p, "Ops@Acme.example", &["bob@other.example"], raw));
    assert_eq!(open(&t, &copies[0].data).policy.sender, "ops@acme.example");
}

#[test]
fn add_header_and_test_mode_header_on_the_original() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = b"From: a@acme.example\nTo: c@acme.example\nSubject: [tag] IBAN list\n\nDE00 1234\n";
    let (copies, _, summary) = deliver(run(&p, "a@acme.example", &["c@acme.example"], raw));
    assert_eq!(copies.len(), 1);
    let expected = [
        &b"X-Acme-Tag: tagged\nX-Sealpost-Rule-Test: Trial IBAN\n"[..],
        &raw[..],
    ]
    .concat();
    assert_eq!(
        copies[0].data, expected,
        "headers in front, in LF like the message"
    );
    assert!(!copies[0].encrypted, "test mode never encrypts");
    assert!(summary[0].contains("\"Trial IBAN\" [test]"), "{summary:?}");
}

#[test]
fn test_mode_header_goes_on_the_wrapper_too() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = b"From: a@acme.example\r\nTo: b@other.example\r\nSubject: [secure] IBAN\r\n\r\nx\r\n";
    let (copies, _, _) = deliver(run(&p, "a@acme.example", &["b@other.example"], raw));
    assert!(copies[0].encrypted);
    assert!(
        copies[0]
            .data
            .starts_with(b"X-Sealpost-Rule-Test: Trial IBAN\r\n")
    );
    assert_eq!(&open(&t, &copies[0].data).plaintext[..], &raw[..]);
}

#[test]
fn reject_one_recipient_others_delivered() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let (copies, rejected, summary) = deliver(run(
        &p,
        "a@acme.example",
        &["Blocked@other.example", "c@acme.example"],
        PLAIN,
    ));
    assert_eq!(
        rejected,
        [(
            "Blocked@other.example".to_string(),
            "This recipient is blocked".to_string()
        )]
    );
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].recipients, ["c@acme.example"]);
    assert!(summary[0].contains("reject (550 5.7.1 This recipient is blocked)"));
}

#[test]
fn reject_all_gives_the_first_rules_text() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let raw = b"From: a@acme.example\r\nTo: x@other.example\r\nX-Classification: Secret\r\nSubject: s\r\n\r\nb\r\n";
    let out = run(
        &p,
        "a@acme.example",
        &["x@other.example", "blocked@other.example"],
        raw,
    );
    assert_eq!(
        out,
        Processed::RejectAll {
            text: "Secret mail stays inside Acme".into()
        }
    );
}

#[test]
fn broken_mime_rejected_when_configured() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Reject, true);
    for raw in [
        &b"\x89PNG\r\n\x1a\n binary"[..],
        b"",
        b"just a line of text\r\n",
    ] {
        assert_eq!(
            run(&p, "a@acme.example", &["b@other.example"], raw),
            Processed::RejectAll {
                text: BROKEN_MIME_TEXT.into()
            }
        );
    }
    assert!(BROKEN_MIME_TEXT.starts_with("message is not valid MIME"));
    // A valid message is not affected by the setting.
    let (copies, _, _) = deliver(run(&p, "a@acme.example", &["b@other.example"], PLAIN));
    assert_eq!(copies[0].data, PLAIN);
}

#[test]
fn broken_mime_protected_whole() {
    let t = tenant();
    let rules = "[organization]\ndomains = [\"acme.example\"]\n[[rules]]\nname = \"Outside\"\nconditions = { recipient_scope = \"outside\" }\nactions = { encrypt = \"Encrypt-Only\" }\n";
    let p = processor(&t, rules, BrokenMime::Protect, true);
    let raw = b"\x00\x01 not mail\r\nBcc: x@y.example\r\n\xff\xfe";
    let (copies, _, _) = deliver(run(
        &p,
        "sender@acme.example",
        &["b@other.example", "c@acme.example"],
        raw,
    ));
    assert_eq!(copies.len(), 2);
    let w = &copies[0];
    assert_eq!(
        w.label,
        "encrypted (Encrypt-Only, whole input: not valid MIME)"
    );
    let opened = open(&t, &w.data);
    assert_eq!(
        &opened.plaintext[..],
        &raw[..],
        "the payload is the original bytes"
    );
    assert_eq!(opened.policy.sender, "sender@acme.example");
    let h = header_text(&w.data);
    assert!(h.contains("From: <sender@acme.example>\r\n"), "{h}");
    assert!(h.contains("To: undisclosed-recipients:;\r\n"), "{h}");
    assert_eq!(copies[1].data, raw, "inside gets the bytes as they came");
}

#[test]
fn no_recipients_no_copies() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let (copies, rejected, summary) = deliver(run(&p, "a@acme.example", &[], PLAIN));
    assert!(copies.is_empty() && rejected.is_empty() && summary.is_empty());
}

#[test]
fn duplicate_recipients_get_one_copy() {
    let t = tenant();
    let p = processor(&t, RULES, BrokenMime::Protect, true);
    let (copies, _, _) = deliver(run(
        &p,
        "a@acme.example",
        &["b@other.example", "B@other.example"],
        PLAIN,
    ));
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].recipients, ["b@other.example"]);
}

/// Random bytes, mangled messages and a known parser trap: never a panic, always a result,
/// and every wrapper opens to what it should.
#[test]
fn garbage_never_panics() {
    let t = tenant();
    let rules = "[organization]\ndomains = [\"acme.example\"]\n[[rules]]\nname = \"Outside\"\nconditions = { recipient_scope = \"outside\" }\nactions = { encrypt = \"Do-Not-Forward\", add_header = { name = \"X-T\", value = \"é\" } }\n";
    let protect = processor(&t, rules, BrokenMime::Protect, true);
    let reject = processor(&t, rules, BrokenMime::Reject, true);
    let mut rng = ChaCha20Rng::seed_from_u64(1234);
    let seeds: Vec<Vec<u8>> = vec![PLAIN.to_vec(), SECURE.to_vec(), contract()];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let fuzz = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/fuzz/mail-parser-debug-assert.bin"
    );
    inputs.push(std::fs::read(fuzz).expect("fuzz fixture"));
    for i in 0..300 {
        let mut buf = if i % 3 == 0 {
            let mut b = vec![0u8; (rng.next_u32() % 600) as usize];
            rng.fill_bytes(&mut b);
            b
        } else {
            seeds[i % seeds.len()].clone()
        };
        let len = buf.len().max(1);
        for _ in 0..(rng.next_u32() % 8) {
            let at = rng.next_u32() as usize % len;
            if at < buf.len() {
                buf[at] = rng.next_u32() as u8;
            }
        }
        if i % 5 == 0 {
            buf.truncate(rng.next_u32() as usize % len);
        }
        if i % 7 == 0 {
            let at = rng.next_u32() as usize % len;
            let junk: &[u8] = [
                &b"\r\n\r\n"[..],
                b"\nBcc: z@q\n",
                b":",
                b"--b1\r\n",
                b"=?utf-8?b?",
            ][i % 5];
            buf.splice(at.min(buf.len())..at.min(buf.len()), junk.iter().copied());
        }
        inputs.push(buf);
    }
    for raw in &inputs {
        let rcpts = ["b@other.example".to_string(), "c@acme.example".to_string()];
        let out = protect
            .process("s@acme.example", &rcpts, raw, NOW, &mut rng)
            .expect("garbage still processes");
        let (copies, _, _) = deliver(out);
        assert_eq!(copies.len(), 2);
        let opened = open(&t, &copies[0].data);
        let expected = if copies[0].label.contains("not valid MIME") {
            raw.clone()
        } else {
            rfc5322::strip_bcc(raw)
        };
        assert_eq!(&opened.plaintext[..], &expected[..]);
        assert!(copies[0].data.starts_with(b"X-T: =?utf-8?"));
        let _ = reject
            .process("s@acme.example", &rcpts, raw, NOW, &mut rng)
            .expect("garbage still processes");
    }
}
