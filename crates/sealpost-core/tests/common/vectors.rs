//! The format test vectors: how each case is made, and the file layout.
//!
//! Shared by the generator (`examples/gen_vectors.rs`, which writes `tests/vectors/format/`)
//! and by `tests/format_vectors.rs` (which regenerates every case in memory, compares it with
//! the committed file, and checks that opening it gives the expected outcome).
//!
//! File layout, one file per case: `key: value` header lines, one blank line, then the raw
//! envelope bytes to the end of the file. Header keys: `expect` (`success`, `cannot-open`,
//! `damaged`, `parse-error`), `comment`, and for successes `plaintext-sha256`, `template`,
//! `rights`, `expires`, `recipients`; for parse errors `parse-error`.

#![allow(dead_code)]

use p256::pkcs8::DecodePrivateKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::chunked::{ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use sealpost_core::envelope::SIGNATURE_LEN;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_core::{Envelope, LicenseSecretKey, Policy, Sealer, SigningKey};
use sha2::{Digest, Sha256};

/// Fixed creation time of every vector (2027-01-15T08:00:00Z).
pub const CREATED: u64 = 1_800_000_000;

/// The test tenant's keys.
pub struct Keys {
    pub license: LicenseSecretKey,
    pub signing: SigningKey,
}

pub fn keys(seed: u8) -> Keys {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    Keys {
        license: LicenseSecretKey::generate(&mut rng),
        signing: SigningKey::generate(&mut rng),
    }
}

/// The tenant every vector is for.
pub fn tenant() -> Keys {
    keys(0x51)
}

/// `keys.txt`: the test tenant's keys in hex.
pub fn keys_file() -> String {
    let k = tenant();
    let lpk = k.license.public_key();
    let vk = k.signing.verifying_key();
    let signing_scalar = p256::ecdsa::SigningKey::from_pkcs8_pem(&k.signing.to_pem())
        .unwrap()
        .to_bytes();
    format!(
        "# The test tenant of every vector in this directory. Never use these keys for anything else.\n\
         license-private-key: {}\nlicense-public-key: {}\nlicense-key-id: {}\n\
         signing-private-key: {}\nsigning-public-key: {}\nsigning-key-id: {}\n",
        hex::encode(&k.license.to_bytes()[..]),
        hex::encode(lpk.to_bytes()),
        lpk.key_id(),
        hex::encode(signing_scalar),
        hex::encode(vk.to_bytes()),
        vk.key_id(),
    )
}

/// Seals `plaintext` for the test tenant (or `keys`) with a case-specific seed.
fn seal_as(
    k: &Keys,
    policy: &Policy,
    subject: Option<&str>,
    plaintext: &[u8],
    seed: u8,
) -> Vec<u8> {
    let pk = k.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &pk,
        signing_key: &k.signing,
    };
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    sealpost_core::seal(&sealer, policy, subject, CREATED, plaintext, &mut rng).unwrap()
}

fn default_policy() -> Policy {
    Template::encrypt_only().policy(
        "alice@example.com",
        &["bob@gmail.com".into(), "carol@yahoo.com".into()],
        CREATED,
    )
}

fn message(len: usize) -> Vec<u8> {
    let head = b"From: alice@example.com\r\nTo: bob@gmail.com, carol@yahoo.com\r\nSubject: Test vector\r\n\r\n";
    let mut m = head.to_vec();
    let mut i = 0u32;
    while m.len() < len {
        m.extend_from_slice(format!("line {i:06} of the test vector body\r\n").as_bytes());
        i += 1;
    }
    m.truncate(len.max(head.len()));
    m
}

/// Replaces the signature with a valid one by the test tenant: the case then tests what is
/// behind the signature.
fn resign(bytes: &mut Vec<u8>, k: &Keys) {
    use p256::ecdsa::signature::Signer;
    bytes.truncate(bytes.len() - SIGNATURE_LEN);
    let sk = p256::ecdsa::SigningKey::from_pkcs8_pem(&k.signing.to_pem()).unwrap();
    let sig: p256::ecdsa::Signature = sk.sign(bytes);
    bytes.extend_from_slice(&sig.to_bytes());
}

