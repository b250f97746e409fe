//! The reply endpoint's transport and limits, through the whole gateway (`daemon::run_until`)
//! with a real key service in-process (`support/pair.rs`):
//!
//! - HTTPS with `reply_tls_cert`/`reply_tls_key` (a self-signed rcgen certificate that a
//!   reqwest client trusts): preflight and a refused POST answered over TLS with ALPN
//!   `http/1.1`; plain HTTP to the same port gets nothing; a client stuck in its handshake holds
//!   up no one; a missing or invalid certificate or key refuses to start, naming the file;
//! - `reply_max_in_flight`: with one slot held by a request whose body never comes, the next
//!   request gets 503 `overloaded` with `Retry-After: 1` at once (and CORS headers);
//! - `reply_request_timeout`: that held request gets 408 `request_timeout`, and its slot is
//!   free again.
//!
//! No SMTP sink is needed: nothing here is relayed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::WrapperSettings;
use sealpost_core::{LicenseSecretKey, SigningKey};
use sealpost_gateway::config::load_str;
use sealpost_gateway::daemon::{Options, RunError, run_until};
use sealpost_gateway::keyservice::{GatewayToken, KeyServiceClient};
use sealpost_gateway::process::{Processor, Protector};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

#[path = "support/pair.rs"]
mod pair;
mod support;

use pair::{Gw, Ks, PORTAL, RULES};
use support::free_port;

/// The name in the test certificate; the clients resolve it to 127.0.0.1.
const HOST: &str = "gateway.test";

struct Certs {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: Vec<u8>,
}

fn certs() -> Certs {
    let certified = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("reply-cert.pem");
    let key = dir.path().join("reply-key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Certs {
        der: certified.cert.der().to_vec(),
        dir,
        cert,
        key,
    }
}

/// A client that trusts `certs` and finds [`HOST`] at the gateway's reply port.
fn https_client(certs: &Certs, port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&certs.der).unwrap())
        .resolve(HOST, ([127, 0, 0, 1], port).into())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_endpoint_and_plain_http_gets_nothing() {
    let certs = certs();
    let ks = Ks::start(false).await;
    let extra = format!(
        "reply_tls_cert = \"{}\"\nreply_tls_key = \"{}\"",
        certs.cert.display(),
        certs.key.display()
    );
    let gw = Gw::start(&ks, free_port(), false, &extra).await;
    let url = format!("https://{HOST}:{}/v1/replies", gw.reply);

    // A client stuck before its ClientHello for the whole test.
    let stalled = TcpStream::connect(("127.0.0.1", gw.reply)).await.unwrap();

    let client = https_client(&certs, gw.reply);
    let preflight = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", PORTAL)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,x-sealpost-client",
        )
        .send()
        .await
        .expect("the preflight is answered over HTTPS");
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(preflight.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        PORTAL,
        "{preflight:?}"
    );

    // A POST without a session goes through the whole handler: refused with its code.
    let resp = client
        .post(&url)
        .header("Origin", PORTAL)
        .header("X-Sealpost-Client", "1")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(json_of(resp).await["error"], "not_signed_in");

    // The handshake of the stalled client is still pending (its connection neither answered
    // nor closed): the requests above did not wait for it.
    let mut buf = [0u8; 64];
    match stalled.try_read(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the stalled connection should still be waiting, got {other:?}"),
    }

    // Plain HTTP to the HTTPS port: no answer a client could take for HTTP.
    let plain = reqwest::Client::builder()
        .resolve(HOST, ([127, 0, 0, 1], gw.reply).into())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let refused = plain
        .post(format!("http://{HOST}:{}/v1/replies", gw.reply))
        .header("X-Sealpost-Client", "1")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await;
    assert!(refused.is_err(), "plain HTTP was answered: {refused:?}");
    // A raw plaintext request gets no HTTP status line either.
    let mut raw = TcpStream::connect(("127.0.0.1", gw.reply)).await.unwrap();
    raw.write_all(b"GET /v1/replies HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), raw.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );

    // And the endpoint still serves HTTPS after those failed handshakes.
    let again = client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", PORTAL)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(again.status().is_success());

    // Stopping does not wait for the stalled handshake.
    gw.stop().await;
    drop(stalled);
}

/// Starts the gateway with `extra` `[gateway]` lines (paths relative to `dir`) and returns
/// why it refused to start.
async fn start_error(dir: &Path, extra: &str) -> RunError {
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:{}\"\nmetrics_listen = \"127.0.0.1:{}\"\n\
         next_hop = \"smtp://127.0.0.1:{}\"\ntenant = \"tenant\"\nspool_dir = \"spool\"\n\
         reply_listen = \"127.0.0.1:{}\"\nreply_from = \"noreply@acme.example\"\n\
         key_service_url = \"http://127.0.0.1:9\"\nkey_service_token_file = \"token\"\n\
         {extra}\n{RULES}",
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let loaded = load_str(&text, dir).expect("the configuration itself is fine");
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let license = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let processor = Processor {
        rules: loaded.rules,
        protector: Protector {
            tenant_id: pair::TENANT.into(),
            key_service_url: pair::KS_URL_IN_HEADERS.into(),
            license_key: license.public_key(),
            verifying_keys: vec![signing.verifying_key()],
            signing_key: signing,
            wrapper: WrapperSettings {
                organization: "Acme".into(),
                portal_url: format!("{PORTAL}/"),
                show_subject: true,
                replacement_subject: "Protected message".into(),
            },
        },
        broken_mime: loaded.gateway.broken_mime,
        transport_decryption: false,
    };
    let client = KeyServiceClient::new(
        "http://127.0.0.1:9",
        GatewayToken::new("sgt_test").unwrap(),
        Duration::from_secs(1),
    )
    .unwrap();
    let (_stop, rx) = watch::channel(false);
    let run = run_until(
        Options {
            config: loaded.gateway,
            processor,
            clock: Arc::new(|| pair::T0),
            key_service: Some(client),
        },
        rx,
    );
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Err(e)) => e,
        Ok(Ok(())) => panic!("the gateway ran and stopped"),
        Err(_) => panic!("the gateway started"),
    }
}

