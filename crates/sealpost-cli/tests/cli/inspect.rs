//! `sealpost inspect` on input that is not a Sealpost envelope.

use tempfile::TempDir;

use crate::common::{fails, s, write};

#[test]
fn inspect_rejects_non_envelopes() {
    let tmp = TempDir::new().unwrap();
    let inputs: [(&str, &[u8]); 4] = [
        (
            "plain.eml",
            b"From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nNot protected.\r\n",
        ),
        (
            "page.html",
            b"<!DOCTYPE html><html><body><p>Just a page</p></body></html>\n",
        ),
        ("empty", b""),
        ("noise.bin", b"\x00\x01\x02\xff\xfe SEALPOS"),
    ];
    for (name, bytes) in inputs {
        let path = write(&tmp, name, bytes);
        let err = fails(&["inspect", s(&path)], b"");
        assert!(
            err.contains(name) && err.contains("no Sealpost envelope found"),
            "{name}: {err}"
        );
    }
    let bad_block =
        b"<script type=\"application/x-sealpost-envelope\">\n%%%not base64%%%\n</script>\n";
    let path = write(&tmp, "bad.html", bad_block);
    let err = fails(&["inspect", s(&path)], b"");
    assert!(err.contains("damaged"), "{err}");
    let err = fails(&["inspect", s(&tmp.path().join("missing.eml"))], b"");
    assert!(err.contains("cannot read"), "{err}");
    let err = fails(&["inspect", "-"], b"not an envelope");
    assert!(err.contains("no Sealpost envelope found"), "{err}");
    // Magic right, rest wrong: a parse error, still one clean line.
    let path = write(&tmp, "magic.bin", b"SEALPOST\x09rest");
    let err = fails(&["inspect", s(&path)], b"");
    assert!(err.contains("version 9 is not supported"), "{err}");
    let path = write(&tmp, "short.bin", b"SEALPOST\x01\x00\x00\x10\x00abc");
    let err = fails(&["inspect", s(&path)], b"");
    assert!(err.contains("truncated"), "{err}");
}
