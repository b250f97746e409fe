//! Envelope round trips and tamper tests (unit level; vectors live in tests/).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::chunked::{CHUNK_SIZE, ENCRYPTED_CHUNK_SIZE};
use crate::policy::Template;

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

fn tenant(seed: u8) -> Tenant {
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    Tenant {
        license: LicenseSecretKey::generate(&mut rng),
        signing: SigningKey::generate(&mut rng),
    }
}

fn seal_with(t: &Tenant, msg: &[u8], seed: u8) -> Vec<u8> {
    let pk = t.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &pk,
        signing_key: &t.signing,
    };
    let policy = Template::do_not_forward().policy(
        "alice@example.com",
        &["bob@gmail.com".into()],
        1_800_000_000,
    );
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    seal(
        &sealer,
        &policy,
        Some("Hello"),
        1_800_000_000,
        msg,
        &mut rng,
    )
    .unwrap()
}

fn open(t: &Tenant, bytes: &[u8]) -> Result<Opened, String> {
    let env = Envelope::parse(bytes).map_err(|e| e.to_string())?;
    open_with_tenant_keys(
        &env,
        &[t.signing.verifying_key()],
        std::slice::from_ref(&t.license),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn round_trip_sizes() {
    let t = tenant(1);
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        3 * CHUNK_SIZE + 7,
    ] {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let env = seal_with(&t, &msg, 2);
        let opened = open(&t, &env).unwrap();
        assert_eq!(&opened.plaintext[..], &msg[..]);
        assert_eq!(opened.policy.template, "Do-Not-Forward");
        assert_eq!(opened.header.subject.as_deref(), Some("Hello"));
    }
}

#[test]
fn sealing_is_deterministic_given_the_rng() {
    let t = tenant(1);
    assert_eq!(seal_with(&t, b"x", 3), seal_with(&t, b"x", 3));
    assert_ne!(seal_with(&t, b"x", 3), seal_with(&t, b"x", 4));
}

#[test]
fn every_bit_flip_is_rejected() {
    let t = tenant(1);
    let env = seal_with(&t, b"Subject: hi\r\n\r\nshort\r\n", 5);
    for i in 0..env.len() * 8 {
        let mut bad = env.clone();
        bad[i / 8] ^= 1 << (i % 8);
        assert!(open(&t, &bad).is_err(), "flip of bit {i} accepted");
    }
}

#[test]
fn truncation_at_chunk_boundaries_is_rejected() {
    let t = tenant(1);
    let msg = vec![b'a'; 3 * CHUNK_SIZE + 100];
    let env = seal_with(&t, &msg, 6);
    let parsed = Envelope::parse(&env).unwrap();
    let payload_start = env.len() - SIGNATURE_LEN - parsed.payload_len();
    for k in 0..=4usize {
        let cut = payload_start + chunked::PREFIX_SIZE + k * ENCRYPTED_CHUNK_SIZE;
        if cut >= env.len() - SIGNATURE_LEN {
            continue;
        }
        // Plain truncation (signature lost) and truncation with the signature moved up.
        let mut bad = env[..cut].to_vec();
        assert!(open(&t, &bad).is_err());
        bad.extend_from_slice(&env[env.len() - SIGNATURE_LEN..]);
        assert!(open(&t, &bad).is_err());
        // Even with share B in hand (no signature check), the payload must not decrypt.
        let license = Envelope::parse(&env)
            .unwrap()
            .open_license(&t.license)
            .unwrap();
        if let Ok(e) = Envelope::parse(&bad) {
            assert_eq!(e.decrypt(&license.share_b).unwrap_err(), OpenError::Damaged);
        }
    }
}

#[test]
fn other_tenant_cannot_open() {
    let (a, b) = (tenant(1), tenant(9));
    let env = seal_with(&a, b"Subject: x\n\nbody", 7);
    assert_eq!(
        open(&b, &env).unwrap_err(),
        OpenError::CannotOpen.to_string()
    );
    // The right signing key but the wrong license key: still "cannot open".
    let parsed = Envelope::parse(&env).unwrap();
    let r = open_with_tenant_keys(
        &parsed,
        &[a.signing.verifying_key()],
        std::slice::from_ref(&b.license),
    );
    assert_eq!(r.err(), Some(OpenError::CannotOpen));
}

#[test]
fn license_cannot_move_to_another_envelope() {
    let t = tenant(1);
    let e1 = seal_with(&t, b"Subject: one\n\n1", 10);
    let e2 = seal_with(&t, b"Subject: two\n\n2", 11);
    let p1 = Envelope::parse(&e1).unwrap();
    let p2 = Envelope::parse(&e2).unwrap();
    assert!(license::open(&t.license, p2.header_bytes(), p1.license()).is_err());
    assert!(license::open(&t.license, p1.header_bytes(), p1.license()).is_ok());
}

#[test]
fn parse_errors_are_specific() {
    let t = tenant(1);
    let env = seal_with(&t, b"Subject: x\n\nbody", 12);
    assert_eq!(
        Envelope::parse(b"hello").unwrap_err(),
        ParseError::NotAnEnvelope
    );
    let mut v2 = env.clone();
    v2[8] = 2;
    assert_eq!(
        Envelope::parse(&v2).unwrap_err(),
        ParseError::UnsupportedVersion(2)
    );
    assert!(matches!(
        Envelope::parse(&env[..40]).unwrap_err(),
        ParseError::Truncated(_)
    ));
}

#[test]
fn random_access_matches_streaming() {
    let t = tenant(1);
    let msg: Vec<u8> = (0..2 * CHUNK_SIZE + 5).map(|i| i as u8).collect();
    let env = seal_with(&t, &msg, 13);
    let parsed = Envelope::parse(&env).unwrap();
    let license = parsed.open_license(&t.license).unwrap();
    let ra = parsed.random_access(&license.share_b).unwrap();
    assert_eq!(ra.chunk_count(), 3);
    let joined: Vec<u8> = (0..3).flat_map(|i| ra.decrypt_chunk(i).unwrap()).collect();
    assert_eq!(joined, msg);
}
