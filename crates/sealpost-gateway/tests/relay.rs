//! `relay`: the next-hop SMTP client against a real SMTP server, an aiosmtpd sink
//! (`tests/support/refusing_sink.py`, Debian's python3-aiosmtpd) on a loopback port: delivery
//! byte for byte, the null sender, several recipients, BODY=8BITMIME and SMTPUTF8, pooled
//! connections (a dead pooled connection is never used twice), refusals classified permanent (550) or transient (451), a refused connection
//! and a silent server (transient), and URL parsing.
//!
//! Without the sink the SMTP tests print a skip line and pass, unless `CI` is set: there they
//! fail (`scripts/smtp-sink.sh` installs the sink).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sealpost_gateway::relay::{HopSecurity, NextHop, Relay, RelayError};

mod support;

use support::{Sink, free_port, start_sink_with};

fn start_sink() -> Option<Sink> {
    start_sink_with(&[])
}

impl Sink {
    fn relay(&self) -> Relay {
        let mut hop = NextHop::parse(&format!("smtp://127.0.0.1:{}", self.port)).unwrap();
        hop.helo_name = "gateway.test".into();
        hop.timeout = Duration::from_secs(10);
        Relay::new(&hop).unwrap()
    }
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn delivers_byte_for_byte_with_8bitmime() {
    let Some(sink) = start_sink() else { return };
    let relay = sink.relay();
    let eight_bit = "From: a@acme.example\r\nTo: b@other.example\r\nSubject: caf\u{e9}\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nbinary \u{fffd}\r\nlast line\r\n".as_bytes();
    relay
        .send("a@acme.example", &rcpts(&["b@other.example"]), eight_bit)
        .await
        .unwrap();
    let seven_bit = b"From: a@acme.example\r\n\r\nno final line ending";
    relay
        .send("a@acme.example", &rcpts(&["b@other.example"]), seven_bit)
        .await
        .unwrap();
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].data, eight_bit, "byte for byte, dots unstuffed");
    assert_eq!(got[0].meta["mail_from"], "a@acme.example");
    assert_eq!(strings(&got[0].meta["rcpt_tos"]), ["b@other.example"]);
    assert_eq!(strings(&got[0].meta["mail_options"]), ["BODY=8BITMIME"]);
    assert_eq!(
        got[1].data,
        [&seven_bit[..], b"\r\n"].concat(),
        "SMTP ends the data with a line ending"
    );
    assert!(
        strings(&got[1].meta["mail_options"]).is_empty(),
        "7-bit: no BODY="
    );
}

#[tokio::test]
async fn null_sender_several_recipients_and_smtputf8() {
    let Some(sink) = start_sink() else { return };
    let relay = sink.relay();
    let data = b"From: MAILER-DAEMON@acme.example\r\nSubject: dsn\r\n\r\nreport\r\n";
    let to = rcpts(&[
        "one@other.example",
        "two@other.example",
        "three@acme.example",
    ]);
    relay.send("", &to, data).await.unwrap();
    relay
        .send(
            "j\u{f6}ran@acme.example",
            &rcpts(&["\u{e5}sa@other.example"]),
            data,
        )
        .await
        .unwrap();
    let got = sink.received();
    assert_eq!(got.len(), 2, "one transaction for all recipients");
    assert_eq!(got[0].meta["mail_from"], "<>");
    assert_eq!(strings(&got[0].meta["rcpt_tos"]), to);
    assert_eq!(got[0].data, data);
    assert_eq!(got[1].meta["mail_from"], "j\u{f6}ran@acme.example");
    assert_eq!(
        strings(&got[1].meta["rcpt_tos"]),
        ["\u{e5}sa@other.example"]
    );
    assert!(strings(&got[1].meta["mail_options"]).contains(&"SMTPUTF8".to_string()));
}

