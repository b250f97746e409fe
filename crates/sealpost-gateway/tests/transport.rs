//! Transport decryption end to end: our own protected mail, arriving through the reply
//! endpoint or over SMTP, delivered decrypted to internal recipients when the tenant allows it
//! (share B from a real key service, in-process on SQLite), and delivered as the unchanged
//! wrapper when it is off, refused, or the key service is down. The next hop is a real SMTP
//! sink (python3-aiosmtpd).
//!
//! With `CI` set a missing sink fails the tests; otherwise they are skipped with a message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::mail::{WrapperSettings, wrap};
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, Sealer, SigningKey, seal};
use serde_json::{Value, json};

#[path = "support/pair.rs"]
mod pair;
mod support;

use pair::{Gw, KS_URL_IN_HEADERS, Ks, T0, TENANT, message_id, wait_received};
use support::{Received, start_sink_with};

const ALICE: &str = "alice@acme.example";
const CAROL: &str = "carol@acme.example";
const BOB: &str = "bob@other.example";

const ORIGINAL: &[u8] = b"From: Alice <alice@acme.example>\r\nTo: bob@other.example\r\nCc: carol@acme.example\r\nSubject: Plans\r\nMessage-ID: <m7@acme.example>\r\n\r\nThe plans, inside.\r\n";

const REPLY: &[u8] = b"From: bob@other.example\r\nTo: alice@acme.example\r\nSubject: Re: Plans\r\nMessage-ID: <r7@sealpost.invalid>\r\nIn-Reply-To: <m7@acme.example>\r\nReferences: <m7@acme.example>\r\n\r\nReceived, thanks.\r\n";

fn settings() -> WrapperSettings {
    WrapperSettings {
        organization: "Acme".into(),
        portal_url: "https://portal.acme.example/".into(),
        show_subject: true,
        replacement_subject: "Protected message".into(),
    }
}

/// The wrapper mail of an envelope, as the gateway makes it.
fn wrapper_of(envelope: &[u8], raw: &[u8]) -> Vec<u8> {
    let header = Envelope::parse(envelope).unwrap().header().clone();
    wrap(raw, envelope, &header, &settings())
}

fn rcpts(r: &Received) -> Vec<String> {
    serde_json::from_value(r.meta["rcpt_tos"].clone()).unwrap()
}

/// The delivery for `who` among `got`.
fn for_rcpt<'a>(got: &'a [Received], who: &str) -> &'a Received {
    got.iter()
        .find(|r| rcpts(r).iter().any(|x| x == who))
        .unwrap_or_else(|| panic!("nothing delivered to {who}"))
}

/// What an internal recipient gets when the gateway decrypts.
fn decrypted(envelope: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = format!("X-Sealpost-Decrypted: {}\r\n", message_id(envelope)).into_bytes();
    out.extend_from_slice(plaintext);
    out
}

