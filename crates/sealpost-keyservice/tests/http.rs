//! The key service's HTTP API, end to end through the router on a real SQLite database, with
//! time moved by a manual clock: every endpoint, every refusal reason with its status and
//! code, bad input, CORS, limits, the operational endpoints, and one real socket.
//!
//! Every response that is not a success is checked to be a JSON error body and never a 500
//! (see `App::send`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_core::rewrap::{ClientSecretKey, open_share};
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey};
use sealpost_keyservice::clock::{Clock, ManualClock};
use sealpost_keyservice::http::{ERROR_CODES, HttpConfig, router, serve};
use sealpost_keyservice::service::{
    Branding, Entropy, KeyService, Limits, TenantImport, TenantSettings,
};
use sealpost_keyservice::store::Store;
use serde_json::{Value, json};
use tower::ServiceExt;

const T0: i64 = 1_800_000_000;
const PEER: &str = "192.0.2.10:40000";
const PORTAL: &str = "https://portal.example.com";

// --- fixture ---------------------------------------------------------------------------------

struct App {
    router: Router,
    svc: Arc<KeyService>,
    clock: ManualClock,
    license: LicenseSecretKey,
    signing: SigningKey,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let limits = Limits {
        per_ip_per_minute: 10_000,
        ..Limits::default()
    };
    app_with(limits, HttpConfig::default()).await
}

async fn app_with(limits: Limits, config: HttpConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(dir.path(), 4).await.unwrap();
    let clock = ManualClock::new(T0);
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let license = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let kek = KeyEncryptionKey::generate(&mut rng);
    let svc = KeyService::new(
        store,
        Arc::new(clock.clone()),
        Entropy::seeded(1),
        kek,
        limits,
    )
    .await
    .unwrap();
    svc.import_tenant(TenantImport {
        tenant_id: "example.com".into(),
        display_name: "Example Corp".into(),
        settings: TenantSettings {
            domains: vec!["example.com".into()],
            allowed_origins: vec![PORTAL.into()],
            branding: Branding {
                accent_color: Some("#0b57d0".into()),
                tagline: None,
            },
        },
        license_keys: vec![(license.clone(), "active".into())],
        signing_keys: vec![(signing.verifying_key(), "active".into())],
    })
    .await
    .unwrap();
    let svc = Arc::new(svc);
    App {
        router: router(svc.clone(), config),
        svc,
        clock,
        license,
        signing,
        _dir: dir,
    }
}

