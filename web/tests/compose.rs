//! Browser tests of Reply, Reply all and Forward (wasm-bindgen-test in headless Chromium):
//! the reply built and sealed in the browser opens, after the gateway's counter-signature, with
//! the tenant's keys to exactly the built message; the composer in the message view, with
//! `fetch` replaced by a recorder, sends JSON that carries no plaintext, and explains refusals;
//! the buttons follow the rights and the organization's reply endpoint.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test compose`.

#![cfg(target_arch = "wasm32")]

#[path = "support/purify.rs"]
mod purify;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, Template, countersign, seal};
use sealpost_portal::api::{RewrapAnswer, TenantInfo};
use sealpost_portal::compose::flow::{self, Opened};
use sealpost_portal::compose::{Draft, Kind, Original, message, submit};
use sealpost_portal::open;
use sealpost_portal::render;
use sealpost_portal::rights::UiRights;
use sealpost_portal::session::Session;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CREATED: u64 = 1_800_000_000;
const SECRET: &str = "PINEAPPLE-42 is the launch code";

const MAIL: &str = "From: Alice <alice@example.com>\r\n\
To: bob@example.org, carol@example.net\r\n\
Subject: Launch plan\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
Message-ID: <plan-7@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The original says MANGO-17.\r\n\
--b\r\n\
Content-Type: application/pdf; name=\"plan.pdf\"\r\n\
Content-Disposition: attachment; filename=\"plan.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b--\r\n";

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

    fn info(&self, reply_url: Option<&str>) -> TenantInfo {
        let vk = self.signing.verifying_key();
        let lk = self.license.public_key();
        serde_json::from_value(serde_json::json!({
            "tenant_id": "example.com",
            "display_name": "Example Corp",
            "signing_keys": [{"id": vk.key_id().to_string(), "public_key": vk.to_base64(), "status": "active"}],
            "license_keys": [{"id": lk.key_id().to_string(), "public_key": lk.to_base64(), "status": "active"}],
            "allowed_origins": [],
            "reply_url": reply_url,
        }))
        .unwrap()
    }

    /// The original, sealed by the tenant for bob and carol.
    fn seal(&self, template: &Template) -> Vec<u8> {
        let sealer = Sealer {
            tenant_id: "example.com",
            key_service_url: "http://127.0.0.1:8080",
            license_key: &self.license.public_key(),
            signing_key: &self.signing,
        };
        let policy = template.policy(
            "alice@example.com",
            &["bob@example.org".into(), "carol@example.net".into()],
            CREATED,
        );
        seal(
            &sealer,
            &policy,
            Some("Launch plan"),
            CREATED,
            MAIL.as_bytes(),
            &mut rng(),
        )
        .unwrap()
    }

    /// What the gateway does: counter-sign; then what any reader does: verify, open, decrypt.
    fn open_reply(&self, submission: &[u8]) -> (sealpost_core::Policy, Vec<u8>) {
        assert!(Envelope::parse(submission).unwrap().is_submission());
        let signed = countersign(submission, &self.signing).unwrap();
        let env = Envelope::parse(&signed).unwrap();
        env.verify(&self.signing.verifying_key()).unwrap();
        let license = env.open_license(&self.license).unwrap();
        let plaintext = env.decrypt(&license.share_b).unwrap().to_vec();
        (license.policy, plaintext)
    }
}

fn opened(t: &Tenant, template: &Template, reply_url: Option<&str>) -> Opened {
    let envelope = t.seal(template);
    let info = open::read_envelope(&envelope).unwrap();
    let answer = RewrapAnswer {
        sealed_share: String::new(),
        rights: template
            .rights
            .iter()
            .map(|r| r.name().to_string())
            .collect(),
        expires: None,
        sender: "alice@example.com".into(),
        template: template.name.clone(),
        message_id: "00".repeat(16),
        email: "bob@example.org".into(),
        server_time: None,
    };
    let original = Original::read(MAIL.as_bytes(), &answer, &info).unwrap();
    Opened {
        envelope: Arc::from(envelope),
        info,
        tenant: t.info(reply_url),
        session: Session {
            token: "sps_test_token".into(),
            email: "bob@example.org".into(),
            expires_at: u64::MAX,
            idle_timeout: u64::MAX,
            last_used: 0,
        },
        message: render::read_message(MAIL.as_bytes()).unwrap(),
        rights: UiRights::new(template.rights, &template.name),
        original,
    }
}

