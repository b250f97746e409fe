//! `sealpost serve` for real on a loopback port, administered with the CLI: a tenant loaded at
//! start, an admin token, revocation and the audit trail through the HTTP API, the outbox.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{fails, ok};

/// Stops the server when the test ends, however it ends.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn get(port: u16, path: &str) -> Option<String> {
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
    crate::common::tenant(&dir, "tenant", "example.com", &[]);
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

/// Runs `sealpost ARGS` with extra environment variables; asserts success; returns stdout.
pub(crate) fn ok_env(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sealpost {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A JSON POST over a plain socket; returns the status code and the body.
pub(crate) fn post(
    port: u16,
    path: &str,
    bearer: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-Sealpost-Client: 1\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let json = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

pub(crate) fn start_serve(args: &[&str], kek: &str, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args(args)
        .env("SEALPOST_KEK", kek)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let start = Instant::now();
    while get(port, "/healthz").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "sealpost serve on {port} did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Two `sealpost serve` processes on one PostgreSQL database behave as one service: a passcode
/// issued by one verifies on the other, and a revocation made through one is refused by the
/// other at once. Runs when `SEALPOST_TEST_POSTGRES_URL` is set (scripts/test.sh sets it).
#[test]
fn two_instances_share_one_postgres() {
    use base64::Engine;
    let Some(db) = crate::common::test_postgres_url("the two-instance test") else {
        return;
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let domain = format!(
        "t{}-{}.example.com",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos()
    );
    crate::common::tenant(&dir, "tenant", &domain, &[]);
    let kek = b64.encode([7u8; 32]);
    let env = [("SEALPOST_KEK", kek.as_str())];
    let (pa, pb) = (free_port(), free_port());
    let la = format!("127.0.0.1:{pa}");
    let lb = format!("127.0.0.1:{pb}");
    let _a = start_serve(
        &[
            "serve",
            "--data",
            &d("a"),
            "--database-url",
            &db,
            "--tenant",
            &d("tenant"),
            "--listen",
            &la,
        ],
        &kek,
        pa,
    );
    let _b = start_serve(
        &[
            "serve",
            "--data",
            &d("b"),
            "--database-url",
            &db,
            "--listen",
            &lb,
        ],
        &kek,
        pb,
    );

    // A recipient of this run only: the passcode limit counts per address in the shared database.
    let bob = format!("bob@{domain}");
    let from = format!("From: alice@{domain}\nTo: {bob}\nSubject: s\n\nbody\n");
    let wrapper = ok(&["encrypt", "--tenant", &d("tenant")], from.as_bytes());
    let envelope = sealpost_core::mail::extract_envelope(&wrapper).unwrap();
    let e = sealpost_core::Envelope::parse(&envelope).unwrap();
    let (header, license) = (b64.encode(e.header_bytes()), b64.encode(e.license()));

    let (status, started) = post(
        pa,
        "/v1/otp/start",
        None,
        &serde_json::json!({"header": header, "license": license, "email": bob}),
    );
    assert_eq!(status, 200, "{started}");
    let outbox = ok_env(
        &[
            "outbox",
            "list",
            "--data",
            &d("a"),
            "--database-url",
            &db,
            "--limit",
            "1000",
        ],
        &env,
    );
    let reference = e.header().message_id.reference();
    let code = crate::common::passcode_for(&outbox, &reference);
    let (status, session) = post(
        pb,
        "/v1/otp/verify",
        None,
        &serde_json::json!({"challenge": started["challenge"], "code": code}),
    );
    assert_eq!(
        status, 200,
        "a code issued by one instance verifies on the other: {session}"
    );
    let session = session["session"].as_str().unwrap().to_string();

    let client = sealpost_core::rewrap::ClientSecretKey::derive(&[9u8; 32]);
    let rewrap = serde_json::json!({"header": header, "license": license, "client_public_key": b64.encode(client.public_key().to_bytes())});
    assert_eq!(post(pb, "/v1/rewrap", Some(&session), &rewrap).0, 200);

    let token = ok_env(
        &[
            "admin",
            "token",
            "create",
            "--data",
            &d("a"),
            "--database-url",
            &db,
            "--tenant-id",
            &domain,
        ],
        &env,
    );
    let id = e.header().message_id.to_hex();
    ok(
        &[
            "revoke",
            "--url",
            &format!("http://{la}"),
            "--token",
            token.trim(),
            &id,
        ],
        b"",
    );
    let (status, refused) = post(pb, "/v1/rewrap", Some(&session), &rewrap);
    assert_eq!(
        (status, refused["error"].as_str()),
        (410, Some("revoked")),
        "{refused}"
    );
}

/// `admin token create --role gateway` and the tenant's reply settings, end to end: the
/// tenant's `reply_url` in tenant info, a gateway token that the gateway endpoints accept and
/// the admin endpoints refuse (and the reverse), transport decryption as tenant.toml sets it,
/// and a bad `reply_url` refused by `tenant add`.
#[test]
fn gateway_tokens_and_reply_settings() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    let settings = [
        "--reply-url",
        "http://127.0.0.1:8090/",
        "--transport-decryption",
    ];
    crate::common::tenant(&dir, "tenant", "example.com", &settings);
    let kek = b64.encode([8u8; 32]);
    let env = [("SEALPOST_KEK", kek.as_str())];
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data = d("data");
    let args = [
        "serve",
        "--data",
        &data,
        "--tenant",
        &d("tenant"),
        "--listen",
        &listen,
    ];
    let _server = start_serve(&args, &kek, port);
    let info = get(port, "/v1/tenants/example.com").unwrap();
    assert!(
        info.contains("\"reply_url\":\"http://127.0.0.1:8090\""),
        "{info}"
    );

    let create = |extra: &[&str]| {
        let mut args = vec!["admin", "token", "create", "--data", &data];
        args.extend_from_slice(extra);
        ok_env(&args, &env).trim().to_string()
    };
    let gateway = create(&["--tenant", "example.com", "--role", "gateway"]);
    let admin = create(&["--tenant-id", "example.com"]);
    assert!(gateway.starts_with("spg_"), "{gateway}");
    assert!(admin.starts_with("spa_"), "{admin}");
    let args = [
        "admin",
        "token",
        "create",
        "--data",
        &data,
        "--tenant",
        "example.com",
    ];
    let usage = crate::common::sealpost(&[&args[..], &["--role", "root"]].concat(), b"");
    assert_eq!(usage.code, Some(2), "{}", usage.stderr);
    assert!(usage.stderr.contains("--role"), "{}", usage.stderr);

    let wrapper = ok(
        &["encrypt", "--tenant", &d("tenant")],
        b"From: alice@example.com\nTo: dave@example.com, bob@gmail.com\nSubject: s\n\nbody\n",
    );
    let envelope = sealpost_core::mail::extract_envelope(&wrapper).unwrap();
    let e = sealpost_core::Envelope::parse(&envelope).unwrap();
    let client = sealpost_core::rewrap::ClientSecretKey::derive(&[9u8; 32]);
    let body = serde_json::json!({
        "recipient": "dave@example.com",
        "header": b64.encode(e.header_bytes()),
        "license": b64.encode(e.license()),
        "client_public_key": b64.encode(client.public_key().to_bytes()),
    });
    let transport = "/v1/gateway/transport/rewrap";
    let (status, answer) = post(port, transport, Some(&gateway), &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["email"], "dave@example.com");
    let (status, answer) = post(port, transport, Some(&admin), &body);
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let id = e.header().message_id.to_hex();
    let url = format!("http://{listen}");
    let err = fails(&["revoke", "--url", &url, "--token", &gateway, &id], b"");
    assert!(err.contains("401"), "{err}");
    ok(&["revoke", "--url", &url, "--token", &admin, &id], b"");

    // A reply_url that is not an http(s) URL is refused with the file and the fix.
    let toml = dir.path().join("tenant/tenant.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains("reply_url = \"http://127.0.0.1:8090\""),
        "{text}"
    );
    assert!(text.contains("transport_decryption = true"), "{text}");
    let bad = text.replace("http://127.0.0.1:8090", "ftp://mail.example.com");
    std::fs::write(&toml, bad).unwrap();
    let err = fails(&["tenant", "add", "--data", &data, &d("tenant")], b"");
    assert!(
        err.contains("reply_url") && err.contains("is not an http(s) URL"),
        "{err}"
    );
}
