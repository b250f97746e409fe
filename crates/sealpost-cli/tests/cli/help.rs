//! `--help`, `--version` and clap's own usage errors.

use crate::common::{ok, sealpost};

#[test]
fn help_and_version() {
    for args in [
        &["--help"][..],
        &["encrypt", "--help"],
        &["decrypt", "--help"],
        &["tenant", "init", "--help"],
    ] {
        let out = String::from_utf8(ok(args, b"")).unwrap();
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    let out = String::from_utf8(ok(&["encrypt", "--help"], b"")).unwrap();
    assert!(
        out.contains("--template") && out.contains("--to") && out.contains("--tenant"),
        "{out}"
    );
    assert!(
        String::from_utf8(ok(&["--version"], b""))
            .unwrap()
            .starts_with("sealpost ")
    );
    // A usage error is clap's, with status 2.
    assert_eq!(sealpost(&["encrypt"], b"").code, Some(2));
    assert_eq!(sealpost(&["no-such-command"], b"").code, Some(2));
}
