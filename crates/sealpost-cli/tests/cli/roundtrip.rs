//! encrypt → inspect → decrypt on the self-made fixtures and the other accepted inputs:
//! the original comes back byte for byte, less its Bcc field.

use sealpost_core::mail::{extract_envelope, rfc5322};
use sealpost_core::{Envelope, open_with_tenant_keys};
use tempfile::TempDir;

use crate::common::{
    attachment, find, fixture, fixture_names, has_bcc_field, header_block, inspect, ok, s, tenant,
    tenant_keys, write,
};

#[test]
fn every_fixture_round_trips() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let names = fixture_names();
    assert!(names.len() >= 15, "fixtures missing: {names:?}");
    for name in &names {
        let original = fixture(name);
        let expected = rfc5322::strip_bcc(&original);
        let addrs = rfc5322::addresses(&original);

        let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
        let wrapper_path = write(&tmp, &format!("{name}.wrapper.eml"), &wrapper);
        assert!(!has_bcc_field(&wrapper), "{name}: Bcc field in the wrapper");

        let report = inspect(&wrapper_path);
        let message_id = report["message_id"].as_str().unwrap().to_string();
        let reference = report["reference"].as_str().unwrap();
        assert_eq!(report["format_version"], 1, "{name}");
        assert_eq!(report["tenant_id"], "example.com", "{name}");
        assert_eq!(report["key_service_url"], "http://127.0.0.1:8080", "{name}");
        assert_eq!(report["template"], "Encrypt-Only", "{name}");
        assert_eq!(report["sender"].as_str(), addrs.from.as_deref(), "{name}");
        assert!(
            report["subject"].is_null(),
            "{name}: subject shown although show_subject is off"
        );
        assert_eq!(message_id.len(), 32, "{name}");
        assert_eq!(
            reference,
            format!(
                "{}-{}-{}",
                &message_id[0..4],
                &message_id[4..8],
                &message_id[8..12]
            )
            .to_uppercase()
        );
        assert!(
            find(&wrapper, format!("Reference: {reference}").as_bytes()).is_some(),
            "{name}: reference not in the wrapper text"
        );
        let marker = format!("X-Sealpost-Envelope: v1; id={message_id}; tenant=example.com\r\n");
        assert!(
            find(header_block(&wrapper), marker.as_bytes()).is_some(),
            "{name}: marker field"
        );

        let plain = ok(&["decrypt", "--tenant", s(&dir), s(&wrapper_path)], b"");
        assert!(
            plain == expected,
            "{name}: decrypt does not give strip_bcc(original) back"
        );
        if !has_bcc_field(&original) {
            assert!(
                plain == original,
                "{name}: decrypt does not give the original back"
            );
        }
        assert!(
            !has_bcc_field(&plain),
            "{name}: Bcc field in the decrypted message"
        );
    }
}

#[test]
fn stdin_and_message_html_inputs() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let original = fixture("04-latin1-8bit.eml");
    let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
    // `-` reads stdin for inspect and decrypt.
    let report: serde_json::Value =
        serde_json::from_slice(&ok(&["inspect", "-"], &wrapper)).unwrap();
    assert_eq!(report["sender"], "juergen@absender.example");
    assert!(ok(&["decrypt", "--tenant", s(&dir), "-"], &wrapper) == original);
    // The raw envelope works as input too.
    let envelope = extract_envelope(&wrapper).unwrap();
    let raw = write(&tmp, "raw.sealpost", &envelope);
    assert!(ok(&["decrypt", "--tenant", s(&dir), s(&raw)], b"") == original);
    assert_eq!(inspect(&raw)["message_id"], report["message_id"]);
    // So does the message.html attachment on its own, as saved from a mail client.
    let html = write(&tmp, "message.html", &attachment(&wrapper).html);
    assert!(ok(&["decrypt", "--tenant", s(&dir), s(&html)], b"") == original);
    assert_eq!(inspect(&html)["message_id"], report["message_id"]);
}

#[test]
fn bare_lf_and_8bit_messages_come_back_unchanged() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    for name in [
        "02-bare-lf.eml",
        "03-mixed-line-endings.eml",
        "04-latin1-8bit.eml",
        "06-utf8-raw-smtputf8.eml",
        "17-nul-bytes.eml",
    ] {
        let original = fixture(name);
        let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
        let path = write(&tmp, "w.eml", &wrapper);
        let plain = ok(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
        assert!(plain == original, "{name}");
    }
}

#[test]
fn bcc_is_neither_in_the_wrapper_nor_in_the_decrypted_message() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let cases: [(&str, &[&str]); 4] = [
        ("11-bcc-single.eml", &["auditor@sender.example"]),
        (
            "12-bcc-folded.eml",
            &[
                "hidden1@blind.example",
                "hidden2@blind.example",
                "hidden3@blind.example",
                "Hidden One",
            ],
        ),
        (
            "13-bcc-two-fields.eml",
            &[
                "first-blind@blind.example",
                "second-blind@blind.example",
                "third-blind@blind.example",
            ],
        ),
        (
            "21-undisclosed-bcc-only.eml",
            &["ned@recipient.example", "ola@recipient.example"],
        ),
    ];
    for (name, blind) in cases {
        let original = fixture(name);
        let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
        let path = write(&tmp, "w.eml", &wrapper);
        let plain = ok(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
        for addr in blind {
            assert!(
                find(&original, addr.as_bytes()).is_some(),
                "{name}: test data lacks {addr}"
            );
            assert!(
                find(&wrapper, addr.as_bytes()).is_none(),
                "{name}: {addr} in the wrapper"
            );
            assert!(
                find(&plain, addr.as_bytes()).is_none(),
                "{name}: {addr} in the decrypted message"
            );
        }
        assert!(!has_bcc_field(&wrapper) && !has_bcc_field(&plain), "{name}");
        // Only the Bcc field went: everything else is the original, byte for byte.
        assert!(plain == rfc5322::strip_bcc(&original), "{name}");
        // The blind recipients can still open it: they are in the sealed policy.
        let (license, signing) = tenant_keys(&dir);
        let envelope = extract_envelope(&wrapper).unwrap();
        let env = Envelope::parse(&envelope).unwrap();
        let opened = open_with_tenant_keys(&env, &[signing.verifying_key()], &[license]).unwrap();
        for addr in blind.iter().filter(|a| a.contains('@')) {
            assert!(
                opened.policy.is_recipient(addr),
                "{name}: {addr} not in the policy"
            );
        }
    }
    // The body line that merely looks like a Bcc field is body, and stays.
    let path = write(
        &tmp,
        "w.eml",
        &ok(
            &["encrypt", "--tenant", s(&dir)],
            &fixture("11-bcc-single.eml"),
        ),
    );
    let plain = ok(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
    assert!(find(&plain, b"\r\nBcc: this-line-is-body@sender.example\r\n").is_some());
}
