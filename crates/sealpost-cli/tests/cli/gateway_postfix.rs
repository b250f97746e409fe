//! The gateway behind a real Postfix: a private Postfix instance (scripts/postfix.sh, loopback
//! ports only) hands every mail to `sealpost gateway` as its content filter (FILTER_README's
//! "advanced content filter"), the gateway re-injects into Postfix, and Postfix relays to an
//! exact SMTP sink. Mail with internal and external recipients goes in; per recipient, what
//! arrives is either the original (with only the `Received:` fields the hops prepend) or a
//! wrapper mail whose `sealpost decrypt` gives back that same message byte for byte. A rule's
//! `reject` makes Postfix bounce the mail to its sender, and no recipient gets a copy.
//!
//! The same mail also goes through the before-queue set-up (SMTPD_PROXY_README:
//! `smtpd_proxy_filter` to the gateway with `relay_first = true`, which relays back into
//! Postfix before answering): there the Secret mail is refused to the client directly (550).
//!
//! Without Postfix or python3-aiosmtpd the test prints a skip line and passes, unless `CI` is
//! set: there it fails (`scripts/postfix.sh install`, `scripts/smtp-sink.sh`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sealpost_core::mail::rfc5322::strip_bcc;

use crate::common::{find, has_bcc_field, ok, s, tenant};
use crate::gateway_harness::{
    Client, Delivery, Filter, Gateway, Postfix, Sink, gateway_table, header_value, is_wrapper,
    open_tempdir, received_prefix, tools_available,
};
use crate::keyservice::free_port;

const RULES: &str = r#"
[organization]
domains = ["acme.example"]
classification_headers = ["X-Classification"]

[[rules]]
name = "Block Secret to outside"
priority = 1
[rules.conditions]
recipient_scope = "outside"
classification = "Secret"
[rules.actions]
reject = "Mail classified Secret may not be sent outside Acme"

[[rules]]
name = "Contracts to outside"
priority = 10
[rules.conditions]
recipient_scope = "outside"
attachment_name_matches = '(?i)contract'
[rules.actions]
encrypt = "Do-Not-Forward"
remove_subject = true
stop = true

[[rules]]
name = "Secure on request"
priority = 20
[rules.conditions]
recipient_scope = "outside"
subject_contains = ["[secure]"]
[rules.actions]
encrypt = "Encrypt-Only"
"#;

/// What a recipient must receive.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Original,
    Wrapper,
}

