//! Checks the committed format vectors in `tests/vectors/format/`: each file must be exactly
//! what the generator makes today, and opening it with the test tenant's keys (read from
//! `keys.txt`, as a second implementation would) must give the expected outcome.

#[path = "common/vectors.rs"]
mod vectors;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sealpost_core::{
    Envelope, LicenseSecretKey, OpenError, ParseError, VerifyingKey, open_with_tenant_keys,
};
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/format")
}

fn parse(file: &[u8]) -> (BTreeMap<String, String>, &[u8]) {
    let split = file
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("header block ends with a blank line");
    let head = std::str::from_utf8(&file[..split]).expect("header is UTF-8");
    let map = head
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").expect("key: value");
            (k.to_string(), v.to_string())
        })
        .collect();
    (map, &file[split + 2..])
}

fn keys() -> (LicenseSecretKey, VerifyingKey) {
    let text = std::fs::read_to_string(dir().join("keys.txt")).unwrap();
    let get = |k: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{k}: ")))
            .unwrap();
        hex::decode(&line[k.len() + 2..]).unwrap()
    };
    (
        LicenseSecretKey::from_bytes(&get("license-private-key")).unwrap(),
        VerifyingKey::from_bytes(&get("signing-public-key")).unwrap(),
    )
}

#[test]
fn committed_vectors_match_the_generator() {
    assert_eq!(
        std::fs::read_to_string(dir().join("keys.txt")).unwrap(),
        vectors::keys_file()
    );
    let cases = vectors::cases();
    for case in &cases {
        let path = dir().join(format!("{}.vector", case.name));
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == case.render(),
            "{} differs from the generator: run `cargo run -p sealpost-core --example gen_vectors`",
            path.display()
        );
    }
    let files = std::fs::read_dir(dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "vector")
        })
        .count();
    assert_eq!(
        files,
        cases.len(),
        "stray .vector files in {}",
        dir().display()
    );
}

#[test]
fn every_vector_gives_its_expected_outcome() {
    let (license_key, verifying_key) = keys();
    let mut n = 0;
    for entry in std::fs::read_dir(dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "vector") {
            continue;
        }
        n += 1;
        let file = std::fs::read(&path).unwrap();
        let (h, bytes) = parse(&file);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let parsed = Envelope::parse(bytes);
        match h["expect"].as_str() {
            "parse-error" => {
                let kind = match parsed.unwrap_err() {
                    ParseError::NotAnEnvelope => "not-an-envelope",
                    ParseError::UnsupportedVersion(_) => "unsupported-version",
                    ParseError::Truncated(_) => "truncated",
                    other => panic!("{name}: unexpected parse error {other:?}"),
                };
                assert_eq!(kind, h["parse-error"], "{name}");
            }
            expect => {
                let result = parsed.map_err(|_| OpenError::Damaged).and_then(|env| {
                    open_with_tenant_keys(
                        &env,
                        std::slice::from_ref(&verifying_key),
                        std::slice::from_ref(&license_key),
                    )
                });
                match (expect, result) {
                    ("success", Ok(opened)) => {
                        assert_eq!(
                            hex::encode(Sha256::digest(&opened.plaintext[..])),
                            h["plaintext-sha256"],
                            "{name}"
                        );
                        assert_eq!(opened.policy.template, h["template"], "{name}");
                        let rights: Vec<&str> =
                            opened.policy.rights.iter().map(|r| r.name()).collect();
                        assert_eq!(rights.join(","), h["rights"], "{name}");
                        let expires = opened
                            .policy
                            .expires
                            .map_or("never".into(), |e| e.to_string());
                        assert_eq!(expires, h["expires"], "{name}");
                        assert_eq!(
                            opened.policy.recipients.join(","),
                            h["recipients"],
                            "{name}"
                        );
                    }
                    ("damaged", Err(OpenError::Damaged))
                    | ("cannot-open", Err(OpenError::CannotOpen)) => {}
                    (expect, got) => {
                        panic!("{name}: expected {expect}, got {:?}", got.map(|o| o.header))
                    }
                }
            }
        }
    }
    assert_eq!(n, vectors::cases().len());
}
