//! `sealpost serve --smtp-url` for real: the passcode mail goes through a real SMTP sink
//! (Debian's `python3-aiosmtpd`, writing a Maildir) on a loopback port, its code signs the
//! recipient in, and `sealpost outbox list` shows it delivered with its body removed.
//!
//! Without the sink the test prints a skip line and passes, unless `CI` is set: there it fails
//! (`scripts/smtp-sink.sh` installs the sink).

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;

use crate::common::ok;
use crate::keyservice::{free_port, ok_env, post, start_serve};

const PYTHON: &str = "/usr/bin/python3";

/// aiosmtpd, killed when dropped.
struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sink_available() -> bool {
    let found = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "the SMTP sink is missing: `apt-get install python3-aiosmtpd` (scripts/smtp-sink.sh does it)"
        );
    }
    if !found {
        eprintln!(
            "python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd): SMTP test skipped"
        );
    }
    found
}

fn start_sink(port: u16, maildir: &Path) -> Sink {
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
    let sink = Sink(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    sink
}

#[test]
fn serve_delivers_passcode_mail_over_smtp() {
    if !sink_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    crate::common::tenant(&dir, "tenant", "example.com", &[]);
    let smtp_port = free_port();
    let _sink = start_sink(smtp_port, &dir.path().join("maildir"));
    let kek = B64.encode([5u8; 32]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    let _server = start_serve(
        &[
            "serve",
            "--data",
            &d("data"),
            "--tenant",
            &d("tenant"),
            "--listen",
            &listen,
            "--smtp-url",
            &smtp_url,
            "--smtp-from",
            "Example Keys <keys@example.com>",
        ],
        &kek,
        port,
    );

    let wrapper = ok(
        &["encrypt", "--tenant", &d("tenant")],
        b"From: alice@example.com\nTo: bob@gmail.com\nSubject: s\n\nbody\n",
    );
    let envelope = sealpost_core::mail::extract_envelope(&wrapper).unwrap();
    let e = sealpost_core::Envelope::parse(&envelope).unwrap();
    let (header, license) = (B64.encode(e.header_bytes()), B64.encode(e.license()));
    let reference = e.header().message_id.reference();
    for email in ["eve@gmail.com", "bob@gmail.com"] {
        let (status, v) = post(
            port,
            "/v1/otp/start",
            None,
            &json!({"header": header, "license": license, "email": email}),
        );
        assert_eq!(status, 200, "{v}");
    }
    let (_, started) = post(
        port,
        "/v1/otp/start",
        None,
        &json!({"header": header, "license": license, "email": "bob@gmail.com"}),
    );

    // Both of bob's mails arrive; eve (not a recipient) gets none.
    let new = dir.path().join("maildir/new");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mails = loop {
        let mails: Vec<String> = std::fs::read_dir(&new)
            .map(|dir| {
                dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if mails.len() >= 2 {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "the passcode mail did not arrive"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_dir(&new).unwrap().count(),
        2,
        "no mail to eve"
    );
    let mut codes = Vec::new();
    for mail in &mails {
        assert!(mail.contains("X-RcptTo: bob@gmail.com"), "{mail}");
        assert!(mail.contains("<keys@example.com>"), "{mail}");
        assert!(
            mail.contains(&format!(
                "Subject: Your Sealpost passcode (message {reference})"
            )),
            "{mail}"
        );
        assert!(
            mail.contains(&format!("Message reference: {reference}")),
            "{mail}"
        );
        codes.extend(
            mail.lines()
                .map(str::trim)
                .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
                .map(String::from),
        );
    }
    assert_eq!(codes.len(), 2, "{mails:?}");
    // One of the two codes is for the latest challenge (the mails may arrive in any order).
    let session = codes.iter().find_map(|code| {
        let (status, v) = post(
            port,
            "/v1/otp/verify",
            None,
            &json!({"challenge": started["challenge"], "code": code}),
        );
        (status == 200).then_some(v)
    });
    assert_eq!(
        session.expect("a mailed code signs bob in")["email"],
        "bob@gmail.com"
    );

    // The outbox shows both mails delivered, codes removed, and no decoy.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = ok_env(&["outbox", "list", "--data", &d("data")], &[]);
        let delivered = listed.matches("[delivered ").count();
        if delivered == 2 {
            assert_eq!(listed.matches("--- #").count(), 2, "{listed}");
            assert!(!listed.contains("eve@gmail.com"), "{listed}");
            assert!(
                !codes.iter().any(|c| listed.contains(c.as_str())),
                "{listed}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not marked delivered: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
