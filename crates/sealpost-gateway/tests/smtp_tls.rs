//! STARTTLS over an in-memory stream with a self-signed certificate (rcgen) and a
//! tokio-rustls client, including the STARTTLS command-injection attack, and `load_tls`'s
//! errors.

mod smtp_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::ServerName;
use sealpost_gateway::smtp::{SmtpConfig, TlsError, load_tls};
use smtp_support::{Client, Mode, Recorder, config, start};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

struct Certs {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    der: rustls_pki_types::CertificateDer<'static>,
}

fn certs() -> Certs {
    let certified = rcgen::generate_simple_self_signed(vec!["mail.example".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Certs {
        der: certified.cert.der().clone(),
        _dir: dir,
        cert,
        key,
    }
}

fn tls_config(certs: &Certs) -> SmtpConfig {
    SmtpConfig {
        tls: Some(load_tls(&certs.cert, &certs.key).unwrap()),
        ..config()
    }
}

fn connector(certs: &Certs) -> tokio_rustls::TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(certs.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// After the 220 to STARTTLS: checks nothing else was sent in plaintext, and does the handshake.
async fn upgrade(
    c: Client<tokio::io::DuplexStream>,
    certs: &Certs,
) -> Client<tokio_rustls::client::TlsStream<tokio::io::DuplexStream>> {
    assert!(
        c.stream.buffer().is_empty(),
        "plaintext after the 220: {:?}",
        String::from_utf8_lossy(c.stream.buffer())
    );
    let name = ServerName::try_from("mail.example").unwrap();
    let tls = connector(certs)
        .connect(name, c.stream.into_inner())
        .await
        .unwrap();
    Client::new(tls)
}

#[tokio::test]
async fn starttls_upgrades_and_resets_the_session() {
    let certs = certs();
    let handler = Recorder::new(Mode::Accept);
    let (mut c, session) = start(tls_config(&certs), handler.clone()).await;
    let ehlo = c.cmd("EHLO before.example", "250-gw.example").await;
    assert!(ehlo.ends_with("250 STARTTLS"), "{ehlo}");
    c.cmd("MAIL FROM:<a@b.example>", "250").await;
    c.cmd("STARTTLS", "503 5.5.1").await;
    c.cmd("RSET", "250").await;
    c.cmd("STARTTLS now", "501 5.5.4").await;
    c.cmd("STARTTLS", "220 2.0.0").await;
    let mut c = upgrade(c, &certs).await;
    c.cmd("MAIL FROM:<a@b.example>", "503 5.5.1").await;
    let ehlo = c.cmd("EHLO after.example", "250-gw.example").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.cmd("STARTTLS", "554 5.5.1").await;
    let reply = c
        .transaction("a@b.example", &["c@d.example"], "Subject: tls\r\n\r\nx\r\n")
        .await;
    assert_eq!(reply, "250 2.0.0 Ok: queued as Q1");
    c.cmd("QUIT", "221").await;
    session.await.unwrap().unwrap();
    let (tx, data) = &handler.delivered()[0];
    assert!(tx.tls);
    assert_eq!(tx.helo, "after.example");
    assert_eq!(data, b"Subject: tls\r\n\r\nx\r\n");
    // (The tap under TLS sees ciphertext, so only the id is checked here.)
    let acked: Vec<String> = handler.acked().into_iter().map(|(id, _)| id).collect();
    assert_eq!(acked, ["Q1"]);
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_not_executed() {
    let certs = certs();
    let handler = Recorder::new(Mode::Accept);
    let (mut c, _session) = start(tls_config(&certs), handler.clone()).await;
    c.cmd("EHLO c", "250").await;
    // A man in the middle appends plaintext commands after the client's STARTTLS.
    c.send(
        "STARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<v@y.example>\r\n",
    )
    .await;
    c.expect("220 2.0.0").await;
    let mut c = upgrade(c, &certs).await;
    // The first reply inside TLS must be the one to our EHLO, not to an injected command.
    c.cmd("EHLO good.example", "250-gw.example").await;
    c.cmd("RCPT TO:<v@y.example>", "503 5.5.1").await;
    let reply = c
        .transaction("a@b.example", &["c@d.example"], "x\r\n")
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let delivered = handler.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].0.mail_from, "a@b.example");
    assert_eq!(delivered[0].0.helo, "good.example");
    assert_eq!(delivered[0].0.recipients, ["c@d.example"]);
}

#[tokio::test]
async fn a_failed_handshake_ends_the_session_with_an_error() {
    let certs = certs();
    let (mut c, session) = start(tls_config(&certs), Recorder::new(Mode::Accept)).await;
    c.cmd("STARTTLS", "220 2.0.0").await;
    c.send("this is not a TLS client hello\r\n").await;
    let result = session.await.unwrap();
    assert!(
        matches!(
            result,
            Err(sealpost_gateway::smtp::SessionError::TlsHandshake(_))
        ),
        "{result:?}"
    );
}

fn error_text(cert: &Path, key: &Path) -> (TlsError, String) {
    let e = load_tls(cert, key).unwrap_err();
    let text = e.to_string();
    (e, text)
}

#[test]
fn load_tls_names_the_file_and_the_problem() {
    let certs = certs();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all\n").unwrap();

    let (e, text) = error_text(&missing, &certs.key);
    assert!(matches!(e, TlsError::Certificate { .. }), "{e:?}");
    assert!(
        text.contains("missing.pem") && text.contains("cannot read"),
        "{text}"
    );

    let (e, text) = error_text(&garbage, &certs.key);
    assert!(matches!(e, TlsError::Certificate { .. }), "{e:?}");
    assert!(
        text.contains("garbage.pem") && text.contains("no PEM certificate"),
        "{text}"
    );

    let (e, text) = error_text(&certs.cert, &certs.cert);
    assert!(matches!(e, TlsError::Key { .. }), "{e:?}");
    assert!(
        text.contains("cert.pem") && text.contains("no PEM private key"),
        "{text}"
    );

    let (e, text) = error_text(&certs.cert, &missing);
    assert!(matches!(e, TlsError::Key { .. }), "{e:?}");
    assert!(text.contains("missing.pem"), "{text}");

    let other = self::certs();
    let (e, text) = error_text(&certs.cert, &other.key);
    assert!(matches!(e, TlsError::Config { .. }), "{e:?}");
    assert!(
        text.contains("cert.pem") && text.contains("key.pem"),
        "{text}"
    );

    assert!(load_tls(&certs.cert, &certs.key).is_ok());
}
