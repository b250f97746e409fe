//! The whole gateway in one process (`daemon::run_until`): SMTP in, rules, encryption, spool,
//! relay to a real SMTP sink (Debian's python3-aiosmtpd running `tests/support/refusing_sink.py`),
//! retries, bounces, restart, and the metrics endpoint. Time is a test clock, moved by hand.
//!
//! The same with `relay_first = true` (relay before answering) is in `relay_first.rs`.
//!
//! With `CI` set a missing sink fails the tests; otherwise they are skipped with a message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::{WrapperSettings, extract_envelope};
use sealpost_core::{Envelope as Sealed, LicenseSecretKey, SigningKey, open_with_tenant_keys};
use sealpost_gateway::config::load_str;
use sealpost_gateway::daemon::{Options, run_until};
use sealpost_gateway::process::{Processor, Protector};
use sealpost_gateway::relay::{NextHop, Relay};
use sealpost_gateway::spool::{PartStatus, Spool};
use tokio::sync::watch;

#[path = "../support/mod.rs"]
mod support;

mod relay_first;

use support::{free_port, sink_available, start_sink_on, wait_for_port};

const START: u64 = 1_800_000_000;

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Block Secret"
priority = 1
conditions = { recipient_scope = "outside", classification = "Secret" }
actions = { reject = "Secret mail stays inside Acme" }

[[rules]]
name = "Blocked recipient"
priority = 2
conditions = { recipient = "blocked@other.example" }
actions = { reject = "This recipient is blocked" }

[[rules]]
name = "Protect outside"
priority = 10
conditions = { recipient_scope = "outside" }
actions = { encrypt = "Do-Not-Forward" }
"#;

fn rcpts(meta: &serde_json::Value) -> Vec<String> {
    meta["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

struct Keys {
    license: LicenseSecretKey,
    signing: SigningKey,
}

fn keys() -> Keys {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    Keys {
        license: LicenseSecretKey::generate(&mut rng),
        signing: SigningKey::generate(&mut rng),
    }
}

/// A running gateway: its ports, spool, clock and stop switch.
struct Gateway {
    smtp: u16,
    metrics: u16,
    spool: PathBuf,
    clock: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    /// The spool's temporary directory, when the gateway owns it (removed when dropped).
    _spool_dir: Option<tempfile::TempDir>,
}

impl Gateway {
    async fn start(k: &Keys, next_hop_port: u16, spool: &Path, clock: Arc<AtomicU64>) -> Gateway {
        Gateway::start_with(k, next_hop_port, spool, clock, "").await
    }

    /// Like `start`, with `extra` lines in the `[gateway]` table.
    async fn start_with(
        k: &Keys,
        next_hop_port: u16,
        spool: &Path,
        clock: Arc<AtomicU64>,
        extra: &str,
    ) -> Gateway {
        let (smtp, metrics) = (free_port(), free_port());
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:{smtp}\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n\
             next_hop = \"smtp://127.0.0.1:{next_hop_port}\"\ntenant = \"tenant\"\n\
             hostname = \"gateway.acme.example\"\nspool_dir = \"{}\"\n\
             retry_first = \"60s\"\nretry_max = \"10m\"\nbounce_after = \"1h\"\n{extra}\n{RULES}",
            spool.display()
        );
        let loaded = load_str(&text, Path::new("/nonexistent")).expect("the test config loads");
        let processor = Processor {
            rules: loaded.rules,
            protector: Protector {
                tenant_id: "acme.example".into(),
                key_service_url: "https://keys.acme.example".into(),
                license_key: k.license.public_key(),
                signing_key: k.signing.clone(),
                verifying_keys: vec![k.signing.verifying_key()],
                wrapper: WrapperSettings {
                    organization: "Acme".into(),
                    portal_url: "https://portal.acme.example/".into(),
                    show_subject: true,
                    replacement_subject: "Protected message".into(),
                },
            },
            broken_mime: loaded.gateway.broken_mime,
            transport_decryption: false,
        };
        let c = clock.clone();
        let opts = Options {
            config: loaded.gateway,
            processor,
            clock: Arc::new(move || c.load(Ordering::SeqCst)),
            key_service: None,
        };
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            run_until(opts, rx).await.expect("the gateway runs");
        });
        wait_for_port(smtp);
        Gateway {
            smtp,
            metrics,
            spool: spool.to_path_buf(),
            clock,
            stop,
            task,
            _spool_dir: None,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the gateway stops")
            .unwrap();
    }

    async fn send(
        &self,
        from: &str,
        to: &[&str],
        raw: &[u8],
    ) -> Result<(), lettre::transport::smtp::Error> {
        let t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.smtp)
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let env = Envelope::new(
            Some(from.parse::<Address>().unwrap()),
            to.iter().map(|t| t.parse().unwrap()).collect(),
        )
        .unwrap();
        // SMTP ends the data with its own line ending: send the message without its last one.
        let raw = raw.strip_suffix(b"\r\n").unwrap_or(raw);
        t.send_raw(&env, raw).await.map(|_| ())
    }

    fn queue(&self) -> Vec<sealpost_gateway::spool::EntrySummary> {
        Spool::open(&self.spool).unwrap().list().unwrap()
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = reqwest_metrics(self.metrics).await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("sealpost_gateway_{name} ")))
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// A gateway (with `extra` lines in its `[gateway]` table) relaying to a fresh sink, its keys
/// and spool; `None` when the sink is not installed (the test is skipped).
struct Running {
    k: Keys,
    sink: support::Sink,
    g: Gateway,
}

