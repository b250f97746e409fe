//! The gateway's endpoints through the router: token roles, the answers, every refusal with
//! its status and code, bad bodies, the audit trail as the admin endpoint shows it, tenant
//! info's `reply_url`, the metrics, and a dead database.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_core::rewrap::open_share;
use sealpost_core::{Envelope, LicenseSecretKey};
use serde_json::{Value, json};

use crate::db::Db;
use crate::fixture::{T0, client, message_id};
use crate::{App, Reply, app, client_key, envelope_parts};

backends!(
    token_roles_are_kept_apart,
    reply_authorize_answers_and_refusals,
    reply_authorize_bad_bodies,
    transport_rewrap_answers_and_refusals,
    tenant_info_reply_url,
    database_down_is_503,
);

const AUTHORIZE: &str = "/v1/gateway/replies/authorize";
const TRANSPORT: &str = "/v1/gateway/transport/rewrap";

/// `{header, license}` of an envelope.
fn envelope(env: &[u8]) -> Value {
    let (header, license) = envelope_parts(env);
    json!({ "header": header, "license": license })
}

fn authorize_body(session: &str, kind: &str, original: &[u8], reply: &[u8]) -> Value {
    json!({
        "session": session,
        "kind": kind,
        "client_ip": "203.0.113.9",
        "original": envelope(original),
        "reply": envelope(reply),
    })
}

fn transport_body(recipient: &str, env: &[u8], key: &str) -> Value {
    let (header, license) = envelope_parts(env);
    json!({
        "recipient": recipient,
        "header": header,
        "license": license,
        "client_public_key": key,
        "client_ip": "192.0.2.25",
    })
}

impl App {
    async fn authorize(
        &self,
        token: &str,
        session: &str,
        kind: &str,
        original: &[u8],
        reply: &[u8],
    ) -> Reply {
        let body = authorize_body(session, kind, original, reply);
        self.post(AUTHORIZE, body, Some(token)).await
    }

    /// A reply from `submitter` to `to` as the portal seals it.
    fn reply(&self, original: &[u8], submitter: &str, to: &[&str], seed: u8) -> Vec<u8> {
        let policy = self.reply_policy(original, submitter, to);
        self.seal_reply(&policy, None, seed)
    }

    /// The (event, email, detail, client_ip) of the audit events of `env` from `prefix`.
    async fn trail(&self, env: &[u8], prefix: &str) -> Vec<(String, String, String, Value)> {
        self.audit_events(env)
            .await
            .into_iter()
            .filter(|e| e["event"].as_str().unwrap().starts_with(prefix))
            .map(|e| {
                let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                (s("event"), s("email"), s("detail"), e["client_ip"].clone())
            })
            .collect()
    }
}

async fn token_roles_are_kept_apart(db: Db) {
    let app = app(db).await;
    app.set_settings(None, true).await;
    let env = app.seal(
        &Template::encrypt_only(),
        &["bob@gmail.com", "dave@example.com"],
        1,
    );
    let bob = app.sign_in(&env, "bob@gmail.com").await;
    let reply = app.reply(&env, "bob@gmail.com", &["alice@example.com"], 2);
    let admin = app.admin_token().await;
    let gateway = app.gateway_token().await;

    // Admin tokens, unknown tokens and none: 401 on the gateway's endpoints.
    for token in [Some(admin.as_str()), Some("spg_nonsense"), None] {
        let body = authorize_body(&bob, "reply", &env, &reply);
        let r = app.post(AUTHORIZE, body, token).await;
        r.refused(401, "unauthorized");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        let body = transport_body("dave@example.com", &env, &client_key());
        app.post(TRANSPORT, body, token)
            .await
            .refused(401, "unauthorized");
    }
    // A recipient's session is no gateway token either.
    let body = authorize_body(&bob, "reply", &env, &reply);
    app.post(AUTHORIZE, body, Some(&bob))
        .await
        .refused(401, "unauthorized");
    assert!(app.trail(&env, "reply_").await.is_empty());
    assert!(app.trail(&env, "transport_").await.is_empty());

    // Gateway tokens: 401 on the admin endpoints, and they revoke nothing.
    let id = message_id(&env);
    app.post(
        "/v1/admin/revoke",
        json!({ "message_id": id }),
        Some(&gateway),
    )
    .await
    .refused(401, "unauthorized");
    let audit = format!("/v1/admin/messages/{id}/audit");
    app.get(&audit, Some(&gateway))
        .await
        .refused(401, "unauthorized");
    app.authorize(&gateway, &bob, "reply", &env, &reply)
        .await
        .ok();
    let body = transport_body("dave@example.com", &env, &client_key());
    app.post(TRANSPORT, body, Some(&gateway)).await.ok();
}

