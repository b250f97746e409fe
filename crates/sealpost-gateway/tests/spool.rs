//! The durable spool: storing and reading back, crash leftovers (torn temp files, damaged
//! entries and state), the delivery state machine, recovery's duplicate reports, the lock,
//! and a second `Spool` on the same directory (as `sealpost queue` is) changing what a running
//! one delivers.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

#[path = "spool/crash.rs"]
mod crash;

use sealpost_gateway::spool::{
    ACK_GRACE_SECS, NewEntry, NewPart, PartRef, PartStatus, QueueId, RecoveredKind, Spool,
    SpoolError,
};

const T0: u64 = 1_800_000_000;

fn entry(message_id: &str, parts: &[(&str, &[u8])]) -> NewEntry {
    NewEntry {
        mail_from: "alice@example.org".into(),
        message_id: Some(message_id.into()),
        received_from: "client.example.org [127.0.0.1]".into(),
        parts: parts
            .iter()
            .map(|(rcpt, data)| NewPart {
                recipients: vec![(*rcpt).into()],
                data: data.to_vec(),
                label: format!("copy for {rcpt}"),
            })
            .collect(),
    }
}

fn part(id: &QueueId, part: usize) -> PartRef {
    PartRef {
        id: id.clone(),
        part,
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Stores one single-copy message and acknowledges it.
fn stored(spool: &Spool, message_id: &str, body: &[u8]) -> QueueId {
    let id = spool
        .store(entry(message_id, &[("bob@example.net", body)]), T0)
        .unwrap();
    spool.acknowledge(&id).unwrap();
    id
}

#[test]
fn store_and_read_back_every_copy() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let id = spool
        .store(
            entry(
                "<m1@example.org>",
                &[
                    ("in@example.org", b"original\r\n"),
                    ("out@example.net", &big),
                ],
            ),
            T0,
        )
        .unwrap();
    assert_eq!(id.to_string().parse::<QueueId>().unwrap(), id);
    assert_eq!(files(&dir.path().join("tmp")), Vec::<String>::new());
    assert_eq!(files(&dir.path().join("queue")), vec![format!("{id}.msg")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(format!("queue/{id}.msg"))), 0o600);
        for d in ["queue", "tmp", "corrupt"] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
    }

    let p1 = spool.read_part(&part(&id, 1)).unwrap();
    assert_eq!(p1.data, big);
    assert_eq!(p1.recipients, ["out@example.net"]);
    assert_eq!(p1.label, "copy for out@example.net");
    assert_eq!(p1.mail_from, "alice@example.org");
    assert_eq!(p1.message_id.as_deref(), Some("<m1@example.org>"));
    assert_eq!(p1.received_from, "client.example.org [127.0.0.1]");
    assert_eq!((p1.created, p1.attempts), (T0, 0));
    assert_eq!(
        spool.read_part(&part(&id, 0)).unwrap().data,
        b"original\r\n"
    );
    assert!(matches!(
        spool.read_part(&part(&id, 2)),
        Err(SpoolError::NoSuchPart(_))
    ));

    // A fresh instance (a restart) reads the same.
    let again = Spool::open(dir.path()).unwrap();
    assert_eq!(again.read_part(&part(&id, 1)).unwrap().data, big);
    assert_eq!(again.len().unwrap(), 2);
    let list = again.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].parts[1].size, big.len() as u64);
    assert_eq!(list[0].parts[1].state, PartStatus::Queued);
    assert!(!list[0].acknowledged);
}

#[test]
fn an_entry_needs_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let e = NewEntry {
        parts: vec![],
        ..entry("<x@y>", &[])
    };
    assert!(matches!(spool.store(e, T0), Err(SpoolError::NoParts)));
}

#[test]
fn queue_ids_reject_anything_but_16_hex_digits() {
    for bad in [
        "../x",
        "",
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789ABCDEF",
        "../../etc/passwd",
        "0123456789abcde/",
        "0123456789abcdeg",
        " 123456789abcdef",
    ] {
        assert!(bad.parse::<QueueId>().is_err(), "{bad:?} was accepted");
    }
    let id: QueueId = "0123456789abcdef".parse().unwrap();
    assert_eq!(id.as_str(), "0123456789abcdef");
}

#[test]
fn ids_sort_by_store_time() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let later = spool
        .store(entry("<b@x>", &[("r@x", b"b")]), T0 + 100)
        .unwrap();
    let earlier = spool.store(entry("<a@x>", &[("r@x", b"a")]), T0).unwrap();
    assert!(earlier < later);
    spool.acknowledge(&later).unwrap();
    spool.acknowledge(&earlier).unwrap();
    let due = spool.due(T0 + 100).unwrap();
    assert_eq!(due, vec![part(&earlier, 0), part(&later, 0)]);
}

