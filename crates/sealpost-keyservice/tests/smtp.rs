//! Passcode mail delivered over SMTP for real: the service behind its router (manual clock,
//! seeded entropy, SQLite), the delivery worker, and a real SMTP sink on a loopback port,
//! aiosmtpd writing every mail it accepts into a Maildir.
//!
//! - a recipient's passcode mail arrives, names the message reference in its subject and
//!   body, and its code signs the recipient in; a non-recipient's decoy is never sent;
//! - with the relay down, attempts and the error are recorded, and the mail goes out once the
//!   relay is up and the retry is due;
//! - a mail that cannot be delivered within the give-up age is marked failed;
//! - (without the sink) a non-recipient's request writes the same rows as a recipient's.
//!
//! The sink is Debian's `python3-aiosmtpd` (`scripts/smtp-sink.sh` installs it). Without it
//! these tests print a skip line and pass, unless `CI` is set: there they fail.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use sealpost_core::Envelope;
use sealpost_core::policy::Template;
use sealpost_keyservice::delivery::{DeliveryConfig, DeliveryWorker, SmtpSettings};
use sealpost_keyservice::http::{HttpConfig, router};
use sealpost_keyservice::store::{DeliveryState, OutboxEntry};
use serde_json::{Value, json};
use tower::ServiceExt;

// Only `Db::sqlite` is used here, not the `backends!` macro.
#[allow(unused_macros)]
#[path = "support/db.rs"]
mod db;
#[path = "support/fixture.rs"]
mod fixture;

use db::Db;
use fixture::{Fixture, fixture, loose_limits};

const PYTHON: &str = "/usr/bin/python3";
const FROM: &str = "Example Keys <keys@example.com>";

// --- the SMTP sink ---------------------------------------------------------------------------

/// aiosmtpd on a loopback port, writing a Maildir; killed when dropped.
struct Sink {
    child: Child,
    maildir: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the sink can run here. Without it: `false` after a skip line, or a failure under
/// CI, which must not pass by skipping.
fn sink_available() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "the SMTP sink is missing: `apt-get install python3-aiosmtpd` (scripts/smtp-sink.sh does it)"
        );
    }
    eprintln!(
        "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd): SMTP test skipped"
    );
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sink {
    /// Starts the sink on `port` and waits until it accepts connections.
    fn start(port: u16, maildir: &Path) -> Sink {
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let sink = Sink {
            child,
            maildir: maildir.to_path_buf(),
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not come up on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sink
    }

    /// Every mail received so far, raw.
    fn mails(&self) -> Vec<Vec<u8>> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        dir.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .collect()
    }
}

// --- the service -----------------------------------------------------------------------------

