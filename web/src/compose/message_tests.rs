//! The built message read back with `mail-parser`, the reply's policy against the contract,
//! the sealed submission opened with the tenant's keys, the request body, and the answers.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use mail_parser::{MessageParser, MimeHeaders};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::{Envelope, LicenseSecretKey, Right, SigningKey, Template, countersign};

use super::address::forward;
use super::message::{self, BuildError, MAX_MESSAGE_BYTES, build, references};
use super::submit::{self, OriginalJson, ReplyRequest, SealProblem, reply_endpoint, send_problem};
use super::tests::{CREATED, original, original_with};
use super::*;
use crate::api::{CallError, ErrorBody, TenantInfo, TenantKey};

const NOW: u64 = CREATED + 3_600;

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn built(draft: &Draft) -> (Built, Recipients) {
    let o = original();
    let r = draft.recipients(&o, "bob@example.org").unwrap();
    let b = build(draft, &o, "bob@example.org", &r, NOW, &mut rng(1)).unwrap();
    (b, r)
}

#[test]
fn the_reply_parses_back_with_its_fields() {
    let o = original();
    let mut d = Draft::new(Kind::ReplyAll, &o, "bob@example.org");
    d.subject = "Re: Zahlen für Q4".into();
    d.body = format!("Thanks, **all** of it.\n- one\n{}", d.body);
    d.attachments.push(FileItem::picked(
        "../notes.txt",
        "text/plain",
        b"line 1\nline 2\n".to_vec(),
    ));
    d.attachments.push(FileItem::picked(
        "photo.png",
        "image/png",
        vec![0x89, b'P', b'N', b'G', 0, 255],
    ));
    let (b, _) = built(&d);
    let raw = &b.bytes[..];
    // Every line ends in CRLF.
    assert!(raw.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r'));
    let m = MessageParser::default().parse(raw).unwrap();
    assert_eq!(
        m.from().unwrap().first().unwrap().address(),
        Some("bob@example.org")
    );
    let to: Vec<_> = m
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap().to_string())
        .collect();
    assert_eq!(to, ["alice@example.com"]);
    assert_eq!(
        m.to().unwrap().first().unwrap().name(),
        Some("Alice Example")
    );
    let cc: Vec<_> = m
        .cc()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap().to_string())
        .collect();
    assert_eq!(cc, ["carol@example.net", "dave@example.net"]);
    assert_eq!(m.subject(), Some("Re: Zahlen für Q4"));
    assert_eq!(m.date().unwrap().to_timestamp(), NOW as i64);
    let id = m.message_id().unwrap();
    assert!(
        id.ends_with("@sealpost.invalid") && id.len() == 32 + 17,
        "{id}"
    );
    assert_eq!(b.threading.message_id, format!("<{id}>"));
    assert_eq!(m.in_reply_to().as_text(), Some("orig-1@example.com"));
    assert_eq!(
        m.references().as_text_list().unwrap(),
        ["root@example.com", "mid@example.com", "orig-1@example.com"]
    );
    assert_eq!(
        b.threading.in_reply_to.as_deref(),
        Some("<orig-1@example.com>")
    );
    assert_eq!(
        b.threading.references.as_deref(),
        Some("<root@example.com> <mid@example.com> <orig-1@example.com>")
    );
    let text = m.body_text(0).unwrap();
    assert!(
        text.starts_with("Thanks, **all** of it.\r\n- one\r\n"),
        "{text}"
    );
    assert!(text.contains("> the numbers are attached."));
    let html = m.body_html(0).unwrap();
    assert!(
        html.contains("<strong>all</strong>") && html.contains("<li>one</li>"),
        "{html}"
    );
    // Attached files arrive byte for byte (a text file keeps its line endings).
    let files: Vec<_> = m
        .attachments()
        .map(|a| {
            (
                a.attachment_name().unwrap().to_string(),
                a.content_type()
                    .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                    .unwrap(),
                a.contents().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            (
                "notes.txt".to_string(),
                "text/plain".to_string(),
                b"line 1\nline 2\n".to_vec()
            ),
            (
                "photo.png".to_string(),
                "image/png".to_string(),
                vec![0x89, b'P', b'N', b'G', 0, 255]
            ),
        ]
    );
}