#[test]
fn torn_temp_files_are_removed_and_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = stored(&spool, "<ok@x>", b"whole");
    drop(spool);
    // A writer killed mid-write leaves a partial temp file.
    fs::write(
        dir.path().join("tmp/00112233aabbccdd.tmp"),
        b"SPLPOST1\0\0\0",
    )
    .unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(files(&dir.path().join("tmp")), Vec::<String>::new());
    assert_eq!(spool.due(T0).unwrap(), vec![part(&id, 0)]);
    assert_eq!(spool.list().unwrap().len(), 1);
}

#[test]
fn a_temp_file_being_written_by_a_live_process_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    Spool::open(dir.path()).unwrap();
    let path = dir.path().join("tmp/0011223344556677.tmp");
    let writer = fs::File::create(&path).unwrap();
    writer.try_lock().unwrap();
    Spool::open(dir.path()).unwrap();
    assert!(path.exists(), "a locked temp file was removed");
    drop(writer);
    Spool::open(dir.path()).unwrap();
    assert!(!path.exists());
}

#[test]
fn a_truncated_entry_is_quarantined_not_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let good = stored(&spool, "<good@x>", b"fine");
    let bad = stored(&spool, "<bad@x>", &[7u8; 5000]);
    drop(spool);
    let path = dir.path().join(format!("queue/{bad}.msg"));
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(spool.due(T0).unwrap(), vec![part(&good, 0)]);
    assert_eq!(spool.len().unwrap(), 1);
    assert_eq!(
        files(&dir.path().join("corrupt")),
        vec![format!("{bad}.msg"), format!("{bad}.state")]
    );
    let listed: Vec<QueueId> = spool.list().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(listed, vec![good]);
}

#[test]
fn a_damaged_copy_is_caught_by_its_checksum_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = stored(&spool, "<flip@x>", &[b'a'; 2000]);
    let path = dir.path().join(format!("queue/{id}.msg"));
    let mut bytes = fs::read(&path).unwrap();
    *bytes.last_mut().unwrap() ^= 0x20;
    fs::write(&path, &bytes).unwrap();

    // The header is intact, so the copy is still listed as due ...
    assert_eq!(spool.due(T0).unwrap(), vec![part(&id, 0)]);
    // ... but it is never handed out as mail.
    match spool.read_part(&part(&id, 0)) {
        Err(SpoolError::Corrupt {
            id: bad,
            quarantined,
            ..
        }) => {
            assert_eq!(bad, id);
            assert!(quarantined.starts_with(dir.path().join("corrupt")));
            assert_eq!(fs::read(quarantined).unwrap(), bytes);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(spool.due(T0).unwrap().is_empty());
    assert!(!path.exists());
}

#[test]
fn garbage_in_the_queue_directory_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    Spool::open(dir.path()).unwrap();
    fs::write(
        dir.path().join("queue/0123456789abcdef.msg"),
        b"not an entry at all",
    )
    .unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    assert!(spool.due(T0 + ACK_GRACE_SECS).unwrap().is_empty());
    assert!(spool.list().unwrap().is_empty());
    assert_eq!(
        files(&dir.path().join("corrupt")),
        vec!["0123456789abcdef.msg".to_string()]
    );
}

#[test]
fn a_damaged_state_file_means_redelivery_reported_as_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = stored(&spool, "<state@x>", b"body");
    spool
        .deferred(&part(&id, 0), T0, "451 later", T0 + 600)
        .unwrap();
    drop(spool);
    fs::write(dir.path().join(format!("queue/{id}.state")), b"{\"acknow").unwrap();

    let spool = Spool::open(dir.path()).unwrap();
    assert_eq!(
        files(&dir.path().join("corrupt")),
        vec![format!("{id}.state")]
    );
    let recovered = spool.recover().unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].kind, RecoveredKind::NeverAcknowledged);
    assert_eq!(spool.due(T0).unwrap(), vec![part(&id, 0)]);
}

#[test]
fn unacknowledged_mail_waits_for_the_ack_or_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = spool.store(entry("<w@x>", &[("r@x", b"x")]), T0).unwrap();
    assert!(spool.due(T0).unwrap().is_empty());
    assert_eq!(spool.due(T0 + ACK_GRACE_SECS).unwrap(), vec![part(&id, 0)]);
    spool.acknowledge(&id).unwrap();
    assert_eq!(spool.due(T0).unwrap(), vec![part(&id, 0)]);
    // Acknowledging twice, or after the entry is gone, is fine.
    spool.acknowledge(&id).unwrap();
    spool.delete(&id).unwrap();
    spool.acknowledge(&id).unwrap();
}