#[tokio::test]
async fn a_missing_or_invalid_certificate_or_key_refuses_to_start() {
    let certs = certs();
    let dir = certs.dir.path();
    std::fs::write(dir.join("garbage.pem"), "not a certificate\n").unwrap();
    let other = rcgen::generate_simple_self_signed(vec![HOST.to_owned()]).unwrap();
    std::fs::write(dir.join("other-key.pem"), other.signing_key.serialize_pem()).unwrap();
    let cases = [
        // Relative paths are the configuration file's directory's.
        (
            "reply_tls_cert = \"missing.pem\"\nreply_tls_key = \"reply-key.pem\"",
            "missing.pem",
            "cannot read it",
        ),
        (
            "reply_tls_cert = \"reply-cert.pem\"\nreply_tls_key = \"missing.key\"",
            "missing.key",
            "cannot read it",
        ),
        (
            "reply_tls_cert = \"garbage.pem\"\nreply_tls_key = \"reply-key.pem\"",
            "garbage.pem",
            "no PEM certificate",
        ),
        (
            "reply_tls_cert = \"reply-cert.pem\"\nreply_tls_key = \"garbage.pem\"",
            "garbage.pem",
            "no PEM private key",
        ),
        // A key of another certificate.
        (
            "reply_tls_cert = \"reply-cert.pem\"\nreply_tls_key = \"other-key.pem\"",
            "other-key.pem",
            "with key",
        ),
        // The key file holds a certificate, not a key.
        (
            "reply_tls_cert = \"reply-cert.pem\"\nreply_tls_key = \"reply-cert.pem\"",
            "reply-cert.pem",
            "private key",
        ),
    ];
    for (extra, file, why) in cases {
        let e = start_error(dir, extra).await;
        assert!(matches!(e, RunError::ReplyTls(_)), "{extra}: {e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("reply endpoint HTTPS (reply_tls_cert, reply_tls_key): ")
                && shown.contains(&dir.join(file).display().to_string())
                && shown.contains(why),
            "{extra}: {shown}"
        );
    }
}

/// Reads one HTTP/1.1 response (status, lower-cased header lines, body) from `s`.
async fn read_response(s: &mut TcpStream) -> (u16, Vec<String>, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the answer: {data:?}");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(data[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<String> = lines.map(str::to_ascii_lowercase).collect();
    let length: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = data[end..].to_vec();
    while body.len() < length {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed in the body");
        body.extend_from_slice(&buf[..n]);
    }
    (status, headers, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_endpoint_sheds_at_once_and_a_slow_body_times_out() {
    let ks = Ks::start(false).await;
    let gw = Gw::start(
        &ks,
        free_port(),
        false,
        "reply_max_in_flight = 1\nreply_request_timeout = \"1s\"",
    )
    .await;

    // A request that takes the only slot: it passes the header checks, then its body never
    // comes. The 100 Continue says the handler is reading the body, so it holds the slot.
    let mut held = TcpStream::connect(("127.0.0.1", gw.reply)).await.unwrap();
    held.write_all(
        b"POST /v1/replies HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
          X-Sealpost-Client: 1\r\nAuthorization: Bearer sps_slow\r\nContent-Length: 100\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(30), read_response(&mut held))
        .await
        .expect("the handler reads the body");
    assert_eq!(status, 100);

    // The next request is turned away at once, with CORS headers the portal can read.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let shed = client
        .post(gw.replies_url())
        .header("Origin", PORTAL)
        .header("X-Sealpost-Client", "1")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_eq!(shed.headers()["access-control-allow-origin"], PORTAL);
    assert_eq!(shed.headers()["cache-control"], "no-store");
    let v = json_of(shed).await;
    assert_eq!(v["error"], "overloaded");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");

    // The held request is cut off after reply_request_timeout: 408, JSON, nothing queued.
    let (status, headers, body) =
        tokio::time::timeout(Duration::from_secs(30), read_response(&mut held))
            .await
            .expect("the slow request is cut off");
    assert_eq!(status, 408, "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|h| h == "content-type: application/json")
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"], "request_timeout", "{v}");
    assert_eq!(gw.queued(), 0);

    // The slot is free again: the next request reaches the handler (and lacks a session).
    let resp = client
        .post(gw.replies_url())
        .header("X-Sealpost-Client", "1")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(json_of(resp).await["error"], "not_signed_in");

    for (code, n) in [("overloaded", 1), ("request_timeout", 1)] {
        let series =
            format!("sealpost_gateway_replies_total{{result=\"refused\",code=\"{code}\"}}");
        assert_eq!(gw.metric(&series).await, n, "{series}");
    }
    gw.stop().await;
}
