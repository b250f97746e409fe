//! The reply endpoint end to end: a real key service (SQLite, in-process) authorizes, the
//! gateway counter-signs, wraps, spools and relays to a real SMTP sink (python3-aiosmtpd).
//! One accepted reply checked byte by byte; every refusal checked for its status, its code
//! and that nothing was spooled or sent.
//!
//! With `CI` set a missing sink fails the tests; otherwise they are skipped with a message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::mail::extract_envelope;
use sealpost_core::policy::Template;
use sealpost_core::{
    Envelope, LicenseSecretKey, Sealer, SigningKey, SubmissionSealer, open_with_tenant_keys, seal,
    seal_submission,
};
use serde_json::{Value, json};

#[path = "../support/pair.rs"]
mod pair;
#[path = "../support/mod.rs"]
mod support;

mod refusals;

use pair::{Gw, KS_URL_IN_HEADERS, Ks, PORTAL, REPLY_FROM, T0, TENANT, message_id, wait_received};
use support::start_sink_with;

const ALICE: &str = "alice@acme.example";
const BOB: &str = "bob@other.example";

const ORIGINAL: &[u8] = b"From: Alice <alice@acme.example>\r\nTo: bob@other.example\r\nSubject: Q3 figures\r\nMessage-ID: <m1@acme.example>\r\n\r\nThe figures.\r\n";

const REPLY: &[u8] = b"From: bob@other.example\r\nTo: alice@acme.example\r\nSubject: Re: Q3 figures\r\nDate: Thu, 15 Jan 2027 08:00:00 +0000\r\nMessage-ID: <r1@sealpost.invalid>\r\nIn-Reply-To: <m1@acme.example>\r\nReferences: <m1@acme.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks, looks good.\r\n";

/// The JSON the portal posts.
fn request(kind: &str, original: &[u8], envelope: &[u8], to: &[&str], cc: &[&str]) -> Value {
    json!({
        "kind": kind,
        "original": { "envelope": B64.encode(original) },
        "envelope": B64.encode(envelope),
        "to": to,
        "cc": cc,
        "threading": {
            "message_id": "<r1@sealpost.invalid>",
            "in_reply_to": "<m1@acme.example>",
            "references": "<m0@acme.example> <m1@acme.example>"
        }
    })
}

/// POSTs `body` (raw bytes) with the portal's headers; `session` as bearer if given.
async fn post_raw(
    gw: &Gw,
    session: Option<&str>,
    body: Vec<u8>,
    client_header: bool,
    content_type: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut rb = reqwest::Client::new()
        .post(gw.replies_url())
        .header("Content-Type", content_type)
        .header("Origin", PORTAL)
        .body(body);
    if client_header {
        rb = rb.header("X-Sealpost-Client", "1");
    }
    if let Some(s) = session {
        rb = rb.bearer_auth(s);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, headers, value)
}

async fn post(gw: &Gw, session: Option<&str>, body: &Value) -> (u16, Value) {
    let (status, _, v) = post_raw(
        gw,
        session,
        body.to_string().into_bytes(),
        true,
        "application/json",
    )
    .await;
    (status, v)
}

