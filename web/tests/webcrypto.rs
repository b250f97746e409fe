//! Browser tests (wasm-bindgen-test in headless Chromium) of the two decryption paths: the
//! WebCrypto path (`sealpost_core::chunked::webcrypto`, `Envelope::decrypt_webcrypto`, the
//! portal's `open::decrypt_webcrypto`) against the pure-Rust one. Same plaintext for sizes
//! around the chunk boundaries, and the same error for every damaged ciphertext.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test webcrypto`. Speed is not measured here: `bench/portal.sh`
//! times both paths in the real portal (docs/benchmarks.md).

#![cfg(target_arch = "wasm32")]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sealpost_core::chunked::webcrypto;
use sealpost_core::chunked::{self, CHUNK_SIZE, ChunkError, ENCRYPTED_CHUNK_SIZE, PREFIX_SIZE};
use sealpost_core::{Envelope, LicenseSecretKey, OpenError, Sealer, SigningKey, Template, seal};
use sealpost_portal::open::{self, OpenFailure, PayloadDecryptor, Progress, RewrapKey};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const KEY: [u8; 32] = [7; 32];
const CONTEXT: &[u8] = b"header hash stand-in";

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ChaCha20Rng::from_seed([seed; 32]).fill_bytes(&mut out);
    out
}

fn encrypt(plaintext: &[u8]) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    chunked::encrypt(&KEY, CONTEXT, plaintext, &mut rng).unwrap()
}

/// Both paths on one ciphertext; they must agree exactly, and the answer is returned.
async fn both(key: &[u8; 32], ciphertext: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let rust = chunked::decrypt(key, CONTEXT, ciphertext);
    let mut last = None;
    let web = webcrypto::decrypt(key, CONTEXT, ciphertext, |done, total| {
        last = Some((done, total))
    })
    .await
    .expect("headless Chromium on localhost offers WebCrypto");
    assert_eq!(web.map(|p| p.to_vec()), rust);
    if rust.is_ok() {
        assert_eq!(last, Some((ciphertext.len(), ciphertext.len())));
    }
    rust
}

const SIZES: &[usize] = &[
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 17,
    // More than one WebCrypto batch.
    (webcrypto::BATCH_CHUNKS as usize) * CHUNK_SIZE,
    (webcrypto::BATCH_CHUNKS as usize + 2) * CHUNK_SIZE + 5,
];

#[wasm_bindgen_test]
fn webcrypto_is_available_here() {
    assert!(webcrypto::available());
}

/// Hides `crypto.subtle` as an insecure context does, runs `f`, and shows it again.
async fn without_subtle<T>(f: impl AsyncFnOnce() -> T) -> T {
    let crypto: js_sys::Object = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .unwrap()
        .unchecked_into();
    let hidden = js_sys::Object::new();
    js_sys::Reflect::set(&hidden, &"value".into(), &wasm_bindgen::JsValue::UNDEFINED).unwrap();
    js_sys::Reflect::set(&hidden, &"configurable".into(), &true.into()).unwrap();
    js_sys::Object::define_property(&crypto, &"subtle".into(), &hidden);
    let out = f().await;
    js_sys::Reflect::delete_property(&crypto, &"subtle".into()).unwrap();
    out
}

#[wasm_bindgen_test]
async fn without_subtle_crypto_the_answer_is_unavailable() {
    let ciphertext = encrypt(&bytes(100, 2));
    let mut called = false;
    let answer = without_subtle(async || {
        assert!(!webcrypto::available());
        webcrypto::decrypt(&KEY, CONTEXT, &ciphertext, |_, _| called = true)
            .await
            .map(|r| r.map(|p| p.len()))
    })
    .await;
    assert_eq!(answer, Err(webcrypto::Unavailable));
    assert!(!called);
    assert!(webcrypto::available());
}

#[wasm_bindgen_test]
async fn both_paths_give_the_same_plaintext_around_chunk_boundaries() {
    for &len in SIZES {
        let plaintext = bytes(len, len as u8);
        let ciphertext = encrypt(&plaintext);
        assert_eq!(both(&KEY, &ciphertext).await, Ok(plaintext), "{len} bytes");
    }
}