async fn series(gw: &Gw, result: &str) -> u64 {
    gw.metric(&format!(
        "sealpost_gateway_transport_decryptions_total{{result=\"{result}\"}}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_an_internal_sender_arrives_decrypted() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB],
        Some("Plans"),
        ORIGINAL,
        1,
    );
    let session = ks.session(&original, BOB).await;
    let sub = ks.submission(&original, BOB, &[ALICE], Some("Re: Plans"), REPLY, 2);
    let body = json!({
        "kind": "reply",
        "original": { "envelope": B64.encode(&original) },
        "envelope": B64.encode(&sub),
        "to": [ALICE], "cc": [],
        "threading": { "message_id": "<r7@sealpost.invalid>", "in_reply_to": "<m7@acme.example>",
                       "references": "<m7@acme.example>" }
    });
    let resp = reqwest::Client::new()
        .post(gw.replies_url())
        .bearer_auth(&session)
        .header("X-Sealpost-Client", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["message_id"], message_id(&sub));

    let got = wait_received(&sink, 1).await;
    assert_eq!(rcpts(&got[0]), [ALICE]);
    // Exactly what the browser sealed, with one field in front.
    assert_eq!(got[0].data, decrypted(&sub, REPLY));
    assert_eq!(series(&gw, "decrypted").await, 1);
    assert_eq!(series(&gw, "refused").await, 0);
    let audit = ks.audit(&message_id(&sub)).await;
    assert!(
        audit
            .iter()
            .any(|(e, who, _)| e == "transport_released" && who.as_deref() == Some(ALICE)),
        "{audit:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_protected_mail_is_decrypted_for_internal_recipients_only() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let env = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB, CAROL],
        Some("Plans"),
        ORIGINAL,
        3,
    );
    let wrapper = wrapper_of(&env, ORIGINAL);
    gw.send(ALICE, &[BOB, CAROL], &wrapper).await;

    let got = wait_received(&sink, 2).await;
    assert_eq!(for_rcpt(&got, CAROL).data, decrypted(&env, ORIGINAL));
    assert_eq!(rcpts(for_rcpt(&got, CAROL)), [CAROL]);
    // Outside: the wrapper as it came, not sealed a second time.
    assert_eq!(for_rcpt(&got, BOB).data, wrapper);
    assert_eq!(series(&gw, "decrypted").await, 1);
    assert_eq!(gw.metric("sealpost_gateway_encrypted_total").await, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_decryption_off_delivers_the_wrapper_unchanged() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, false, "").await;
    let env = ks.seal(&Template::encrypt_only(), BOB, &[CAROL], None, REPLY, 4);
    let wrapper = wrapper_of(&env, REPLY);
    gw.send(BOB, &[CAROL], &wrapper).await;
    let got = wait_received(&sink, 1).await;
    assert_eq!(got[0].data, wrapper);
    for r in ["decrypted", "refused", "failed"] {
        assert_eq!(series(&gw, r).await, 0, "{r}");
    }
    assert!(
        ks.audit(&message_id(&env)).await.is_empty(),
        "the key service was not asked"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_by_the_key_service_deliver_the_wrapper_unchanged() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    // The gateway would decrypt, but the key service's tenant does not allow it.
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let env = ks.seal(&Template::encrypt_only(), BOB, &[CAROL], None, REPLY, 5);
    let wrapper = wrapper_of(&env, REPLY);
    gw.send(BOB, &[CAROL], &wrapper).await;
    let got = wait_received(&sink, 1).await;
    assert_eq!(got[0].data, wrapper);
    assert_eq!(series(&gw, "refused").await, 1);
    assert_eq!(series(&gw, "decrypted").await, 0);
    let audit = ks.audit(&message_id(&env)).await;
    assert!(
        audit.iter().any(
            |(e, _, d)| e == "transport_refused" && d.contains("transport_decryption_disabled")
        ),
        "{audit:?}"
    );
    gw.stop().await;

    // Allowed, but the internal recipient is not one of the message's recipients.
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let env = ks.seal(&Template::encrypt_only(), BOB, &[CAROL], None, REPLY, 6);
    let wrapper = wrapper_of(&env, REPLY);
    gw.send(BOB, &[CAROL, "dave@acme.example"], &wrapper).await;
    let got = wait_received(&sink, 2).await;
    assert_eq!(for_rcpt(&got, CAROL).data, decrypted(&env, REPLY));
    assert_eq!(for_rcpt(&got, "dave@acme.example").data, wrapper);
    assert_eq!(series(&gw, "decrypted").await, 1);
    assert_eq!(series(&gw, "refused").await, 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_service_that_is_down_delivers_the_wrapper_unchanged() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let env = ks.seal(
        &Template::encrypt_only(),
        BOB,
        &[CAROL, ALICE],
        None,
        REPLY,
        7,
    );
    let wrapper = wrapper_of(&env, REPLY);
    ks.stop().await;
    let started = std::time::Instant::now();
    gw.send(BOB, &[CAROL, ALICE], &wrapper).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let got = wait_received(&sink, 1).await;
    assert_eq!(got[0].data, wrapper);
    let mut who = rcpts(&got[0]);
    who.sort();
    assert_eq!(who, [ALICE, CAROL]);
    assert_eq!(series(&gw, "failed").await, 2);
    assert_eq!(series(&gw, "decrypted").await, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapper_that_does_not_verify_is_never_decrypted() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    // Our tenant's name and license key, but signed by someone else's key.
    let forger = SigningKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
    let pk = ks.license.public_key();
    let sealer = Sealer {
        tenant_id: TENANT,
        key_service_url: KS_URL_IN_HEADERS,
        license_key: &pk,
        signing_key: &forger,
    };
    let policy = Template::encrypt_only().policy(BOB, &[CAROL.to_string()], T0);
    let env = seal(
        &sealer,
        &policy,
        None,
        T0,
        REPLY,
        &mut rand_core::UnwrapErr(getrandom::SysRng),
    )
    .unwrap();
    let wrapper = wrapper_of(&env, REPLY);
    gw.send(BOB, &[CAROL], &wrapper).await;
    let got = wait_received(&sink, 1).await;
    assert_eq!(got[0].data, wrapper);
    assert!(
        ks.audit(&message_id(&env)).await.is_empty(),
        "the key service was not asked"
    );
    for r in ["decrypted", "refused", "failed"] {
        assert_eq!(series(&gw, r).await, 0, "{r}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_whose_from_is_not_its_sender_is_delivered_as_the_wrapper() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(true).await;
    let gw = Gw::start(&ks, sink.port, true, "").await;
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB],
        Some("Plans"),
        ORIGINAL,
        8,
    );
    let session = ks.session(&original, BOB).await;
    // Bob's browser writes a message "from" Carol, a colleague of Alice's.
    let spoofed: &[u8] = b"From: Carol <carol@acme.example>\r\nTo: alice@acme.example\r\nSubject: Re: Plans\r\nMessage-ID: <r8@sealpost.invalid>\r\n\r\nPlease wire the money.\r\n";
    let sub = ks.submission(&original, BOB, &[ALICE], Some("Re: Plans"), spoofed, 9);
    let body = json!({
        "kind": "reply",
        "original": { "envelope": B64.encode(&original) },
        "envelope": B64.encode(&sub),
        "to": [ALICE], "cc": [],
        "threading": { "message_id": "<r8@sealpost.invalid>", "in_reply_to": null,
                       "references": null }
    });
    let resp = reqwest::Client::new()
        .post(gw.replies_url())
        .bearer_auth(&session)
        .header("X-Sealpost-Client", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let got = wait_received(&sink, 1).await;
    assert_eq!(rcpts(&got[0]), [ALICE]);
    let text = String::from_utf8_lossy(&got[0].data);
    assert!(text.contains("X-Sealpost-Envelope:"), "{text}");
    assert!(!text.contains("X-Sealpost-Decrypted"), "{text}");
    assert!(!text.contains("wire the money"), "{text}");
    assert_eq!(series(&gw, "decrypted").await, 0);
    assert_eq!(series(&gw, "failed").await, 1);
    gw.stop().await;
}
