//! Unit tests of the wrapper and message.html codecs.

use super::*;
use crate::header::{Header, MessageId};
use crate::keys::KeyId;

fn header() -> Header {
    Header {
        message_id: MessageId([0x42; 16]),
        created: 1_800_000_000,
        license_key_id: KeyId([1; 8]),
        signing_key_id: KeyId([2; 8]),
        tenant_id: "example.com".into(),
        key_service_url: "https://keys.example.com".into(),
        sender: "alice@example.com".into(),
        template: "Encrypt-Only".into(),
        subject: None,
    }
}

fn settings(show_subject: bool) -> WrapperSettings {
    WrapperSettings {
        organization: "Example <Corp> & \"Sons\"".into(),
        portal_url: "https://portal.example.com/open?x=1&y=\"2\"".into(),
        show_subject,
        replacement_subject: "Verschlüsselte Nachricht".into(),
    }
}

const ORIGINAL: &[u8] = b"Received: from a by b\nFrom: Alice <alice@example.com>\nTo: bob@gmail.com\nBcc: hidden@example.net\nSubject: Secret plans\nIn-Reply-To: <x@y>\nReferences: <w@y>\n <x@y>\nX-Custom: keep inside\n\nbody\n";

#[test]
fn wrapper_keeps_addressing_and_threading_and_hides_the_rest() {
    let env = b"SEALPOST\x01fake envelope bytes";
    let w = wrap(ORIGINAL, env, &header(), &settings(false));
    let text = String::from_utf8_lossy(&w);
    for kept in [
        "From: Alice <alice@example.com>\r\n",
        "To: bob@gmail.com\r\n",
        "In-Reply-To: <x@y>\r\n",
        "References: <w@y>\r\n <x@y>\r\n",
    ] {
        assert!(text.contains(kept), "missing {kept:?}");
    }
    for hidden in [
        "Bcc",
        "hidden@example.net",
        "Secret plans",
        "X-Custom",
        "Received",
    ] {
        assert!(!text.contains(hidden), "leaked {hidden:?}");
    }
    assert!(
        text.contains("Subject: =?utf-8?"),
        "non-ASCII replacement subject is RFC 2047 encoded"
    );
    assert!(text.contains(
        "X-Sealpost-Envelope: v1; id=42424242424242424242424242424242; tenant=example.com\r\n"
    ));
    assert!(
        text.contains("Date: "),
        "a Date is added when the original has none"
    );
    assert!(text.contains("Message-ID: <42424242424242424242424242424242@example.com>"));
    assert_eq!(
        w,
        wrap(ORIGINAL, env, &header(), &settings(false)),
        "deterministic"
    );
    assert_eq!(extract_envelope(&w).unwrap(), env);
}

#[test]
fn subject_is_shown_when_the_tenant_chooses() {
    let w = wrap(ORIGINAL, b"SEALPOST", &header(), &settings(true));
    assert!(String::from_utf8_lossy(&w).contains("Subject: Secret plans\r\n"));
}

#[test]
fn message_html_escapes_and_round_trips() {
    let env: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let html = message_html(&env, &header(), &settings(false));
    assert!(html.contains("Example &lt;Corp&gt; &amp; &quot;Sons&quot;"));
    assert!(!html.contains("<Corp>"));
    assert!(html.contains("content=\"https://portal.example.com/open?x=1&amp;y=&quot;2&quot;\""));
    assert!(
        html.contains("4242-4242-4242"),
        "shows the message reference"
    );
    assert!(html.contains("<noscript>"));
    assert!(html.lines().all(|l| l.len() <= 998), "safe line lengths");
    assert_eq!(extract_envelope(html.as_bytes()).unwrap(), env);
}

#[test]
fn extraction_errors() {
    assert_eq!(extract_envelope(b""), Err(ExtractError::NotFound));
    assert_eq!(
        extract_envelope(b"<html>hi</html>"),
        Err(ExtractError::NotFound)
    );
    let bad = format!("<script type=\"{ENVELOPE_SCRIPT_TYPE}\">!!!not base64</script>");
    assert_eq!(
        extract_envelope(bad.as_bytes()),
        Err(ExtractError::BadEncoding)
    );
    let unterminated = format!("<script type=\"{ENVELOPE_SCRIPT_TYPE}\">AAAA");
    assert_eq!(
        extract_envelope(unterminated.as_bytes()),
        Err(ExtractError::NotFound)
    );
}

/// The script in message.html must at least parse; checked with Node.js when it is installed
/// (the browser tests of the portal exercise its behaviour).
#[test]
fn message_html_script_is_valid_javascript() {
    let html = message_html(b"SEALPOST", &header(), &settings(false));
    let start = html.find("<script>\n").expect("inline script") + "<script>\n".len();
    let end = start + html[start..].find("</script>").expect("script end");
    let dir = std::env::temp_dir().join(format!("sealpost-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("message_html.js");
    std::fs::write(&file, &html[start..end]).unwrap();
    match std::process::Command::new("node")
        .arg("--check")
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "node --check: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("node not installed; skipping the syntax check"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