#[test]
fn plain_text_stays_plain_and_forward_keeps_the_attachments() {
    let o = original();
    let mut d = Draft::new(Kind::Forward, &o, "bob@example.org");
    d.to = "Erin <erin@example.com>".into();
    let (b, r) = built(&d);
    assert_eq!(r.all(), ["erin@example.com"]);
    let m = MessageParser::default().parse(&b.bytes[..]).unwrap();
    assert_eq!(m.body_html(0).map(|h| h.contains("<strong>")), Some(false));
    assert!(
        m.html_body
            .iter()
            .all(|&i| !matches!(m.parts[i as usize].body, mail_parser::PartType::Html(_)))
    );
    assert!(m.cc().is_none());
    assert_eq!(m.references().as_text_list().unwrap().len(), 3);
    let pdf = m.attachments().next().unwrap();
    assert_eq!(pdf.attachment_name(), Some("q4.pdf"));
    assert_eq!(pdf.contents(), b"%PDF-1.4\n");
    // Removing the forwarded attachment removes it from the message.
    d.attachments.clear();
    let (b, _) = built(&d);
    let m = MessageParser::default().parse(&b.bytes[..]).unwrap();
    assert_eq!(m.attachments().count(), 0);
}

#[test]
fn references_keep_the_first_and_the_latest() {
    let mut o = original();
    o.references = (0..30).map(|i| format!("r{i}@x")).collect();
    let refs = references(&o);
    assert_eq!(refs.len(), message::MAX_REFERENCES);
    assert_eq!(refs[0], "r0@x");
    assert_eq!(refs[1], "r12@x");
    assert_eq!(refs.last().unwrap(), "orig-1@example.com");
    o.message_id = None;
    o.references.clear();
    let d = Draft::new(Kind::Reply, &o, "bob@example.org");
    let r = d.recipients(&o, "bob@example.org").unwrap();
    let b = build(&d, &o, "bob@example.org", &r, NOW, &mut rng(2)).unwrap();
    assert_eq!(
        (b.threading.in_reply_to, b.threading.references),
        (None, None)
    );
    let m = MessageParser::default().parse(&b.bytes[..]).unwrap();
    assert!(m.in_reply_to().is_empty() && m.references().is_empty());
}

#[test]
fn empty_and_oversized_messages_are_refused() {
    let o = original();
    let mut d = Draft::new(Kind::Reply, &o, "bob@example.org");
    d.body = " \n ".into();
    let r = d.recipients(&o, "bob@example.org").unwrap();
    assert_eq!(
        build(&d, &o, "bob@example.org", &r, NOW, &mut rng(3)).err(),
        Some(BuildError::Empty)
    );
    d.attachments.push(FileItem {
        name: "big.bin".into(),
        content_type: "application/octet-stream".into(),
        data: Arc::from(vec![0u8; MAX_MESSAGE_BYTES + 1]),
    });
    assert_eq!(
        build(&d, &o, "bob@example.org", &r, NOW, &mut rng(3)).err(),
        Some(BuildError::TooLarge)
    );
}

#[test]
fn picked_files_get_safe_names_and_types() {
    let f = FileItem::picked("C:\\x\\..\\report.pdf", "Application/PDF", vec![1]);
    assert_eq!(
        (f.name.as_str(), f.content_type.as_str()),
        ("report.pdf", "application/pdf")
    );
    let f = FileItem::picked("", "text/html; charset=x", vec![]);
    assert_eq!(
        (f.name.as_str(), f.content_type.as_str()),
        ("attachment", "application/octet-stream")
    );
    assert!(message::is_content_type("application/vnd.ms-excel"));
    assert!(!message::is_content_type("text"));
    assert!(!message::is_content_type("text/plain\r\nX: y"));
}

#[test]
fn the_policy_follows_the_contract() {
    let o = original_with(&Template::do_not_forward(), Some(CREATED + 86_400), true);
    let r = address::fixed(Kind::ReplyAll, &o, "bob@example.org").unwrap();
    let p = submit::policy(&o, " Bob@Example.org", &r, NOW);
    assert_eq!(p.template, "Do-Not-Forward");
    assert_eq!(p.rights, Template::do_not_forward().rights);
    assert_eq!(p.sender, "bob@example.org");
    assert_eq!(
        p.recipients,
        ["alice@example.com", "carol@example.net", "dave@example.net"]
    );
    assert_eq!(p.expires, Some(NOW + 86_400));
    let o = original_with(&Template::encrypt_only(), None, false);
    let p = submit::policy(
        &o,
        "bob@example.org",
        &forward("A@X.org", "b@x.org").unwrap(),
        NOW,
    );
    assert_eq!(p.expires, None);
    assert_eq!(p.recipients, ["a@x.org", "b@x.org"]);
    assert_eq!(submit::header_subject(&o, "Re: x"), None);
    assert_eq!(
        submit::header_subject(&original(), " Re: x "),
        Some("Re: x".to_string())
    );
}

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

impl Tenant {
    fn new() -> Tenant {
        let mut r = rng(9);
        Tenant {
            license: LicenseSecretKey::generate(&mut r),
            signing: SigningKey::generate(&mut r),
        }
    }