#[tokio::test]
async fn connections_are_pooled_and_clones_share_them() {
    let Some(sink) = start_sink() else { return };
    let relay = sink.relay();
    for i in 0..12 {
        let r = relay.clone();
        let data = format!("Subject: {i}\r\n\r\nbody {i}\r\n");
        r.send(
            "a@acme.example",
            &rcpts(&["b@other.example"]),
            data.as_bytes(),
        )
        .await
        .unwrap();
    }
    let got = sink.received();
    assert_eq!(got.len(), 12);
    let peers: HashSet<String> = got
        .iter()
        .map(|m| m.meta["peer"].as_str().unwrap().to_string())
        .collect();
    assert!(
        peers.len() <= 3,
        "sequential sends reuse pooled connections: {} connections for 12 messages",
        peers.len()
    );
}

#[tokio::test]
async fn a_connection_the_hop_closed_is_not_reused() {
    let Some(sink) = start_sink() else { return };
    let port = sink.port;
    let relay = sink.relay();
    let to = rcpts(&["b@other.example"]);
    let send = || relay.send("a@acme.example", &to, b"Subject: x\r\n\r\nbody\r\n");
    send().await.expect("first message");
    assert_eq!(relay.idle_connections(), 1, "kept for the next message");
    // The hop goes away and comes back: the pooled connection is dead.
    drop(sink);
    let sink = support::start_sink_on(port, &[]);
    // Reused at once (no NOOP within CHECK_AFTER): the transaction fails, transiently, and
    // the dead connection is not kept.
    let err = send().await.expect_err("the dead connection fails");
    assert!(!err.permanent, "{err:?}");
    assert_eq!(relay.idle_connections(), 0);
    send().await.expect("a new connection");
    assert_eq!(sink.received().len(), 1);
    // Idle longer than CHECK_AFTER: a NOOP finds the connection dead and a new one is
    // opened, so the message goes through without an error.
    drop(sink);
    let sink = support::start_sink_on(port, &[]);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    send()
        .await
        .expect("checked with NOOP, then a new connection");
    assert_eq!(sink.received().len(), 1);
}

#[tokio::test]
async fn refusals_are_classified_and_name_the_hop() {
    let Some(sink) = start_sink() else { return };
    let relay = sink.relay();
    let hop = format!("smtp://127.0.0.1:{}", sink.port);
    let data = b"Subject: s\r\n\r\nb\r\n";

    let e = relay
        .send("a@acme.example", &rcpts(&["perm1@other.example"]), data)
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
    assert_eq!(e.code, Some(550));
    assert_eq!(
        e.message,
        format!("next hop {hop} answered 550 5.1.1 <perm1@other.example>: mailbox unavailable")
    );

    let e = relay
        .send("a@acme.example", &rcpts(&["temp1@other.example"]), data)
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert_eq!(e.code, Some(451));
    assert!(
        e.message
            .starts_with(&format!("next hop {hop} answered 451 4.2.0")),
        "{e}"
    );

    // One transaction: one refused recipient fails it for all, and nothing is delivered.
    let mixed = rcpts(&[
        "ok@other.example",
        "perm2@other.example",
        "temp2@other.example",
    ]);
    let e = relay
        .send("a@acme.example", &mixed, data)
        .await
        .unwrap_err();
    assert!(e.permanent);
    assert!(sink.received().is_empty());

    // send_each: every recipient gets its own answer; the accepted one gets the mail once.
    let each = relay.send_each("a@acme.example", &mixed, data).await;
    assert_eq!(each.len(), 3);
    assert_eq!(each[0], ("ok@other.example".to_string(), Ok(())));
    assert!(each[1].1.as_ref().unwrap_err().permanent);
    assert!(!each[2].1.as_ref().unwrap_err().permanent);
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(strings(&got[0].meta["rcpt_tos"]), ["ok@other.example"]);

    // After refusals the pooled connection still works.
    relay
        .send("a@acme.example", &rcpts(&["ok@other.example"]), data)
        .await
        .unwrap();
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn unusable_addresses_are_permanent_and_never_sent() {
    let relay =
        Relay::new(&NextHop::parse(&format!("smtp://127.0.0.1:{}", free_port())).unwrap()).unwrap();
    let e = relay
        .send("not an address", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(e.permanent && e.code.is_none(), "{e}");
    assert!(e.message.contains("sender <not an address>"), "{e}");
    let e = relay
        .send("a@acme.example", &[], b"x\r\n")
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let port = free_port();
    let mut hop = NextHop::parse(&format!("smtp://127.0.0.1:{port}")).unwrap();
    hop.timeout = Duration::from_secs(5);
    let relay = Relay::new(&hop).unwrap();
    let e = relay
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert_eq!(e.code, None);
    assert!(
        e.message
            .starts_with(&format!("next hop smtp://127.0.0.1:{port}: ")),
        "{e}"
    );
}

#[tokio::test]
async fn silent_server_times_out_transiently() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            open.push(s); // never greets
        }
    });
    let mut hop = NextHop::parse(&format!("smtp://127.0.0.1:{port}")).unwrap();
    hop.timeout = Duration::from_millis(500);
    let relay = Relay::new(&hop).unwrap();
    let started = Instant::now();
    let e = relay
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        e.message
            .contains("timed out (no complete answer within 3s)"),
        "{e}"
    );
    // The pool was replaced: a working hop behind the same relay is not needed for this, but
    // a second send must fail the same way rather than hang on a stale connection.
    let e = relay
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(!e.permanent && e.message.contains("timed out"), "{e}");
}