async fn reply_authorize_answers_and_refusals(db: Db) {
    let app = app(db).await;
    let gw = app.gateway_token().await;
    let week = Template::custom("Week", Rights::ALL, Some(7 * 86400)).unwrap();
    let env = app.seal(&week, &["bob@gmail.com", "carol@yahoo.com"], 10);
    let bob = app.sign_in(&env, "bob@gmail.com").await;

    let reply = app.reply(&env, "bob@gmail.com", &["alice@example.com"], 11);
    let ok = app.authorize(&gw, &bob, "reply", &env, &reply).await.ok();
    assert_eq!(
        ok,
        json!({
            "submitter": "bob@gmail.com",
            "recipients": ["alice@example.com"],
            "original_sender": "alice@example.com",
            "original_message_id": message_id(&env),
            "reply_message_id": message_id(&reply),
            "kind": "reply",
        })
    );
    let all = app.reply(
        &env,
        "bob@gmail.com",
        &["alice@example.com", "carol@yahoo.com"],
        12,
    );
    let ok = app.authorize(&gw, &bob, "reply_all", &env, &all).await.ok();
    assert_eq!(ok["kind"], "reply_all");
    assert_eq!(
        ok["recipients"],
        json!(["alice@example.com", "carol@yahoo.com"])
    );
    let fwd = app.reply(&env, "bob@gmail.com", &["dave@example.org"], 13);
    let ok = app.authorize(&gw, &bob, "forward", &env, &fwd).await.ok();
    assert_eq!(ok["recipients"], json!(["dave@example.org"]));

    // Each refusal with its status and code.
    app.authorize(&gw, "sps_nonsense", "reply", &env, &reply)
        .await
        .refused(401, "not_signed_in");
    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([11; 32]));
    let unknown = app.seal_as("example.com", &stranger, &week, &["bob@gmail.com"], 14);
    app.authorize(&gw, &bob, "reply", &unknown, &reply)
        .await
        .refused(422, "unknown_key");
    let (header, license) = envelope_parts(&env);
    let mut bad = B64.decode(&license).unwrap();
    bad[70] ^= 1;
    let mut body = authorize_body(&bob, "reply", &env, &reply);
    body["original"] = json!({ "header": header, "license": B64.encode(&bad) });
    app.post(AUTHORIZE, body, Some(&gw))
        .await
        .refused(400, "malformed_license");
    let mut body = authorize_body(&bob, "reply", &env, &reply);
    body["reply"]["license"] = json!(B64.encode(&bad));
    app.post(AUTHORIZE, body, Some(&gw))
        .await
        .refused(400, "malformed_license");
    let other = app.seal(&week, &["dave@example.org"], 15);
    let dave = app.sign_in(&other, "dave@example.org").await;
    app.authorize(&gw, &dave, "reply", &env, &reply)
        .await
        .refused(403, "not_a_recipient");
    let dnf = app.seal(&Template::do_not_forward(), &["bob@gmail.com"], 16);
    let dnf_fwd = app.reply(&dnf, "bob@gmail.com", &["dave@example.org"], 17);
    let r = app.authorize(&gw, &bob, "forward", &dnf, &dnf_fwd).await;
    let body = r.refused(403, "right_not_granted");
    assert!(
        body["message"].as_str().unwrap().contains("forward"),
        "{body}"
    );
    let mut longer = app.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    longer.expires = Some((T0 + 30 * 86400) as u64);
    let longer = app.seal_reply(&longer, None, 18);
    let r = app.authorize(&gw, &bob, "reply", &env, &longer).await;
    let body = r.refused(400, "reply_policy_invalid");
    assert!(
        body["message"].as_str().unwrap().contains("expiry"),
        "{body}"
    );
    let as_carol = app.reply(&env, "carol@yahoo.com", &["alice@example.com"], 19);
    app.authorize(&gw, &bob, "reply", &env, &as_carol)
        .await
        .refused(403, "sender_mismatch");
    let to_carol = app.reply(&env, "bob@gmail.com", &["carol@yahoo.com"], 20);
    app.authorize(&gw, &bob, "reply", &env, &to_carol)
        .await
        .refused(403, "recipients_not_allowed");
    let self_too = app.reply(
        &env,
        "bob@gmail.com",
        &["alice@example.com", "bob@gmail.com"],
        21,
    );
    app.authorize(&gw, &bob, "reply_all", &env, &self_too)
        .await
        .refused(403, "recipients_not_allowed");

    // Expired after the week; revoked at once.
    app.clock.set(T0 + 7 * 86400);
    let late = app.sign_in(&env, "bob@gmail.com").await;
    let reply = app.reply(&env, "bob@gmail.com", &["alice@example.com"], 22);
    app.authorize(&gw, &late, "reply", &env, &reply)
        .await
        .refused(410, "expired");
    app.clock.set(T0 + 86400);
    let bob = app.sign_in(&env, "bob@gmail.com").await;
    let reply = app.reply(&env, "bob@gmail.com", &["alice@example.com"], 23);
    app.authorize(&gw, &bob, "reply", &env, &reply).await.ok();
    let admin = app.admin_token().await;
    app.post(
        "/v1/admin/revoke",
        json!({ "message_id": message_id(&env) }),
        Some(&admin),
    )
    .await
    .ok();
    app.authorize(&gw, &bob, "reply", &env, &reply)
        .await
        .refused(410, "revoked");

    // The trail, as the admin endpoint shows it (in time order: the expiry came last).
    let trail = app.trail(&env, "reply_").await;
    let summary: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|(event, email, detail, _)| (event.as_str(), email.as_str(), detail.as_str()))
        .collect();
    let authorized = |kind: &str, reply: &[u8], to: &str| {
        format!("kind={kind} reply={} recipients={to}", message_id(reply))
    };
    let (r1, r2, r3) = (
        authorized(
            "reply",
            &app.reply(&env, "bob@gmail.com", &["alice@example.com"], 11),
            "alice@example.com",
        ),
        authorized("reply_all", &all, "alice@example.com,carol@yahoo.com"),
        authorized("forward", &fwd, "dave@example.org"),
    );
    let r4 = authorized("reply", &reply, "alice@example.com");
    let bob_at = "bob@gmail.com";
    assert_eq!(
        summary,
        [
            ("reply_authorized", bob_at, r1.as_str()),
            ("reply_authorized", bob_at, r2.as_str()),
            ("reply_authorized", bob_at, r3.as_str()),
            ("reply_refused", "", "kind=reply error=not_signed_in"),
            (
                "reply_refused",
                bob_at,
                "kind=reply error=malformed_license"
            ),
            (
                "reply_refused",
                bob_at,
                "kind=reply error=malformed_license"
            ),
            (
                "reply_refused",
                "dave@example.org",
                "kind=reply error=not_a_recipient"
            ),
            (
                "reply_refused",
                bob_at,
                "kind=reply error=reply_policy_invalid"
            ),
            ("reply_refused", bob_at, "kind=reply error=sender_mismatch"),
            (
                "reply_refused",
                bob_at,
                "kind=reply error=recipients_not_allowed"
            ),
            (
                "reply_refused",
                bob_at,
                "kind=reply_all error=recipients_not_allowed"
            ),
            ("reply_authorized", bob_at, r4.as_str()),
            ("reply_refused", bob_at, "kind=reply error=revoked"),
            ("reply_refused", bob_at, "kind=reply error=expired"),
        ]
    );
    assert!(trail.iter().all(|t| t.3 == "203.0.113.9"));

    let metrics = app.get("/metrics", None).await.text().to_string();
    assert!(
        metrics.contains("sealpost_reply_authorizations_total{result=\"authorized\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealpost_reply_authorizations_total{result=\"refused\"} 12"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/gateway/replies/authorize\",status=\"2xx\"} 4"),
        "{metrics}"
    );
}