async fn running(extra: &str) -> Option<Running> {
    if !sink_available() {
        return None;
    }
    let k = keys();
    let sink = start_sink_on(free_port(), &[]);
    let spool = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(START));
    let mut g = Gateway::start_with(&k, sink.port, spool.path(), clock, extra).await;
    g._spool_dir = Some(spool);
    Some(Running { k, sink, g })
}

/// GET /metrics with a plain HTTP/1.0 request.
async fn reqwest_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    out
}

/// Waits until `f` holds, for at most 30 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mail(subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@acme.example>\r\nTo: bob@other.example, carol@acme.example\r\n\
         Subject: {subject}\r\nMessage-ID: <{subject}@acme.example>\r\n{extra}\r\nHello Bob.\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_encrypts_relays_and_counts() {
    let Some(Running { k, sink, g }) = running("").await else {
        return;
    };
    let raw = mail("split", "");
    g.send(
        "alice@acme.example",
        &["bob@other.example", "carol@acme.example"],
        &raw,
    )
    .await
    .expect("accepted");
    eventually("two copies at the sink", || sink.received().len() == 2).await;
    let got = sink.received();
    let (wrapper, original): (Vec<_>, Vec<_>) = got
        .iter()
        .partition(|r| String::from_utf8_lossy(&r.data).contains("X-Sealpost-Envelope"));
    assert_eq!(rcpts(&wrapper[0].meta), ["bob@other.example"]);
    assert_eq!(rcpts(&original[0].meta), ["carol@acme.example"]);
    assert_eq!(
        original[0].data, raw,
        "the internal copy is the original byte for byte"
    );
    let bytes = extract_envelope(&wrapper[0].data).unwrap();
    let sealed = Sealed::parse(&bytes).unwrap();
    let opened = open_with_tenant_keys(
        &sealed,
        &[k.signing.verifying_key()],
        std::slice::from_ref(&k.license),
    )
    .unwrap();
    assert_eq!(
        opened.plaintext.as_slice(),
        raw.as_slice(),
        "the wrapper decrypts to the original"
    );
    eventually("an empty queue", || g.queue().is_empty()).await;
    assert_eq!(g.metric("messages_in_total").await, 1);
    assert_eq!(g.metric("encrypted_total").await, 1);
    assert_eq!(g.metric("passed_total").await, 1);
    assert_eq!(g.metric("delivered_total").await, 2);
    assert_eq!(g.metric("queue_size").await, 0);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_rejections_answer_550_or_bounce_the_refused_recipients() {
    let Some(Running { sink, g, .. }) = running("").await else {
        return;
    };
    // Every recipient refused: the whole message gets 550 with the rule's text.
    let err = g
        .send(
            "alice@acme.example",
            &["bob@other.example"],
            &mail("secret", "X-Classification: Secret\r\n"),
        )
        .await
        .expect_err("refused");
    assert!(err.is_permanent(), "{err}");
    assert!(
        err.to_string().contains("Secret mail stays inside Acme"),
        "{err}"
    );
    // One refused, one accepted: 250, the accepted copy goes out, the sender gets a DSN.
    g.send(
        "alice@acme.example",
        &["blocked@other.example", "carol@acme.example"],
        &mail("partial", ""),
    )
    .await
    .expect("accepted for carol");
    eventually("copy and notification at the sink", || {
        sink.received().len() == 2
    })
    .await;
    let got = sink.received();
    let dsn = got
        .iter()
        .find(|r| r.meta["mail_from"].as_str() == Some("<>"))
        .expect("a notification with the null sender");
    assert_eq!(rcpts(&dsn.meta), ["alice@acme.example"]);
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(
        text.contains("blocked@other.example") && text.contains("This recipient is blocked"),
        "{text}"
    );
    assert!(
        !text.contains("Hello Bob"),
        "a notification never carries the body"
    );
    assert_eq!(g.metric("rejected_total").await, 1);
    assert_eq!(g.metric("recipients_rejected_total").await, 1);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_hop_refusals_defer_retry_and_bounce() {
    let Some(Running { sink, g, .. }) = running("").await else {
        return;
    };
    // The sink refuses "perm…" with 550 and "temp…" with 451 (both inside: originals).
    g.send(
        "alice@acme.example",
        &["perm@acme.example"],
        &mail("perm", ""),
    )
    .await
    .expect("accepted");
    g.send(
        "alice@acme.example",
        &["temp@acme.example"],
        &mail("temp", ""),
    )
    .await
    .expect("accepted");
    // The permanent refusal bounces at once: a DSN to alice reaches the sink.
    eventually("the DSN for perm@", || {
        sink.received().iter().any(|r| {
            let (m, d) = (&r.meta, &r.data);
            m["mail_from"] == "<>" && String::from_utf8_lossy(d).contains("perm@acme.example")
        })
    })
    .await;
    // The transient one waits in the queue with its error.
    eventually("temp@ deferred", || {
        g.queue().iter().any(|e| {
            e.parts[0].recipients == ["temp@acme.example"]
                && e.parts[0].attempts == 1
                && e.parts[0]
                    .last_error
                    .as_deref()
                    .is_some_and(|m| m.contains("451"))
        })
    })
    .await;
    assert_eq!(g.metric("bounced_total").await, 1);
    assert!(g.metric("deferred_total").await >= 1);
    // Not retried before its time (60 s), retried after it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        g.queue()[0].parts[0].attempts,
        1,
        "no retry before retry_first"
    );
    g.clock.fetch_add(61, Ordering::SeqCst);
    eventually("a second attempt", || g.queue()[0].parts[0].attempts == 2).await;
    // After bounce_after (1 h) the next failure gives up and notifies the sender.
    g.clock.fetch_add(3600, Ordering::SeqCst);
    eventually("temp@ bounced", || g.queue().is_empty()).await;
    eventually("the DSN for temp@", || {
        sink.received().iter().any(|r| {
            let (m, d) = (&r.meta, &r.data);
            m["mail_from"] == "<>" && String::from_utf8_lossy(d).contains("temp@acme.example")
        })
    })
    .await;
    assert_eq!(g.metric("bounced_total").await, 2);
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hop_refusing_some_recipients_delays_or_bounces_only_those() {
    let Some(Running { sink, g, .. }) = running("").await else {
        return;
    };
    // One copy (all inside, the original) for three recipients; the sink refuses perm… for
    // good and temp… for now.
    g.send(
        "alice@acme.example",
        &[
            "carol@acme.example",
            "perm@acme.example",
            "temp@acme.example",
        ],
        &mail("some", ""),
    )
    .await
    .expect("accepted");
    eventually("carol's copy and the DSN for perm@", || {
        let got = sink.received();
        got.iter().any(|r| rcpts(&r.meta) == ["carol@acme.example"])
            && got.iter().any(|r| r.meta["mail_from"] == "<>")
    })
    .await;
    let got = sink.received();
    let dsn = got.iter().find(|r| r.meta["mail_from"] == "<>").unwrap();
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(text.contains("perm@acme.example"), "{text}");
    assert!(
        !text.contains("Final-Recipient: rfc822; carol@")
            && !text.contains("Final-Recipient: rfc822; temp@"),
        "only perm@ is reported:\n{text}"
    );
    // temp@ waits alone in a new entry, retried after retry_first.
    eventually("temp@ deferred on its own", || {
        let q = g.queue();
        q.len() == 1
            && q[0].parts[0].recipients == ["temp@acme.example"]
            && q[0].parts[0].attempts == 1
    })
    .await;
    assert_eq!(
        got.iter()
            .filter(|r| rcpts(&r.meta) == ["carol@acme.example"])
            .count(),
        1,
        "carol gets the message once"
    );
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_deferred_by_a_later_split_keep_the_arrival_time() {
    if !sink_available() {
        return;
    }
    let k = keys();
    let spool = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(START));
    let hop = free_port(); // nothing listens yet: the whole copy is deferred
    let g = Gateway::start(&k, hop, spool.path(), clock.clone()).await;
    g.send(
        "alice@acme.example",
        &["carol@acme.example", "temp@acme.example"],
        &mail("late split", ""),
    )
    .await
    .expect("accepted");
    eventually("a deferral", || {
        g.queue().first().is_some_and(|e| e.parts[0].attempts >= 1)
    })
    .await;
    // Two minutes later the hop is back: it takes carol@ and refuses temp@ for now, so temp@
    // moves to an entry of its own, which still counts from the message's arrival.
    let sink = start_sink_on(hop, &[]);
    clock.fetch_add(120, Ordering::SeqCst);
    eventually("carol's copy, temp@ on its own", || {
        let q = g.queue();
        sink.received().len() == 1
            && q.len() == 1
            && q[0].parts[0].recipients == ["temp@acme.example"]
    })
    .await;
    assert_eq!(g.queue()[0].created, START, "the arrival, not the split");
    // bounce_after (1 h) after the arrival, not after the split: the next failure gives up.
    clock.store(START + 3600, Ordering::SeqCst);
    eventually("temp@ bounced", || g.queue().is_empty()).await;
    eventually("the DSN for temp@", || {
        sink.received().iter().any(|r| {
            let (m, d) = (&r.meta, &r.data);
            m["mail_from"] == "<>" && String::from_utf8_lossy(d).contains("temp@acme.example")
        })
    })
    .await;
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_mail_survives_a_restart_and_is_delivered_when_the_hop_returns() {
    if !sink_available() {
        return;
    }
    let k = keys();
    let spool = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(START));
    let hop = free_port(); // nothing listens yet
    let g = Gateway::start(&k, hop, spool.path(), clock.clone()).await;
    g.send(
        "alice@acme.example",
        &["carol@acme.example"],
        &mail("restart", ""),
    )
    .await
    .expect("accepted although the next hop is down");
    eventually("a deferral", || {
        g.queue()
            .first()
            .is_some_and(|e| e.parts[0].attempts >= 1 && e.parts[0].state == PartStatus::Deferred)
    })
    .await;
    g.stop().await;
    // The hop comes back; a new gateway on the same spool delivers at the next retry.
    let sink = start_sink_on(hop, &[]);
    clock.fetch_add(120, Ordering::SeqCst);
    let g = Gateway::start(&k, hop, spool.path(), clock).await;
    eventually("delivery after the restart", || sink.received().len() == 1).await;
    assert_eq!(sink.received()[0].data, mail("restart", ""));
    eventually("an empty queue", || g.queue().is_empty()).await;
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_the_certificate_from_the_config_file() {
    if !sink_available() {
        return;
    }
    let k = keys();
    let sink = start_sink_on(free_port(), &[]);
    let spool = tempfile::tempdir().unwrap();
    let certs = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let extra = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        cert.display(),
        key.display()
    );
    let clock = Arc::new(AtomicU64::new(START));
    let g = Gateway::start_with(&k, sink.port, spool.path(), clock, &extra).await;
    // A client that insists on STARTTLS and trusts only this certificate gets the mail in.
    let mut hop = NextHop::parse(&format!("smtp+starttls://127.0.0.1:{}", g.smtp)).unwrap();
    hop.ca_file = Some(cert.clone());
    hop.timeout = Duration::from_secs(10);
    let raw = mail("tls", "");
    Relay::new(&hop)
        .unwrap()
        .send(
            "alice@acme.example",
            &["carol@acme.example".to_string()],
            &raw,
        )
        .await
        .expect("delivered over STARTTLS");
    eventually("the copy at the sink", || sink.received().len() == 1).await;
    assert_eq!(sink.received()[0].data, raw);
    g.stop().await;
}
