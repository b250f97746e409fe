//! Browser tests (wasm-bindgen-test in headless Chromium) of the work the portal hands to the
//! browser's native code for speed, each against the Rust code it replaces: finding and
//! decoding the envelope of a picked file (`TextDecoder`, `indexOf`, `Uint8Array.fromBase64`:
//! `sealpost_core::mail::extract_envelope_js` against `extract_envelope`), and SHA-256 of the
//! envelope for its signature (`crypto.subtle.digest`: `webcrypto::sha256` against `sha2`,
//! `verify_any_webcrypto` against `verify_any`, the portal's `open::verify_webcrypto` against
//! `open::verify`). Each must give the same answer on good and bad input, and when the browser
//! lacks the native function.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test native_paths`.

#![cfg(target_arch = "wasm32")]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use js_sys::{Object, Reflect, Uint8Array};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sealpost_core::chunked::webcrypto;
use sealpost_core::mail::{
    ENVELOPE_SCRIPT_TYPE, WrapperSettings, extract_envelope, extract_envelope_js, message_html,
    wrap,
};
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, Template, seal};
use sealpost_portal::api::TenantKey;
use sealpost_portal::intake::{self, IntakeError};
use sealpost_portal::open::{self, OpenFailure};
use sha2::{Digest, Sha256};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    ChaCha20Rng::from_seed([seed; 32]).fill_bytes(&mut out);
    out
}

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

impl Tenant {
    fn new(seed: u8) -> Tenant {
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
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

    fn signing_keys(&self) -> Vec<TenantKey> {
        let vk = self.signing.verifying_key();
        vec![TenantKey {
            id: vk.key_id().to_string(),
            public_key: vk.to_base64(),
            status: "active".into(),
        }]
    }
}

fn settings() -> WrapperSettings {
    WrapperSettings {
        organization: "Exämple Corp".into(),
        portal_url: "https://portal.example/".into(),
        show_subject: true,
        replacement_subject: "Protected message".into(),
    }
}

const MAIL: &[u8] =
    b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Hi\r\n\r\nHello.\r\n";

/// Hides `object[name]` as a browser without it would, runs `f`, and puts it back as it was
/// (its own property again, or none, so the prototype's shows through).
async fn without<T>(object: &JsValue, name: &str, f: impl AsyncFnOnce() -> T) -> T {
    let object: &Object = object.unchecked_ref();
    let key = JsValue::from_str(name);
    let own = Object::get_own_property_descriptor(object, &key);
    let hidden = Object::new();
    Reflect::set(&hidden, &"value".into(), &JsValue::UNDEFINED).unwrap();
    Reflect::set(&hidden, &"configurable".into(), &true.into()).unwrap();
    Object::define_property(object, &key, &hidden);
    let out = f().await;
    if own.is_undefined() {
        Reflect::delete_property(object, &key).unwrap();
    } else {
        Object::define_property(object, &key, own.unchecked_ref());
    }
    assert!(!Reflect::get(object, &key).unwrap().is_undefined());
    out
}

fn global(name: &str) -> JsValue {
    Reflect::get(&js_sys::global(), &name.into()).unwrap()
}

/// A `message.html`-like file around `block` (the text between the script tags).
fn html_with(block: &[u8]) -> Vec<u8> {
    let mut out = b"<!DOCTYPE html>\n<p>Caf\xc3\xa9</p>\n".to_vec();
    out.extend_from_slice(
        format!("<script type=\"{ENVELOPE_SCRIPT_TYPE}\" id=\"sealpost-envelope\">").as_bytes(),
    );
    out.extend_from_slice(block);
    out.extend_from_slice(b"</script>\n<script>\nlet x = 1;\n</script>\n</html>\n");
    out
}

/// Every input the two extractors must agree on, with a name for failures.
fn cases() -> Vec<(String, Vec<u8>)> {
    let tenant = Tenant::new(1);
    let plaintext = bytes(40_000, 2);
    let sealed = tenant.seal(&plaintext);
    let header = Envelope::parse(&sealed).unwrap().header().clone();
    let html = message_html(&sealed, &header, &settings()).into_bytes();
    let eml = wrap(MAIL, &sealed, &header, &settings());
    let encoded = B64.encode(&sealed);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("raw envelope".into(), sealed.clone()),
        ("message.html".into(), html.clone()),
        ("wrapper .eml".into(), eml),
        ("not an envelope".into(), b"hello".to_vec()),
        ("empty file".into(), Vec::new()),
        ("magic only".into(), b"SEALPOST".to_vec()),
        ("one line".into(), html_with(encoded.as_bytes())),
        ("empty block".into(), html_with(b"")),
        ("white space only".into(), html_with(b" \r\n\t\x0c")),
        (
            "white space everywhere".into(),
            html_with(b" Q\tU\r\nJ\x0cD "),
        ),
        ("padding".into(), html_with(b"QQ==")),
        ("padding split by white space".into(), html_with(b"QQ=\n=")),
        ("padding missing".into(), html_with(b"QQ")),
        ("one padding missing".into(), html_with(b"QQ=")),
        ("trailing bits".into(), html_with(b"QR==")),
        ("data after padding".into(), html_with(b"QQ==QUJD")),
        ("lone padding".into(), html_with(b"====")),
        ("one character".into(), html_with(b"Q")),
        ("url-safe alphabet".into(), html_with(b"-_-_")),
        (
            "non-ASCII in block".into(),
            html_with("QUJ\u{e9}".as_bytes()),
        ),
        ("invalid UTF-8 in block".into(), html_with(b"QU\xffJD")),
        ("vertical tab".into(), html_with(b"QUJD\x0b")),
        ("no closing tag".into(), {
            let mut h = html_with(b"QUJD");
            h.truncate(h.len() - 60);
            h
        }),
        ("no end of the opening tag".into(), {
            format!("<script type=\"{ENVELOPE_SCRIPT_TYPE}\"").into_bytes()
        }),
    ];
    // Invalid UTF-8 before the block, which the browser decodes as U+FFFD.
    let mut junk = b"\xff\xfe\xc3(\xe2\x82".to_vec();
    junk.extend_from_slice(&html);
    cases.push(("invalid UTF-8 before".into(), junk));
    // A byte-order mark, which TextDecoder drops.
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&html);
    cases.push(("byte-order mark".into(), bom));
    // Two blocks: the first one counts.
    let mut two = html_with(b"QUJD");
    two.extend_from_slice(&html);
    cases.push(("two blocks".into(), two));
    cases
}