async fn reply_authorize_bad_bodies(db: Db) {
    let app = app(db).await;
    let gw = app.gateway_token().await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 30);
    let bob = app.sign_in(&env, "bob@gmail.com").await;
    let reply = app.reply(&env, "bob@gmail.com", &["alice@example.com"], 31);
    let good = authorize_body(&bob, "reply", &env, &reply);

    let mut bad = Vec::new();
    for (field, value) in [
        ("kind", json!("reply-all")),
        ("kind", json!(null)),
        ("client_ip", json!("not an ip")),
        ("session", json!(5)),
        ("original", json!({ "header": "!!!", "license": "AAAA" })),
        ("reply", json!({ "header": "AAAA" })),
        ("extra", json!(true)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        bad.push(body);
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("reply");
    bad.push(missing);
    for body in bad {
        app.post(AUTHORIZE, body.clone(), Some(&gw))
            .await
            .refused(400, "bad_request");
    }
    // client_ip may be left out; it is then null in the audit trail.
    let mut body = good.clone();
    body.as_object_mut().unwrap().remove("client_ip");
    app.post(AUTHORIZE, body, Some(&gw)).await.ok();
    let trail = app.trail(&env, "reply_authorized").await;
    assert_eq!(trail[0].3, Value::Null);
    // The CSRF rules hold here too.
    let req = axum::http::Request::post(AUTHORIZE)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {gw}"))
        .body(axum::body::Body::from(good.to_string()))
        .unwrap();
    app.send(req).await.refused(400, "missing_client_header");
    app.get(AUTHORIZE, Some(&gw))
        .await
        .refused(405, "method_not_allowed");
}

async fn transport_rewrap_answers_and_refusals(db: Db) {
    let app = app(db).await;
    let gw = app.gateway_token().await;
    let week = Template::custom(
        "Week",
        Rights::of(&[Right::View, Right::Reply]),
        Some(7 * 86400),
    )
    .unwrap();
    let env = app.seal(&week, &["dave@example.com", "bob@gmail.com"], 40);
    let key = client_key();
    let ask = |recipient: &str, env: &[u8], key: &str| {
        let body = transport_body(recipient, env, key);
        let (app, gw) = (&app, gw.clone());
        async move { app.post(TRANSPORT, body, Some(&gw)).await }
    };

    ask("dave@example.com", &env, &key)
        .await
        .refused(403, "transport_decryption_disabled");
    app.set_settings(None, true).await;
    let ok = ask("dave@example.com", &env, &key).await.ok();
    assert_eq!(ok["email"], "dave@example.com");
    assert_eq!(ok["message_id"], message_id(&env));
    assert_eq!(ok["rights"], json!(["view", "reply"]));
    assert_eq!(ok["expires"], T0 + 7 * 86400);
    assert_eq!(ok["sender"], "alice@example.com");
    assert_eq!(ok["template"], "Week");
    let sealed = B64.decode(ok["sealed_share"].as_str().unwrap()).unwrap();
    let e = Envelope::parse(&env).unwrap();
    let share = open_share(&client(), e.header_bytes(), &sealed).unwrap();
    let lic = sealpost_core::license::open(&app.license, e.header_bytes(), e.license()).unwrap();
    assert_eq!(*share, *lic.share_b);

    ask("bob@gmail.com", &env, &key)
        .await
        .refused(403, "not_internal");
    ask("erin@example.com", &env, &key)
        .await
        .refused(403, "not_a_recipient");
    ask("dave@example.com", &env, &B64.encode([4u8; 65]))
        .await
        .refused(400, "bad_client_key");
    let mut body = transport_body("dave@example.com", &env, &key);
    body["header"] = json!(B64.encode(b"junk"));
    app.post(TRANSPORT, body, Some(&gw))
        .await
        .refused(400, "malformed_license");
    let other_key = app.other_tenant().await;
    let foreign = app.seal_as(
        "other.example",
        &other_key,
        &week,
        &["dave@example.com"],
        41,
    );
    ask("dave@example.com", &foreign, &key)
        .await
        .refused(422, "unknown_key");
    let mut body = transport_body("dave@example.com", &env, &key);
    body["extra"] = json!(1);
    app.post(TRANSPORT, body, Some(&gw))
        .await
        .refused(400, "bad_request");

    app.clock.set(T0 + 7 * 86400);
    ask("dave@example.com", &env, &key)
        .await
        .refused(410, "expired");
    app.clock.set(T0 + 86400);
    let admin = app.admin_token().await;
    let revoke = json!({ "message_id": message_id(&env) });
    app.post("/v1/admin/revoke", revoke, Some(&admin))
        .await
        .ok();
    ask("dave@example.com", &env, &key)
        .await
        .refused(410, "revoked");

    let trail = app.trail(&env, "transport_").await;
    let summary: Vec<(&str, &str, &str)> = trail
        .iter()
        .map(|(event, email, detail, _)| (event.as_str(), email.as_str(), detail.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "transport_refused",
                "dave@example.com",
                "transport_decryption_disabled"
            ),
            ("transport_released", "dave@example.com", "template Week"),
            ("transport_refused", "bob@gmail.com", "not_internal"),
            ("transport_refused", "erin@example.com", "not_a_recipient"),
            ("transport_refused", "dave@example.com", "bad_client_key"),
            ("transport_refused", "dave@example.com", "revoked"),
            ("transport_refused", "dave@example.com", "expired"),
        ]
    );
    assert!(trail.iter().all(|t| t.3 == "192.0.2.25"));
    let metrics = app.get("/metrics", None).await.text().to_string();
    assert!(
        metrics.contains("sealpost_transport_rewraps_total{result=\"released\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealpost_transport_rewraps_total{result=\"refused\"} 8"),
        "{metrics}"
    );
}