struct Setup {
    fx: Fixture,
    router: Router,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fx = fixture(Db::sqlite(), loose_limits()).await;
    let router = router(fx.svc.clone(), HttpConfig::default());
    Setup {
        fx,
        router,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Setup {
    fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    /// The delivery worker against the relay on `port`, polling often.
    fn worker(&self, port: u16, give_up_after: Duration) -> DeliveryWorker {
        let smtp = SmtpSettings::new(&format!("smtp://127.0.0.1:{port}"), FROM).unwrap();
        let mut config = DeliveryConfig::new(smtp);
        config.poll_interval = Duration::from_millis(100);
        config.send_timeout = Duration::from_secs(10);
        config.give_up_after = give_up_after;
        DeliveryWorker::spawn(
            self.fx.svc.store().clone(),
            Arc::new(self.fx.clock.clone()),
            config,
        )
        .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let mut req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-sealpost-client", "1")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(
            "192.0.2.10:40000".parse::<SocketAddr>().unwrap(),
        ));
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    /// Starts a sign-in; returns the challenge and the reference.
    async fn start(&self, env: &[u8], email: &str) -> (String, String) {
        let e = Envelope::parse(env).unwrap();
        let body = json!({
            "header": B64.encode(e.header_bytes()),
            "license": B64.encode(e.license()),
            "email": email,
        });
        let (status, v) = self.post("/v1/otp/start", body).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        (
            v["challenge"].as_str().unwrap().into(),
            v["reference"].as_str().unwrap().into(),
        )
    }

    async fn entries(&self) -> Vec<OutboxEntry> {
        self.fx.svc.store().outbox_entries(100).await.unwrap()
    }

    /// Waits until the outbox mail to `to` satisfies `done`.
    async fn wait_for(&self, to: &str, what: &str, done: impl Fn(&OutboxEntry) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let entries = self.entries().await;
            if entries.iter().any(|e| e.mail.to_addr == to && done(e)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the mail to {to} to be {what}: {entries:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The one mail in `sink`, parsed: (recipient, subject, text body).
fn only_mail(sink: &Sink) -> (String, String, String) {
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "exactly one mail was sent");
    let msg = mail_parser::MessageParser::default()
        .parse(&mails[0])
        .expect("a parsable mail");
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap()
        .to_string();
    let from = msg.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.address(), Some("keys@example.com"));
    assert_eq!(
        msg.header_raw("X-RcptTo").map(str::trim),
        Some(to.as_str()),
        "the SMTP envelope names the same recipient"
    );
    (
        to,
        msg.subject().unwrap().to_string(),
        msg.body_text(0).unwrap().to_string(),
    )
}

fn code_in(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .expect("a passcode in the body")
        .to_string()
}

// --- tests -----------------------------------------------------------------------------------

/// Equal work: a non-recipient's request writes a challenge and an outbox row (a decoy) as a
/// recipient's does; the decoy is not listed and goes at the next purge. Needs no sink.
#[tokio::test]
async fn both_answers_write_a_challenge_and_an_outbox_row() {
    let s = setup().await;
    let env = s.fx.seal(&Template::encrypt_only(), &["bob@gmail.com"], 4);
    let (eve, _) = s.start(&env, "eve@gmail.com").await;
    let (bob, _) = s.start(&env, "bob@gmail.com").await;
    let store = s.fx.svc.store();
    assert!(!store.challenge(&eve).await.unwrap().unwrap().sent);
    assert!(store.challenge(&bob).await.unwrap().unwrap().sent);
    let listed = s.entries().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].mail.to_addr, "bob@gmail.com");
    assert_eq!(
        store
            .purge_outbox(fixture::T0, 7 * 24 * 3600)
            .await
            .unwrap(),
        1,
        "the decoy row was written, and only it is purged"
    );
    assert_eq!(s.entries().await.len(), 1, "bob's mail is still queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipient_gets_the_mail_and_signs_in_decoy_never_sent() {
    if !sink_available() {
        return;
    }
    let s = setup().await;
    let port = free_port();
    let sink = Sink::start(port, &s.maildir());
    let worker = s.worker(port, Duration::from_secs(24 * 3600));

    let env = s.fx.seal(&Template::encrypt_only(), &["bob@gmail.com"], 1);
    // The non-recipient first: its decoy is the older row, so it would go out first if the
    // worker ever sent decoys.
    let (decoy_challenge, _) = s.start(&env, "eve@gmail.com").await;
    let (challenge, reference) = s.start(&env, "bob@gmail.com").await;
    s.wait_for("bob@gmail.com", "delivered", |e| {
        e.state() == DeliveryState::Delivered
    })
    .await;

    let (to, subject, body) = only_mail(&sink);
    assert_eq!(to, "bob@gmail.com");
    assert!(subject.contains(&reference), "{subject}");
    assert!(body.contains(&reference), "{body}");
    assert!(body.contains("alice@example.com"), "{body}");
    let code = code_in(&body);

    let entries = s.entries().await;
    assert_eq!(entries.len(), 1, "the decoy is not listed: {entries:?}");
    assert_eq!(entries[0].attempts, 1);
    assert_eq!(entries[0].mail.body, "", "no code is kept after delivery");

    let (status, v) = s
        .post(
            "/v1/otp/verify",
            json!({ "challenge": challenge, "code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["email"], "bob@gmail.com");
    assert!(v["session"].as_str().is_some_and(|t| !t.is_empty()));
    // The same digits do nothing for the non-recipient's challenge.
    let (status, v) = s
        .post(
            "/v1/otp/verify",
            json!({ "challenge": decoy_challenge, "code": code }),
        )
        .await;
    assert_eq!((status.as_u16(), &v["error"]), (401, &json!("wrong_code")));

    // Still nothing for eve after further rounds of the worker.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.mails().len(), 1);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_down_then_up_retries_and_delivers() {
    if !sink_available() {
        return;
    }
    let s = setup().await;
    let port = free_port();
    let worker = s.worker(port, Duration::from_secs(24 * 3600));
    let env = s.fx.seal(&Template::encrypt_only(), &["bob@gmail.com"], 2);
    let (challenge, reference) = s.start(&env, "bob@gmail.com").await;

    // Nobody listens: the attempt fails, is recorded, and a retry is due in 30 s.
    s.wait_for("bob@gmail.com", "retrying", |e| {
        e.state() == DeliveryState::Retrying
    })
    .await;
    let e = s.entries().await.remove(0);
    assert_eq!(e.attempts, 1);
    assert_eq!(e.next_attempt_at, fixture::T0 + 30);
    assert!(e.last_error.as_deref().is_some_and(|m| !m.is_empty()));
    assert!(!e.mail.body.is_empty(), "kept for the retry");

    let sink = Sink::start(port, &s.maildir());
    // The retry is not due yet: the worker keeps polling but does not send.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sink.mails().is_empty());
    assert_eq!(s.entries().await[0].attempts, 1);

    s.fx.clock.advance(30);
    s.wait_for("bob@gmail.com", "delivered", |e| {
        e.state() == DeliveryState::Delivered
    })
    .await;
    assert_eq!(s.entries().await[0].attempts, 2);
    let (to, subject, body) = only_mail(&sink);
    assert_eq!(to, "bob@gmail.com");
    assert!(subject.contains(&reference) && body.contains(&reference));
    let (status, v) = s
        .post(
            "/v1/otp/verify",
            json!({ "challenge": challenge, "code": code_in(&body) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeliverable_mail_is_given_up_at_its_age_limit() {
    if !sink_available() {
        return;
    }
    let s = setup().await;
    let port = free_port();
    let worker = s.worker(port, Duration::from_secs(120));
    let env = s.fx.seal(&Template::encrypt_only(), &["bob@gmail.com"], 3);
    s.start(&env, "bob@gmail.com").await;
    s.wait_for("bob@gmail.com", "retrying", |e| e.attempts == 1)
        .await;
    // Retries at +30, +90: both fail; the next would be after the 120 s limit.
    s.fx.clock.advance(30);
    s.wait_for("bob@gmail.com", "retrying again", |e| e.attempts == 2)
        .await;
    s.fx.clock.advance(60);
    s.wait_for("bob@gmail.com", "failed", |e| {
        e.state() == DeliveryState::Failed
    })
    .await;
    let e = s.entries().await.remove(0);
    assert_eq!(e.attempts, 3);
    assert_eq!(e.failed_at, Some(fixture::T0 + 90));
    assert_eq!(e.mail.body, "", "no code is kept once given up");

    // The relay coming up later changes nothing.
    let sink = Sink::start(port, &s.maildir());
    s.fx.clock.advance(3600);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sink.mails().is_empty());
    worker.stop().await;
}