    fn info(&self) -> TenantInfo {
        let key = |id: String, public_key: String, status: &str| TenantKey {
            id,
            public_key,
            status: status.into(),
        };
        let other = LicenseSecretKey::generate(&mut rng(10)).public_key();
        TenantInfo {
            tenant_id: "example.com".into(),
            display_name: "Example".into(),
            signing_keys: vec![key(
                self.signing.verifying_key().key_id().to_string(),
                self.signing.verifying_key().to_base64(),
                "active",
            )],
            license_keys: vec![
                key(other.key_id().to_string(), other.to_base64(), "retired"),
                key(
                    self.license.public_key().key_id().to_string(),
                    self.license.public_key().to_base64(),
                    "active",
                ),
            ],
            branding: Default::default(),
            reply_url: Some("http://127.0.0.1:8090/".into()),
            oidc_providers: Vec::new(),
        }
    }
}

#[test]
fn the_submission_opens_to_exactly_the_built_message() {
    let t = Tenant::new();
    let o = original_with(&Template::do_not_forward(), Some(CREATED + 600), true);
    let d = Draft::new(Kind::Reply, &o, "bob@example.org");
    let r = d.recipients(&o, "bob@example.org").unwrap();
    let b = build(&d, &o, "bob@example.org", &r, NOW, &mut rng(4)).unwrap();
    let policy = submit::policy(&o, "bob@example.org", &r, NOW);
    let subject = submit::header_subject(&o, &d.subject);
    let env = submit::seal(
        &o,
        &t.info(),
        &policy,
        subject.as_deref(),
        NOW,
        &b.bytes,
        &mut rng(5),
    )
    .unwrap();
    let parsed = Envelope::parse(&env).unwrap();
    assert!(parsed.is_submission());
    assert!(parsed.verify(&t.signing.verifying_key()).is_err());
    let h = parsed.header();
    assert_eq!(h.tenant_id, "example.com");
    assert_eq!(h.key_service_url, "http://127.0.0.1:8080");
    assert_eq!(h.sender, "bob@example.org");
    assert_eq!(h.template, "Do-Not-Forward");
    assert_eq!(h.subject.as_deref(), Some("Re: Quarterly numbers"));
    assert_eq!(h.created, NOW);
    let signed = countersign(&env, &t.signing).unwrap();
    let signed = Envelope::parse(&signed).unwrap();
    signed.verify(&t.signing.verifying_key()).unwrap();
    let license = signed.open_license(&t.license).unwrap();
    assert_eq!(license.policy, policy);
    assert_eq!(license.policy.expires, Some(NOW + 600));
    assert_eq!(&signed.decrypt(&license.share_b).unwrap()[..], &b.bytes[..]);

    let no_keys = TenantInfo {
        license_keys: vec![],
        ..t.info()
    };
    assert_eq!(
        submit::seal(&o, &no_keys, &policy, None, NOW, &b.bytes, &mut rng(5)),
        Err(SealProblem::NoKey)
    );
}

#[test]
fn the_request_carries_no_plaintext() {
    let t = Tenant::new();
    let o = original();
    let mut d = Draft::new(Kind::Forward, &o, "bob@example.org");
    d.to = "erin@example.com".into();
    d.cc = "Frank <FRANK@example.com>".into();
    d.body = "The secret plan is PINEAPPLE-42.".into();
    d.subject = "Fwd: PINEAPPLE".into();
    let r = d.recipients(&o, "bob@example.org").unwrap();
    let b = build(&d, &o, "bob@example.org", &r, NOW, &mut rng(6)).unwrap();
    let policy = submit::policy(&o, "bob@example.org", &r, NOW);
    let env = submit::seal(&o, &t.info(), &policy, None, NOW, &b.bytes, &mut rng(7)).unwrap();
    let request = ReplyRequest::new(
        Kind::Forward,
        OriginalJson {
            envelope: "U0VBTFBPU1Q=",
        },
        B64.encode(&env),
        &r,
        &b.threading,
    );
    let json = serde_json::to_string(&request).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "forward");
    assert_eq!(v["to"], serde_json::json!(["erin@example.com"]));
    assert_eq!(v["cc"], serde_json::json!(["frank@example.com"]));
    assert_eq!(
        v["original"],
        serde_json::json!({ "envelope": "U0VBTFBPU1Q=" })
    );
    assert_eq!(v["threading"]["in_reply_to"], "<orig-1@example.com>");
    assert_eq!(
        v["threading"]["message_id"],
        b.threading.message_id.as_str()
    );
    assert_eq!(B64.decode(v["envelope"].as_str().unwrap()).unwrap(), env);
    for secret in ["PINEAPPLE", "numbers are attached", "JVBERi0", "%PDF"] {
        assert!(!json.contains(secret), "{secret} leaked");
        assert!(
            !env.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in envelope"
        );
    }
}

