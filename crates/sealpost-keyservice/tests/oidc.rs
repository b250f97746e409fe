//! Sign-in with OpenID Connect against a real OpenID provider: npm `oidc-provider`
//! (`tests/oidc/provider.mjs`, installed by `scripts/oidc-provider.sh install`) started by this
//! test on a free loopback port, driven over HTTP like a browser would (authorization URL, the
//! provider's login form, the redirect with code and state), then `/v1/oidc/finish` through the
//! key service's router. Each test runs on SQLite and PostgreSQL (`backends!`).
//!
//! Covered: success (the session opens a message for that address; a public client too),
//! wrong audience, unverified e-mail, replayed / unknown / expired state, a code the provider
//! refuses, unknown provider and tenant, a provider that is down, the tenant info's list, the
//! audit events.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use sealpost_core::Envelope;
use sealpost_core::policy::Template;
use sealpost_keyservice::http::{HttpConfig, router};
use sealpost_keyservice::oidc::{OidcProviderToml, Preset, check_providers};
use sealpost_keyservice::service::OidcProviders;
use serde_json::{Value, json};
use tower::ServiceExt;

#[macro_use]
#[path = "support/db.rs"]
mod db;
#[path = "support/fixture.rs"]
mod fixture;

use db::Db;
use fixture::{Fixture, client, fixture, loose_limits};

const PEER: &str = "192.0.2.10:40000";
const REDIRECT: &str = "http://127.0.0.1:9/portal/";
const SECRET: &str = "sealpost-test-secret";

// --- the provider ----------------------------------------------------------------------------

/// The provider process, started once for the whole test binary; it exits when this process
/// does (its standard input closes).
struct ProviderProcess {
    issuer: String,
    child: Mutex<Child>,
}

fn provider() -> &'static ProviderProcess {
    static P: OnceLock<ProviderProcess> = OnceLock::new();
    P.get_or_init(spawn_provider)
}

