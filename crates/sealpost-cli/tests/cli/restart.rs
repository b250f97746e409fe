//! Restart safety: `sealpost serve` is killed with SIGKILL in the middle of a burst of rewraps
//! and revocations, then started again on the same data. Every revocation it acknowledged is
//! still refused, and every share it released (a 200 with a sealed share) has its audit record.
//! On SQLite, and on PostgreSQL when `SEALPOST_TEST_POSTGRES_URL` is set (`scripts/test.sh`
//! sets it; with `CI` set its absence is a failure, not a skip).
//!
//! Bounded: twelve messages, five client threads, at most a few hundred requests, and the kill
//! comes once enough has been acknowledged or after a few seconds, whichever is first.

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::common::ok;
use crate::keyservice::{free_port, ok_env, post, start_serve};

const MESSAGES: usize = 12;
/// Messages `REVOKED_FROM..MESSAGES` are revoked during the burst; all are rewrapped.
const REVOKED_FROM: usize = 4;
const REWRAP_THREADS: usize = 4;
/// Requests per rewrap thread at most, so the burst ends even if the kill never comes.
const REWRAPS_PER_THREAD: usize = 150;
/// The kill comes once this many shares were released and two revocations acknowledged...
const RELEASES_BEFORE_KILL: usize = 120;
/// ...or after this long.
const BURST_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged_sqlite() {
    restart_safety(None);
}

#[test]
fn kill_9_during_a_burst_loses_nothing_acknowledged_postgres() {
    if let Some(url) = crate::common::test_postgres_url("the PostgreSQL restart test") {
        restart_safety(Some(url));
    }
}

/// One message as the API takes it.
struct Message {
    id: String,
    reference: String,
    header: String,
    license: String,
}

/// What the service acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    /// Shares released (200 with a sealed share), per message index.
    released: HashMap<usize, usize>,
    /// Revocations answered 200, by message index.
    revoked: Vec<usize>,
    /// Answers that are neither an acknowledgement nor an expected refusal.
    unexpected: Vec<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A JSON POST; `None` when the server is gone (connection refused or cut).
fn try_post(agent: &ureq::Agent, url: &str, bearer: &str, body: &Value) -> Option<(u16, Value)> {
    let mut resp = agent
        .post(url)
        .header("Authorization", &format!("Bearer {bearer}"))
        .header("X-Sealpost-Client", "1")
        .send_json(body)
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_json().ok()?;
    Some((status, body))
}

