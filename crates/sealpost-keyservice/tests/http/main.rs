//! The key service's HTTP API, end to end through the router, with time moved by a manual
//! clock: every endpoint, every refusal reason with its status and code, bad input, CORS,
//! limits, the operational endpoints, and one real socket. Each test runs on both backends
//! (`THEME::sqlite::*` and `THEME::postgres::*`, see `support/db.rs`), each on a fresh database.
//!
//! Every response that is not a success is checked to be a JSON error body and never a 500
//! (see `App::send`). The service fixture (tenant, clock, sealing, the outbox) is in
//! `support/fixture.rs`; the HTTP layer over it is here.

use std::net::SocketAddr;
use std::ops::Deref;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use sealpost_core::Envelope;
use sealpost_keyservice::http::{HttpConfig, router};
use sealpost_keyservice::service::Limits;
use serde_json::{Value, json};
use tower::ServiceExt;

#[macro_use]
#[path = "../support/db.rs"]
mod db;
#[path = "../support/fixture.rs"]
mod fixture;
#[path = "../support/reply.rs"]
mod reply;

mod admin;
mod cors;
mod errors;
mod gateway;
mod ops;
mod otp;
mod rewrap;

use db::Db;
use fixture::{Fixture, client, fixture, loose_limits};

const PEER: &str = "192.0.2.10:40000";

// --- fixture ---------------------------------------------------------------------------------

/// The router over a [`Fixture`]; derefs to the fixture for sealing, the clock and the outbox.
struct App {
    router: Router,
    fixture: Fixture,
}

impl Deref for App {
    type Target = Fixture;

    fn deref(&self) -> &Fixture {
        &self.fixture
    }
}

async fn app(db: Db) -> App {
    app_with(db, loose_limits(), HttpConfig::default()).await
}

async fn app_with(db: Db, limits: Limits, config: HttpConfig) -> App {
    let fixture = fixture(db, limits).await;
    App {
        router: router(fixture.svc.clone(), config),
        fixture,
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

/// The envelope's header and license, base64 as the API takes them.
fn envelope_parts(env: &[u8]) -> (String, String) {
    let e = Envelope::parse(env).unwrap();
    (B64.encode(e.header_bytes()), B64.encode(e.license()))
}

/// The portal's public key, base64.
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

    /// The audit events of the message in `env`, through the admin endpoint.
    async fn audit_events(&self, env: &[u8]) -> Vec<Value> {
        let admin = self.admin_token().await;
        let path = format!("/v1/admin/messages/{}/audit", fixture::message_id(env));
        let audit = self.get(&path, Some(&admin)).await.ok();
        audit["events"].as_array().unwrap().clone()
    }
}
