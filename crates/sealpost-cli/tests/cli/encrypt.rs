//! `sealpost encrypt`: templates, explicit recipients, and the input it rejects.

use sealpost_core::mail::extract_envelope;
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, open_with_tenant_keys};
use tempfile::TempDir;

use crate::common::{fails, fixture, inspect, ok, s, tenant, tenant_keys, write};

#[test]
fn templates_and_explicit_recipients() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &["--show-subject"]);
    let original = fixture("08-multipart-mixed-pdf.eml");
    for spelling in [
        "do-not-forward",
        "Do-Not-Forward",
        "DO_NOT_FORWARD",
        "do not forward",
    ] {
        let wrapper = ok(
            &[
                "encrypt",
                "--tenant",
                s(&dir),
                "--template",
                spelling,
                "--to",
                "Carol@Example.ORG",
                "--to",
                " dave@example.net ",
            ],
            &original,
        );
        let path = write(&tmp, "w.eml", &wrapper);
        let report = inspect(&path);
        assert_eq!(report["template"], "Do-Not-Forward", "{spelling}");
        assert_eq!(report["subject"], "Contract draft (PDF)");
        assert!(ok(&["decrypt", "--tenant", s(&dir), s(&path)], b"") == original);
        // The sealed policy (not printed by the CLI): the --to list, not the To/Cc fields.
        let (license, signing) = tenant_keys(&dir);
        let envelope = extract_envelope(&wrapper).unwrap();
        let opened = open_with_tenant_keys(
            &Envelope::parse(&envelope).unwrap(),
            &[signing.verifying_key()],
            &[license],
        )
        .unwrap();
        assert_eq!(
            opened.policy.recipients,
            ["carol@example.org", "dave@example.net"]
        );
        assert_eq!(opened.policy.rights, Template::do_not_forward().rights);
        assert_eq!(opened.policy.sender, "kim@sender.example");
        assert_eq!(opened.policy.template, "Do-Not-Forward");
    }
    // Without --to, the policy is To + Cc; without --template, the tenant's default.
    let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
    let (license, signing) = tenant_keys(&dir);
    let envelope = extract_envelope(&wrapper).unwrap();
    let opened = open_with_tenant_keys(
        &Envelope::parse(&envelope).unwrap(),
        &[signing.verifying_key()],
        &[license],
    )
    .unwrap();
    assert_eq!(
        opened.policy.recipients,
        ["leo@recipient.example", "mia@recipient.example"]
    );
    assert_eq!(opened.policy.template, "Encrypt-Only");

    // A custom template from tenant.toml.
    let settings_path = dir.join("tenant.toml");
    let settings = std::fs::read_to_string(&settings_path).unwrap();
    assert!(!settings.contains("templates"), "{settings}");
    let settings = settings
        + "\n[[templates]]\nname = \"View-Only\"\nrights = [\"view\"]\nexpires_after_secs = 604800\n";
    std::fs::write(&settings_path, settings).unwrap();
    let path = write(
        &tmp,
        "w.eml",
        &ok(
            &["encrypt", "--tenant", s(&dir), "--template", "view only"],
            &original,
        ),
    );
    assert_eq!(inspect(&path)["template"], "View-Only");

    let err = fails(
        &["encrypt", "--tenant", s(&dir), "--template", "Top-Secret"],
        &original,
    );
    assert!(err.contains("unknown template \"Top-Secret\""), "{err}");
    assert!(
        err.contains("Encrypt-Only") && err.contains("Do-Not-Forward") && err.contains("View-Only"),
        "{err}"
    );
}

#[test]
fn unknown_template_lists_the_built_in_ones() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let err = fails(
        &["encrypt", "--tenant", s(&dir), "--template", "nope"],
        &fixture("01-plain-ascii-crlf.eml"),
    );
    assert!(err.contains("unknown template"), "{err}");
    assert!(
        err.contains("use one of: Encrypt-Only, Do-Not-Forward"),
        "{err}"
    );
}

#[test]
fn encrypt_rejects_what_it_cannot_protect() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let t = s(&dir);
    let garbage: Vec<u8> = [
        &b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..],
        &(0..=255u8).rev().collect::<Vec<_>>(),
    ]
    .concat();
    let not_mail: [(&str, &[u8]); 5] = [
        ("binary", &garbage),
        ("empty", b""),
        ("text", b"hello world\nthis is not a mail\n"),
        ("blank first line", b"\r\nFrom: a@b.example\r\n\r\n"),
        (
            "mbox separator",
            b"From alice@example.com Mon Mar  3 10:00:00 2025\nSubject: x\n\nbody\n",
        ),
    ];
    for (what, input) in not_mail {
        let err = fails(&["encrypt", "--tenant", t], input);
        assert!(err.contains("not an e-mail message"), "{what}: {err}");
    }
    let err = fails(
        &["encrypt", "--tenant", t],
        b"To: b@example.org\r\nSubject: x\r\n\r\nbody\r\n",
    );
    assert!(err.contains("no From address"), "{err}");
    let err = fails(
        &["encrypt", "--tenant", t],
        b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n",
    );
    assert!(err.contains("no To, Cc or Bcc recipient"), "{err}");
    let err = fails(
        &["encrypt", "--tenant", t],
        b"From: a@example.com\r\nTo: undisclosed-recipients:;\r\n\r\nbody\r\n",
    );
    assert!(err.contains("no To, Cc or Bcc recipient"), "{err}");
    for bad in [
        "not-an-address",
        "@example.com",
        "a@",
        "a@b@c",
        "Bob <bob@example.com>",
        "a b@example.com",
    ] {
        let err = fails(
            &["encrypt", "--tenant", t, "--to", bad],
            &fixture("01-plain-ascii-crlf.eml"),
        );
        assert!(err.contains("is not an e-mail address"), "{bad:?}: {err}");
    }
    let missing = tmp.path().join("no-such-tenant");
    let err = fails(
        &["encrypt", "--tenant", s(&missing)],
        &fixture("01-plain-ascii-crlf.eml"),
    );
    assert!(err.contains("is not a tenant directory"), "{err}");
}