#[test]
fn deferred_retry_now_delivered_and_bounced() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = spool
        .store(entry("<s@x>", &[("a@x", b"one"), ("b@y", b"two")]), T0)
        .unwrap();
    spool.acknowledge(&id).unwrap();
    let (p0, p1) = (part(&id, 0), part(&id, 1));
    assert_eq!(spool.due(T0).unwrap(), vec![p0.clone(), p1.clone()]);

    spool.begin_attempt(&p0, T0).unwrap();
    assert!(matches!(
        spool.begin_attempt(&p0, T0),
        Err(SpoolError::NotDue(_))
    ));
    assert_eq!(
        spool.due(T0).unwrap(),
        vec![p1.clone()],
        "in progress is not due"
    );
    assert_eq!(
        spool.list().unwrap()[0].parts[0].state,
        PartStatus::InProgress
    );

    spool
        .deferred(&p0, T0 + 1, "451 4.3.0 try later", T0 + 60)
        .unwrap();
    assert_eq!(spool.due(T0 + 59).unwrap(), vec![p1.clone()]);
    assert_eq!(spool.due(T0 + 60).unwrap(), vec![p0.clone(), p1.clone()]);
    let d = spool.read_part(&p0).unwrap();
    assert_eq!(
        (d.attempts, d.last_error.as_deref()),
        (1, Some("451 4.3.0 try later"))
    );
    let s = &spool.list().unwrap()[0].parts[0];
    assert_eq!(
        (s.state, s.next_attempt, s.last_attempt),
        (PartStatus::Deferred, T0 + 60, Some(T0 + 1))
    );

    spool
        .deferred(&p0, T0 + 2, "451 again", T0 + 10_000)
        .unwrap();
    assert_eq!(spool.retry_now(Some(&id)).unwrap(), 2);
    assert_eq!(spool.due(T0 + 3).unwrap(), vec![p0.clone(), p1.clone()]);

    spool.begin_attempt(&p1, T0 + 3).unwrap();
    spool.delivered(&p1, T0 + 4).unwrap();
    assert!(matches!(
        spool.delivered(&p1, T0 + 4),
        Err(SpoolError::NotDue(_))
    ));
    assert_eq!(spool.len().unwrap(), 1);
    assert_eq!(
        spool.list().unwrap()[0].parts[1].state,
        PartStatus::Delivered
    );

    // The delivered copy stays delivered across a restart.
    let restarted = Spool::open(dir.path()).unwrap();
    assert_eq!(restarted.due(T0 + 5).unwrap(), vec![p0.clone()]);

    spool
        .bounced(&p0, T0 + 5, "550 5.1.1 no such user")
        .unwrap();
    assert_eq!(spool.len().unwrap(), 0);
    assert!(spool.due(T0 + 10_000).unwrap().is_empty());
    assert_eq!(files(&dir.path().join("queue")), Vec::<String>::new());
    assert!(matches!(spool.read_part(&p0), Err(SpoolError::NotFound(_))));
    assert!(matches!(
        spool.begin_attempt(&p0, T0),
        Err(SpoolError::NotFound(_))
    ));
}

#[test]
fn delivering_the_last_copy_removes_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = stored(&spool, "<d@x>", b"x");
    spool.begin_attempt(&part(&id, 0), T0).unwrap();
    spool.delivered(&part(&id, 0), T0).unwrap();
    assert_eq!(files(&dir.path().join("queue")), Vec::<String>::new());
    let restarted = Spool::open(dir.path()).unwrap();
    assert!(restarted.recover().unwrap().is_empty());
    assert_eq!(restarted.len().unwrap(), 0);
}

/// Runs `f` and returns what it logged, formatted as the gateway's log shows it.
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);
    impl Write for Logs {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    (r, text)
}