#[wasm_bindgen_test]
async fn both_paths_refuse_the_same_damage() {
    for &len in &[0, 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 17] {
        let ciphertext = encrypt(&bytes(len, 1));
        let body_end = ciphertext.len();
        let last_chunk_start = PREFIX_SIZE + (len / CHUNK_SIZE) * ENCRYPTED_CHUNK_SIZE;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        for (what, at) in [
            ("salt", 0),
            ("commitment", PREFIX_SIZE - 1),
            ("first chunk", PREFIX_SIZE),
            ("last tag", body_end - 1),
        ] {
            let mut bad = ciphertext.clone();
            bad[at] ^= 0x01;
            cases.push((what, bad));
        }
        cases.push(("one byte short", ciphertext[..body_end - 1].to_vec()));
        cases.push(("tag short", ciphertext[..body_end - 16].to_vec()));
        cases.push(("prefix only", ciphertext[..PREFIX_SIZE].to_vec()));
        cases.push(("half a salt", ciphertext[..12].to_vec()));
        cases.push(("empty", Vec::new()));
        cases.push((
            "last chunk dropped",
            ciphertext[..last_chunk_start].to_vec(),
        ));
        for extra in [1usize, 16, ENCRYPTED_CHUNK_SIZE] {
            let mut bad = ciphertext.clone();
            bad.extend(std::iter::repeat_n(0u8, extra));
            cases.push(("appended", bad));
        }
        if len >= 2 * CHUNK_SIZE {
            let mut bad = ciphertext.clone();
            let (a, b) = (PREFIX_SIZE, PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE);
            let first = bad[a..b].to_vec();
            bad.copy_within(b..b + ENCRYPTED_CHUNK_SIZE, a);
            bad[b..b + ENCRYPTED_CHUNK_SIZE].copy_from_slice(&first);
            cases.push(("chunks swapped", bad));
        }
        for (what, bad) in cases {
            assert!(both(&KEY, &bad).await.is_err(), "{len} bytes, {what}");
        }
        let mut wrong_key = KEY;
        wrong_key[0] ^= 1;
        assert_eq!(
            both(&wrong_key, &ciphertext).await,
            Err(ChunkError::Commitment)
        );
    }
}

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

impl Tenant {
    fn new() -> Tenant {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        Tenant {
            license: LicenseSecretKey::generate(&mut rng),
            signing: SigningKey::generate(&mut rng),
        }
    }

    fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let sealer = Sealer {
            tenant_id: "example.com",
            key_service_url: "http://127.0.0.1:8080",
            license_key: &self.license.public_key(),
            signing_key: &self.signing,
        };
        let policy = Template::encrypt_only().policy(
            "alice@example.com",
            &["bob@example.org".into()],
            1_800_000_000,
        );
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        seal(&sealer, &policy, None, 1_800_000_000, plaintext, &mut rng).unwrap()
    }

    fn share(&self, bytes: &[u8]) -> open::ShareB {
        let envelope = Envelope::parse(bytes).unwrap();
        let license = envelope.open_license(&self.license).unwrap();
        let key = RewrapKey::generate(&mut ChaCha20Rng::from_seed([5; 32]));
        let client =
            sealpost_core::LicensePublicKey::from_base64(&key.public_key_base64()).unwrap();
        let sealed = sealpost_core::rewrap::seal_share(
            &client,
            envelope.header_bytes(),
            &license.share_b,
            &mut ChaCha20Rng::from_seed([6; 32]),
        )
        .unwrap();
        key.open_share(bytes, &B64.encode(sealed)).unwrap()
    }
}

fn rust_path(bytes: &[u8], share: &open::ShareB) -> Result<Vec<u8>, OpenFailure> {
    let mut dec = PayloadDecryptor::new(Arc::from(bytes), share)?;
    while !dec.is_fed() {
        dec.step(1 << 20)?;
    }
    Ok(dec.finish()?.to_vec())
}

async fn web_path(bytes: &[u8], share: &open::ShareB) -> Result<Vec<u8>, OpenFailure> {
    let mut seen: Vec<Progress> = Vec::new();
    let out = open::decrypt_webcrypto(bytes, share, |p| seen.push(p))
        .await
        .expect("WebCrypto is available")?;
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
    assert_eq!(seen.last().map(|p| p.percent()), Some(100));
    Ok(out.to_vec())
}

#[wasm_bindgen_test]
async fn envelope_api_and_portal_glue_agree_with_the_rust_path() {
    let tenant = Tenant::new();
    let plaintext = bytes(5 * CHUNK_SIZE + 3, 9);
    let sealed = tenant.seal(&plaintext);
    let share = tenant.share(&sealed);
    assert_eq!(web_path(&sealed, &share).await, Ok(plaintext.clone()));
    assert_eq!(rust_path(&sealed, &share), Ok(plaintext.clone()));

    // The core's envelope API: the same result as `Envelope::decrypt`.
    let envelope = Envelope::parse(&sealed).unwrap();
    let license = envelope.open_license(&tenant.license).unwrap();
    let web = envelope
        .decrypt_webcrypto(&license.share_b, |_, _| {})
        .await
        .unwrap();
    assert_eq!(web.as_ref().map(|p| p.to_vec()), Ok(plaintext));

    // A payload changed after signing (decryption does not look at the signature): damaged on
    // both paths, at every layer.
    let payload_at = sealed.len() - 64 - envelope.payload_len();
    for at in [
        payload_at + 3,
        payload_at + PREFIX_SIZE + 100,
        sealed.len() - 65,
    ] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x80;
        assert_eq!(web_path(&bad, &share).await, Err(OpenFailure::Damaged));
        assert_eq!(rust_path(&bad, &share), Err(OpenFailure::Damaged));
        let envelope = Envelope::parse(&bad).unwrap();
        let web = envelope
            .decrypt_webcrypto(&license.share_b, |_, _| {})
            .await
            .unwrap();
        assert_eq!(web.map(|p| p.len()), Err(OpenError::Damaged));
        assert_eq!(
            envelope.decrypt(&license.share_b).map(|p| p.len()),
            Err(OpenError::Damaged)
        );
    }
}
