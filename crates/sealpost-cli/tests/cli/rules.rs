//! `sealpost rules check` and `sealpost rules test` against the built binary: the committed
//! example file, a file with several mistakes, and per-recipient results as text and JSON.

use tempfile::TempDir;

use crate::common::{check_failure, fails, ok, s, sealpost, write};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/gateway.toml");

const CONTRACT_MAIL: &[u8] = b"From: Alice <alice@acme.example>\r\n\
To: bob@other.example, carol@acme.example\r\n\
Cc: dave@trusted-partner.example\r\n\
Subject: [secure] The contract\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Please sign.\r\n\
--b1\r\n\
Content-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"Contract-2026.pdf\"\r\n\
\r\n\
JVBERi0=\r\n\
--b1--\r\n";

const SECRET_MAIL: &[u8] =
    b"From: alice@acme.example\r\nTo: bob@other.example, carol@acme.example\r\n\
Subject: plans\r\nX-Classification: Secret\r\n\r\nThe plans.\r\n";

#[test]
fn check_accepts_the_example_file() {
    let out = ok(&["rules", "check", "--config", EXAMPLE], b"");
    assert_eq!(String::from_utf8(out).unwrap(), "5 rules OK\n");
}

#[test]
fn check_reports_every_error_with_file_line_and_column() {
    let tmp = TempDir::new().unwrap();
    let bad = write(
        &tmp,
        "bad.toml",
        b"[keyservice]\nlisten = \"127.0.0.1:8080\"\n\n[[rules]]\nname = \"a\"\n\
[rules.conditions]\nsubject_matches = \"(x\"\n[rules.actions]\nencrypt = \"Nope\"\n\n\
[[rules]]\nname = \"a\"\n[rules.actions]\nreject = \"no\"\nencrypt = \"Encrypt-Only\"\n",
    );
    let args = ["rules", "check", "--config", s(&bad)];
    let r = sealpost(&args, b"");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let lines: Vec<&str> = r.stderr.lines().collect();
    let path = s(&bad);
    assert_eq!(
        lines,
        [
            format!("{path}:7:19: invalid regular expression \"(x\": unclosed group"),
            format!("{path}:9:11: unknown template \"Nope\" (known: Encrypt-Only, Do-Not-Forward)"),
            format!("{path}:12:8: rule name \"a\" is used twice"),
            format!("{path}:14:1: conflicting actions: `reject` cannot be combined with `encrypt`"),
            format!(
                "sealpost: error: {path} has 4 errors; fix them and run `sealpost rules check` again"
            ),
        ]
    );
    // A missing file is the usual one-line error.
    let err = fails(
        &[
            "rules",
            "check",
            "--config",
            s(&tmp.path().join("none.toml")),
        ],
        b"",
    );
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn test_explains_each_recipient_and_groups_copies() {
    let tmp = TempDir::new().unwrap();
    let mail = write(&tmp, "contract.eml", CONTRACT_MAIL);
    let out = ok(&["rules", "test", "--config", EXAMPLE, s(&mail)], b"");
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "sender: alice@acme.example",
        "recipient bob@other.example (outside): encrypt with Do-Not-Forward, subject removed",
        "rule \"Contracts to outside\": matched because recipient bob@other.example is outside the organization; attachment \"Contract-2026.pdf\" matches",
        "recipient carol@acme.example (inside): deliver the original",
        "rule \"Contracts to outside\": skipped by exception: recipient dave@trusted-partner.example is in domain trusted-partner.example",
        "rule \"Secure on request\": matched because recipient dave@trusted-partner.example is outside the organization; subject contains \"[secure]\"",
        "not evaluated, evaluation ended: [\"Secure on request\", \"Legal to counsel\", \"Trial: card numbers\"]",
        "3 copies:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn test_json_with_chosen_recipients() {
    let tmp = TempDir::new().unwrap();
    let mail = write(&tmp, "secret.eml", SECRET_MAIL);
    let out = ok(
        &[
            "rules",
            "test",
            "--config",
            EXAMPLE,
            s(&mail),
            "--recipient",
            "Bob@Other.example",
            "--recipient",
            "carol@acme.example",
            "--json",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["sender"], "alice@acme.example");
    let bob = &v["recipients"][0];
    assert_eq!(bob["recipient"], "bob@other.example");
    assert_eq!(bob["action"], "reject");
    assert_eq!(
        bob["text"],
        "Mail classified Secret may not be sent outside Acme"
    );
    assert_eq!(bob["trail"][0]["step"], "matched");
    assert_eq!(bob["trail"][0]["rule"], "Block Secret to outside");
    assert_eq!(v["recipients"][1]["action"], "original");
    assert_eq!(v["groups"].as_array().unwrap().len(), 2);
    // The message's own recipients when none are named, read from stdin.
    let out = ok(
        &["rules", "test", "--config", EXAMPLE, "-", "--json"],
        SECRET_MAIL,
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["recipients"].as_array().unwrap().len(), 2);
}

#[test]
fn test_mode_rule_is_reported_not_enforced() {
    let tmp = TempDir::new().unwrap();
    let body = "My card number is 4111 1111 1111 1111. ".repeat(40);
    let mail = format!(
        "From: alice@acme.example\r\nTo: bob@other.example\r\nSubject: payment\r\n\r\n{body}\r\n"
    );
    let mail = write(&tmp, "card.eml", mail.as_bytes());
    let out = ok(&["rules", "test", "--config", EXAMPLE, s(&mail)], b"");
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("recipient bob@other.example (outside): deliver the original"),
        "{text}"
    );
    assert!(
        text.contains("rule \"Trial: card numbers\": matched (test mode)"),
        "{text}"
    );
    assert!(
        text.contains("header: X-Sealpost-Rule-Test: Trial: card numbers"),
        "{text}"
    );
}

#[test]
fn test_fails_cleanly_on_bad_input() {
    let tmp = TempDir::new().unwrap();
    let mail = write(&tmp, "m.eml", SECRET_MAIL);
    let bad = write(&tmp, "bad.toml", b"[[rules]]\nname = 5\n");
    let err = fails(&["rules", "test", "--config", s(&bad), s(&mail)], b"");
    assert!(
        err.contains("has 1 error (first at") && err.contains("2:8: rule name must be a string"),
        "{err}"
    );
    assert!(err.contains("sealpost rules check --config"), "{err}");
    let no_rcpt = write(
        &tmp,
        "n.eml",
        b"From: a@acme.example\r\nSubject: x\r\n\r\nhi\r\n",
    );
    let err = fails(&["rules", "test", "--config", EXAMPLE, s(&no_rcpt)], b"");
    assert!(err.contains("--recipient"), "{err}");
    let err = fails(
        &[
            "rules",
            "test",
            "--config",
            EXAMPLE,
            s(&mail),
            "--recipient",
            "not an address",
        ],
        b"",
    );
    assert!(err.contains("not an e-mail address"), "{err}");
    let args = ["rules", "test", "--config", EXAMPLE, "/nonexistent/m.eml"];
    let r = sealpost(&args, b"");
    check_failure(&r, &args);
}