/// An answer, with the checks every answer must pass already done.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts a success and returns the JSON body.
    #[track_caller]
    fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        self.json()
    }

    /// Asserts an error with this status and code.
    #[track_caller]
    fn refused(&self, status: u16, code: &str) -> Value {
        let body = self.json();
        assert_eq!(
            (self.status.as_u16(), body["error"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
        if matches!(status, 429 | 503) && code != "too_many_attempts" {
            let secs: i64 = self
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!(secs >= 1);
        }
        body
    }
}

fn envelope_parts(env: &[u8]) -> (String, String) {
    let e = Envelope::parse(env).unwrap();
    (B64.encode(e.header_bytes()), B64.encode(e.license()))
}

fn client() -> ClientSecretKey {
    ClientSecretKey::generate(&mut ChaCha20Rng::from_seed([77; 32]))
}

fn client_key() -> String {
    B64.encode(client().public_key().to_bytes())
}

impl App {
    async fn send(&self, mut req: Request<Body>) -> Reply {
        req.extensions_mut()
            .insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let reply = Reply {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        };
        assert_ne!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            reply.text()
        );
        if !reply.status.is_success() {
            let ct = reply.header("content-type").unwrap_or_default();
            assert!(
                ct.starts_with("application/json"),
                "{} {ct}: {:?}",
                reply.status,
                reply.body
            );
            let body = reply.json();
            assert!(
                body["error"].is_string() && body["message"].is_string(),
                "{body}"
            );
        }
        reply
    }

    async fn post_raw(&self, path: &str, body: impl Into<Body>, bearer: Option<&str>) -> Reply {
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-sealpost-client", "1");
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(req.body(body.into()).unwrap()).await
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> Reply {
        self.post_raw(path, serde_json::to_vec(&body).unwrap(), bearer)
            .await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = Request::get(path);
        if let Some(token) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    fn seal(&self, template: &Template, recipients: &[&str], seed: u8) -> Vec<u8> {
        self.seal_as("example.com", &self.license, template, recipients, seed)
    }

    fn seal_as(
        &self,
        tenant: &str,
        key: &LicenseSecretKey,
        template: &Template,
        to: &[&str],
        seed: u8,
    ) -> Vec<u8> {
        let pk = key.public_key();
        let sealer = Sealer {
            tenant_id: tenant,
            key_service_url: "https://keys.example.com",
            license_key: &pk,
            signing_key: &self.signing,
        };
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        let now = self.clock.now() as u64;
        let policy = template.policy("alice@example.com", &to, now);
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        sealpost_core::seal(
            &sealer,
            &policy,
            None,
            now,
            b"Subject: hi\r\n\r\nsecret body\r\n",
            &mut rng,
        )
        .unwrap()
    }

    /// The newest passcode mailed to `to`, from the local outbox.
    async fn mailed_code(&self, to: &str) -> Option<String> {
        let mails = self.svc.store().outbox(1000).await.unwrap();
        let mail = mails.into_iter().find(|m| m.to_addr == to)?;
        mail.body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(String::from)
    }

    async fn start(&self, env: &[u8], email: &str) -> Reply {
        let (header, license) = envelope_parts(env);
        let body = json!({ "header": header, "license": license, "email": email });
        self.post("/v1/otp/start", body, None).await
    }

    async fn verify(&self, challenge: &str, code: &str) -> Reply {
        self.post(
            "/v1/otp/verify",
            json!({ "challenge": challenge, "code": code }),
            None,
        )
        .await
    }

    /// Signs in by passcode and returns the session token.
    async fn sign_in(&self, env: &[u8], email: &str) -> String {
        let challenge = self.start(env, email).await.ok()["challenge"]
            .as_str()
            .unwrap()
            .to_string();
        let code = self.mailed_code(email).await.expect("a code was mailed");
        self.verify(&challenge, &code).await.ok()["session"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn rewrap(&self, session: Option<&str>, env: &[u8], client_key: &str) -> Reply {
        let (header, license) = envelope_parts(env);
        let body = json!({ "header": header, "license": license, "client_public_key": client_key });
        self.post("/v1/rewrap", body, session).await
    }

    async fn admin_token(&self) -> String {
        self.svc
            .create_admin_token("example.com", "test")
            .await
            .unwrap()
            .to_string()
    }
}

fn message_id(env: &[u8]) -> String {
    Envelope::parse(env).unwrap().header().message_id.to_hex()
}

// --- success paths ---------------------------------------------------------------------------

#[tokio::test]
async fn tenant_info() {
    let app = app().await;
    let info = app.get("/v1/tenants/example.com", None).await.ok();
    assert_eq!(info["tenant_id"], "example.com");
    assert_eq!(info["display_name"], "Example Corp");
    assert_eq!(info["allowed_origins"], json!([PORTAL]));
    assert_eq!(info["branding"], json!({ "accent_color": "#0b57d0" }));
    let signing = &info["signing_keys"][0];
    assert_eq!(
        signing["id"],
        app.signing.verifying_key().key_id().to_string()
    );
    assert_eq!(signing["status"], "active");
    let license = &info["license_keys"][0];
    assert_eq!(license["id"], app.license.public_key().key_id().to_string());
    assert_eq!(
        B64.decode(license["public_key"].as_str().unwrap()).unwrap(),
        app.license.public_key().to_bytes()
    );

    app.get("/v1/tenants/nope.example", None)
        .await
        .refused(404, "unknown_tenant");
    app.get("/v1/tenants/%FF", None)
        .await
        .refused(400, "bad_request");
}

#[tokio::test]
async fn recipient_signs_in_rewraps_and_decrypts() {
    let app = app().await;
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
    let token = session["session"].as_str().unwrap();
    assert!(token.starts_with("sps_"));

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
    let admin = app.admin_token().await;
    let audit = app
        .get(
            &format!("/v1/admin/messages/{}/audit", message_id(&env)),
            Some(&admin),
        )
        .await
        .ok();
    let events = audit["events"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["otp_sent", "otp_verified", "share_released"]);
    for ev in events {
        assert_eq!(ev["client_ip"], "192.0.2.10");
        assert_eq!(ev["email"], "bob@gmail.com");
        assert_eq!(ev["message_id"], message_id(&env));
        assert!(ev["id"].is_i64() && ev["time"] == T0 && ev["detail"].is_string());
    }
}

#[tokio::test]
async fn start_answers_alike_for_non_recipients() {
    let app = app().await;
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

#[tokio::test]
async fn admin_revoke_and_audit() {
    let app = app().await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 3);
    let id = message_id(&env);
    let admin = app.admin_token().await;
    let revoke = |token: Option<String>, id: String| {
        let app = &app;
        async move {
            app.post(
                "/v1/admin/revoke",
                json!({ "message_id": id }),
                token.as_deref(),
            )
            .await
        }
    };
    assert_eq!(
        revoke(Some(admin.clone()), id.clone()).await.ok(),
        json!({ "revoked": true })
    );
    assert_eq!(
        revoke(Some(admin.clone()), id.to_uppercase()).await.ok(),
        json!({ "revoked": false })
    );

    revoke(None, id.clone()).await.refused(401, "unauthorized");
    let r = revoke(Some("spa_wrong".into()), id.clone()).await;
    r.refused(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    revoke(Some(admin.clone()), "xyz".into())
        .await
        .refused(400, "bad_message_id");

    let path = format!("/v1/admin/messages/{id}/audit");
    let audit = app.get(&path, Some(&admin)).await.ok();
    let details: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, ["revoked", "already revoked"]);
    app.get(&path, None).await.refused(401, "unauthorized");
    app.get(&path, Some("spa_wrong"))
        .await
        .refused(401, "unauthorized");
    app.get("/v1/admin/messages/nothex/audit", Some(&admin))
        .await
        .refused(400, "bad_message_id");
}

// --- refusals --------------------------------------------------------------------------------

#[tokio::test]
async fn otp_start_refusals() {
    let app = app().await;
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

#[tokio::test]
async fn otp_verify_refusals() {
    let app = app().await;
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

#[tokio::test]
async fn lockout_after_100_consecutive_failures() {
    let app = app().await;
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

#[tokio::test]
async fn rewrap_refusals() {
    let app = app().await;
    let week = Template::custom("Week", Rights::of(&[Right::View]), Some(7 * 86400)).unwrap();
    let env = app.seal(&week, &["bob@gmail.com", "carol@yahoo.com"], 9);
    let other = app.seal(&Template::encrypt_only(), &["dave@example.org"], 10);
    let key = client_key();

    app.rewrap(None, &env, &key)
        .await
        .refused(401, "not_signed_in");
    let r = app.rewrap(Some("sps_nonsense"), &env, &key).await;
    r.refused(401, "not_signed_in");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    let dave = app.sign_in(&other, "dave@example.org").await;
    app.rewrap(Some(&dave), &env, &key)
        .await
        .refused(403, "not_a_recipient");

    let bob = app.sign_in(&env, "bob@gmail.com").await;
    app.rewrap(Some(&bob), &env, &B64.encode([4u8; 65]))
        .await
        .refused(400, "bad_client_key");
    app.rewrap(Some(&bob), &env, &B64.encode([1u8; 3]))
        .await
        .refused(400, "bad_client_key");
    let (header, license) = envelope_parts(&env);
    let mut bad = B64.decode(&license).unwrap();
    bad[70] ^= 1;
    let body = json!({ "header": header, "license": B64.encode(&bad), "client_public_key": key });
    app.post("/v1/rewrap", body, Some(&bob))
        .await
        .refused(400, "malformed_license");
    let body =
        json!({ "header": B64.encode(b"junk"), "license": license, "client_public_key": key });
    app.post("/v1/rewrap", body, Some(&bob))
        .await
        .refused(400, "malformed_license");

    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([11; 32]));
    let foreign = app.seal_as("other.example", &stranger, &week, &["bob@gmail.com"], 12);
    app.rewrap(Some(&bob), &foreign, &key)
        .await
        .refused(404, "unknown_tenant");
    let unknown_key = app.seal_as("example.com", &stranger, &week, &["bob@gmail.com"], 13);
    app.rewrap(Some(&bob), &unknown_key, &key)
        .await
        .refused(422, "unknown_key");
    assert_eq!(
        app.rewrap(Some(&bob), &env, &key).await.ok()["expires"],
        T0 + 7 * 86400
    );

    // Idle timeout: 30 minutes without use end a session.
    app.clock.advance(1801);
    app.rewrap(Some(&bob), &env, &key)
        .await
        .refused(401, "not_signed_in");

    // Absolute timeout: 12 hours, however busy.
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    for _ in 0..24 {
        app.clock.advance(1740);
        app.rewrap(Some(&carol), &env, &key).await.ok();
    }
    app.clock.advance(1740);
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(401, "not_signed_in");

    // Message expiry: the template's 7 days.
    app.clock.set(T0 + 7 * 86400);
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(410, "expired");

    // Revocation, effective at once.
    app.clock.set(T0 + 86400);
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    app.rewrap(Some(&carol), &env, &key).await.ok();
    let admin = app.admin_token().await;
    app.post(
        "/v1/admin/revoke",
        json!({ "message_id": message_id(&env) }),
        Some(&admin),
    )
    .await
    .ok();
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(410, "revoked");
}

#[tokio::test]
async fn per_ip_limit_and_forwarded_for() {
    let limits = Limits {
        per_ip_per_minute: 2,
        ..Limits::default()
    };
    let app = app_with(limits, HttpConfig::default()).await;
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
    let app = app_with(limits, config).await;
    for ip in ["203.0.113.5", "203.0.113.5", "203.0.113.6"] {
        let req = Request::post("/v1/otp/start")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-sealpost-client", "1")
            .header("x-forwarded-for", format!("10.0.0.1, {ip}"))
            .body(Body::from(body.to_string()))
            .unwrap();
        app.send(req).await.ok();
    }
    let admin = app.admin_token().await;
    let audit = app
        .get(
            &format!("/v1/admin/messages/{}/audit", message_id(&env)),
            Some(&admin),
        )
        .await
        .ok();
    let ips: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["client_ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["203.0.113.5", "203.0.113.5", "203.0.113.6"]);
}

// --- bad input -------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_is_a_json_error_never_a_500() {
    let app = app().await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 15);
    let (header, license) = envelope_parts(&env);

    for body in [
        "{not json",
        "",
        "null",
        "[]",
        "{\"header\": \"AAAA\"}",
        "\"just a string\"",
    ] {
        app.post_raw("/v1/otp/start", body, None)
            .await
            .refused(400, "bad_request");
    }
    let bad_values = [
        json!({ "header": "!!!", "license": license, "email": "bob@gmail.com" }),
        json!({ "header": header, "license": "AAA", "email": "bob@gmail.com" }),
        json!({ "header": header, "license": license, "email": 5 }),
        json!({ "header": 12, "license": license, "email": "bob@gmail.com" }),
        json!({ "header": header, "license": license, "email": "bob@gmail.com", "extra": true }),
    ];
    for body in bad_values {
        app.post("/v1/otp/start", body, None)
            .await
            .refused(400, "bad_request");
    }
    app.post(
        "/v1/otp/verify",
        json!({ "challenge": 1, "code": [] }),
        None,
    )
    .await
    .refused(400, "bad_request");
    let body = json!({ "header": header, "license": license, "client_public_key": "%%%" });
    app.post("/v1/rewrap", body, None)
        .await
        .refused(400, "bad_request");
    app.post("/v1/admin/revoke", json!({ "message_id": null }), None)
        .await
        .refused(400, "bad_request");
    app.post_raw("/v1/otp/start", &b"{\"email\": \"\xff\"}"[..], None)
        .await
        .refused(400, "bad_request");

    // Oversized: 413 before anything is parsed.
    let huge =
        json!({ "header": "A".repeat(2 << 20), "license": license, "email": "bob@gmail.com" });
    app.post("/v1/otp/start", huge, None)
        .await
        .refused(413, "too_large");

    // The CSRF rules: the custom header and the JSON content type.
    let good =
        json!({ "header": header, "license": license, "email": "bob@gmail.com" }).to_string();
    let without = |client: Option<&str>, content_type: Option<&str>| {
        let mut req = Request::post("/v1/otp/start");
        if let Some(v) = client {
            req = req.header("x-sealpost-client", v);
        }
        if let Some(v) = content_type {
            req = req.header(header::CONTENT_TYPE, v);
        }
        req.body(Body::from(good.clone())).unwrap()
    };
    let json_ct = Some("application/json");
    app.send(without(None, json_ct))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("0"), json_ct))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("1"), None))
        .await
        .refused(415, "unsupported_media_type");
    app.send(without(Some("1"), Some("text/plain")))
        .await
        .refused(415, "unsupported_media_type");
    app.send(without(None, Some("application/x-www-form-urlencoded")))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("1"), Some("application/json; charset=utf-8")))
        .await
        .ok();

    // Routing.
    app.get("/v1/nothing", None).await.refused(404, "not_found");
    app.get("/v1/rewrap", None)
        .await
        .refused(405, "method_not_allowed");
    let req = Request::builder()
        .method(Method::DELETE)
        .uri("/v1/tenants/example.com")
        .body(Body::empty())
        .unwrap();
    app.send(req).await.refused(405, "method_not_allowed");
    // A malformed Authorization header is just "not signed in".
    let req = Request::post("/v1/rewrap")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-sealpost-client", "1")
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .body(Body::from(
            json!({ "header": header, "license": license, "client_public_key": client_key() })
                .to_string(),
        ))
        .unwrap();
    app.send(req).await.refused(401, "not_signed_in");
}