/// Byte offset of the payload in an envelope.
fn payload_start(bytes: &[u8]) -> usize {
    let env = Envelope::parse(bytes).unwrap();
    bytes.len() - SIGNATURE_LEN - env.payload_len()
}

/// One vector.
pub struct Case {
    pub name: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub envelope: Vec<u8>,
}

impl Case {
    /// The file contents.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\n").as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.envelope);
        out
    }
}

fn success(
    name: &'static str,
    comment: &str,
    policy: &Policy,
    plaintext: &[u8],
    envelope: Vec<u8>,
) -> Case {
    let rights: Vec<&str> = policy.rights.iter().map(Right::name).collect();
    Case {
        name,
        headers: vec![
            ("expect", "success".into()),
            ("comment", comment.into()),
            ("plaintext-sha256", hex::encode(Sha256::digest(plaintext))),
            ("template", policy.template.clone()),
            ("rights", rights.join(",")),
            (
                "expires",
                policy.expires.map_or("never".into(), |e| e.to_string()),
            ),
            ("recipients", policy.recipients.join(",")),
        ],
        envelope,
    }
}

fn failure(name: &'static str, expect: &str, comment: &str, envelope: Vec<u8>) -> Case {
    Case {
        name,
        headers: vec![("expect", expect.into()), ("comment", comment.into())],
        envelope,
    }
}

fn parse_failure(name: &'static str, kind: &str, comment: &str, envelope: Vec<u8>) -> Case {
    Case {
        name,
        headers: vec![
            ("expect", "parse-error".into()),
            ("parse-error", kind.into()),
            ("comment", comment.into()),
        ],
        envelope,
    }
}