async fn assert_extractors_agree() {
    for (name, input) in cases() {
        let js = extract_envelope_js(&Uint8Array::from(&input[..]));
        assert_eq!(js, extract_envelope(&input), "{name}");
    }
}

#[wasm_bindgen_test]
async fn the_browser_finds_the_same_envelope_as_rust() {
    assert!(
        Reflect::has(&global("Uint8Array"), &"fromBase64".into()).unwrap(),
        "this Chromium has Uint8Array.fromBase64, so the native path is what runs here"
    );
    assert_extractors_agree().await;
    // The portal's intake on top of it.
    let tenant = Tenant::new(3);
    let sealed = tenant.seal(MAIL);
    let header = Envelope::parse(&sealed).unwrap().header().clone();
    let html = message_html(&sealed, &header, &settings()).into_bytes();
    assert_eq!(
        intake::read_file_js(&Uint8Array::from(&html[..])),
        Ok(sealed)
    );
    assert_eq!(
        intake::read_file_js(&Uint8Array::from(&b"<html></html>"[..])),
        Err(IntakeError::NoEnvelope)
    );
}

#[wasm_bindgen_test]
async fn without_from_base64_or_text_decoder_rust_does_it() {
    without(&global("Uint8Array"), "fromBase64", async || {
        assert_extractors_agree().await
    })
    .await;
    without(&js_sys::global().into(), "TextDecoder", async || {
        assert_extractors_agree().await
    })
    .await;
}

#[wasm_bindgen_test]
async fn webcrypto_sha256_is_sha256() {
    let empty = webcrypto::sha256(b"").await.unwrap();
    assert_eq!(
        hex::encode(empty),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for len in [1usize, 55, 56, 63, 64, 65, 1_000_003] {
        let data = bytes(len, len as u8);
        let expected: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(webcrypto::sha256(&data).await, Ok(expected), "{len} bytes");
    }
    let crypto = global("crypto");
    let answer = without(&crypto, "subtle", async || webcrypto::sha256(b"abc").await).await;
    assert_eq!(answer, Err(webcrypto::Unavailable));
}

/// The verdicts of every verifier on `bytes`; they must all be the same.
async fn verdicts(bytes: &[u8], keys: &[TenantKey]) -> Result<(), OpenFailure> {
    let rust = open::verify(bytes, keys);
    assert_eq!(open::verify_webcrypto(bytes, keys).await, rust);
    if let Ok(envelope) = Envelope::parse(bytes) {
        let keys: Vec<_> = keys
            .iter()
            .map(|k| sealpost_core::VerifyingKey::from_base64(&k.public_key).unwrap())
            .collect();
        assert_eq!(
            envelope.verify_any_webcrypto(&keys).await,
            envelope.verify_any(&keys)
        );
    }
    rust
}

async fn assert_verifiers_agree() {
    let tenant = Tenant::new(5);
    let keys = tenant.signing_keys();
    let sealed = tenant.seal(&bytes(100_000, 6));
    assert_eq!(verdicts(&sealed, &keys).await, Ok(()));
    for at in [20, sealed.len() / 2, sealed.len() - 65, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[at] ^= 0x04;
        assert_eq!(
            verdicts(&bad, &keys).await,
            Err(OpenFailure::Damaged),
            "flipped byte {at}"
        );
    }
    assert_eq!(
        verdicts(&sealed, &Tenant::new(7).signing_keys()).await,
        Err(OpenFailure::Damaged)
    );
    assert_eq!(verdicts(&sealed, &[]).await, Err(OpenFailure::Damaged));
}

#[wasm_bindgen_test]
async fn signature_checks_agree_with_and_without_webcrypto() {
    assert_verifiers_agree().await;
    let crypto = global("crypto");
    without(&crypto, "subtle", async || assert_verifiers_agree().await).await;
}