#[wasm_bindgen_test]
fn the_browser_sealed_reply_opens_to_exactly_the_built_message() {
    let t = Tenant::new();
    let o = opened(&t, &Template::do_not_forward(), Some("http://127.0.0.1:9"));
    let original = &o.original;
    let mut d = Draft::new(Kind::ReplyAll, original, "bob@example.org");
    d.body = format!("{SECRET}\n{}", d.body);
    let r = d.recipients(original, "bob@example.org").unwrap();
    let now = CREATED + 60;
    let built = message::build(&d, original, "bob@example.org", &r, now, &mut rng()).unwrap();
    let policy = submit::policy(original, "bob@example.org", &r, now);
    let subject = submit::header_subject(original, &d.subject);
    let env = submit::seal(
        original,
        &o.tenant,
        &policy,
        subject.as_deref(),
        now,
        &built.bytes,
        &mut rng(),
    )
    .unwrap();
    let (sealed_policy, plaintext) = t.open_reply(&env);
    assert_eq!(plaintext, built.bytes.to_vec());
    assert_eq!(sealed_policy, policy);
    assert_eq!(sealed_policy.template, "Do-Not-Forward");
    assert_eq!(
        sealed_policy.recipients,
        ["alice@example.com", "carol@example.net"]
    );
    let h = Envelope::parse(&env).unwrap().header().clone();
    assert_eq!(
        (h.sender.as_str(), h.subject.as_deref()),
        ("bob@example.org", Some("Re: Launch plan"))
    );
    assert!(!env.windows(12).any(|w| w == &SECRET.as_bytes()[..12]));
}

fn container() -> web_sys::HtmlElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let div: web_sys::HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().unwrap().append_child(&div).unwrap();
    div
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

fn find(root: &web_sys::HtmlElement, selector: &str) -> Option<web_sys::HtmlElement> {
    root.query_selector(selector)
        .unwrap()
        .map(|e| e.unchecked_into())
}

async fn wait_for(root: &web_sys::HtmlElement, selector: &str) -> web_sys::HtmlElement {
    for _ in 0..500 {
        if let Some(e) = find(root, selector) {
            return e;
        }
        tick().await;
    }
    panic!("{selector} never appeared");
}

/// Replaces `fetch` with a recorder that answers `status` with `body`; returns the recorded
/// requests' array (`{url, method, authorization, client, contentType, body}`).
fn stub_fetch(status: u16, body: &str) -> js_sys::Array {
    let install = js_sys::Function::new_with_args(
        "status, body",
        "const log = [];
         window.fetch = async (req) => {
           log.push({ url: req.url, method: req.method,
             authorization: req.headers.get('authorization'),
             client: req.headers.get('x-sealpost-client'),
             contentType: req.headers.get('content-type'),
             body: await req.text() });
           return new Response(body, { status, headers: { 'Content-Type': 'application/json' } });
         };
         return log;",
    );
    install
        .call2(
            &JsValue::NULL,
            &JsValue::from(status),
            &JsValue::from_str(body),
        )
        .unwrap()
        .unchecked_into()
}

fn get(v: &JsValue, key: &str) -> String {
    js_sys::Reflect::get(v, &key.into())
        .unwrap()
        .as_string()
        .unwrap_or_default()
}

fn type_into(el: &web_sys::HtmlElement, value: &str) {
    if let Some(area) = el.dyn_ref::<web_sys::HtmlTextAreaElement>() {
        area.set_value(value);
    } else {
        el.unchecked_ref::<web_sys::HtmlInputElement>()
            .set_value(value);
    }
    el.dispatch_event(&web_sys::Event::new("input").unwrap())
        .unwrap();
}

#[wasm_bindgen_test]
async fn buttons_follow_the_rights_and_the_reply_endpoint() {
    purify::load();
    let t = Tenant::new();
    let labels = |root: &web_sys::HtmlElement| -> Vec<String> {
        let list = root
            .query_selector_all("[data-testid=reply-actions] button")
            .unwrap();
        (0..list.length())
            .map(|i| list.get(i).unwrap().text_content().unwrap_or_default())
            .collect()
    };
    let root = container();
    flow::mount_reading(
        root.clone(),
        opened(&t, &Template::encrypt_only(), Some("http://127.0.0.1:9")),
    );
    tick().await;
    assert_eq!(labels(&root), ["Reply", "Reply all", "Forward"]);

    let root = container();
    flow::mount_reading(
        root.clone(),
        opened(&t, &Template::do_not_forward(), Some("http://127.0.0.1:9")),
    );
    tick().await;
    assert_eq!(labels(&root), ["Reply", "Reply all"]);

    let root = container();
    flow::mount_reading(root.clone(), opened(&t, &Template::encrypt_only(), None));
    tick().await;
    assert!(labels(&root).is_empty());
    let why = find(&root, "[data-testid=reply-unavailable]").expect("the portal says why");
    assert!(
        why.text_content()
            .unwrap()
            .contains("Example Corp has not set up secure replies")
    );
}