/// Every case, in a fixed order.
pub fn cases() -> Vec<Case> {
    let k = tenant();
    let p = default_policy();
    let mut out = Vec::new();

    let small = message(200);
    let base = seal_as(&k, &p, None, &small, 1);
    out.push(success(
        "valid-small",
        "a small message in one chunk",
        &p,
        &small,
        base.clone(),
    ));

    out.push(success(
        "valid-empty",
        "an empty payload: one empty final chunk",
        &p,
        b"",
        seal_as(&k, &p, None, b"", 2),
    ));

    let full = message(16384);
    out.push(success(
        "valid-one-full-chunk",
        "exactly 16384 bytes: one full chunk and an empty final chunk",
        &p,
        &full,
        seal_as(&k, &p, None, &full, 3),
    ));

    let multi = message(40000);
    let multi_env = seal_as(&k, &p, None, &multi, 4);
    out.push(success(
        "valid-multi-chunk",
        "40000 bytes: two full chunks and a short one",
        &p,
        &multi,
        multi_env.clone(),
    ));

    out.push(success(
        "valid-subject-shown",
        "the tenant shows the subject in the readable header",
        &p,
        &small,
        seal_as(&k, &p, Some("Quarterly numbers \u{2602}"), &small, 5),
    ));

    let custom = Template::custom(
        "View-Only-7-Days",
        Rights::of(&[Right::View]),
        Some(7 * 86400),
    )
    .unwrap();
    let cp = custom.policy("alice@example.com", &["bob@gmail.com".into()], CREATED);
    out.push(success(
        "valid-custom-template-expiry",
        "a custom view-only template that expires after 7 days",
        &cp,
        &small,
        seal_as(&k, &cp, None, &small, 6),
    ));

    let dnf =
        Template::do_not_forward().policy("alice@example.com", &["bob@gmail.com".into()], CREATED);
    out.push(success(
        "valid-do-not-forward",
        "the built-in Do-Not-Forward template",
        &dnf,
        &small,
        seal_as(&k, &dnf, None, &small, 7),
    ));

    let mut e = base.clone();
    e[0] = b'X';
    out.push(parse_failure(
        "bad-magic",
        "not-an-envelope",
        "the first byte of the magic is changed",
        e,
    ));

    let mut e = base.clone();
    e[8] = 2;
    out.push(parse_failure(
        "bad-version",
        "unsupported-version",
        "format version 2 is not defined",
        e,
    ));

    out.push(parse_failure(
        "truncated-header",
        "truncated",
        "the file ends inside the header",
        base[..30].to_vec(),
    ));

    out.push(failure(
        "truncated-signature",
        "damaged",
        "the last byte of the signature is missing",
        base[..base.len() - 1].to_vec(),
    ));

    let mut e = base.clone();
    e.push(0);
    out.push(failure(
        "trailing-byte",
        "damaged",
        "one byte appended after the signature",
        e,
    ));

    let mut e = base.clone();
    e[20] ^= 0x01;
    out.push(failure(
        "header-bit-flip",
        "damaged",
        "one bit of the message id flipped; signature not redone",
        e,
    ));

    let mut e = base.clone();
    let last = e.len() - 1;
    e[last] ^= 0x80;
    out.push(failure(
        "signature-bit-flip",
        "damaged",
        "one bit of the signature flipped",
        e,
    ));

    // Cases behind a valid signature: the signature is redone with the tenant's key.
    let mut e = multi_env.clone();
    let start = payload_start(&e) + PREFIX_SIZE + 2 * ENCRYPTED_CHUNK_SIZE;
    e.drain(start..e.len() - SIGNATURE_LEN);
    resign(&mut e, &k);
    out.push(failure(
        "final-chunk-removed-resigned",
        "damaged",
        "the short final chunk is removed and the envelope re-signed",
        e,
    ));

    let mut e = multi_env.clone();
    let start = payload_start(&e) + PREFIX_SIZE;
    let (a, b) = (
        start..start + ENCRYPTED_CHUNK_SIZE,
        start + ENCRYPTED_CHUNK_SIZE..start + 2 * ENCRYPTED_CHUNK_SIZE,
    );
    let (first, second) = (e[a.clone()].to_vec(), e[b.clone()].to_vec());
    e[a].copy_from_slice(&second);
    e[b].copy_from_slice(&first);
    resign(&mut e, &k);
    out.push(failure(
        "chunks-swapped-resigned",
        "damaged",
        "the two full chunks are swapped and the envelope re-signed",
        e,
    ));

    let mut e = base.clone();
    let at = payload_start(&e) + PREFIX_SIZE + 3;
    e[at] ^= 0x10;
    resign(&mut e, &k);
    out.push(failure(
        "payload-bit-flip-resigned",
        "damaged",
        "one payload bit flipped and the envelope re-signed",
        e,
    ));

    let mut e = base.clone();
    let share_a_at = 8 + 1 + 4 + u32::from_be_bytes(e[9..13].try_into().unwrap()) as usize;
    e[share_a_at] ^= 0x01;
    resign(&mut e, &k);
    out.push(failure(
        "share-a-changed-resigned",
        "damaged",
        "one bit of share A flipped and the envelope re-signed",
        e,
    ));

    let other = seal_as(&k, &p, None, &small, 8);
    let mut e = base.clone();
    let lic_a = Envelope::parse(&base).unwrap().license().to_vec();
    let lic_b = Envelope::parse(&other).unwrap().license().to_vec();
    let at = e
        .windows(lic_a.len())
        .position(|w| w == lic_a.as_slice())
        .unwrap();
    e[at..at + lic_a.len()].copy_from_slice(&lic_b);
    resign(&mut e, &k);
    out.push(failure(
        "license-transplanted-resigned",
        "damaged",
        "the license of another envelope of the same tenant, re-signed",
        e,
    ));

    let mut e = base.clone();
    resign(&mut e, &keys(0x99));
    out.push(failure(
        "signed-by-other-key",
        "damaged",
        "signed by a key other than the one the header names",
        e,
    ));

    let stranger = keys(0x77);
    out.push(failure(
        "other-tenant",
        "cannot-open",
        "sealed and signed by another tenant",
        seal_as(&stranger, &p, None, &small, 9),
    ));
    out
}