struct Mail {
    id: &'static str,
    /// Text of the body that must not show in a wrapper.
    private: &'static str,
    to: Vec<(&'static str, Expect)>,
    data: Vec<u8>,
}

fn crlf(text: &str) -> Vec<u8> {
    text.replace("\r\n", "\n")
        .replace('\n', "\r\n")
        .into_bytes()
}

fn mails() -> Vec<Mail> {
    use Expect::*;
    vec![
        Mail {
            id: "e2e-secure@acme.example",
            private: "Revenue is up.",
            to: vec![
                ("bob@acme.example", Original),
                ("carol@gmail.com", Wrapper),
                ("dave@partner.example", Wrapper),
            ],
            data: crlf(
                "From: Alice <alice@acme.example>\nTo: Bob <bob@acme.example>, carol@gmail.com\n\
                 Bcc: dave@partner.example\nSubject: [secure] Q3 numbers\n\
                 Message-ID: <e2e-secure@acme.example>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\
                 MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n\
                 Revenue is up.\n.A line that starts with a dot.\n..and one with two.\n\nAlice\n",
            ),
        },
        Mail {
            id: "e2e-plain@acme.example",
            private: "Café at noon?",
            to: vec![("erin@example.org", Original)],
            data: crlf(
                "From: alice@acme.example\nTo: erin@example.org\nSubject: Lunch\n\
                 Message-ID: <e2e-plain@acme.example>\nDate: Sat, 28 Nov 2026 10:01:00 +0000\n\
                 MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\
                 Content-Transfer-Encoding: 8bit\n\nCafé at noon? Grüße, Alice\n",
            ),
        },
        Mail {
            id: "e2e-contract@acme.example",
            private: "See attached.",
            to: vec![
                ("frank@counsel.example", Wrapper),
                ("grace@acme.example", Original),
            ],
            data: crlf(
                "From: alice@acme.example\nTo: frank@counsel.example\nCc: grace@acme.example\n\
                 Subject: The signed agreement\nMessage-ID: <e2e-contract@acme.example>\n\
                 Date: Sat, 28 Nov 2026 10:02:00 +0000\nMIME-Version: 1.0\n\
                 Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\n\
                 Content-Type: text/plain; charset=us-ascii\n\nSee attached.\n--b1\n\
                 Content-Type: application/pdf\n\
                 Content-Disposition: attachment; filename=\"contract-2026.pdf\"\n\
                 Content-Transfer-Encoding: base64\n\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK\n\
                 --b1--\n",
            ),
        },
    ]
}

/// Classified Secret, to outside recipients only: every recipient is rejected.
const SECRET_ID: &str = "e2e-secret@acme.example";
const SECRET_TEXT: &str = "Mail classified Secret may not be sent outside Acme";

fn secret_mail() -> Vec<u8> {
    crlf(&format!(
        "From: alice@acme.example\nTo: heidi@gmail.com, ivan@example.net\nSubject: Plans\n\
         X-Classification: Secret\nMessage-ID: <{SECRET_ID}>\n\
         Date: Sat, 28 Nov 2026 10:03:00 +0000\n\nThe plans.\n"
    ))
}

#[test]
fn gateway_behind_postfix_delivers_originals_and_wrappers() {
    behind_postfix(
        "gateway_behind_postfix_delivers_originals_and_wrappers",
        Setup::AfterQueue,
    );
}

/// Before queue (`smtpd_proxy_filter`) with `relay_first = true`: the set-up of the gateway
/// benchmark's target. Postfix queues each message once, after the gateway relayed it back.
#[test]
fn gateway_before_postfix_queue_relaying_first_delivers_originals_and_wrappers() {
    behind_postfix(
        "gateway_before_postfix_queue_relaying_first_delivers_originals_and_wrappers",
        Setup::BeforeQueueRelayFirst,
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    /// `content_filter`, the gateway spools first.
    AfterQueue,
    /// `smtpd_proxy_filter`, the gateway relays first.
    BeforeQueueRelayFirst,
}

fn behind_postfix(name: &str, setup: Setup) {
    if !tools_available(name, &["postfix", "aiosmtpd"]) {
        return;
    }
    let dir = open_tempdir();
    let (listen, filter, reinject, relay, metrics) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let sink = Sink::start(relay, &dir.path().join("sink"));
    tenant(&dir, "tenant", "acme.example", &[]);
    let config = dir.path().join("gateway.toml");
    let (extra, how) = match setup {
        Setup::AfterQueue => (
            "retry_first = \"1s\"\n",
            Filter::AfterQueue {
                gateway: filter,
                reinject,
            },
        ),
        Setup::BeforeQueueRelayFirst => (
            "retry_first = \"1s\"\nrelay_first = true\n",
            Filter::BeforeQueue {
                gateway: filter,
                reinject,
            },
        ),
    };
    std::fs::write(
        &config,
        gateway_table(filter, reinject, metrics, extra) + RULES,
    )
    .unwrap();
    let postfix = Postfix::start(&dir.path().join("postfix"), listen, relay, Some(how));
    let gateway = Gateway::start(&config, &dir.path().join("gateway.log"), filter);

    let mails = mails();
    let mut client = Client::connect(listen).expect("Postfix accepts a connection");
    for m in &mails {
        let to: Vec<&str> = m.to.iter().map(|(r, _)| *r).collect();
        let r = client.send("alice@acme.example", &to, &m.data).unwrap();
        assert_eq!(r.code, 250, "Postfix refused {}: {}", m.id, r.text);
    }
    let r = client
        .send(
            "alice@acme.example",
            &["heidi@gmail.com", "ivan@example.net"],
            &secret_mail(),
        )
        .unwrap();
    // After queue Postfix has accepted the mail and bounces it; before queue the client is
    // refused at once, with the rule's text.
    let bounce_expected = setup == Setup::AfterQueue;
    if bounce_expected {
        assert_eq!(r.code, 250, "Postfix refused the Secret mail: {}", r.text);
    } else {
        assert_eq!(r.code, 550, "the Secret mail was not refused: {}", r.text);
        assert!(r.text.contains(SECRET_TEXT), "{}", r.text);
    }

    // Wait for one copy per (message, recipient) and for the bounce to alice.
    let wanted: usize = mails.iter().map(|m| m.to.len()).sum();
    let deadline = Instant::now() + Duration::from_secs(90);
    let deliveries = loop {
        let got = sink.deliveries();
        let copies: usize = got
            .iter()
            .filter(|d| !d.mail_from.is_empty())
            .map(|d| d.recipients.len())
            .sum();
        let bounced = got.iter().any(|d| d.mail_from.is_empty());
        if copies >= wanted && bounced == bounce_expected {
            // Anything extra (a duplicate, a copy of the Secret mail) would arrive about now.
            std::thread::sleep(Duration::from_secs(1));
            break sink.deliveries();
        }
        assert!(
            Instant::now() < deadline,
            "only {copies} of {wanted} copies arrived (bounce: {bounced});\nPostfix log:\n{}\ngateway log:\n{}",
            postfix.log(),
            gateway.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Index what arrived by (Message-ID, recipient).
    let mut by: HashMap<(String, String), Vec<&Delivery>> = HashMap::new();
    for d in deliveries.iter().filter(|d| !d.mail_from.is_empty()) {
        let id = header_value(&d.data, "Message-ID").unwrap_or_default();
        for r in &d.recipients {
            by.entry((id.clone(), r.clone())).or_default().push(d);
        }
    }
    for m in &mails {
        let original = &m.data;
        let stripped = strip_bcc(original);
        for (rcpt, expect) in &m.to {
            let key = (format!("<{}>", m.id), rcpt.to_string());
            let copies = by.remove(&key).unwrap_or_default();
            assert_eq!(
                copies.len(),
                1,
                "{rcpt} got {} copies of {}",
                copies.len(),
                m.id
            );
            let got = &copies[0].data;
            assert_eq!(copies[0].mail_from, "alice@acme.example", "{}", m.id);
            match expect {
                Expect::Original => {
                    assert!(!is_wrapper(got), "{rcpt} got a wrapper of {}", m.id);
                    assert!(
                        received_prefix(got, original).is_some()
                            || received_prefix(got, &stripped).is_some(),
                        "{rcpt}: the copy of {} is not the original:\n{}",
                        m.id,
                        String::from_utf8_lossy(got)
                    );
                }
                Expect::Wrapper => {
                    assert!(is_wrapper(got), "{rcpt} did not get a wrapper of {}", m.id);
                    let path = dir.path().join(format!("wrapper-{rcpt}-{}.eml", m.id));
                    std::fs::write(&path, got).unwrap();
                    let plain = ok(
                        &[
                            "decrypt",
                            "--tenant",
                            s(&dir.path().join("tenant")),
                            s(&path),
                        ],
                        b"",
                    );
                    assert!(
                        received_prefix(&plain, &stripped).is_some()
                            || received_prefix(&plain, original).is_some(),
                        "{rcpt}: decrypting the wrapper of {} does not give the original:\n{}",
                        m.id,
                        String::from_utf8_lossy(&plain)
                    );
                    assert!(!has_bcc_field(&plain), "{rcpt}: Bcc in the sealed copy");
                    // The body of the original never travels in the clear.
                    assert!(
                        find(got, m.private.as_bytes()).is_none(),
                        "{rcpt}: the wrapper of {} shows the body",
                        m.id
                    );
                }
            }
        }
    }
    // The Do-Not-Forward rule removes the subject from the wrapper.
    let contract = deliveries
        .iter()
        .find(|d| d.recipients.iter().any(|r| r == "frank@counsel.example"))
        .unwrap();
    assert!(
        find(&contract.data, b"The signed agreement").is_none(),
        "remove_subject: the subject shows in the wrapper"
    );
    // The Secret mail reached nobody: Postfix bounced it to alice with the rule's text.
    assert!(
        by.keys().all(|(id, _)| id != &format!("<{SECRET_ID}>")),
        "a copy of the Secret mail was delivered: {:?}",
        by.keys().collect::<Vec<_>>()
    );
    assert!(
        by.is_empty(),
        "unexpected copies: {:?}",
        by.keys().collect::<Vec<_>>()
    );
    let bounces: Vec<&Delivery> = deliveries
        .iter()
        .filter(|d| d.mail_from.is_empty())
        .collect();
    if !bounce_expected {
        assert!(
            bounces.is_empty(),
            "a bounce although the client was refused"
        );
        if setup == Setup::BeforeQueueRelayFirst {
            // Relayed first: the gateway's spool never held a message.
            let spooled = std::fs::read_dir(dir.path().join("spool/queue"))
                .unwrap()
                .count();
            assert_eq!(spooled, 0, "relay_first spooled {spooled} entries");
        }
        drop(gateway);
        drop(postfix);
        return;
    }
    assert_eq!(bounces.len(), 1, "one bounce expected");
    assert_eq!(bounces[0].recipients, ["alice@acme.example"]);
    // Postfix folds the diagnostic over lines: compare with white space collapsed.
    let bounce = String::from_utf8_lossy(&bounces[0].data)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        bounce.contains(SECRET_TEXT),
        "bounce lacks the reject text:\n{bounce}"
    );
    assert!(
        bounce.contains(SECRET_ID),
        "bounce does not name the mail:\n{bounce}"
    );
    drop(gateway);
    drop(postfix);
}
