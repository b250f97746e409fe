//! Sign-in by one-time passcode: the whole happy path to a decrypted message, the
//! identical answer for non-recipients, every refusal of start and verify, the lockout, and
//! the per-IP limit (with and without a trusted proxy).

use axum::body::Body;
use axum::http::{Request, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::policy::Template;
use sealpost_core::rewrap::open_share;
use sealpost_core::{Envelope, LicenseSecretKey};
use sealpost_keyservice::http::HttpConfig;
use sealpost_keyservice::service::Limits;
use serde_json::{Value, json};

use crate::db::Db;
use crate::fixture::{T0, client, message_id};
use crate::{Reply, app, app_with, envelope_parts};

backends!(
    recipient_signs_in_rewraps_and_decrypts,
    start_answers_alike_for_non_recipients,
    otp_start_refusals,
    otp_verify_refusals,
    lockout_after_100_consecutive_failures,
    per_ip_limit_and_forwarded_for,
);

async fn recipient_signs_in_rewraps_and_decrypts(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::do_not_forward(), &["bob@gmail.com"], 1);
    let e = Envelope::parse(&env).unwrap();

    let started = app.start(&env, "Bob@Gmail.com").await.ok();
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["reference"], e.header().message_id.reference());
    let code = app.mailed_code("bob@gmail.com").await.unwrap();
    let session = app
        .verify(started["challenge"].as_str().unwrap(), &code)
        .await
        .ok();
    assert_eq!(session["email"], "bob@gmail.com");
    assert_eq!(session["expires_at"], T0 + 12 * 3600);
    assert_eq!(session["idle_timeout"], 1800);
    assert_eq!(
        session["server_time"], T0,
        "the service's clock, for the portal"
    );
    let token = session["session"].as_str().unwrap();
    assert!(token.starts_with("sps_"));

    app.clock.advance(7);
    let c = client();
    let released = app
        .rewrap(Some(token), &env, &B64.encode(c.public_key().to_bytes()))
        .await
        .ok();
    assert_eq!(released["rights"], json!(["view", "reply", "reply_all"]));
    assert_eq!(released["expires"], Value::Null);
    assert_eq!(released["sender"], "alice@example.com");
    assert_eq!(released["template"], "Do-Not-Forward");
    assert_eq!(released["message_id"], message_id(&env));
    assert_eq!(released["email"], "bob@gmail.com");
    assert_eq!(released["server_time"], T0 + 7);
    let sealed = B64
        .decode(released["sealed_share"].as_str().unwrap())
        .unwrap();
    let share = open_share(&c, e.header_bytes(), &sealed).unwrap();
    e.verify(&app.signing.verifying_key()).unwrap();
    assert_eq!(
        &e.decrypt(&share).unwrap()[..],
        b"Subject: hi\r\n\r\nsecret body\r\n"
    );

    // The audit trail, with the client's address from the socket.
    let events = app.audit_events(&env).await;
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["otp_sent", "otp_verified", "share_released"]);
    for (ev, time) in events.iter().zip([T0, T0, T0 + 7]) {
        assert_eq!(ev["client_ip"], "192.0.2.10");
        assert_eq!(ev["email"], "bob@gmail.com");
        assert_eq!(ev["message_id"], message_id(&env));
        assert!(ev["id"].is_i64() && ev["time"] == time && ev["detail"].is_string());
    }
}

async fn start_answers_alike_for_non_recipients(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 2);
    let a = app.start(&env, "bob@gmail.com").await.ok();
    let b = app.start(&env, "eve@gmail.com").await.ok();
    assert_eq!(
        (&a["expires_in"], &a["reference"]),
        (&b["expires_in"], &b["reference"])
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b));
    assert!(app.mailed_code("eve@gmail.com").await.is_none());
    let r = app
        .verify(b["challenge"].as_str().unwrap(), "12345678")
        .await;
    r.refused(401, "wrong_code");
}

async fn otp_start_refusals(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 4);
    let (header, license) = envelope_parts(&env);
    let start = |header: &str, license: &str, email: &str| {
        let body = json!({ "header": header, "license": license, "email": email });
        app.post("/v1/otp/start", body, None)
    };

    start(&B64.encode(b"junk"), &license, "bob@gmail.com")
        .await
        .refused(400, "malformed");
    let mut bad_license = B64.decode(&license).unwrap();
    bad_license[70] ^= 1;
    start(&header, &B64.encode(&bad_license), "bob@gmail.com")
        .await
        .refused(400, "malformed");
    start(&header, &license, "not an address")
        .await
        .refused(400, "bad_address");

    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([5; 32]));
    let foreign = app.seal_as(
        "other.example",
        &stranger,
        &Template::encrypt_only(),
        &["bob@gmail.com"],
        5,
    );
    app.start(&foreign, "bob@gmail.com")
        .await
        .refused(404, "unknown_tenant");
    let unknown_key = app.seal_as(
        "example.com",
        &stranger,
        &Template::encrypt_only(),
        &["bob@gmail.com"],
        6,
    );
    app.start(&unknown_key, "bob@gmail.com")
        .await
        .refused(422, "unknown_key");

    // Ten codes per address per hour; the eleventh waits an hour.
    for _ in 0..10 {
        app.start(&env, "bob@gmail.com").await.ok();
    }
    let r = app.start(&env, "bob@gmail.com").await;
    r.refused(429, "too_many_codes");
    assert_eq!(r.header("retry-after"), Some("3600"));
    app.clock.advance(3601);
    app.start(&env, "bob@gmail.com").await.ok();
}

