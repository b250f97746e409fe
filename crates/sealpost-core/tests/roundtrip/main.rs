//! Protect → wrap → extract → open, for every self-made fixture in `tests/fixtures/mail/` and,
//! when it is there, every file of the shared mail corpus beside the checkout.
//!
//! What must hold for each message `m`:
//! - the opened plaintext is `strip_bcc(m)` byte for byte, and `m` itself when `m` has no Bcc;
//! - the envelope comes back identical from the wrapper mail and from `message.html` alone;
//! - the wrapper has no Bcc field, leaks no blind address, and keeps the original addressing
//!   and threading fields byte for byte (line endings made CRLF);
//! - mail-parser reads the wrapper and finds exactly one attachment, `message.html`, holding
//!   exactly what `message_html` builds.
//!
//! `extract_envelope_rejects_what_is_not_an_envelope` feeds it garbage, near-misses and
//! cut-short wrappers. Tests named `regression_*` pin bugs found and fixed earlier.
//!
//! One test binary: the round-trip tests are here, the checker they run is in `check`, the
//! test tenant and sample inputs in `fixtures`.

mod check;
mod extract;
mod fixtures;
mod regressions;

use std::path::Path;

use sealpost_core::mail::rfc5322::{self, fields};

use check::{contains, is_bcc, round_trip};
use fixtures::{CORPUS, FIXTURES, TestTenant, fixture_paths, walk};

#[test]
fn fixtures_round_trip() {
    let paths = fixture_paths();
    assert!(
        (15..=40).contains(&paths.len()),
        "expected the self-made fixtures in {FIXTURES}, found {}",
        paths.len()
    );
    let tenant = TestTenant::new(7);
    for (i, path) in paths.iter().enumerate() {
        let m = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        round_trip(&name, &m, &tenant, i % 2 == 0, i as u64);
        round_trip(&name, &m, &tenant, i % 2 == 1, 1000 + i as u64);
    }
}

#[test]
fn fixtures_cover_what_they_claim() {
    let read =
        |n: &str| std::fs::read(Path::new(FIXTURES).join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));
    let bcc_count = |n: &str| fields(&read(n)).iter().filter(|f| is_bcc(&f.name)).count();
    assert!(!read("02-bare-lf.eml").contains(&b'\r'));
    assert!(read("04-latin1-8bit.eml").iter().any(|&b| b >= 0x80));
    assert!(
        std::str::from_utf8(&read("04-latin1-8bit.eml")).is_err(),
        "Latin-1, not UTF-8"
    );
    assert!(!read("15-no-trailing-newline.eml").ends_with(b"\n"));
    assert!(read("17-nul-bytes.eml").contains(&0));
    assert!(
        read("16-long-header-line.eml")
            .split(|&b| b == b'\n')
            .any(|l| l.len() > 998)
    );
    assert!(!contains(
        &read("19-headers-only-no-blank-line.eml"),
        b"\r\n\r\n"
    ));
    assert_eq!(bcc_count("11-bcc-single.eml"), 1);
    assert_eq!(bcc_count("12-bcc-folded.eml"), 1);
    assert_eq!(bcc_count("13-bcc-two-fields.eml"), 2);
    let group = rfc5322::addresses(&read("14-group-syntax.eml"));
    assert_eq!(
        group.recipients,
        ["a@x.example", "b@y.example", "outside@recipient.example"]
    );
    let cc_only = rfc5322::addresses(&read("20-cc-only.eml"));
    assert_eq!(
        cc_only.recipients,
        ["kay@recipient.example", "lou@recipient.example"]
    );
}

#[test]
fn corpus_round_trip() {
    let mut paths = Vec::new();
    walk(Path::new(CORPUS), &mut paths);
    if paths.is_empty() {
        return;
    }
    let tenant = TestTenant::new(9);
    for (i, path) in paths.iter().enumerate() {
        let m = std::fs::read(path).unwrap();
        let name = path
            .strip_prefix(CORPUS)
            .unwrap_or(path)
            .display()
            .to_string();
        round_trip(&name, &m, &tenant, i % 2 == 0, 5000 + i as u64);
    }
    let dir = Path::new(CORPUS)
        .canonicalize()
        .unwrap_or_else(|_| CORPUS.into());
    println!(
        "corpus: {} files from {} round-tripped",
        paths.len(),
        dir.display()
    );
}
