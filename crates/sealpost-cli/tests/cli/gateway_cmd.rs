//! `sealpost gateway` refusing a configuration with mistakes (every one listed, with its
//! place), `sealpost queue list|retry|delete` on the spool of a running gateway whose next
//! hop is down, and the gateway started with its reply endpoint (`reply_listen`) or refused
//! when the key service's token is missing.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::{fails, ok, s, sealpost, tenant, tenant_keys};
use crate::gateway_harness::{Client, Gateway, gateway_table};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Protect outside"
conditions = { recipient_scope = "outside" }
actions = { encrypt = "Encrypt-Only" }
"#;

#[test]
fn gateway_refuses_a_file_with_mistakes_and_lists_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "[gateway]\nlisten = \"nowhere\"\nnext_hop = \"smtp://127.0.0.1:1\"\ntenant = \"t\"\n\
         bounce_after = \"never\"\n\n[[rules]]\nname = \"x\"\nconditions = { subjekt = \"a\" }\n\
         actions = { encrypt = \"Encrypt-Only\" }\n",
    )
    .unwrap();
    let r = sealpost(&["gateway", "--config", s(&config)], b"");
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let file = s(&config);
    for needle in [
        format!("{file}:2:"),
        format!("{file}:5:"),
        format!("{file}:9:"),
    ] {
        assert!(
            r.stderr.contains(&needle),
            "missing {needle} in:\n{}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("subjekt"), "{}", r.stderr);
    assert!(
        r.stderr.contains("sealpost: error:") && r.stderr.contains("3 mistakes"),
        "{}",
        r.stderr
    );
    // Nothing was started or created.
    assert!(!dir.path().join("spool").exists());
}

#[test]
fn gateway_refuses_a_missing_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "{}{RULES}",
            gateway_table(free_port(), free_port(), free_port(), "")
        ),
    )
    .unwrap();
    let line = fails(&["gateway", "--config", s(&config)], b"");
    assert!(line.contains("tenant"), "{line}");
}

