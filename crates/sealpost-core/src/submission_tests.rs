//! Submissions: sealed without the signing key, refused by readers until counter-signed.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::*;
use crate::envelope::{Sealer, open_with_tenant_keys, seal};
use crate::error::OpenError;
use crate::keys::LicenseSecretKey;
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

const REPLY: &[u8] =
    b"From: bob@gmail.com\r\nTo: alice@example.com\r\nSubject: Re: Hello\r\n\r\nThanks!\r\n";

fn policy() -> Policy {
    Template::do_not_forward().policy(
        "bob@gmail.com",
        &["alice@example.com".into()],
        1_800_000_000,
    )
}

fn submission(t: &Tenant, seed: u8) -> Vec<u8> {
    let pk = t.license.public_key();
    let sealer = SubmissionSealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &pk,
        signing_key_id: t.signing.verifying_key().key_id(),
    };
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    seal_submission(&sealer, &policy(), None, 1_800_000_000, REPLY, &mut rng).unwrap()
}

fn open(t: &Tenant, bytes: &[u8]) -> Result<Vec<u8>, OpenError> {
    let env = Envelope::parse(bytes).unwrap();
    open_with_tenant_keys(
        &env,
        &[t.signing.verifying_key()],
        std::slice::from_ref(&t.license),
    )
    .map(|o| o.plaintext.to_vec())
}

#[test]
fn a_submission_does_not_verify_until_countersigned() {
    let t = tenant(1);
    let sub = submission(&t, 2);
    let env = Envelope::parse(&sub).unwrap();
    assert!(env.is_submission());
    assert_eq!(env.header().sender, "bob@gmail.com");
    assert_eq!(
        env.verify(&t.signing.verifying_key()),
        Err(OpenError::Damaged)
    );
    assert_eq!(open(&t, &sub), Err(OpenError::Damaged));

    let signed = countersign(&sub, &t.signing).unwrap();
    assert_eq!(signed.len(), sub.len());
    assert_eq!(signed[..sub.len() - 64], sub[..sub.len() - 64]);
    let env = Envelope::parse(&signed).unwrap();
    assert!(!env.is_submission());
    assert_eq!(open(&t, &signed).unwrap(), REPLY);
}

#[test]
fn countersigned_equals_sealed_with_the_same_randomness() {
    let t = tenant(3);
    let pk = t.license.public_key();
    let sealer = Sealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &pk,
        signing_key: &t.signing,
    };
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let sealed = seal(&sealer, &policy(), None, 1_800_000_000, REPLY, &mut rng).unwrap();
    let signed = countersign(&submission(&t, 4), &t.signing).unwrap();
    assert_eq!(sealed, signed);
}

#[test]
fn countersign_refuses_signed_envelopes_other_keys_and_garbage() {
    let t = tenant(5);
    let sub = submission(&t, 6);
    let signed = countersign(&sub, &t.signing).unwrap();
    assert_eq!(
        countersign(&signed, &t.signing),
        Err(CountersignError::AlreadySigned)
    );

    let other = tenant(7);
    assert!(matches!(
        countersign(&sub, &other.signing),
        Err(CountersignError::WrongKey { .. })
    ));
    assert!(matches!(
        countersign(b"not an envelope", &t.signing),
        Err(CountersignError::Parse(ParseError::NotAnEnvelope))
    ));
    // One non-zero byte in the signature field makes it "signed" (and invalid).
    let mut forged = sub.clone();
    let last = forged.len() - 1;
    forged[last] = 1;
    assert_eq!(
        countersign(&forged, &t.signing),
        Err(CountersignError::AlreadySigned)
    );
    assert_eq!(open(&t, &forged), Err(OpenError::Damaged));
}

#[test]
fn a_tampered_submission_signed_afterwards_still_fails_the_license_or_payload() {
    // Counter-signing attests only what was submitted; a changed header is caught by the
    // license's header hash even though the new signature covers it.
    let t = tenant(8);
    let mut sub = submission(&t, 9);
    // The sender's first byte sits inside the header; flip a byte of share A instead,
    // which the payload's commitment catches.
    let env = Envelope::parse(&sub).unwrap();
    let share_a_at = 13 + env.header_bytes().len();
    sub[share_a_at] ^= 1;
    let signed = countersign(&sub, &t.signing).unwrap();
    assert_eq!(open(&t, &signed), Err(OpenError::Damaged));
}

#[test]
fn sealed_in_parts_equals_sealed_at_once() {
    let t = tenant(6);
    let pk = t.license.public_key();
    let sealer = SubmissionSealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.example.com",
        license_key: &pk,
        signing_key_id: t.signing.verifying_key().key_id(),
    };
    // Several payload chunks and a partial one, handed over in parts that straddle them.
    let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let at_once = seal_submission(
        &sealer,
        &policy(),
        None,
        1_800_000_000,
        &plaintext,
        &mut rng,
    )
    .unwrap();
    for sizes in [
        &[1usize, 4095, 65_536, 70_000][..],
        &[300_000],
        &[0, 100_000, 0],
    ] {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        let mut sealing =
            // A wrong length only sizes the output buffer.
            SubmissionSealing::start(&sealer, &policy(), None, 1_800_000_000, 12, &mut rng)
                .unwrap();
        let mut rest = &plaintext[..];
        for &n in sizes {
            let (part, after) = rest.split_at(n.min(rest.len()));
            sealing.update(part).unwrap();
            rest = after;
        }
        sealing.update(rest).unwrap();
        let in_parts = sealing.finish().unwrap();
        assert!(in_parts == at_once, "parts {sizes:?}");
    }
    let signed = countersign(&at_once, &t.signing).unwrap();
    assert_eq!(open(&t, &signed).unwrap(), plaintext);
}
