//! `sealpost decrypt` with the wrong tenant and on damaged or truncated input.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::Envelope;
use sealpost_core::mail::extract_envelope;
use tempfile::TempDir;

use crate::common::{
    attachment, check_failure, envelope_block, fails, fixture, ok, s, sealpost, tenant, write,
};

#[test]
fn decrypt_with_another_tenant_cannot_open() {
    let tmp = TempDir::new().unwrap();
    let ours = tenant(&tmp, "ours", "example.com", &[]);
    let theirs = tenant(&tmp, "theirs", "example.org", &[]);
    let same_domain = tenant(&tmp, "lookalike", "example.com", &[]);
    let wrapper = ok(
        &["encrypt", "--tenant", s(&ours)],
        &fixture("07-multipart-alternative.eml"),
    );
    let path = write(&tmp, "w.eml", &wrapper);
    for other in [&theirs, &same_domain] {
        let err = fails(&["decrypt", "--tenant", s(other), s(&path)], b"");
        assert!(err.contains("cannot be opened with this key"), "{err}");
        assert!(
            err.contains("example.com"),
            "the error names the sealing tenant: {err}"
        );
    }
}

/// Swaps the base64 character at `i` for another one.
fn change_base64_char(bytes: &mut [u8], i: usize) {
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
}

#[test]
fn damaged_wrappers_fail_cleanly() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let original = fixture("08-multipart-mixed-pdf.eml");
    let wrapper = ok(&["encrypt", "--tenant", s(&dir)], &original);
    let att = attachment(&wrapper);
    let envelope = extract_envelope(&wrapper).unwrap();
    assert!(
        B64.decode(
            envelope_block(&att.html)
                .iter()
                .map(|&k| att.html[k])
                .collect::<Vec<_>>()
        )
        .unwrap()
            == envelope
    );

    // Aim at the middle of the payload: one base64 character of the attachment changed.
    let payload_len = Envelope::parse(&envelope).unwrap().payload_len();
    let payload_mid = envelope.len() - 64 - payload_len / 2;
    let html_byte = envelope_block(&att.html)[payload_mid / 3 * 4 + 1];
    let mut damaged = wrapper.clone();
    change_base64_char(&mut damaged, att.at[html_byte]);
    let path = write(&tmp, "damaged.eml", &damaged);
    let err = fails(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
    assert!(err.contains("damaged"), "{err}");

    // Anywhere in the attachment: either the change missed the envelope (and the original
    // comes back), or a clean one-line error.
    let step = (att.body.len() / 40).max(1);
    for &i in att.body.iter().step_by(step) {
        let mut damaged = wrapper.clone();
        change_base64_char(&mut damaged, i);
        let path = write(&tmp, "damaged.eml", &damaged);
        let args = ["decrypt", "--tenant", s(&dir), s(&path)];
        let r = sealpost(&args, b"");
        if r.code == Some(0) {
            assert!(
                r.stdout == original,
                "a damaged wrapper decrypted to something else"
            );
        } else {
            check_failure(&r, &args);
        }
    }
}

#[test]
fn truncated_inputs_fail_cleanly() {
    let tmp = TempDir::new().unwrap();
    let dir = tenant(&tmp, "org", "example.com", &[]);
    let wrapper = ok(
        &["encrypt", "--tenant", s(&dir)],
        &fixture("10-inline-cid-image.eml"),
    );
    let envelope = extract_envelope(&wrapper).unwrap();

    // Cut inside the envelope block, before it, before the attachment, at the start.
    let att = attachment(&wrapper);
    let block = envelope_block(&att.html);
    for cut in [
        att.at[block[block.len() / 2]],
        att.at[block[0]],
        att.body[0],
        wrapper.len() / 4,
        1,
    ] {
        let path = write(&tmp, "cut.eml", &wrapper[..cut]);
        let err = fails(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
        assert!(
            err.contains("no Sealpost envelope found") || err.contains("damaged"),
            "cut at {cut}: {err}"
        );
    }
    for cut in [
        envelope.len() - 1,
        envelope.len() - 64,
        envelope.len() / 2,
        100,
        20,
        9,
    ] {
        let path = write(&tmp, "cut.sealpost", &envelope[..cut]);
        let err = fails(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
        assert!(
            err.contains("damaged") || err.contains("truncated"),
            "envelope cut at {cut}: {err}"
        );
    }
    let path = write(&tmp, "empty.eml", b"");
    let err = fails(&["decrypt", "--tenant", s(&dir), s(&path)], b"");
    assert!(err.contains("no Sealpost envelope found"), "{err}");
}
