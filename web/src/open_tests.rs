use base64::Engine;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, Template, seal};

use super::*;

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

fn signing_keys(t: &Tenant) -> Vec<TenantKey> {
    let vk = t.signing.verifying_key();
    vec![TenantKey {
        id: vk.key_id().to_string(),
        public_key: vk.to_base64(),
        status: "active".into(),
    }]
}

fn sealed(t: &Tenant, plaintext: &[u8]) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([plaintext.len() as u8; 32]);
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "http://127.0.0.1:8080",
        license_key: &t.license.public_key(),
        signing_key: &t.signing,
    };
    let policy = Template::do_not_forward().policy(
        "alice@example.com",
        &["bob@example.org".into()],
        1_800_000_000,
    );
    seal(
        &sealer,
        &policy,
        Some("Hi"),
        1_800_000_000,
        plaintext,
        &mut rng,
    )
    .unwrap()
}

/// What the key service does on rewrap: open the license, seal share B to the client key.
fn key_service_rewrap(t: &Tenant, bytes: &[u8], client_public_b64: &str) -> String {
    let envelope = Envelope::parse(bytes).unwrap();
    let license = envelope.open_license(&t.license).unwrap();
    let client = sealpost_core::LicensePublicKey::from_base64(client_public_b64).unwrap();
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let sealed = sealpost_core::rewrap::seal_share(
        &client,
        envelope.header_bytes(),
        &license.share_b,
        &mut rng,
    )
    .unwrap();
    B64.encode(sealed)
}

fn open_all(bytes: &[u8], share: &ShareB, step: usize) -> Result<Zeroizing<Vec<u8>>, OpenFailure> {
    let mut dec = PayloadDecryptor::new(Arc::from(bytes), share)?;
    while !dec.is_fed() {
        dec.step(step)?;
    }
    dec.finish()
}

#[test]
fn round_trip_through_every_step() {
    let t = tenant(1);
    let plaintext: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let bytes = sealed(&t, &plaintext);

    let info = read_envelope(&bytes).unwrap();
    assert_eq!(info.tenant_id, "example.com");
    assert_eq!(info.sender, "alice@example.com");
    assert_eq!(info.template, "Do-Not-Forward");
    assert_eq!(info.subject.as_deref(), Some("Hi"));
    assert_eq!(info.reference.len(), 14);
    verify(&bytes, &signing_keys(&t)).unwrap();

    let (header, license) = license_fields(&bytes).unwrap();
    assert!(!header.is_empty() && !license.is_empty());
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let key = RewrapKey::generate(&mut rng);
    let sealed_share = key_service_rewrap(&t, &bytes, &key.public_key_base64());
    let share = key.open_share(&bytes, &sealed_share).unwrap();
    for step in [1, 1000, 16_400, 1 << 20, usize::MAX] {
        assert_eq!(
            *open_all(&bytes, &share, step).unwrap(),
            plaintext,
            "step {step}"
        );
    }
    let mut dec = PayloadDecryptor::new(Arc::from(&bytes[..]), &share).unwrap();
    assert_eq!(dec.progress().percent(), 0);
    dec.step(dec.progress().total / 2).unwrap();
    assert_eq!(dec.progress().percent(), 50);
    assert_eq!(
        dec.finish().unwrap_err(),
        OpenFailure::Damaged,
        "finish before the end"
    );
}

#[test]
fn tampering_and_wrong_keys_are_damaged() {
    let t = tenant(1);
    let bytes = sealed(&t, b"Subject: x\r\n\r\nbody\r\n");
    // Another tenant's signing key, or none, does not verify.
    assert_eq!(
        verify(&bytes, &signing_keys(&tenant(2))),
        Err(OpenFailure::Damaged)
    );
    assert_eq!(verify(&bytes, &[]), Err(OpenFailure::Damaged));
    // A flipped bit anywhere fails the signature (or the parse).
    for i in [9, 20, bytes.len() / 2, bytes.len() - 70, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        assert_eq!(
            verify(&bad, &signing_keys(&t)),
            Err(OpenFailure::Damaged),
            "byte {i}"
        );
    }
    assert_eq!(read_envelope(b"SEALPOST"), Err(OpenFailure::Damaged));

    // A share sealed to another client key does not open; a wrong share does not decrypt.
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let key = RewrapKey::generate(&mut rng);
    let other = RewrapKey::generate(&mut rng);
    let sealed_share = key_service_rewrap(&t, &bytes, &other.public_key_base64());
    assert!(key.open_share(&bytes, &sealed_share).is_err());
    assert!(key.open_share(&bytes, "not base64").is_err());
    let other_bytes = sealed(&tenant(3), b"Subject: y\r\n\r\nother\r\n");
    let other_share = key.open_share(
        &other_bytes,
        &key_service_rewrap(&tenant(3), &other_bytes, &key.public_key_base64()),
    );
    // Share B of another message: the key commitment fails at once.
    assert_eq!(
        open_all(&bytes, &other_share.unwrap(), 1 << 20).unwrap_err(),
        OpenFailure::Damaged
    );
}
