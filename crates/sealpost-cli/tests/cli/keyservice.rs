//! `sealpost serve` for real on a loopback port, administered with the CLI: a tenant loaded at
//! start, an admin token, revocation and the audit trail through the HTTP API, the outbox.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fails, ok};

/// Stops the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serve_revoke_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    ok(
        &[
            "tenant",
            "init",
            "--dir",
            &d("tenant"),
            "--domain",
            "example.com",
        ],
        b"",
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args([
            "serve",
            "--data",
            &d("data"),
            "--tenant",
            &d("tenant"),
            "--listen",
            &listen,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let start = Instant::now();
    while get(port, "/healthz").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sealpost serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let info = get(port, "/v1/tenants/example.com").unwrap();
    assert!(info.contains("\"tenant_id\":\"example.com\""), "{info}");

    let token = String::from_utf8(ok(
        &[
            "admin",
            "token",
            "create",
            "--data",
            &d("data"),
            "--tenant-id",
            "example.com",
        ],
        b"",
    ))
    .unwrap();
    let token = token.trim();
    assert!(token.starts_with("spa_"));
    let wrapper = ok(
        &["encrypt", "--tenant", &d("tenant")],
        b"From: alice@example.com\nTo: bob@gmail.com\nSubject: s\n\nbody\n",
    );
    let header: serde_json::Value =
        serde_json::from_slice(&ok(&["inspect", "-"], &wrapper)).unwrap();
    let id = header["message_id"].as_str().unwrap();
    let url = format!("http://{listen}");
    let remote = |cmd: &str| ok(&[cmd, "--url", &url, "--token", token, id], b"");
    assert_eq!(
        String::from_utf8(remote("revoke")).unwrap(),
        format!("message {id} revoked\n")
    );
    assert_eq!(
        String::from_utf8(remote("revoke")).unwrap(),
        format!("message {id} was already revoked\n")
    );
    let audit: serde_json::Value = serde_json::from_slice(&remote("audit")).unwrap();
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"], "revoked");

    let err = fails(&["revoke", "--url", &url, "--token", "spa_wrong", id], b"");
    assert!(err.contains("401") && err.contains("admin token"), "{err}");
    let err = fails(&["audit", "--url", &url, "--token", token, "not-hex"], b"");
    assert!(err.contains("400"), "{err}");
    let dead = format!("http://127.0.0.1:{}", free_port());
    let err = fails(&["revoke", "--url", &dead, "--token", token, id], b"");
    assert!(err.contains("cannot reach the key service"), "{err}");

    // No passcode was requested: the outbox is empty, and listing it works while serving.
    assert!(ok(&["outbox", "list", "--data", &d("data")], b"").is_empty());
}
