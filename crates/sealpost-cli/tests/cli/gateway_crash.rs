//! Crash safety of `sealpost gateway`: 500 messages (unique Message-IDs, a quarter encrypted by
//! a rule, a quarter split into an original and a wrapper) are submitted by several client
//! threads straight to the gateway, which relays to an exact SMTP sink, while another thread
//! kills the gateway with SIGKILL at least 20 times at random moments (a seeded generator; the
//! seed is printed, `SEALPOST_CRASH_SEED` replays it) and restarts it. Clients retry each
//! message until it gets a 250. Once the spool has drained (`sealpost queue list` is empty):
//!
//! - every message that got a 250 reached each of its recipients at least once;
//! - every message that reached a recipient more than once, or arrived without ever getting a
//!   250, is named in a `possible duplicate` line of the gateway's log;
//! - every copy is whole: an original is byte for byte what was sent, a wrapper decrypts to it.
//!
//! The test runs twice: with the spool first (the default) and with `relay_first = true`
//! (each message relayed before its 250; the relay journal reports the duplicates).
//!
//! Without python3-aiosmtpd the test prints a skip line and passes, unless `CI` is set.
//! Bounded: the load is paced over about ten seconds so that the kills fall inside it, and the
//! whole test takes well under a minute on two cores.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{ok, s, tenant};
use crate::gateway_harness::{
    Client, Gateway, Sink, gateway_table, header_value, is_wrapper, open_tempdir, received_prefix,
    tools_available,
};
use crate::keyservice::free_port;

const MESSAGES: usize = 500;
const CLIENTS: usize = 4;
const MIN_KILLS: usize = 20;
const MAX_KILLS: usize = 80;
/// Message i is not submitted before i × PACE after the start.
const PACE: Duration = Duration::from_millis(20);
/// The load must be done by then (it takes about MESSAGES × PACE plus the restarts).
const LOAD_LIMIT: Duration = Duration::from_secs(120);
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Secure on request"
priority = 20
[rules.conditions]
recipient_scope = "outside"
subject_contains = ["[secure]"]
[rules.actions]
encrypt = "Encrypt-Only"
"#;

/// SplitMix64: a tiny seeded generator for the kill moments (not for anything secret).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Message {
    id: String,
    to: Vec<&'static str>,
    data: Vec<u8>,
}

/// Message `i`: kinds 0 (encrypted), 1 (split: internal original + external wrapper), 2 and 3
/// (passed to an outside recipient).
fn message(i: usize) -> Message {
    let id = format!("m{i:05}@crash.acme.example");
    let (to, subject): (Vec<&'static str>, &str) = match i % 4 {
        0 => (vec!["carol@gmail.com"], "[secure] report"),
        1 => (
            vec!["bob@acme.example", "carol@gmail.com"],
            "[secure] split",
        ),
        _ => (vec!["erin@example.org"], "status"),
    };
    let mut data = format!(
        "From: alice@acme.example\r\nTo: {}\r\nSubject: {subject} {i}\r\nMessage-ID: <{id}>\r\n\
         Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\r\n",
        to.join(", ")
    );
    for line in 0..(20 + i % 50) {
        data.push_str(&format!("message {i} line {line}: the quick brown fox\r\n"));
    }
    Message {
        id,
        to,
        data: data.into_bytes(),
    }
}

#[test]
fn gateway_killed_under_load_loses_nothing_acknowledged() {
    crash_test("gateway_killed_under_load_loses_nothing_acknowledged", "");
}

/// The same with `relay_first = true`: most messages are relayed before their 250 and never
/// spooled; the relay journal must report the ones a kill caught between the two.
#[test]
fn gateway_relaying_first_killed_under_load_loses_nothing_acknowledged() {
    crash_test(
        "gateway_relaying_first_killed_under_load_loses_nothing_acknowledged",
        "relay_first = true\n",
    );
}