#[test]
fn queue_list_retry_and_delete_beside_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    tenant(&dir, "tenant", "acme.example", &[]);
    let (listen, hop, metrics) = (free_port(), free_port(), free_port());
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "{}{RULES}",
            gateway_table(
                listen,
                hop,
                metrics,
                "retry_first = \"1h\"\nretry_max = \"1h\""
            )
        ),
    )
    .unwrap();
    let _g = Gateway::start(&config, &dir.path().join("gateway.log"), listen);
    let mut c = Client::connect(listen).unwrap();
    let raw = b"From: a@acme.example\r\nTo: b@other.example\r\nSubject: q\r\n\r\nhello\r\n";
    let reply = c.send("a@acme.example", &["b@other.example"], raw).unwrap();
    assert_eq!(reply.code, 250, "{}", reply.text);

    // The next hop is down: the copy is deferred with the reason.
    let list = |config: &str| -> serde_json::Value {
        serde_json::from_slice(&ok(&["queue", "list", "--config", config], b"")).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let entry = loop {
        let l = list(s(&config));
        if l[0]["parts"][0]["attempts"] == 1 {
            break l[0].clone();
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {l}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(entry["mail_from"], "a@acme.example");
    assert_eq!(entry["parts"][0]["recipients"][0], "b@other.example");
    assert!(
        entry["parts"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains(&hop.to_string()),
        "{entry}"
    );
    let id = entry["id"].as_str().unwrap().to_string();

    // retry makes it due now: the gateway tries again within seconds.
    let r = sealpost(
        &[
            "queue",
            "retry",
            &id,
            "--spool",
            s(&dir.path().join("spool")),
        ],
        b"",
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("1 copy"), "{}", r.stderr);
    let deadline = Instant::now() + Duration::from_secs(30);
    while list(s(&config))[0]["parts"][0]["attempts"] != 2 {
        assert!(Instant::now() < deadline, "the retry did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Bad ids are explained; delete removes the entry undelivered.
    let line = fails(&["queue", "delete", "../etc", "--config", s(&config)], b"");
    assert!(line.contains("not a queue id"), "{line}");
    ok(&["queue", "delete", &id, "--config", s(&config)], b"");
    assert_eq!(list(s(&config)), serde_json::json!([]));
    let line = fails(
        &["queue", "list", "--spool", s(&dir.path().join("nope"))],
        b"",
    );
    assert!(line.contains("nope"), "{line}");
}

/// The portal's request for a reply to `original`, sealed as a submission `envelope`.
fn reply_request(original: &[u8], envelope: &[u8]) -> serde_json::Value {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "kind": "reply",
        "original": { "envelope": b64.encode(original) },
        "envelope": b64.encode(envelope),
        "to": ["alice@acme.example"],
        "cc": [],
        "threading": { "message_id": "<r1@sealpost.invalid>", "in_reply_to": null, "references": null }
    })
}

#[test]
fn gateway_serves_the_reply_endpoint_with_the_tenant_keys_and_token() {
    use rand_core::UnwrapErr;
    use sealpost_core::policy::Template;
    use sealpost_core::{Sealer, SubmissionSealer, seal, seal_submission};
    let dir = tempfile::tempdir().unwrap();
    let tenant_dir = tenant(&dir, "tenant", "acme.example", &[]);
    let (listen, hop, metrics, reply, keys) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    std::fs::write(dir.path().join("gateway.token"), "spg_not_checked_here\n").unwrap();
    let extra = format!(
        "reply_listen = \"127.0.0.1:{reply}\"\nreply_from = \"noreply@acme.example\"\n\
         reply_allowed_origins = [\"https://portal.acme.example\"]\n\
         key_service_url = \"http://127.0.0.1:{keys}\"\nkey_service_token_file = \"gateway.token\""
    );
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!("{}{RULES}", gateway_table(listen, hop, metrics, &extra)),
    )
    .unwrap();
    let _g = Gateway::start(&config, &dir.path().join("gateway.log"), listen);

    let (license, signing) = tenant_keys(&tenant_dir);
    let pk = license.public_key();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut rng = UnwrapErr(getrandom::SysRng);
    let sealer = Sealer {
        tenant_id: "acme.example",
        key_service_url: "https://keys.acme.example",
        license_key: &pk,
        signing_key: &signing,
    };
    let to_bob =
        Template::encrypt_only().policy("alice@acme.example", &["bob@other.example".into()], now);
    let original = seal(
        &sealer,
        &to_bob,
        None,
        now,
        b"Subject: x\r\n\r\nhi\r\n",
        &mut rng,
    )
    .unwrap();
    let to_alice =
        Template::encrypt_only().policy("bob@other.example", &["alice@acme.example".into()], now);
    let submitter = SubmissionSealer {
        tenant_id: "acme.example",
        key_service_url: "https://keys.acme.example",
        license_key: &pk,
        signing_key_id: signing.verifying_key().key_id(),
    };
    let sub = seal_submission(
        &submitter,
        &to_alice,
        None,
        now,
        b"Subject: y\r\n\r\nok\r\n",
        &mut rng,
    )
    .unwrap();

    // The tenant's keys are loaded: an unsigned original is refused, and a signed envelope is
    // not a submission.
    let (status, body) = crate::keyservice::post(
        reply,
        "/v1/replies",
        Some("sps_x"),
        &reply_request(&sub, &sub),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_original")),
        "{body}"
    );
    let (status, body) = crate::keyservice::post(
        reply,
        "/v1/replies",
        Some("sps_x"),
        &reply_request(&original, &original),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("bad_envelope")),
        "{body}"
    );
    // A good submission goes to the configured key service, which is not running: 503.
    let (status, body) = crate::keyservice::post(
        reply,
        "/v1/replies",
        Some("sps_x"),
        &reply_request(&original, &sub),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("key_service_unavailable")),
        "{body}"
    );
    let (status, body) =
        crate::keyservice::post(reply, "/v1/replies", None, &reply_request(&original, &sub));
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("not_signed_in")),
        "{body}"
    );
}

#[test]
fn gateway_refuses_to_start_without_the_key_service_token() {
    let dir = tempfile::tempdir().unwrap();
    tenant(&dir, "tenant", "acme.example", &["--transport-decryption"]);
    let config = dir.path().join("gateway.toml");
    let (listen, hop, metrics) = (free_port(), free_port(), free_port());
    // The tenant allows transport decryption, but the gateway has no token for it.
    std::fs::write(
        &config,
        format!("{}{RULES}", gateway_table(listen, hop, metrics, "")),
    )
    .unwrap();
    let line = fails(&["gateway", "--config", s(&config)], b"");
    assert!(
        line.contains("transport_decryption") && line.contains("key_service_token_file"),
        "{line}"
    );
    // The token file named does not exist.
    let extra = format!(
        "reply_listen = \"127.0.0.1:{}\"\nreply_from = \"noreply@acme.example\"\nkey_service_token_file = \"missing.token\"",
        free_port()
    );
    std::fs::write(
        &config,
        format!("{}{RULES}", gateway_table(listen, hop, metrics, &extra)),
    )
    .unwrap();
    let line = fails(&["gateway", "--config", s(&config)], b"");
    assert!(line.contains("missing.token"), "{line}");
    assert!(!dir.path().join("spool").exists());
}