async fn tenant_info_reply_url(db: Db) {
    let app = app(db).await;
    let info = app.get("/v1/tenants/example.com", None).await.ok();
    assert_eq!(info["reply_url"], Value::Null);
    assert!(info.as_object().unwrap().contains_key("reply_url"));
    app.set_settings(Some("http://127.0.0.1:8090"), false).await;
    let info = app.get("/v1/tenants/example.com", None).await.ok();
    assert_eq!(info["reply_url"], "http://127.0.0.1:8090");
    // transport_decryption is the key service's business, not the public's.
    assert!(!info.to_string().contains("transport"), "{info}");
}

async fn database_down_is_503(db: Db) {
    let app = app(db).await;
    app.set_settings(None, true).await;
    let gw = app.gateway_token().await;
    let env = app.seal(&Template::encrypt_only(), &["dave@example.com"], 50);
    let dave = app.sign_in(&env, "dave@example.com").await;
    let reply = app.reply(&env, "dave@example.com", &["alice@example.com"], 51);
    app.svc.store().close().await;
    app.authorize(&gw, &dave, "reply", &env, &reply)
        .await
        .refused(503, "unavailable");
    let body = transport_body("dave@example.com", &env, &client_key());
    app.post(TRANSPORT, body, Some(&gw))
        .await
        .refused(503, "unavailable");
}
