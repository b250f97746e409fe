//! `config`: the `[gateway]` table with the rules of the same file — defaults, resolved paths,
//! and every mistake reported at once with its line and column, never a half-loaded result.

use std::path::Path;
use std::time::Duration;

use sealpost_gateway::config::{Destination, load, load_str};
use sealpost_gateway::process::BrokenMime;
use sealpost_gateway::relay::HopSecurity;

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Protect outside"
conditions = { recipient_scope = "outside" }
actions = { encrypt = "Encrypt-Only" }
"#;

#[test]
fn minimal_file_gets_documented_defaults() {
    let text =
        format!("[gateway]\nnext_hop = \"smtp://127.0.0.1:10026\"\ntenant = \"tenant\"\n{RULES}");
    let l = load_str(&text, Path::new("/etc/sealpost")).expect("loads");
    let g = l.gateway;
    assert_eq!(g.listen.to_string(), "127.0.0.1:10025");
    assert_eq!(g.metrics_listen.to_string(), "127.0.0.1:10080");
    assert_eq!(g.tenant, Path::new("/etc/sealpost/tenant"));
    assert_eq!(g.spool_dir, Path::new("/etc/sealpost/spool"));
    assert_eq!(g.max_message_size, 50 * 1024 * 1024);
    assert_eq!(
        (g.max_recipients, g.max_sessions, g.delivery_workers),
        (1000, 200, 16)
    );
    assert_eq!(g.retry_first, Duration::from_secs(60));
    assert_eq!(g.retry_max, Duration::from_secs(3600));
    assert_eq!(g.bounce_after, Duration::from_secs(5 * 86400));
    assert_eq!(g.broken_mime, BrokenMime::Protect);
    assert!(g.tls.is_none());
    assert!(!g.relay_first, "spool first unless asked");
    match g.next_hop {
        Destination::Smtp(h) => {
            assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 10026));
            assert_eq!(h.security, HopSecurity::Plain);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(l.rules.rules().len(), 1);
}

#[test]
fn every_setting_is_read() {
    let text = format!(
        r#"[gateway]
listen = "127.0.0.1:2525"
hostname = "gw.acme.example"
next_hop = "file://mailbox"
spool_dir = "/var/spool/sealpost"
tenant = "/etc/t"
max_message_size = "10MB"
max_recipients = 50
max_sessions = 7
metrics_listen = "127.0.0.1:9100"
retry_first = "30s"
retry_max = "10m"
bounce_after = "2days"
delivery_workers = 3
relay_first = true
broken_mime = "reject"
tls_cert = "cert.pem"
tls_key = "key.pem"
{RULES}"#
    );
    let g = load_str(&text, Path::new("/cfg")).expect("loads").gateway;
    assert_eq!(g.listen.to_string(), "127.0.0.1:2525");
    assert_eq!(g.hostname, "gw.acme.example");
    assert_eq!(g.next_hop, Destination::Directory("/cfg/mailbox".into()));
    assert!(g.relay_first);
    assert_eq!(g.spool_dir, Path::new("/var/spool/sealpost"));
    assert_eq!(g.tenant, Path::new("/etc/t"));
    assert_eq!(g.max_message_size, 10 * 1024 * 1024);
    assert_eq!(
        (g.max_recipients, g.max_sessions, g.delivery_workers),
        (50, 7, 3)
    );
    assert_eq!(g.metrics_listen.to_string(), "127.0.0.1:9100");
    assert_eq!(g.retry_first, Duration::from_secs(30));
    assert_eq!(g.retry_max, Duration::from_secs(600));
    assert_eq!(g.bounce_after, Duration::from_secs(2 * 86400));
    assert_eq!(g.broken_mime, BrokenMime::Reject);
    assert_eq!(g.tls, Some(("/cfg/cert.pem".into(), "/cfg/key.pem".into())));
}

#[test]
fn every_mistake_is_reported_with_its_place() {
    let text = r#"[gateway]
listen = "localhost"
next_hop = "ftp://x"
tenant = "t"
max_message_size = "huge"
retry_first = "soon"
broken_mime = "ignore"
max_sessions = 0

[organization]
domains = ["acme.example"]

[[rules]]
name = "Bad"
conditions = { recipient_scope = "elsewhere" }
actions = { encrypt = "Encrypt-Only" }
"#;
    let errors = load_str(text, Path::new("/cfg")).expect_err("refused");
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let at = |line: usize, needle: &str| {
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.message.contains(needle)),
            "no error on line {line} containing {needle:?} in {shown:#?}"
        );
    };
    at(2, "listen");
    at(3, "next_hop");
    at(5, "max_message_size");
    at(6, "retry_first");
    at(7, "broken_mime");
    at(15, "elsewhere");
    assert!(
        errors.iter().any(|e| e.message.contains("max_sessions")),
        "{shown:#?}"
    );
    assert!(shown.len() >= 7, "{shown:#?}");
}