#[test]
fn next_hop_urls() {
    let ok = |url: &str| NextHop::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let h = ok("smtp://127.0.0.1:10026");
    assert_eq!(
        (h.host.as_str(), h.port, h.security),
        ("127.0.0.1", 10026, HopSecurity::Plain)
    );
    assert_eq!(h.timeout, Duration::from_secs(60));
    assert!(!h.helo_name.is_empty());
    assert_eq!(h.describe(), "smtp://127.0.0.1:10026");
    let h = ok("smtp://mx.acme.example/");
    assert_eq!((h.port, h.security), (25, HopSecurity::Plain));
    let h = ok("smtp://mx.acme.example:2525?tls=opportunistic");
    assert_eq!(h.security, HopSecurity::StartTlsIfOffered);
    assert_eq!(
        h.describe(),
        "smtp://mx.acme.example:2525?tls=opportunistic"
    );
    assert_eq!(
        ok("smtp://mx.acme.example?tls=required").security,
        HopSecurity::StartTlsRequired
    );
    let h = ok("smtp+starttls://mx.acme.example:587");
    assert_eq!((h.port, h.security), (587, HopSecurity::StartTlsRequired));
    let h = ok("SMTPS://smarthost.example");
    assert_eq!((h.port, h.security), (465, HopSecurity::ImplicitTls));
    let h = ok("smtp://[::1]:2525");
    assert_eq!((h.host.as_str(), h.port), ("::1", 2525));
    assert_eq!(h.describe(), "smtp://[::1]:2525");
    for bad in [
        "",
        "127.0.0.1:25",
        "http://mx.example",
        "smtp://",
        "smtp://mx.example:0",
        "smtp://mx.example:99999",
        "smtp://mx.example:x",
        "smtp://user:pass@mx.example",
        "smtp://mx.example/ehlo-name",
        "smtp://mx.example?tls=maybe",
        "smtps://mx.example?tls=required",
        "smtp://mx example",
        "smtp://[::1",
    ] {
        let e = NextHop::parse(bad).expect_err(bad);
        assert!(matches!(e, RelayError::Url { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("expected smtp://HOST:PORT"), "{e}");
    }
}

/// A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files in a
/// directory that lives as long as the first value.
fn certificate_for_loopback() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let certs = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (certs, cert, key)
}

/// A relay to `url` without the sink's CA: the send fails as transient (the operator can fix
/// it) and the sink receives nothing more.
async fn untrusted_is_transient(url: &str, sink: &Sink) {
    let before = sink.received().len();
    let mut hop = NextHop::parse(url).unwrap();
    hop.timeout = Duration::from_secs(10);
    let e = Relay::new(&hop)
        .unwrap()
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(!e.permanent && e.code.is_none(), "{url}: {e}");
    assert_eq!(sink.received().len(), before, "{url}: nothing sent");
}

#[tokio::test]
async fn starttls_with_a_private_ca() {
    let (_certs, cert, key) = certificate_for_loopback();
    let Some(sink) = start_sink_with(&[&cert, &key]) else {
        return;
    };
    let data = b"Subject: tls\r\n\r\nover TLS\r\n";
    let to = rcpts(&["b@other.example"]);
    for url in [
        format!("smtp+starttls://127.0.0.1:{}", sink.port),
        format!("smtp://127.0.0.1:{}?tls=opportunistic", sink.port),
    ] {
        let mut hop = NextHop::parse(&url).unwrap();
        hop.ca_file = Some(cert.clone());
        hop.timeout = Duration::from_secs(10);
        Relay::new(&hop)
            .unwrap()
            .send("a@acme.example", &to, data)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.meta["tls"] == true && m.data == data));

    // Without the CA the certificate is not trusted: transient (the operator can fix it).
    untrusted_is_transient(&format!("smtp+starttls://127.0.0.1:{}", sink.port), &sink).await;
}