fn restart_safety(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_string_lossy().into_owned();
    // A tenant and a recipient of their own: on PostgreSQL the database is shared with other
    // tests and earlier runs, and the passcode limit counts per address.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let domain = format!("restart{}-{nanos}.example.com", std::process::id());
    let bob = format!("bob@{domain}");
    crate::common::tenant(&dir, "tenant", &domain, &[]);
    // The burst comes from one address: lift the per-IP limit out of the way.
    std::fs::write(
        d("sealpost.toml"),
        "[keyservice]\nper_ip_per_minute = 1000000\n",
    )
    .unwrap();
    let kek = B64.encode([5u8; 32]);
    let mut db_args = vec!["--data".to_string(), d("data")];
    if let Some(url) = &database_url {
        db_args.extend(["--database-url".to_string(), url.clone()]);
    }
    let serve = |port: u16| {
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<&str> = vec!["serve", "--listen", &listen, "--config"];
        let config = d("sealpost.toml");
        let tenant = d("tenant");
        args.push(&config);
        args.extend(["--tenant", &tenant]);
        args.extend(db_args.iter().map(String::as_str));
        start_serve(&args, &kek, port)
    };
    let cli = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(db_args.iter().map(String::as_str));
        ok_env(&all, &[("SEALPOST_KEK", kek.as_str())])
    };

    let port = free_port();
    let mut server = serve(port);
    let messages: Vec<Message> = (0..MESSAGES)
        .map(|i| {
            let mail = format!("From: alice@{domain}\nTo: {bob}\nSubject: m{i}\n\nbody {i}\n");
            let wrapper = ok(&["encrypt", "--tenant", &d("tenant")], mail.as_bytes());
            let envelope = sealpost_core::mail::extract_envelope(&wrapper).unwrap();
            let e = sealpost_core::Envelope::parse(&envelope).unwrap();
            Message {
                id: e.header().message_id.to_hex(),
                reference: e.header().message_id.reference(),
                header: B64.encode(e.header_bytes()),
                license: B64.encode(e.license()),
            }
        })
        .collect();

    // Bob signs in once; his session is good for every message he is a recipient of.
    let first = &messages[0];
    let (status, started) = post(
        port,
        "/v1/otp/start",
        None,
        &json!({"header": first.header, "license": first.license, "email": bob}),
    );
    assert_eq!(status, 200, "{started}");
    let outbox = cli(&["outbox", "list", "--limit", "1000"]);
    let code = crate::common::passcode_for(&outbox, &first.reference);
    let (status, session) = post(
        port,
        "/v1/otp/verify",
        None,
        &json!({"challenge": started["challenge"], "code": code}),
    );
    assert_eq!(status, 200, "{session}");
    let session = session["session"].as_str().unwrap().to_string();
    let token = cli(&["admin", "token", "create", "--tenant-id", &domain])
        .trim()
        .to_string();
    let client = sealpost_core::rewrap::ClientSecretKey::derive(&[3u8; 32]);
    let client_key = B64.encode(client.public_key().to_bytes());
    let rewrap_body = |m: &Message| json!({"header": m.header, "license": m.license, "client_public_key": client_key});

    // --- the burst ------------------------------------------------------------------------
    let messages = Arc::new(messages);
    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let releases = Arc::new(AtomicUsize::new(0));
    let base = format!("http://127.0.0.1:{port}");
    let mut threads = Vec::new();
    for t in 0..REWRAP_THREADS {
        let (messages, acked, releases) = (messages.clone(), acked.clone(), releases.clone());
        let (url, session) = (format!("{base}/v1/rewrap"), session.clone());
        let bodies: Vec<Value> = messages.iter().map(rewrap_body).collect();
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            for n in 0..REWRAPS_PER_THREAD {
                let i = (t + n) % messages.len();
                let Some((status, body)) = try_post(&agent, &url, &session, &bodies[i]) else {
                    return;
                };
                let mut acked = acked.lock().unwrap();
                match (status, body["error"].as_str()) {
                    (200, _) if body["sealed_share"].is_string() => {
                        *acked.released.entry(i).or_default() += 1;
                        releases.fetch_add(1, Ordering::SeqCst);
                    }
                    (410, Some("revoked")) if i >= REVOKED_FROM => {}
                    _ => acked
                        .unexpected
                        .push(format!("rewrap {i}: {status} {body}")),
                }
            }
        }));
    }
    let revoking = Arc::new(AtomicBool::new(true));
    {
        let (messages, acked, revoking) = (messages.clone(), acked.clone(), revoking.clone());
        let (url, token) = (format!("{base}/v1/admin/revoke"), token.clone());
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            for i in REVOKED_FROM..MESSAGES {
                if i > REVOKED_FROM {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let body = json!({"message_id": messages[i].id});
                let Some((status, answer)) = try_post(&agent, &url, &token, &body) else {
                    return;
                };
                let mut acked = acked.lock().unwrap();
                if status == 200 {
                    acked.revoked.push(i);
                } else {
                    acked
                        .unexpected
                        .push(format!("revoke {i}: {status} {answer}"));
                }
            }
            revoking.store(false, Ordering::SeqCst);
        }));
    }

    // Kill once enough is acknowledged, while revocations are still going on.
    let started = Instant::now();
    while started.elapsed() < BURST_LIMIT
        && (releases.load(Ordering::SeqCst) < RELEASES_BEFORE_KILL
            || acked.lock().unwrap().revoked.len() < 2)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill_9(&mut server.0);
    let killed_mid_revocations = revoking.load(Ordering::SeqCst);
    for t in threads {
        t.join().expect("client thread");
    }
    drop(server);

    let acked = Arc::try_unwrap(acked)
        .ok()
        .expect("threads are done")
        .into_inner()
        .unwrap();
    assert!(acked.unexpected.is_empty(), "{:#?}", acked.unexpected);
    let total: usize = acked.released.values().sum();
    assert!(
        total > 0 && !acked.revoked.is_empty(),
        "nothing was acknowledged before the kill: {total} releases, {:?} revoked",
        acked.revoked
    );
    eprintln!(
        "killed after {total} releases and {} revocations{}",
        acked.revoked.len(),
        if killed_mid_revocations {
            ", with revocations still to come"
        } else {
            ""
        }
    );

    // --- after the restart ----------------------------------------------------------------
    let port = free_port();
    let _server = serve(port);
    let agent = agent();
    let base = format!("http://127.0.0.1:{port}");
    for &i in &acked.revoked {
        let answer = try_post(
            &agent,
            &format!("{base}/v1/rewrap"),
            &session,
            &rewrap_body(&messages[i]),
        );
        let (status, body) = answer.expect("the restarted service answers");
        assert_eq!(
            (status, body["error"].as_str()),
            (410, Some("revoked")),
            "acknowledged revocation of message {i} lost: {body}"
        );
    }
    for (&i, &count) in &acked.released {
        let url = format!("{base}/v1/admin/messages/{}/audit", messages[i].id);
        let mut resp = agent
            .get(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let audit: Value = resp.body_mut().read_json().unwrap();
        let recorded = audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "share_released" && e["email"] == bob.as_str())
            .count();
        assert!(
            recorded >= count,
            "message {i}: {count} shares released but {recorded} audit records"
        );
    }
}

/// SIGKILL (what `Child::kill` sends on Unix), then reap.
fn kill_9(child: &mut Child) {
    child.kill().expect("kill -9 the service");
    child.wait().expect("reap the service");
}