// --- CORS, overload, operations --------------------------------------------------------------

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/rewrap")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type, x-sealpost-client",
        )
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn cors_allows_tenant_origins_only() {
    let config = HttpConfig {
        extra_allowed_origins: vec!["https://extra.example".into()],
        ..HttpConfig::default()
    };
    let app = app_with(Limits::default(), config).await;
    for origin in [PORTAL, "https://extra.example"] {
        let r = app.send(preflight(origin)).await;
        assert!(r.status.is_success());
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            ["authorization", "content-type", "x-sealpost-client"]
                .iter()
                .all(|h| allowed.contains(h)),
            "{allowed}"
        );
        assert!(
            r.header("access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
    }
    let r = app.send(preflight("https://evil.example")).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "another origin is refused"
    );

    let get = |origin: &str| {
        Request::get("/v1/tenants/example.com")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let r = app.send(get(PORTAL)).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(PORTAL));
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .to_ascii_lowercase()
            .contains("retry-after")
    );
    assert_eq!(
        app.send(get("https://evil.example"))
            .await
            .header("access-control-allow-origin"),
        None
    );
}

#[tokio::test]
async fn overload_answers_503_at_once() {
    let config = HttpConfig {
        max_in_flight: 1,
        ..HttpConfig::default()
    };
    let app = app_with(Limits::default(), config).await;
    // A request whose body never finishes holds the only slot.
    let (sender, body) =
        http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
    let req = Request::post("/v1/otp/verify")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-sealpost-client", "1")
        .body(Body::new(body))
        .unwrap();
    let held = tokio::spawn(app.router.clone().oneshot(req));
    let mut shed = None;
    for _ in 0..200 {
        // Let the held request run until it waits for its body (a current-thread runtime).
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!held.is_finished(), "the held request was answered early");
        let r = app.get("/v1/tenants/example.com", None).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(r);
            break;
        }
    }
    shed.expect("a second request is shed")
        .refused(503, "overloaded");
    assert_eq!(
        app.get("/healthz", None).await.text(),
        "ok",
        "probes are outside the limit"
    );
    drop(sender);
    let first = held.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    app.get("/v1/tenants/example.com", None).await.ok();
}