async fn otp_verify_refusals(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 7);
    let challenge = |r: Reply| r.ok()["challenge"].as_str().unwrap().to_string();

    // Five wrong tries kill a code, even for the right code afterwards.
    let c = challenge(app.start(&env, "bob@gmail.com").await);
    let code = app.mailed_code("bob@gmail.com").await.unwrap();
    let wrong = if code == "11111111" {
        "22222222"
    } else {
        "11111111"
    };
    for remaining in [4, 3, 2, 1] {
        let body = app.verify(&c, wrong).await.refused(401, "wrong_code");
        assert_eq!(body["remaining"], remaining);
    }
    app.verify(&c, wrong)
        .await
        .refused(429, "too_many_attempts");
    app.verify(&c, &code)
        .await
        .refused(429, "too_many_attempts");

    // A code lives 10 minutes.
    let c = challenge(app.start(&env, "bob@gmail.com").await);
    let code = app.mailed_code("bob@gmail.com").await.unwrap();
    app.clock.advance(600);
    app.verify(&c, &code).await.refused(410, "code_expired");

    // A code works once; an unknown challenge is just a wrong code.
    let c = challenge(app.start(&env, "bob@gmail.com").await);
    let code = app.mailed_code("bob@gmail.com").await.unwrap();
    app.clock.advance(599);
    app.verify(&c, &code).await.ok();
    assert_eq!(
        app.verify(&c, &code).await.refused(401, "wrong_code")["remaining"],
        0
    );
    assert_eq!(
        app.verify("no-such-challenge", &code)
            .await
            .refused(401, "wrong_code")["remaining"],
        0
    );
}

async fn lockout_after_100_consecutive_failures(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 8);
    let mut failures = 0;
    'outer: loop {
        app.clock.advance(3601);
        for _ in 0..10 {
            let c = app.start(&env, "bob@gmail.com").await.ok()["challenge"]
                .as_str()
                .unwrap()
                .to_string();
            for attempt in 1..=5 {
                failures += 1;
                let r = app.verify(&c, "99999999x").await;
                match (failures, attempt) {
                    (100, _) => {
                        r.refused(423, "locked");
                        break 'outer;
                    }
                    (_, 5) => drop(r.refused(429, "too_many_attempts")),
                    _ => drop(r.refused(401, "wrong_code")),
                }
            }
        }
    }
    app.clock.advance(3601);
    app.start(&env, "bob@gmail.com")
        .await
        .refused(423, "locked");
}

async fn per_ip_limit_and_forwarded_for(db: Db) {
    let limits = Limits {
        per_ip_per_minute: 2,
        ..Limits::default()
    };
    let second = db.another().await;
    let app = app_with(db, limits, HttpConfig::default()).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 14);
    app.start(&env, "bob@gmail.com").await.ok();
    app.start(&env, "bob@gmail.com").await.ok();
    let r = app.start(&env, "bob@gmail.com").await;
    r.refused(429, "rate_limited");
    // Not behind a trusted proxy: X-Forwarded-For is ignored.
    let (header, license) = envelope_parts(&env);
    let body = json!({ "header": header, "license": license, "email": "bob@gmail.com" });
    let req = Request::post("/v1/otp/start")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-sealpost-client", "1")
        .header("x-forwarded-for", "203.0.113.5")
        .body(Body::from(body.to_string()))
        .unwrap();
    app.send(req).await.refused(429, "rate_limited");

    // Behind one: the last X-Forwarded-For entry is the client.
    let config = HttpConfig {
        trust_forwarded_for: true,
        ..HttpConfig::default()
    };
    let app = app_with(second, limits, config).await;
    for ip in ["203.0.113.5", "203.0.113.5", "203.0.113.6"] {
        let req = Request::post("/v1/otp/start")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-sealpost-client", "1")
            .header("x-forwarded-for", format!("10.0.0.1, {ip}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        app.send(req).await.ok();
    }
    let events = app.audit_events(&env).await;
    let ips: Vec<&str> = events
        .iter()
        .map(|e| e["client_ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["203.0.113.5", "203.0.113.5", "203.0.113.6"]);
}
