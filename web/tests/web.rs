//! Browser tests (wasm-bindgen-test in headless Chromium): the crypto glue end to end with a
//! tenant made in the test, the sanitizer (DOMPurify, loaded as `index.html` loads it; its own
//! tests are `sanitize.rs`), and the message view's components (rights gating of downloads,
//! the sandboxed frame, remote-content choice).
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test web` (the runner is set in `.cargo/config.toml`).

#![cfg(target_arch = "wasm32")]

#[path = "support/purify.rs"]
mod purify;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, Template, seal};
use sealpost_portal::api::TenantKey;
use sealpost_portal::open::{self, OpenFailure, PayloadDecryptor, RewrapKey};
use sealpost_portal::render::{self, sanitize};
use sealpost_portal::rights::UiRights;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

struct Tenant {
    license: LicenseSecretKey,
    signing: SigningKey,
}

impl Tenant {
    fn new() -> Tenant {
        Tenant {
            license: LicenseSecretKey::generate(&mut rng()),
            signing: SigningKey::generate(&mut rng()),
        }
    }

    fn seal(&self, template: Template, plaintext: &[u8]) -> Vec<u8> {
        let sealer = Sealer {
            tenant_id: "example.com",
            key_service_url: "http://127.0.0.1:8080",
            license_key: &self.license.public_key(),
            signing_key: &self.signing,
        };
        let policy = template.policy(
            "alice@example.com",
            &["bob@example.org".into()],
            1_800_000_000,
        );
        seal(&sealer, &policy, None, 1_800_000_000, plaintext, &mut rng()).unwrap()
    }

    fn signing_keys(&self) -> Vec<TenantKey> {
        let vk = self.signing.verifying_key();
        vec![TenantKey {
            id: vk.key_id().to_string(),
            public_key: vk.to_base64(),
            status: "active".into(),
        }]
    }

    /// The key service's half of rewrap.
    fn rewrap(&self, bytes: &[u8], client_public_b64: &str) -> String {
        let envelope = Envelope::parse(bytes).unwrap();
        let license = envelope.open_license(&self.license).unwrap();
        let client = sealpost_core::LicensePublicKey::from_base64(client_public_b64).unwrap();
        B64.encode(
            sealpost_core::rewrap::seal_share(
                &client,
                envelope.header_bytes(),
                &license.share_b,
                &mut rng(),
            )
            .unwrap(),
        )
    }
}

const MAIL: &str = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Numbers\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p onclick=alert(1)>Hello <img src=\"https://tracker.example/p.gif\"><script>alert(2)</script></p>\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=report.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n";

#[wasm_bindgen_test]
fn crypto_round_trip_in_the_browser() {
    let tenant = Tenant::new();
    let plaintext: Vec<u8> = MAIL.bytes().cycle().take(300_000).collect();
    let bytes = tenant.seal(Template::encrypt_only(), &plaintext);
    let info = open::read_envelope(&bytes).unwrap();
    assert_eq!(info.sender, "alice@example.com");
    open::verify(&bytes, &tenant.signing_keys()).unwrap();
    let key = RewrapKey::generate(&mut rng());
    let share = key
        .open_share(&bytes, &tenant.rewrap(&bytes, &key.public_key_base64()))
        .unwrap();
    let mut dec = PayloadDecryptor::new(Arc::from(&bytes[..]), &share).unwrap();
    while !dec.is_fed() {
        dec.step(64 * 1024).unwrap();
    }
    assert_eq!(*dec.finish().unwrap(), plaintext);
}

#[wasm_bindgen_test]
fn tampered_envelopes_are_damaged() {
    let tenant = Tenant::new();
    let bytes = tenant.seal(Template::encrypt_only(), MAIL.as_bytes());
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    assert_eq!(
        open::verify(&bad, &tenant.signing_keys()),
        Err(OpenFailure::Damaged)
    );
    assert_eq!(
        open::verify(&bytes, &Tenant::new().signing_keys()),
        Err(OpenFailure::Damaged)
    );
    // Even with a share for it, a payload changed after signing does not decrypt.
    let key = RewrapKey::generate(&mut rng());
    let share = key
        .open_share(&bytes, &tenant.rewrap(&bytes, &key.public_key_base64()))
        .unwrap();
    let mut dec = PayloadDecryptor::new(Arc::from(&bad[..]), &share).unwrap();
    let mut failed = false;
    while !dec.is_fed() && !failed {
        failed = dec.step(1 << 20).is_err();
    }
    assert!(failed || dec.finish().is_err());
}

#[wasm_bindgen_test]
fn sanitizer_in_wasm() {
    let inline = Arc::new(HashMap::from([(
        "i@x".to_string(),
        "data:image/png;base64,AAAA".to_string(),
    )]));
    let raw = r#"<svg><script>alert(1)</script></svg><a href="javascript:alert(2)">x</a><form><input></form><meta http-equiv=refresh content="0;url=https://e.example"><img src="cid:i@x"><img src="https://e.example/t.gif"><div style="background:url(https://e.example/b.png)">d</div>"#;
    purify::load();
    let (out, blocked) = sanitize::sanitize(raw, &inline, false).unwrap();
    for bad in [
        "script",
        "javascript",
        "<form",
        "<input",
        "<meta",
        "e.example",
        "url(",
    ] {
        assert!(!out.contains(bad), "{bad} in {out}");
    }
    assert!(out.contains("data:image/png;base64,AAAA"));
    assert!(blocked);
    let (out, _) = sanitize::sanitize(raw, &inline, true).unwrap();
    assert!(out.contains("https://e.example/t.gif") && !out.contains("b.png"));
}

fn container() -> web_sys::HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let div: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&div).unwrap();
    div
}

fn count(root: &web_sys::HtmlElement, selector: &str) -> u32 {
    root.query_selector_all(selector).unwrap().length()
}

async fn tick() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 10)
            .unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

#[wasm_bindgen_test]
async fn do_not_forward_hides_downloads() {
    purify::load();
    let message = render::read_message(MAIL.as_bytes()).unwrap();
    let root = container();
    let rights = UiRights::new(Template::do_not_forward().rights, "Do-Not-Forward");
    sealpost_portal::app::mount_message(root.clone(), message, rights, "bob@example.org");
    tick().await;
    assert_eq!(count(&root, "[data-testid=dnf-banner]"), 1);
    assert_eq!(count(&root, "[data-testid=attachment]"), 1);
    assert_eq!(count(&root, "[data-testid=attachment-download]"), 0);
    let a = root
        .query_selector("[data-testid=attachment]")
        .unwrap()
        .unwrap();
    assert_eq!(a.get_attribute("data-name").as_deref(), Some("report.pdf"));
    assert_eq!(a.get_attribute("data-size").as_deref(), Some("9"));
    assert_eq!(
        a.get_attribute("data-type").as_deref(),
        Some("application/pdf")
    );
    assert_eq!(
        root.query_selector("[data-testid=field-subject]")
            .unwrap()
            .unwrap()
            .text_content()
            .as_deref(),
        Some("Numbers")
    );
}

#[wasm_bindgen_test]
async fn encrypt_only_allows_downloads_and_frames_html_safely() {
    purify::load();
    let message = render::read_message(MAIL.as_bytes()).unwrap();
    let root = container();
    let rights = UiRights::new(Template::encrypt_only().rights, "Encrypt-Only");
    sealpost_portal::app::mount_message(root.clone(), message, rights, "bob@example.org");
    tick().await;
    assert_eq!(count(&root, "[data-testid=dnf-banner]"), 0);
    assert_eq!(count(&root, "[data-testid=attachment-download]"), 1);
    let frame = root
        .query_selector("[data-testid=body-html-frame]")
        .unwrap()
        .unwrap();
    let sandbox = frame.get_attribute("sandbox").unwrap();
    assert!(!sandbox.contains("allow-scripts") && !sandbox.contains("allow-same-origin"));
    let doc = frame.get_attribute("srcdoc").unwrap();
    assert!(doc.contains("default-src 'none'; img-src data:;"), "{doc}");
    assert!(
        !doc.contains("<script") && !doc.contains("onclick") && !doc.contains("tracker.example")
    );
    // Remote images wait for the recipient's choice.
    let button: web_sys::HtmlElement = root
        .query_selector("[data-testid=load-remote]")
        .unwrap()
        .expect("load-remote is offered")
        .unchecked_into();
    button.click();
    tick().await;
    assert_eq!(count(&root, "[data-testid=load-remote]"), 0);
    let doc = frame.get_attribute("srcdoc").unwrap();
    assert!(
        doc.contains("https://tracker.example/p.gif") && doc.contains("img-src data: http: https:")
    );
}