#[test]
fn unknown_keys_missing_table_and_missing_required_settings() {
    let unknown =
        format!("[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\nlisten_port = 25\n{RULES}");
    let e = load_str(&unknown, Path::new(".")).expect_err("refused");
    assert!(
        e[0].message.contains("listen_port") && e[0].line == 4,
        "{e:?}"
    );

    let e = load_str(RULES, Path::new(".")).expect_err("refused");
    assert!(e[0].message.contains("no [gateway] table"), "{e:?}");

    let e = load_str(&format!("[gateway]\n{RULES}"), Path::new(".")).expect_err("refused");
    let text: Vec<String> = e.iter().map(|e| e.message.clone()).collect();
    assert!(text.iter().any(|m| m.contains("next_hop")), "{text:?}");
    assert!(text.iter().any(|m| m.contains("tenant")), "{text:?}");

    let e = load_str(
        &format!(
            "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\ntls_cert = \"c.pem\"\n{RULES}"
        ),
        Path::new("."),
    )
    .expect_err("refused");
    assert!(e[0].message.contains("tls_key"), "{e:?}");
}

#[test]
fn toml_syntax_errors_are_placed() {
    let e = load_str(
        "[gateway]\nnext_hop = \"smtp://h:1\ntenant = 1\n",
        Path::new("."),
    )
    .expect_err("refused");
    assert!(e.iter().all(|e| e.line >= 1), "{e:?}");
    assert!(e.iter().any(|e| e.line == 2), "{e:?}");
}

#[test]
fn an_unreadable_file_says_which() {
    let e = load(Path::new("/nonexistent/gateway.toml")).expect_err("refused");
    assert!(
        e[0].to_string().contains("/nonexistent/gateway.toml"),
        "{e:?}"
    );
}

#[test]
fn the_committed_examples_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let l = load(&root.join("gateway.toml")).expect("examples/gateway.toml loads");
    assert_eq!(l.gateway.tenant, Path::new("/etc/sealpost/tenant"));
    assert!(l.gateway.relay_first, "the example sits behind Postfix");
    assert!(l.rules.rules().len() >= 4);
    // The demo's rules need the [gateway] table scripts/demo.sh puts in front of them.
    let rules = std::fs::read_to_string(root.join("demo-rules.toml")).unwrap();
    let text = format!("[gateway]\nnext_hop = \"file:///tmp/box\"\ntenant = \"t\"\n{rules}");
    load_str(&text, &root).expect("the demo configuration loads");
}

#[test]
fn the_reply_endpoint_and_key_service_keys() {
    let text = format!(
        "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\n\
         reply_listen = \"127.0.0.1:8090\"\nreply_from = \"noreply@acme.example\"\n\
         reply_allowed_origins = [\"https://portal.acme.example/\", \"http://127.0.0.1:8080\"]\n\
         reply_max_bytes = \"10MB\"\nkey_service_url = \"https://keys.acme.example/\"\n\
         key_service_token_file = \"gateway.token\"\nreply_trust_forwarded_for = true\n{RULES}"
    );
    let g = load_str(&text, Path::new("/cfg")).expect("loads").gateway;
    let r = g.reply.expect("the reply endpoint is on");
    assert_eq!(r.listen.to_string(), "127.0.0.1:8090");
    assert_eq!(r.from, "noreply@acme.example");
    assert_eq!(
        r.allowed_origins,
        ["https://portal.acme.example", "http://127.0.0.1:8080"]
    );
    assert_eq!(r.max_bytes, 10 * 1024 * 1024);
    assert!(r.trust_forwarded_for);
    assert_eq!(
        g.key_service_url.as_deref(),
        Some("https://keys.acme.example")
    );
    assert_eq!(
        g.key_service_token_file.as_deref(),
        Some(Path::new("/cfg/gateway.token"))
    );

    // Without reply_listen: no endpoint; the key service keys alone are for transport
    // decryption; the default body limit is 96 MiB.
    let text = format!("[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\n{RULES}");
    let g = load_str(&text, Path::new("/cfg")).unwrap().gateway;
    assert!(g.reply.is_none() && g.key_service_url.is_none());
    let text = format!(
        "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\nreply_listen = \"127.0.0.1:8090\"\n\
         reply_from = \"n@acme.example\"\nkey_service_token_file = \"t\"\n{RULES}"
    );
    let r = load_str(&text, Path::new("/cfg"))
        .unwrap()
        .gateway
        .reply
        .unwrap();
    assert_eq!(r.max_bytes, 96 * 1024 * 1024);
    assert!(!r.trust_forwarded_for);
    assert!(r.allowed_origins.is_empty());
}