#[wasm_bindgen_test]
async fn a_reply_is_sealed_in_the_browser_and_sent_without_plaintext() {
    purify::load();
    let t = Tenant::new();
    let log = stub_fetch(
        202,
        r#"{"queued":"q-1","message_id":"0123456789abcdef0123456789abcdef","recipients":["alice@example.com"]}"#,
    );
    let root = container();
    let o = opened(&t, &Template::do_not_forward(), Some("http://127.0.0.1:9/"));
    let original_b64 = B64.encode(&*o.envelope);
    flow::mount_reading(root.clone(), o);
    tick().await;
    find(&root, "[data-testid=compose-reply]").unwrap().click();
    let compose = wait_for(&root, "[data-testid=compose]").await;
    assert_eq!(compose.get_attribute("data-kind").as_deref(), Some("reply"));
    let to = find(&root, "#compose-to").unwrap();
    assert!(to.has_attribute("readonly"));
    assert_eq!(
        to.unchecked_ref::<web_sys::HtmlInputElement>().value(),
        "Alice <alice@example.com>"
    );
    assert_eq!(
        find(&root, "#compose-subject")
            .unwrap()
            .unchecked_ref::<web_sys::HtmlInputElement>()
            .value(),
        "Re: Launch plan"
    );
    let note = find(&root, "[data-testid=compose-protection]")
        .unwrap()
        .text_content()
        .unwrap();
    assert!(note.contains("Do-Not-Forward"), "{note}");
    // No Forward while composing, and none at all under Do-Not-Forward.
    assert!(find(&root, "[data-testid=compose-forward]").is_none());

    let body = find(&root, "#compose-body").unwrap();
    let quoted = body.unchecked_ref::<web_sys::HtmlTextAreaElement>().value();
    assert!(quoted.contains("> The original says MANGO-17."), "{quoted}");
    type_into(&body, &format!("{SECRET}\n{quoted}"));
    // Bold on the first word, through the toolbar.
    let area: &web_sys::HtmlTextAreaElement = body.unchecked_ref();
    area.set_selection_range(0, 9).unwrap();
    find(&root, "button[aria-label=Bold]").unwrap().click();
    tick().await;
    assert!(
        area.value().starts_with("**PINEAPPLE**-42"),
        "{}",
        area.value()
    );

    find(&root, "[data-testid=compose-send]").unwrap().click();
    let done = wait_for(&root, "[data-testid=compose-success]").await;
    assert!(
        done.text_content()
            .unwrap()
            .contains("on its way to alice@example.com")
    );
    assert!(find(&root, "[data-testid=compose]").is_none());

    assert_eq!(log.length(), 1);
    let req = log.get(0);
    assert_eq!(get(&req, "url"), "http://127.0.0.1:9/v1/replies");
    assert_eq!(get(&req, "method"), "POST");
    assert_eq!(get(&req, "authorization"), "Bearer sps_test_token");
    assert_eq!(get(&req, "client"), "1");
    assert_eq!(get(&req, "contentType"), "application/json");
    let json = get(&req, "body");
    for plaintext in [
        "PINEAPPLE",
        "launch code",
        "MANGO",
        "Launch plan",
        "JVBERi0",
    ] {
        assert!(
            !json.contains(plaintext),
            "{plaintext} left the browser: {json}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["kind"], "reply");
    assert_eq!(v["to"], serde_json::json!(["alice@example.com"]));
    assert_eq!(v["cc"], serde_json::json!([]));
    // The original goes whole (the gateway checks its signature), as it arrived.
    assert_eq!(
        v["original"],
        serde_json::json!({ "envelope": original_b64.as_str() })
    );
    assert_eq!(v["threading"]["in_reply_to"], "<plan-7@example.com>");
    assert_eq!(v["threading"]["references"], "<plan-7@example.com>");
    let submission = B64.decode(v["envelope"].as_str().unwrap()).unwrap();
    // The subject is in the readable header only because the original's header shows it.
    let header = Envelope::parse(&submission).unwrap().header().clone();
    assert_eq!(header.subject.as_deref(), Some("Re: Launch plan"));
    for plaintext in ["PINEAPPLE", "MANGO"] {
        assert!(
            !submission
                .windows(plaintext.len())
                .any(|w| w == plaintext.as_bytes())
        );
    }
    // The gateway's counter-signature and the tenant's keys open exactly the reply.
    let (policy, plaintext) = t.open_reply(&submission);
    assert_eq!(policy.recipients, ["alice@example.com"]);
    assert_eq!(policy.sender, "bob@example.org");
    assert_eq!(policy.template, "Do-Not-Forward");
    let m = mail_parser::MessageParser::default()
        .parse(&plaintext)
        .unwrap();
    assert_eq!(
        m.message_id().map(|id| format!("<{id}>")),
        v["threading"]["message_id"].as_str().map(String::from)
    );
    assert_eq!(m.in_reply_to().as_text(), Some("plan-7@example.com"));
    let text = m.body_text(0).unwrap();
    assert!(
        text.starts_with("**PINEAPPLE**-42 is the launch code\r\n"),
        "{text}"
    );
    assert!(text.contains("> The original says MANGO-17."));
    assert!(
        m.body_html(0)
            .unwrap()
            .contains("<strong>PINEAPPLE</strong>")
    );
}

#[wasm_bindgen_test]
async fn forward_validates_addresses_keeps_attachments_and_explains_refusals() {
    purify::load();
    let t = Tenant::new();
    let log = stub_fetch(401, r#"{"error":"not_signed_in","message":"sign in"}"#);
    let root = container();
    flow::mount_reading(
        root.clone(),
        opened(&t, &Template::encrypt_only(), Some("http://127.0.0.1:9")),
    );
    tick().await;
    find(&root, "[data-testid=compose-forward]")
        .unwrap()
        .click();
    wait_for(&root, "[data-testid=compose]").await;
    let to = find(&root, "#compose-to").unwrap();
    assert!(!to.has_attribute("readonly"));
    let files = root
        .query_selector_all("[data-testid=compose-attachment]")
        .unwrap();
    assert_eq!(files.length(), 1);
    assert_eq!(
        files
            .get(0)
            .unwrap()
            .unchecked_into::<web_sys::Element>()
            .get_attribute("data-name")
            .as_deref(),
        Some("plan.pdf")
    );
    // A bad address is explained and nothing is sent.
    type_into(&to, "erin@example.com, nonsense");
    find(&root, "[data-testid=compose-send]").unwrap().click();
    let problem = wait_for(&root, "[data-testid=compose-error]").await;
    assert!(
        problem
            .text_content()
            .unwrap()
            .contains("“nonsense” is not an e-mail address")
    );
    assert_eq!(log.length(), 0);
    // Removing the forwarded attachment.
    find(&root, "button[aria-label='Remove plan.pdf']")
        .unwrap()
        .click();
    tick().await;
    assert_eq!(
        root.query_selector_all("[data-testid=compose-attachment]")
            .unwrap()
            .length(),
        0
    );
    // The session ended: the portal says so and offers to sign in again, keeping the draft.
    type_into(&to, "erin@example.com");
    find(&root, "[data-testid=compose-send]").unwrap().click();
    for _ in 0..500 {
        if log.length() == 1 && find(&root, "[data-testid=compose-error] button").is_some() {
            break;
        }
        tick().await;
    }
    let problem = find(&root, "[data-testid=compose-error]").unwrap();
    assert!(
        problem
            .text_content()
            .unwrap()
            .contains("Your sign-in has ended"),
        "{:?}",
        problem.text_content()
    );
    assert_eq!(
        find(&root, "[data-testid=compose-error] button")
            .unwrap()
            .text_content()
            .as_deref(),
        Some("Sign in again")
    );
    let v: serde_json::Value = serde_json::from_str(&get(&log.get(0), "body")).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["to"].clone()),
        (Some("forward"), serde_json::json!(["erin@example.com"]))
    );
    assert!(
        find(&root, "[data-testid=compose]").is_some(),
        "the draft is kept"
    );
}