#[test]
fn recover_reports_unacknowledged_mail_and_interrupted_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let unacked = spool
        .store(entry("<never-acked@x>", &[("r@x", b"a")]), T0)
        .unwrap();
    let relaying = stored(&spool, "<mid-relay@x>", b"b");
    let quiet = stored(&spool, "<quiet@x>", b"c");
    spool.begin_attempt(&part(&relaying, 0), T0).unwrap();
    drop(spool); // the gateway is killed here

    let spool = Spool::open(dir.path()).unwrap();
    let _lock = spool.lock().unwrap();
    let (recovered, text) = logged(|| spool.recover().unwrap());

    let mut kinds: Vec<(QueueId, RecoveredKind)> =
        recovered.iter().map(|r| (r.id.clone(), r.kind)).collect();
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (unacked.clone(), RecoveredKind::NeverAcknowledged),
        (
            relaying.clone(),
            RecoveredKind::AttemptInterrupted { part: 0 },
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(kinds, expected);
    assert!(recovered.iter().all(|r| r.id != quiet));

    let warns: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warns.len(), 2, "{text}");
    assert!(
        warns
            .iter()
            .any(|l| l.contains("possible duplicate message_id=<never-acked@x>")),
        "{text}"
    );
    assert!(
        warns
            .iter()
            .any(|l| l.contains("possible duplicate message_id=<mid-relay@x>")),
        "{text}"
    );

    // Flags are cleared: reported once, and the interrupted copy is due again.
    assert!(spool.recover().unwrap().is_empty());
    assert_eq!(spool.read_part(&part(&relaying, 0)).unwrap().attempts, 1);
    let due = spool.due(T0).unwrap();
    assert!(due.contains(&part(&relaying, 0)) && due.contains(&part(&unacked, 0)));
}

#[test]
fn relaying_mail_never_acknowledged_is_logged_as_a_possible_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = spool
        .store(entry("<lost-250@x>", &[("r@x", b"a")]), T0)
        .unwrap();
    let due = spool.due(T0 + ACK_GRACE_SECS).unwrap();
    assert_eq!(due, vec![part(&id, 0)]);
    let ((), text) = logged(|| spool.begin_attempt(&due[0], T0 + ACK_GRACE_SECS).unwrap());
    assert!(
        text.contains("possible duplicate message_id=<lost-250@x>"),
        "{text}"
    );
}

#[test]
fn only_one_gateway_can_lock_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path()).unwrap();
    let second = Spool::open(dir.path()).unwrap();
    let held = first.lock().unwrap();
    match second.lock() {
        Err(e @ SpoolError::Locked { .. }) => {
            assert!(
                e.to_string().contains(&dir.path().display().to_string()),
                "{e}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(held);
    second.lock().unwrap();
}

#[test]
fn the_cli_changes_what_a_running_gateway_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Spool::open(dir.path()).unwrap();
    let _lock = gateway.lock().unwrap();
    let deferred = stored(&gateway, "<deferred@x>", b"a");
    let doomed = stored(&gateway, "<doomed@x>", b"b");
    gateway
        .deferred(&part(&deferred, 0), T0, "451 down", T0 + 3600)
        .unwrap();
    assert_eq!(gateway.due(T0 + 1).unwrap(), vec![part(&doomed, 0)]);

    // `sealpost queue` opens the same directory without the lock.
    let cli = Spool::open(dir.path()).unwrap();
    assert!(matches!(cli.lock(), Err(SpoolError::Locked { .. })));
    assert_eq!(cli.list().unwrap().len(), 2);
    assert_eq!(cli.retry_now(None).unwrap(), 2);
    cli.delete(&doomed).unwrap();
    assert!(matches!(cli.delete(&doomed), Err(SpoolError::NotFound(_))));

    // The gateway's next `due` sees both changes.
    assert_eq!(gateway.due(T0 + 1).unwrap(), vec![part(&deferred, 0)]);
    assert_eq!(gateway.len().unwrap(), 1);
    assert!(matches!(
        gateway.begin_attempt(&part(&doomed, 0), T0 + 1),
        Err(SpoolError::NotFound(_))
    ));
    let listed: Vec<QueueId> = cli.list().unwrap().into_iter().map(|e| e.id).collect();
    assert_eq!(listed, vec![deferred.clone()]);
    assert!(matches!(
        cli.retry_now(Some(&doomed)),
        Err(SpoolError::NotFound(_))
    ));
}

#[test]
fn a_copy_deleted_while_in_flight_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = Spool::open(dir.path()).unwrap();
    let id = stored(&gateway, "<inflight@x>", b"a");
    let due = gateway.due(T0).unwrap();
    Spool::open(dir.path()).unwrap().delete(&id).unwrap();
    assert!(matches!(
        gateway.read_part(&due[0]),
        Err(SpoolError::NotFound(_))
    ));
    assert!(matches!(
        gateway.delivered(&due[0], T0),
        Err(SpoolError::NotFound(_))
    ));
    assert_eq!(files(&dir.path().join("queue")), Vec::<String>::new());
}