#[tokio::test]
async fn health_readiness_metrics() {
    let app = app().await;
    assert_eq!(app.get("/healthz", None).await.text(), "ok");
    assert_eq!(app.get("/readyz", None).await.text(), "ok");

    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 16);
    let session = app.sign_in(&env, "bob@gmail.com").await;
    app.rewrap(Some(&session), &env, &client_key()).await.ok();
    app.rewrap(None, &env, &client_key())
        .await
        .refused(401, "not_signed_in");
    app.verify("nope", "00000000")
        .await
        .refused(401, "wrong_code");
    app.get("/nowhere", None).await.refused(404, "not_found");

    let r = app.get("/metrics", None).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    for line in [
        "sealpost_http_requests_total{route=\"/v1/otp/start\",status=\"2xx\"} 1",
        "sealpost_http_requests_total{route=\"/v1/rewrap\",status=\"2xx\"} 1",
        "sealpost_http_requests_total{route=\"/v1/rewrap\",status=\"4xx\"} 1",
        "sealpost_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
        "sealpost_rewraps_released_total 1",
        "sealpost_rewraps_refused_total{reason=\"not_signed_in\"} 1",
        "sealpost_rewraps_refused_total{reason=\"revoked\"} 0",
        "sealpost_otp_total{event=\"started\"} 1",
        "sealpost_otp_total{event=\"verified\"} 1",
        "sealpost_otp_total{event=\"failed\"} 1",
        "sealpost_http_requests_in_flight 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE sealpost_http_requests_total counter"));
}