fn header_value(data: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse_headers(data)?;
    msg.headers()
        .iter()
        .find(|h| h.name.as_str().eq_ignore_ascii_case(name))
        .map(|h| {
            String::from_utf8_lossy(&data[h.offset_start as usize..h.offset_end as usize])
                .trim()
                .to_string()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_authorized_countersigned_wrapped_and_relayed() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, sink.port, false, "").await;
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB],
        Some("Q3 figures"),
        ORIGINAL,
        1,
    );
    let session = ks.session(&original, BOB).await;
    let sub = ks.submission(&original, BOB, &[ALICE], Some("Re: Q3 figures"), REPLY, 2);

    let (status, answer) = post(
        &gw,
        Some(&session),
        &request("reply", &original, &sub, &[ALICE], &[]),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["message_id"], message_id(&sub));
    assert_eq!(answer["recipients"], json!([ALICE]));
    assert_eq!(answer["queued"].as_str().unwrap().len(), 16);

    let got = wait_received(&sink, 1).await;
    assert_eq!(got.len(), 1);
    let d = &got[0];
    assert_eq!(d.meta["mail_from"], REPLY_FROM);
    assert_eq!(d.meta["rcpt_tos"], json!([ALICE]));
    let data = &d.data;
    assert!(data.starts_with(b"X-Sealpost-Relayed-For: <bob@other.example>\r\n"));
    let from = header_value(data, "From").unwrap();
    assert!(
        from.contains("bob@other.example via Acme") && from.ends_with("<noreply@acme.example>"),
        "{from}"
    );
    assert_eq!(
        header_value(data, "Reply-To").unwrap(),
        "<bob@other.example>"
    );
    assert_eq!(header_value(data, "To").unwrap(), "<alice@acme.example>");
    assert_eq!(
        header_value(data, "Message-ID").unwrap(),
        "<r1@sealpost.invalid>"
    );
    assert_eq!(
        header_value(data, "In-Reply-To").unwrap(),
        "<m1@acme.example>"
    );
    assert_eq!(
        header_value(data, "References").unwrap(),
        "<m0@acme.example> <m1@acme.example>"
    );
    assert_eq!(header_value(data, "Subject").unwrap(), "Re: Q3 figures");
    assert!(header_value(data, "Date").is_some());
    assert!(header_value(data, "Cc").is_none());

    // The wrapper's envelope is the submission, now signed by the tenant: it verifies and
    // opens to exactly what the browser sealed.
    let env_bytes = extract_envelope(data).unwrap();
    let env = Envelope::parse(&env_bytes).unwrap();
    assert!(!env.is_submission());
    env.verify(&ks.signing.verifying_key())
        .expect("counter-signed by the tenant");
    let opened = open_with_tenant_keys(
        &env,
        &[ks.signing.verifying_key()],
        std::slice::from_ref(&ks.license),
    )
    .unwrap();
    assert_eq!(&opened.plaintext[..], REPLY);
    assert_eq!(opened.policy.sender, BOB);
    // Nothing in the relayed mail is plaintext of the reply.
    assert!(!data.windows(11).any(|w| w == b"looks good."));

    // Audited under the original by the key service; counted by the gateway.
    let audit = ks.audit(&message_id(&original)).await;
    assert!(
        audit.iter().any(|(e, who, detail)| e == "reply_authorized"
            && who.as_deref() == Some(BOB)
            && detail.contains(&message_id(&sub))),
        "{audit:?}"
    );
    assert_eq!(
        gw.metric("sealpost_gateway_replies_total{result=\"accepted\"}")
            .await,
        1
    );
    assert_eq!(gw.metric("sealpost_gateway_messages_in_total").await, 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_all_goes_to_the_sender_and_the_other_recipients() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, sink.port, false, "").await;
    let carol = "carol@third.example";
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB, carol],
        None,
        ORIGINAL,
        3,
    );
    let session = ks.session(&original, BOB).await;
    let sub = ks.submission(&original, BOB, &[ALICE, carol], None, REPLY, 4);
    let (status, answer) = post(
        &gw,
        Some(&session),
        &request("reply_all", &original, &sub, &[ALICE], &[carol]),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    // Inside and outside recipients are separate copies of the same wrapper (the rules treat
    // them apart; already protected mail is not sealed again for the outside one).
    let got = wait_received(&sink, 2).await;
    let mut rcpts: Vec<String> = got
        .iter()
        .flat_map(|d| serde_json::from_value::<Vec<String>>(d.meta["rcpt_tos"].clone()).unwrap())
        .collect();
    rcpts.sort();
    assert_eq!(rcpts, [ALICE, carol]);
    assert_eq!(got[0].data, got[1].data);
    assert_eq!(
        header_value(&got[0].data, "Cc").unwrap(),
        "<carol@third.example>"
    );
    // The original showed no subject: the wrapper carries the tenant's replacement.
    assert_eq!(
        header_value(&got[0].data, "Subject").unwrap(),
        "Protected message"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_the_portal_origin_only() {
    // No mail is sent: the next hop need not exist.
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, support::free_port(), false, "").await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, gw.replies_url())
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type,x-sealpost-client",
            )
            .send()
    };
    let ok = preflight(PORTAL).await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").unwrap(),
        PORTAL
    );
    let allowed = ok
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "x-sealpost-client"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Unknown paths and methods answer JSON too.
    let r = reqwest::get(gw.replies_url()).await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
    let r = reqwest::get(format!("http://127.0.0.1:{}/nope", gw.reply))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}