/// Starts a provider on a free port; it lives until the child is killed or this process ends.
fn spawn_provider() -> ProviderProcess {
    {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc");
        assert!(
            std::path::Path::new(root)
                .join("node_modules/oidc-provider")
                .is_dir(),
            "the test OpenID provider is not installed: run `bash scripts/oidc-provider.sh install`"
        );
        let port = free_port();
        let mut child = Command::new("node")
            .current_dir(root)
            .args([
                "provider.mjs",
                "--exit-with-stdin",
                "--port",
                &port.to_string(),
            ])
            .args(["--redirect", REDIRECT, "--secret", SECRET])
            .args(["--account", "bob@example.org"])
            .args(["--account", "unverified@example.org:unverified"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs (scripts/oidc-provider.sh install)");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading, so that the provider's later notices never hit a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("oidc-provider listening: ")
            .unwrap_or_else(|| panic!("the provider did not start: {line:?}"))
            .to_string();
        ProviderProcess {
            issuer,
            child: Mutex::new(child),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `[[keyservice.oidc]]` entry of the generic preset for a client of the test provider.
fn entry(id: &str, issuer: &str, client_id: &str, secret: Option<&str>) -> OidcProviderToml {
    OidcProviderToml {
        id: Some(id.into()),
        preset: Some(Preset::Generic),
        display_name: Some(format!("Test {id}")),
        issuer: Some(issuer.into()),
        client_id: Some(client_id.into()),
        client_secret: secret.map(String::from),
        redirect_url: Some(REDIRECT.into()),
        ..OidcProviderToml::default()
    }
}

/// Signs in at the provider as `email` the way a browser would: the authorization URL, the
/// login form, back to the authorization endpoint, which redirects to the portal with the code.
/// Returns the redirect's query (`code`, `state`, …).
async fn provider_login(authorization_url: &str, email: &str) -> Vec<(String, String)> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: Vec<(String, String)> = Vec::new();
    let mut url = reqwest::Url::parse(authorization_url).unwrap();
    let mut form = None;
    for _ in 0..6 {
        let cookie = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(body) => http
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => http.get(url.clone()),
        };
        let resp = req.header("cookie", cookie).send().await.unwrap();
        for v in resp.headers().get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            cookies.retain(|(name, _)| name != k);
            cookies.push((k.to_string(), val.to_string()));
        }
        if resp.status() == reqwest::StatusCode::OK && url.path().starts_with("/interaction/") {
            // The login form: post the address.
            let text = resp.text().await.unwrap();
            assert!(text.contains("name=\"email\""), "{text}");
            url = url.join(&format!("{}/login", url.path())).unwrap();
            form = Some(format!("email={}", email.replace('@', "%40")));
            continue;
        }
        assert!(
            resp.status().is_redirection(),
            "{} at {url}: {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        url = url.join(&location).unwrap();
        if url.as_str().starts_with(REDIRECT) {
            return url.query_pairs().into_owned().collect();
        }
    }
    panic!("the provider never redirected back to the portal");
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    &query
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {query:?}"))
        .1
}

// --- the key service -------------------------------------------------------------------------

struct App {
    router: Router,
    f: Fixture,
    issuer: String,
}

/// The key service with the tenant `example.com` and the providers `test` (confidential
/// client), `public` (public client), `wrongaud` (ID tokens for another audience) and `down`
/// (nothing listens at its issuer). The manual clock starts at the real time, because the
/// provider stamps its ID tokens with it.
async fn app(db: Db) -> App {
    app_with(db, &[]).await
}

/// [`app`] with more providers.
async fn app_with(db: Db, more: &[OidcProviderToml]) -> App {
    let issuer = provider().issuer.clone();
    let down = format!("http://127.0.0.1:{}", free_port());
    let mut entries = vec![
        entry("test", &issuer, "sealpost", Some(SECRET)),
        entry("public", &issuer, "sealpost-public", None),
        entry("wrongaud", &issuer, "sealpost-wrong-aud", Some(SECRET)),
        entry("down", &down, "sealpost", Some(SECRET)),
    ];
    entries.extend_from_slice(more);
    let providers = check_providers(&entries, None).unwrap();
    let mut f = fixture(db, loose_limits()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    f.clock.set(now);
    Arc::get_mut(&mut f.svc)
        .expect("the service is not shared yet")
        .set_oidc(OidcProviders::new(providers).unwrap());
    App {
        router: router(f.svc.clone(), HttpConfig::default()),
        f,
        issuer,
    }
}

impl App {
    async fn send(&self, mut req: Request<Body>) -> (StatusCode, Value) {
        req.extensions_mut()
            .insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let json: Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{json}");
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(retry_after.is_some(), "503 without Retry-After: {json}");
        }
        (status, json)
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-sealpost-client", "1");
        if let Some(t) = bearer {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }

    async fn start(&self, provider: &str, hint: Option<&str>) -> (StatusCode, Value) {
        let body = json!({ "tenant": "example.com", "provider": provider, "login_hint": hint });
        self.post("/v1/oidc/start", body, None).await
    }

    async fn finish(&self, state: &str, code: &str) -> (StatusCode, Value) {
        let body = json!({ "state": state, "code": code });
        self.post("/v1/oidc/finish", body, None).await
    }

    /// Starts with `provider`, signs in at the provider as `email`; returns (state, code).
    async fn login(&self, provider: &str, email: &str) -> (String, String) {
        let (status, started) = self.start(provider, Some(email)).await;
        assert_eq!(status, StatusCode::OK, "{started}");
        let state = started["state"].as_str().unwrap().to_string();
        let query = provider_login(started["authorization_url"].as_str().unwrap(), email).await;
        assert_eq!(
            param(&query, "state"),
            state,
            "the provider hands the state back"
        );
        (state, param(&query, "code").to_string())
    }

    async fn rewrap(&self, session: &str, env: &[u8]) -> (StatusCode, Value) {
        let e = Envelope::parse(env).unwrap();
        let body = json!({
            "header": B64.encode(e.header_bytes()),
            "license": B64.encode(e.license()),
            "client_public_key": B64.encode(client().public_key().to_bytes()),
        });
        self.post("/v1/rewrap", body, Some(session)).await
    }

    /// The `/metrics` text.
    async fn metrics(&self) -> String {
        let req = Request::get("/metrics").body(Body::empty()).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// The tenant's audit events named `event`.
    async fn audited(&self, event: &str) -> Vec<sealpost_keyservice::store::AuditRow> {
        let rows = self
            .f
            .svc
            .store()
            .audit_for_tenant("example.com", 0, 1000)
            .await
            .unwrap();
        rows.into_iter().filter(|r| r.event == event).collect()
    }
}

#[track_caller]
fn refused(reply: (StatusCode, Value), status: u16, code: &str) {
    assert_eq!(
        (reply.0.as_u16(), reply.1["error"].as_str().unwrap_or("")),
        (status, code),
        "{}",
        reply.1
    );
}

// --- the tests -------------------------------------------------------------------------------

backends!(
    success_opens_the_message,
    public_client,
    wrong_audience_refused,
    unverified_email_refused,
    replayed_and_unknown_state_refused,
    expired_state_refused,
    refused_code_fails,
    unknown_provider_tenant_and_hint,
    provider_down,
);

async fn success_opens_the_message(db: Db) {
    let app = app(db).await;
    let env = app
        .f
        .seal(&Template::encrypt_only(), &["bob@example.org"], 1);
    let other = app
        .f
        .seal(&Template::encrypt_only(), &["carol@example.org"], 2);

    let info = Request::get("/v1/tenants/example.com")
        .body(Body::empty())
        .unwrap();
    let (status, info) = app.send(info).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        info["oidc_providers"][0],
        json!({ "id": "test", "display_name": "Test test", "preset": "generic" })
    );
    assert_eq!(info["oidc_providers"].as_array().unwrap().len(), 4);
    assert!(
        info["oidc_providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.get("client_id").is_none())
    );

    let (status, started) = app.start("test", Some("Bob@Example.org")).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let url = reqwest::Url::parse(started["authorization_url"].as_str().unwrap()).unwrap();
    assert!(
        url.as_str().starts_with(&format!("{}/auth?", app.issuer)),
        "{url}"
    );
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(param(&q, "response_type"), "code");
    assert_eq!(param(&q, "client_id"), "sealpost");
    assert_eq!(param(&q, "redirect_uri"), REDIRECT);
    assert_eq!(param(&q, "code_challenge_method"), "S256");
    assert_eq!(param(&q, "code_challenge").len(), 43);
    assert_eq!(param(&q, "state"), started["state"].as_str().unwrap());
    assert_eq!(param(&q, "nonce").len(), 43);
    assert_eq!(param(&q, "login_hint"), "bob@example.org");
    assert_eq!(param(&q, "scope"), "openid email");

    let (state, code) = app.login("test", "bob@example.org").await;
    let (status, session) = app.finish(&state, &code).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["email"], "bob@example.org");
    assert_eq!(session["idle_timeout"], 1800);
    assert_eq!(session["expires_at"], app.f.clock_now() + 12 * 3600);
    let token = session["session"].as_str().unwrap();
    assert!(token.starts_with("sps_"));

    let (status, released) = app.rewrap(token, &env).await;
    assert_eq!(status, StatusCode::OK, "{released}");
    assert_eq!(released["email"], "bob@example.org");
    refused(app.rewrap(token, &other).await, 403, "not_a_recipient");

    let verified = app.audited("oidc_verified").await;
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].email.as_deref(), Some("bob@example.org"));
    assert_eq!(verified[0].client_ip.as_deref(), Some("192.0.2.10"));
    assert!(
        verified[0].detail.contains("provider test"),
        "{:?}",
        verified[0]
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("sealpost_oidc_total{event=\"started\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealpost_oidc_total{event=\"verified\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealpost_oidc_total{event=\"failed\"} 0"),
        "{metrics}"
    );
}

async fn public_client(db: Db) {
    let app = app(db).await;
    let (state, code) = app.login("public", "bob@example.org").await;
    let (status, session) = app.finish(&state, &code).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["email"], "bob@example.org");
}

async fn wrong_audience_refused(db: Db) {
    let app = app(db).await;
    let (state, code) = app.login("wrongaud", "bob@example.org").await;
    let (_, body) = app.finish(&state, &code).await;
    refused((StatusCode::UNAUTHORIZED, body.clone()), 401, "oidc_failed");
    assert!(
        !body["message"].as_str().unwrap().contains("aud"),
        "the client learns no detail: {body}"
    );
    let failed = app.audited("oidc_failed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].detail.contains("audience"), "{:?}", failed[0]);
    assert!(app.audited("oidc_verified").await.is_empty());
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("sealpost_oidc_total{event=\"failed\"} 1"),
        "{metrics}"
    );
}

async fn unverified_email_refused(db: Db) {
    let app = app(db).await;
    let (state, code) = app.login("test", "unverified@example.org").await;
    refused(app.finish(&state, &code).await, 403, "email_not_verified");
    let failed = app.audited("oidc_failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].email.as_deref(), Some("unverified@example.org"));
    assert!(
        failed[0].detail.contains("email not verified"),
        "{:?}",
        failed[0]
    );
}

async fn replayed_and_unknown_state_refused(db: Db) {
    let app = app(db).await;
    let (state, code) = app.login("test", "bob@example.org").await;
    assert_eq!(app.finish(&state, &code).await.0, StatusCode::OK);
    refused(app.finish(&state, &code).await, 400, "oidc_state_invalid");
    refused(
        app.finish("no-such-state", &code).await,
        400,
        "oidc_state_invalid",
    );
    refused(app.finish("", &code).await, 400, "oidc_state_invalid");
    let failed = app.audited("oidc_failed").await;
    assert_eq!(failed.len(), 1, "the replay is audited: {failed:?}");
    assert!(failed[0].detail.contains("replay"), "{:?}", failed[0]);
}

async fn expired_state_refused(db: Db) {
    let app = app(db).await;
    let (state, code) = app.login("test", "bob@example.org").await;
    app.f.clock.advance(600);
    refused(app.finish(&state, &code).await, 400, "oidc_state_invalid");
    assert!(
        app.audited("oidc_failed").await[0]
            .detail
            .contains("expired")
    );
    // Just inside the ten minutes, it works.
    let app = app_again(app).await;
    let (state, code) = app.login("test", "bob@example.org").await;
    app.f.clock.advance(599);
    assert_eq!(app.finish(&state, &code).await.0, StatusCode::OK);
}

/// The same service, clock back at the real time.
async fn app_again(app: App) -> App {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    app.f.clock.set(now);
    app
}

async fn refused_code_fails(db: Db) {
    let app = app(db).await;
    let (state, _) = app.login("test", "bob@example.org").await;
    refused(app.finish(&state, "not-the-code").await, 401, "oidc_failed");
    assert!(
        app.audited("oidc_failed").await[0]
            .detail
            .contains("token endpoint")
    );
}

async fn unknown_provider_tenant_and_hint(db: Db) {
    let app = app(db).await;
    refused(app.start("nope", None).await, 404, "unknown_provider");
    let body = json!({ "tenant": "nope.example", "provider": "test", "login_hint": null });
    refused(
        app.post("/v1/oidc/start", body, None).await,
        404,
        "unknown_tenant",
    );
    refused(
        app.start("test", Some("not an address")).await,
        400,
        "bad_address",
    );
    let body = json!({ "tenant": "example.com", "provider": "test", "extra": 1 });
    refused(
        app.post("/v1/oidc/start", body, None).await,
        400,
        "bad_request",
    );
    // Without a login hint the URL has none.
    let (_, started) = app.start("test", None).await;
    assert!(
        !started["authorization_url"]
            .as_str()
            .unwrap()
            .contains("login_hint")
    );
}

async fn provider_down(db: Db) {
    // A provider of its own, stopped after the login: the token request finds nobody.
    let own = spawn_provider();
    let app = app_with(db, &[entry("own", &own.issuer, "sealpost", Some(SECRET))]).await;
    refused(app.start("down", None).await, 503, "provider_unavailable");
    let (state, code) = app.login("own", "bob@example.org").await;
    {
        let mut child = own.child.lock().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
    refused(app.finish(&state, &code).await, 503, "provider_unavailable");
    let failed = app.audited("oidc_failed").await;
    assert!(
        failed[0].detail.contains("provider unavailable"),
        "{failed:?}"
    );
    // The flow is spent: the provider coming back does not revive it.
    refused(app.finish(&state, &code).await, 400, "oidc_state_invalid");
}

impl Fixture {
    fn clock_now(&self) -> i64 {
        use sealpost_keyservice::clock::Clock;
        self.clock.now()
    }
}