#[tokio::test]
async fn database_down_is_503_with_retry_after() {
    let app = app().await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 17);
    app.svc.store().close().await;
    app.get("/readyz", None).await.refused(503, "unavailable");
    app.start(&env, "bob@gmail.com")
        .await
        .refused(503, "unavailable");
    app.rewrap(Some("sps_x"), &env, &client_key())
        .await
        .refused(503, "unavailable");
    app.get("/v1/tenants/example.com", None)
        .await
        .refused(503, "unavailable");
    assert_eq!(app.get("/healthz", None).await.text(), "ok");
}

#[tokio::test]
async fn openapi_document_lists_every_path_and_code() {
    let app = app().await;
    let r = app.get("/v1/openapi.json", None).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = r.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/tenants/{tenant_id}", "get"),
        ("/v1/otp/start", "post"),
        ("/v1/otp/verify", "post"),
        ("/v1/rewrap", "post"),
        ("/v1/admin/revoke", "post"),
        ("/v1/admin/messages/{message_id}/audit", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert_eq!(paths.len(), expected.len());
    let text = r.text();
    for c in ERROR_CODES {
        if !["not_found", "method_not_allowed", "conflict", "invalid"].contains(&c.code) {
            assert!(
                text.contains(&format!("`{}`", c.code)),
                "{} is not documented",
                c.code
            );
        }
    }
    let rights = &doc["components"]["schemas"]["RightName"]["enum"];
    let names: Vec<&str> = Right::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(rights, &json!(names), "the schema's rights are the core's");
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["ClientMarker"]["enum"],
        json!(["1"])
    );
    // Every reference resolves.
    for reference in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling reference to {name}"
        );
    }
    let rewrap_401 = &paths["/v1/rewrap"]["post"]["responses"]["401"]["description"];
    assert!(rewrap_401.as_str().unwrap().contains("not_signed_in"));
}