#[tokio::test]
async fn implicit_tls_with_a_private_ca() {
    let (_certs, cert, key) = certificate_for_loopback();
    let implicit = Path::new("implicit");
    let Some(sink) = start_sink_with(&[&cert, &key, implicit]) else {
        return;
    };
    let url = format!("smtps://127.0.0.1:{}", sink.port);
    let data = b"Subject: tls\r\n\r\nTLS from the first byte\r\n";
    let to = rcpts(&["b@other.example", "c@other.example"]);
    let mut hop = NextHop::parse(&url).unwrap();
    hop.ca_file = Some(cert.clone());
    hop.timeout = Duration::from_secs(10);
    let relay = Relay::new(&hop).unwrap();
    // Twice: the second copy goes over the pooled connection.
    for _ in 0..2 {
        relay
            .send("a@acme.example", &to, data)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|m| m.meta["tls"] == true && m.data == data));
    assert_eq!(got[0].meta["peer"], got[1].meta["peer"], "one connection");

    // Without the CA the certificate is not trusted: transient, and nothing is sent.
    untrusted_is_transient(&url, &sink).await;
}

#[tokio::test]
async fn starttls_required_but_not_offered_is_transient_and_sends_nothing() {
    let Some(sink) = start_sink() else { return };
    let mut hop = NextHop::parse(&format!("smtp+starttls://127.0.0.1:{}", sink.port)).unwrap();
    hop.timeout = Duration::from_secs(10);
    let e = Relay::new(&hop)
        .unwrap()
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap_err();
    assert!(!e.permanent, "{e}");
    assert!(sink.received().is_empty());
    // Opportunistic STARTTLS falls back to plain text.
    let mut hop =
        NextHop::parse(&format!("smtp://127.0.0.1:{}?tls=opportunistic", sink.port)).unwrap();
    hop.timeout = Duration::from_secs(10);
    Relay::new(&hop)
        .unwrap()
        .send("a@acme.example", &rcpts(&["b@other.example"]), b"x\r\n")
        .await
        .unwrap();
    assert_eq!(sink.received()[0].meta["tls"], false);
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let hop = NextHop::parse("smtp://127.0.0.1:2525").unwrap();
    assert!(matches!(Relay::new(&hop), Err(RelayError::NoRuntime)));
}

#[tokio::test]
async fn ca_file_must_hold_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let mut hop = NextHop::parse("smtp+starttls://127.0.0.1:2525").unwrap();
    hop.ca_file = Some(dir.path().join("missing.pem"));
    assert!(matches!(Relay::new(&hop), Err(RelayError::CaFile { .. })));
    std::fs::write(dir.path().join("empty.pem"), "not a certificate").unwrap();
    hop.ca_file = Some(dir.path().join("empty.pem"));
    let e = Relay::new(&hop).unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
    hop.ca_file = None;
    Relay::new(&hop).expect("web roots alone are fine");
}
