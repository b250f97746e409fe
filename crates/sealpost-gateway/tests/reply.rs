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

#[path = "support/pair.rs"]
mod pair;
mod support;

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

/// How a forged original is made.
enum Forgery {
    /// Our tenant and license key, signed by another key.
    OtherKey,
    /// Our tenant, license key and signing key id, but unsigned (a submission).
    Unsigned,
    /// Another tenant's message, signed by that tenant.
    OtherTenant,
}

/// An "original" from Alice to `to` with every right, made without the tenant's signing key:
/// anyone can seal a license to the tenant's public license key.
fn forged(ks: &Ks, how: Forgery, to: &str) -> Vec<u8> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let policy = Template::encrypt_only().policy(ALICE, &[to.to_string()], T0);
    let forger = SigningKey::generate(&mut rng);
    let (tenant, license) = match how {
        Forgery::OtherTenant => ("other.example", LicenseSecretKey::generate(&mut rng)),
        _ => (TENANT, ks.license.clone()),
    };
    let pk = license.public_key();
    match how {
        Forgery::Unsigned => seal_submission(
            &SubmissionSealer {
                tenant_id: tenant,
                key_service_url: KS_URL_IN_HEADERS,
                license_key: &pk,
                signing_key_id: ks.signing.verifying_key().key_id(),
            },
            &policy,
            None,
            T0,
            ORIGINAL,
            &mut rng,
        ),
        _ => seal(
            &Sealer {
                tenant_id: tenant,
                key_service_url: KS_URL_IN_HEADERS,
                license_key: &pk,
                signing_key: &forger,
            },
            &policy,
            None,
            T0,
            ORIGINAL,
            &mut rng,
        ),
    }
    .unwrap()
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
async fn every_refusal_has_its_code_and_nothing_is_spooled() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, sink.port, false, "reply_max_bytes = \"64KB\"").await;
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB],
        Some("Q3 figures"),
        ORIGINAL,
        5,
    );
    let dnf = ks.seal(
        &Template::do_not_forward(),
        ALICE,
        &[BOB],
        None,
        ORIGINAL,
        6,
    );
    let elsewhere = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &["mallory@evil.example"],
        None,
        ORIGINAL,
        7,
    );
    let bob = ks.session(&original, BOB).await;
    let mallory = ks.session(&elsewhere, "mallory@evil.example").await;
    let good = ks.submission(&original, BOB, &[ALICE], Some("Re: Q3 figures"), REPLY, 8);
    let body = request("reply", &original, &good, &[ALICE], &[]);

    let expect = |what: &str, got: (u16, Value), status: u16, code: &str| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        assert_eq!(got.1["error"], code, "{what}: {}", got.1);
        assert!(
            got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    };

    expect(
        "no session",
        post(&gw, None, &body).await,
        401,
        "not_signed_in",
    );
    expect(
        "unknown session",
        post(&gw, Some("sps_nonsense"), &body).await,
        401,
        "not_signed_in",
    );
    expect(
        "someone else's session",
        post(&gw, Some(&mallory), &body).await,
        403,
        "not_a_recipient",
    );
    let to_dave = ks.submission(
        &original,
        BOB,
        &["dave@evil.example"],
        Some("Re: Q3 figures"),
        REPLY,
        9,
    );
    expect(
        "reply to someone else",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &to_dave, &["dave@evil.example"], &[]),
        )
        .await,
        403,
        "recipients_not_allowed",
    );
    let fwd = ks.submission(&dnf, BOB, &["dave@evil.example"], None, REPLY, 10);
    expect(
        "forward without the right",
        post(
            &gw,
            Some(&bob),
            &request("forward", &dnf, &fwd, &["dave@evil.example"], &[]),
        )
        .await,
        403,
        "right_not_granted",
    );
    expect(
        "To/Cc not the sealed recipients",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &good, &[ALICE], &["eve@evil.example"]),
        )
        .await,
        400,
        "recipients_mismatch",
    );
    let as_alice = ks.submission(
        &original,
        ALICE,
        &[ALICE],
        Some("Re: Q3 figures"),
        REPLY,
        11,
    );
    expect(
        "sender is not the submitter",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &as_alice, &[ALICE], &[]),
        )
        .await,
        403,
        "sender_mismatch",
    );
    expect(
        "not an envelope",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, b"SEALPOST junk", &[ALICE], &[]),
        )
        .await,
        400,
        "bad_envelope",
    );
    let signed = ks.seal(
        &Template::encrypt_only(),
        BOB,
        &[ALICE],
        Some("Re: Q3 figures"),
        REPLY,
        12,
    );
    expect(
        "an envelope signed already",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &signed, &[ALICE], &[]),
        )
        .await,
        400,
        "bad_envelope",
    );
    // Forged originals: the key service would accept the license (sealed to the tenant's
    // public key) and Mallory can sign in as its recipient, but the tenant never signed it.
    // Refused before the key service is asked.
    for (what, how) in [
        ("an original signed by another key", Forgery::OtherKey),
        ("an unsigned original", Forgery::Unsigned),
        ("another tenant's original", Forgery::OtherTenant),
    ] {
        let ours = !matches!(how, Forgery::OtherTenant);
        let fake = forged(&ks, how, "mallory@evil.example");
        // Mallory signs in with the forged original's license (its key service is ours).
        let (session, base) = if ours {
            (ks.session(&fake, "mallory@evil.example").await, &fake)
        } else {
            (mallory.clone(), &elsewhere)
        };
        let fwd = ks.submission(
            base,
            "mallory@evil.example",
            &["dave@evil.example"],
            None,
            REPLY,
            13,
        );
        expect(
            what,
            post(
                &gw,
                Some(&session),
                &request("forward", &fake, &fwd, &["dave@evil.example"], &[]),
            )
            .await,
            400,
            "bad_original",
        );
        let audit = ks.audit(&message_id(&fake)).await;
        assert!(
            !audit.iter().any(|(e, _, _)| e.starts_with("reply_")),
            "{what}: the key service was asked: {audit:?}"
        );
    }
    let mut not_an_original = body.clone();
    not_an_original["original"]["envelope"] = json!(B64.encode(b"SEALPOST junk"));
    expect(
        "an original that is not an envelope",
        post(&gw, Some(&bob), &not_an_original).await,
        400,
        "bad_original",
    );
    let mut old_shape = body.clone();
    old_shape["original"] = json!({ "header": "AA==", "license": "AA==" });
    expect(
        "the original's header and license only",
        post(&gw, Some(&bob), &old_shape).await,
        400,
        "bad_request",
    );

    let mut bad_threading = body.clone();
    bad_threading["threading"]["message_id"] = json!("<r1@x>\r\nBcc: eve@evil.example");
    expect(
        "a forged header in threading",
        post(&gw, Some(&bob), &bad_threading).await,
        400,
        "bad_request",
    );
    let mut bad_kind = body.clone();
    bad_kind["kind"] = json!("reply_to_everyone");
    expect(
        "unknown kind",
        post(&gw, Some(&bob), &bad_kind).await,
        400,
        "bad_request",
    );

    let raw = body.to_string().into_bytes();
    let (s, _, v) = post_raw(&gw, Some(&bob), raw.clone(), false, "application/json").await;
    expect("no X-Sealpost-Client", (s, v), 400, "missing_client_header");
    let (s, _, v) = post_raw(&gw, Some(&bob), raw.clone(), true, "text/plain").await;
    expect("not JSON", (s, v), 415, "unsupported_media_type");
    let (s, _, v) = post_raw(
        &gw,
        Some(&bob),
        b"{\"kind\":".to_vec(),
        true,
        "application/json",
    )
    .await;
    expect("broken JSON", (s, v), 400, "bad_request");
    let mut big = body.clone();
    big["envelope"] = json!(B64.encode(vec![0u8; 100 * 1024]));
    let (s, _, v) = post_raw(
        &gw,
        Some(&bob),
        big.to_string().into_bytes(),
        true,
        "application/json",
    )
    .await;
    expect("over reply_max_bytes", (s, v), 413, "too_large");

    // The key service down: 503 with Retry-After, nothing spooled.
    ks.stop().await;
    let (s, headers, v) = post_raw(&gw, Some(&bob), raw, true, "application/json").await;
    assert_eq!(
        headers.get("retry-after").map(|h| h.to_str().unwrap()),
        Some("5"),
        "{s} {v}"
    );
    expect("key service down", (s, v), 503, "key_service_unavailable");

    assert_eq!(gw.queued(), 0, "nothing was spooled");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.received().is_empty(), "nothing was sent");
    for (code, n) in [
        ("not_signed_in", 2),
        ("not_a_recipient", 1),
        ("recipients_not_allowed", 1),
        ("right_not_granted", 1),
        ("recipients_mismatch", 1),
        ("sender_mismatch", 1),
        ("bad_envelope", 2),
        ("bad_original", 4),
        ("bad_request", 4),
        ("missing_client_header", 1),
        ("unsupported_media_type", 1),
        ("too_large", 1),
        ("key_service_unavailable", 1),
    ] {
        let series =
            format!("sealpost_gateway_replies_total{{result=\"refused\",code=\"{code}\"}}");
        assert_eq!(gw.metric(&series).await, n, "{series}");
    }
    assert_eq!(
        gw.metric("sealpost_gateway_replies_total{result=\"accepted\"}")
            .await,
        0
    );
    // Refusals by the key service are audited under the original.
    let audit = ks.audit(&message_id(&original)).await;
    assert!(
        audit
            .iter()
            .any(|(e, _, d)| e == "reply_refused" && d.contains("not_a_recipient")),
        "{audit:?}"
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