#[test]
fn api_doc_names_every_code_and_path() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    for c in ERROR_CODES {
        assert!(
            doc.contains(&format!("`{}`", c.code)),
            "docs/api.md lacks `{}`",
            c.code
        );
        assert!(
            doc.contains(&format!("| {} |", c.status)),
            "docs/api.md lacks status {}",
            c.status
        );
    }
    for path in [
        "/v1/tenants/{tenant_id}",
        "/v1/otp/start",
        "/v1/otp/verify",
        "/v1/rewrap",
        "/v1/admin/revoke",
    ] {
        assert!(doc.contains(path), "docs/api.md lacks {path}");
    }
    for path in [
        "/v1/admin/messages/{message_id}/audit",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(doc.contains(path), "docs/api.md lacks {path}");
    }
}

// --- a real socket ---------------------------------------------------------------------------

async fn raw_http(addr: SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn real_socket_with_graceful_shutdown() {
    let app = app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app.router.clone(), async {
        let _ = stopped.await;
    }));

    let health = raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: keys\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(
        health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("\r\n\r\nok"),
        "{health}"
    );

    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 18);
    let (header, license) = envelope_parts(&env);
    let body =
        json!({ "header": header, "license": license, "email": "bob@gmail.com" }).to_string();
    let request = format!(
        "POST /v1/otp/start HTTP/1.1\r\nHost: keys\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-Sealpost-Client: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_http(addr, request).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\"challenge\""), "{answer}");

    // The client address came from the socket.
    let admin = app.admin_token().await;
    let audit = app
        .get(
            &format!("/v1/admin/messages/{}/audit", message_id(&env)),
            Some(&admin),
        )
        .await
        .ok();
    assert_eq!(audit["events"][0]["client_ip"], "127.0.0.1");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