#[test]
fn reply_key_mistakes_are_placed() {
    let text = r#"[gateway]
next_hop = "smtp://h:1"
tenant = "t"
reply_listen = "everywhere"
reply_from = "not an address"
reply_allowed_origins = ["https://portal.acme.example/open", "portal.acme.example"]
reply_max_bytes = "lots"
key_service_url = "ftp://keys.acme.example"
"#;
    let errors = load_str(&format!("{text}{RULES}"), Path::new("/cfg")).expect_err("refused");
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let at = |line: usize, column: usize, needle: &str| {
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.column == column && e.message.contains(needle)),
            "no error at {line}:{column} containing {needle:?} in {shown:#?}"
        );
    };
    at(4, 16, "reply_listen");
    at(4, 16, "key_service_token_file");
    at(5, 14, "reply_from");
    at(6, 26, "reply_allowed_origins");
    at(6, 62, "reply_allowed_origins");
    at(7, 19, "reply_max_bytes");
    at(8, 19, "key_service_url");

    // reply_listen needs reply_from.
    let text = format!(
        "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\nreply_listen = \"127.0.0.1:1\"\n\
         key_service_token_file = \"t\"\n{RULES}"
    );
    let e = load_str(&text, Path::new(".")).expect_err("refused");
    assert!(
        e.iter()
            .any(|e| e.line == 4 && e.message.contains("reply_from")),
        "{e:?}"
    );
}

#[test]
fn the_reply_endpoint_https_and_limits() {
    let reply = "reply_listen = \"127.0.0.1:8443\"\nreply_from = \"noreply@acme.example\"\n\
                 key_service_token_file = \"gateway.token\"\n";
    // Defaults: plain HTTP, 64 requests in flight, two minutes for a request to arrive.
    let text = format!("[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\n{reply}{RULES}");
    let r = load_str(&text, Path::new("/cfg"))
        .expect("loads")
        .gateway
        .reply
        .unwrap();
    assert_eq!(r.tls, None);
    assert_eq!(r.max_in_flight, 64);
    assert_eq!(r.request_timeout, Duration::from_secs(300));

    // Both TLS keys, resolved against the file's directory like tls_cert/tls_key.
    let text = format!(
        "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\n{reply}\
         reply_tls_cert = \"tls/reply.pem\"\nreply_tls_key = \"/etc/keys/reply.key\"\n\
         reply_max_in_flight = 8\nreply_request_timeout = \"45s\"\n{RULES}"
    );
    let r = load_str(&text, Path::new("/cfg"))
        .expect("loads")
        .gateway
        .reply
        .unwrap();
    assert_eq!(
        r.tls,
        Some(("/cfg/tls/reply.pem".into(), "/etc/keys/reply.key".into()))
    );
    assert_eq!(r.max_in_flight, 8);
    assert_eq!(r.request_timeout, Duration::from_secs(45));
}

#[test]
fn reply_https_and_limit_mistakes_are_placed() {
    let placed = |extra: &str, line: usize, column: usize, needle: &str| {
        let text = format!(
            "[gateway]\nnext_hop = \"smtp://h:1\"\ntenant = \"t\"\nreply_listen = \"127.0.0.1:1\"\n\
             reply_from = \"n@acme.example\"\nkey_service_token_file = \"t\"\n{extra}\n{RULES}"
        );
        let errors = load_str(&text, Path::new("/cfg")).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.line == line && e.column == column && e.message.contains(needle)),
            "no error at {line}:{column} containing {needle:?} in {errors:#?}"
        );
    };
    // One of the pair alone: the error sits on the key that is there and names the other.
    placed("reply_tls_cert = \"c.pem\"", 7, 18, "reply_tls_key");
    placed("reply_tls_key = \"k.pem\"", 7, 17, "reply_tls_cert");
    placed("reply_max_in_flight = 0", 7, 23, "reply_max_in_flight");
    placed("reply_max_in_flight = 1000000", 7, 23, "between 1 and");
    placed(
        "reply_request_timeout = \"soon\"",
        7,
        25,
        "reply_request_timeout",
    );
    placed("reply_request_timeout = \"0s\"", 7, 25, "not a duration");
    placed(
        "reply_max_in_flight = -1",
        7,
        23,
        "reply_max_in_flight must be",
    );
}