/// Runs the load with `extra` lines in the `[gateway]` table; see the module docs.
fn crash_test(name: &str, extra: &str) {
    if !tools_available(name, &["aiosmtpd"]) {
        return;
    }
    let seed = std::env::var("SEALPOST_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{name}: seed {seed} (replay with SEALPOST_CRASH_SEED={seed})");

    let dir = open_tempdir();
    let (port, sink_port, metrics) = (free_port(), free_port(), free_port());
    let sink = Sink::start(sink_port, &dir.path().join("sink"));
    tenant(&dir, "tenant", "acme.example", &[]);
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        gateway_table(
            port,
            sink_port,
            metrics,
            &format!("retry_first = \"1s\"\nretry_max = \"2s\"\n{extra}"),
        ) + RULES,
    )
    .unwrap();
    let mut gateway = Gateway::start(&config, &dir.path().join("gateway.log"), port);

    let messages: Vec<Message> = (0..MESSAGES).map(message).collect();
    let next = AtomicUsize::new(0);
    let acked = Mutex::new(vec![false; MESSAGES]);
    let refused = Mutex::new(Vec::new());
    let clients_done = AtomicUsize::new(0);
    let give_up = AtomicBool::new(false);
    let kills_during_load = AtomicUsize::new(0);
    let start = Instant::now();
    let mut kills = 0;

    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let mut conn: Option<Client> = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= MESSAGES || give_up.load(Ordering::Relaxed) {
                        break;
                    }
                    let due = start + PACE * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let m = &messages[i];
                    loop {
                        if start.elapsed() > LOAD_LIMIT {
                            give_up.store(true, Ordering::Relaxed);
                            break;
                        }
                        let mut c = match conn.take() {
                            Some(c) => c,
                            None => match Client::connect(port) {
                                Ok(c) => c,
                                Err(_) => {
                                    std::thread::sleep(Duration::from_millis(20));
                                    continue;
                                }
                            },
                        };
                        match c.send("alice@acme.example", &m.to, &m.data) {
                            Ok(r) if r.code == 250 => {
                                acked.lock().unwrap()[i] = true;
                                conn = Some(c);
                                break;
                            }
                            Ok(r) if (400..500).contains(&r.code) => {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Ok(r) => {
                                refused
                                    .lock()
                                    .unwrap()
                                    .push(format!("{}: {}", m.id, r.text));
                                conn = Some(c);
                                break;
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                }
                clients_done.fetch_add(1, Ordering::Relaxed);
            });
        }
        // The killer: SIGKILL at a random moment, restart at once; mostly once the gateway
        // greets again, sometimes while it is still starting (recovering its spool).
        let mut rng = SplitMix64(seed);
        let gateway = &mut gateway;
        let kills = &mut kills;
        while *kills < MAX_KILLS
            && (clients_done.load(Ordering::Relaxed) < CLIENTS || *kills < MIN_KILLS)
        {
            if rng.below(4) == 0 {
                std::thread::sleep(Duration::from_millis(rng.below(150)));
            } else {
                gateway.wait_up(Duration::from_secs(60));
                std::thread::sleep(Duration::from_millis(rng.below(250)));
            }
            gateway.kill();
            *kills += 1;
            if clients_done.load(Ordering::Relaxed) < CLIENTS {
                kills_during_load.fetch_add(1, Ordering::Relaxed);
            }
            gateway.spawn();
        }
    });
    let load_time = start.elapsed();
    assert!(
        !give_up.load(Ordering::Relaxed),
        "the load did not finish within {LOAD_LIMIT:?} ({kills} kills)"
    );
    let refused = refused.into_inner().unwrap();
    assert!(refused.is_empty(), "permanent refusals: {refused:?}");
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.iter().all(|&a| a),
        "every message got its 250 in the end"
    );
    assert!(
        kills_during_load.load(Ordering::Relaxed) >= MIN_KILLS,
        "only {} kills fell inside the load",
        kills_during_load.load(Ordering::Relaxed)
    );
    eprintln!(
        "{name}: {MESSAGES} messages in {load_time:?}, {kills} kills ({} during the load), {} starts",
        kills_during_load.load(Ordering::Relaxed),
        gateway.starts
    );

    // Let the restarted gateway drain its spool.
    gateway.wait_up(Duration::from_secs(60));
    let drain_start = Instant::now();
    loop {
        let out = ok(&["queue", "list", "--config", s(&config)], b"");
        let listed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        if listed.as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        assert!(
            drain_start.elapsed() < DRAIN_LIMIT,
            "the spool did not drain: {listed}\n{}",
            gateway.log_text()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let log = gateway.log_text();
    drop(gateway);

    let duplicates: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("possible duplicate"))
        .collect();
    // Message-IDs are of fixed width, so none is a substring of another.
    let reported = |id: &str| -> bool { duplicates.iter().any(|l| l.contains(id)) };
    let by_id: HashMap<&str, &Message> = messages.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut copies: HashMap<(String, String), usize> = HashMap::new();
    let mut wrappers = 0;
    for (n, d) in sink.deliveries().iter().enumerate() {
        let id = header_value(&d.data, "Message-ID").unwrap_or_default();
        let id = id.trim_start_matches('<').trim_end_matches('>');
        let m = by_id
            .get(id)
            .unwrap_or_else(|| panic!("the sink got a mail with Message-ID {id:?}"));
        let whole = if is_wrapper(&d.data) {
            wrappers += 1;
            let path = dir.path().join(format!("wrapper-{n}.eml"));
            std::fs::write(&path, &d.data).unwrap();
            let tenant_dir = dir.path().join("tenant");
            let plain = ok(&["decrypt", "--tenant", s(&tenant_dir), s(&path)], b"");
            received_prefix(&plain, &m.data).is_some()
        } else {
            received_prefix(&d.data, &m.data).is_some()
        };
        assert!(
            whole,
            "a damaged copy of {id}:\n{}",
            String::from_utf8_lossy(&d.data)
        );
        for r in &d.recipients {
            assert!(m.to.contains(&r.as_str()), "{id} was delivered to {r}");
            *copies.entry((id.to_string(), r.clone())).or_default() += 1;
        }
    }
    assert!(wrappers > 0, "no message was encrypted");

    let mut lost = Vec::new();
    let mut unreported = Vec::new();
    let mut duplicated = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        for r in &m.to {
            match copies
                .get(&(m.id.clone(), r.to_string()))
                .copied()
                .unwrap_or(0)
            {
                0 if acked[i] => lost.push(format!("{} to {r}", m.id)),
                0 => {}
                1 if acked[i] => {}
                n => {
                    duplicated.insert(m.id.clone());
                    if !reported(&m.id) {
                        unreported.push(format!("{} to {r}: {n} copies, 250: {}", m.id, acked[i]));
                    }
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged but never delivered: {lost:?}"
    );
    assert!(
        unreported.is_empty(),
        "delivered twice or without a 250, and not logged as a possible duplicate: {unreported:?}"
    );
    eprintln!(
        "{name}: {} messages delivered more than once (all logged), {} `possible duplicate` lines, {wrappers} wrappers",
        duplicated.len(),
        duplicates.len()
    );
    drop(sink);
}