#[test]
fn reply_urls_become_endpoints() {
    assert_eq!(
        reply_endpoint("http://127.0.0.1:8090/").as_deref(),
        Some("http://127.0.0.1:8090/v1/replies")
    );
    assert_eq!(
        reply_endpoint("https://mail.example.com/gw").as_deref(),
        Some("https://mail.example.com/gw/v1/replies")
    );
    for bad in [
        "",
        "ftp://x",
        "http://",
        "javascript:alert(1)",
        "http://a@b",
        "http://x/?q",
        "http://x y",
    ] {
        assert_eq!(reply_endpoint(bad), None, "{bad}");
    }
}

#[test]
fn every_answer_is_explained() {
    let status = |code: &str, retry_after| CallError::Status {
        status: 400,
        body: ErrorBody {
            error: code.into(),
            remaining: None,
        },
        retry_after,
    };
    let p = send_problem(Kind::Reply, &status("not_signed_in", None));
    assert!(
        p.sign_in_again && p.text.contains("Sign in again"),
        "{}",
        p.text
    );
    assert!(send_problem(Kind::Reply, &status("sender_mismatch", None)).sign_in_again);
    let codes = [
        ("not_a_recipient", "was not a recipient"),
        (
            "right_not_granted",
            "does not allow this message to be forwarded",
        ),
        (
            "recipients_not_allowed",
            "forward can go to between 1 and 100",
        ),
        ("reply_policy_invalid", "did not accept the protection"),
        ("recipients_mismatch", "did not accept the protection"),
        ("revoked", "withdrew"),
        ("expired", "has expired"),
        ("malformed_license", "could not check"),
        ("unknown_key", "could not check"),
        ("bad_envelope", "could not check"),
        (
            "bad_original",
            "could not confirm that the sender's organization sent",
        ),
        ("too_large", "Remove an attachment"),
        ("key_service_unavailable", "Try again in 5 seconds"),
        ("unavailable", "cannot take messages right now"),
        ("rate_limited", "Too many requests"),
        ("bad_request", "Reload the portal"),
        ("missing_client_header", "Reload the portal"),
        ("unsupported_media_type", "Reload the portal"),
    ];
    for (code, words) in codes {
        let p = send_problem(Kind::Forward, &status(code, Some(5)));
        assert!(!p.sign_in_again, "{code}");
        assert!(
            p.text.contains(words) && p.text.ends_with("Nothing was sent."),
            "{code}: {}",
            p.text
        );
    }
    assert!(
        send_problem(Kind::ReplyAll, &status("recipients_not_allowed", None))
            .text
            .contains("Use Reply instead")
    );
    assert!(
        send_problem(Kind::Reply, &status("right_not_granted", None))
            .text
            .contains("replied to")
    );
    assert!(
        send_problem(Kind::Reply, &CallError::Network)
            .text
            .contains("could not be reached")
    );
    assert!(
        send_problem(Kind::Reply, &status("", None))
            .text
            .contains("HTTP 400")
    );
    assert!(
        send_problem(Kind::Reply, &status("unavailable", None))
            .text
            .contains("a moment")
    );
    // Rights that forbid a kind are the gateway's to refuse too; the portal only hides it.
    assert!(
        !original_with(&Template::do_not_forward(), None, true)
            .rights
            .contains(Right::Forward)
    );
}

#[test]
fn the_largest_message_fits_the_gateways_request_limit() {
    let t = Tenant::new();
    let o = original();
    let mut d = Draft::new(Kind::Forward, &o, "bob@example.org");
    d.to = "erin@example.com".into();
    d.attachments.clear();
    let mut noise = vec![0u8; MAX_MESSAGE_BYTES - d.body.len()];
    rand_core::Rng::fill_bytes(&mut rng(8), &mut noise);
    d.attachments.push(FileItem::picked(
        "noise.bin",
        "application/octet-stream",
        noise,
    ));
    assert_eq!(d.content_len(), MAX_MESSAGE_BYTES);
    let r = d.recipients(&o, "bob@example.org").unwrap();
    let b = build(&d, &o, "bob@example.org", &r, NOW, &mut rng(8)).unwrap();
    let policy = submit::policy(&o, "bob@example.org", &r, NOW);
    let env = submit::seal(&o, &t.info(), &policy, None, NOW, &b.bytes, &mut rng(8)).unwrap();
    let b64 = B64.encode(&env).len();
    // The request carries the original envelope too, up to MAX_ORIGINAL_BYTES of it.
    let original_b64 = submit::MAX_ORIGINAL_BYTES.div_ceil(3) * 4;
    assert!(submit::fits(b64, original_b64), "{b64} bytes of base64");
    assert!(!submit::fits(
        b64,
        original_b64 + (submit::MAX_REQUEST_BYTES - b64) / 2
    ));
    assert!(!submit::fits(submit::MAX_REQUEST_BYTES, 0));
    assert!(!submit::fits(0, submit::MAX_REQUEST_BYTES));
}
