//! The spool under load and under kill -9: concurrent stores, the store time (printed), and a
//! writer process killed at random moments.

use std::io::Write;
use std::path::Path;

use sealpost_gateway::spool::{QueueId, RecoveredKind, Spool, SpoolError};

use super::{T0, entry, files, part, stored};

#[test]
fn concurrent_stores_and_state_changes_keep_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let body = vec![b'x'; 100 * 1024];
    let started = std::time::Instant::now();
    let ids: Vec<QueueId> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let (spool, body) = (spool.clone(), body.clone());
                s.spawn(move || {
                    (0..50)
                        .map(|i| {
                            let id = stored(&spool, &format!("<{t}.{i}@x>"), &body);
                            let cli = &spool;
                            cli.retry_now(Some(&id)).unwrap();
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    // Not a timed test: printed for the record (`-- --nocapture`).
    println!(
        "store+acknowledge+retry_now of 200 x 100 KiB on 4 threads: {:.3} ms per message",
        elapsed.as_secs_f64() * 1000.0 / 200.0
    );
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200);
    let reopened = Spool::open(dir.path()).unwrap();
    assert_eq!(reopened.len().unwrap(), 200);
    assert_eq!(reopened.due(T0).unwrap().len(), 200);
    for id in &ids {
        assert_eq!(reopened.read_part(&part(id, 0)).unwrap().data, body);
    }
}

#[test]
fn store_time_for_100_kib_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let body = vec![b'y'; 100 * 1024];
    let n = 200;
    // store, acknowledge, begin_attempt, delivered
    let mut spent = [std::time::Duration::ZERO; 4];
    for i in 0..n {
        let e = entry(&format!("<{i}@x>"), &[("r@x", &body)]);
        let t = std::time::Instant::now();
        let id = spool.store(e, T0).unwrap();
        spent[0] += t.elapsed();
        let t = std::time::Instant::now();
        spool.acknowledge(&id).unwrap();
        spent[1] += t.elapsed();
        let t = std::time::Instant::now();
        spool.begin_attempt(&part(&id, 0), T0).unwrap();
        spent[2] += t.elapsed();
        let t = std::time::Instant::now();
        spool.delivered(&part(&id, 0), T0).unwrap();
        spent[3] += t.elapsed();
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0 / f64::from(n);
    // Not a timed test: printed for the record (`-- --nocapture`).
    println!(
        "100 KiB, mean of {n}: store {:.3} ms, acknowledge {:.3} ms, begin_attempt {:.3} ms, \
         delivered {:.3} ms",
        ms(spent[0]),
        ms(spent[1]),
        ms(spent[2]),
        ms(spent[3])
    );
    assert_eq!(spool.len().unwrap(), 0);
    assert_eq!(files(&dir.path().join("queue")), Vec::<String>::new());
    assert_eq!(files(&dir.path().join("tmp")), Vec::<String>::new());
}

/// The spool under kill -9: a child process (this test binary, re-run) stores, acknowledges
/// and delivers in a loop and says what returned `Ok`; it is killed at random moments. After
/// each kill nothing it stored is lost or damaged, nothing delivered comes back, no temp file
/// is left, and every attempt it began and did not finish is reported.
#[test]
fn nothing_is_lost_when_the_writer_is_killed() {
    const CHILD: &str = "SEALPOST_SPOOL_CRASH_CHILD";
    let body = |i: u64| -> Vec<u8> {
        let mut b = format!("message {i}\r\n").into_bytes();
        b.resize(20_000 + (i as usize % 7) * 3000, b'0' + (i % 10) as u8);
        b
    };
    if let Ok(dir) = std::env::var(CHILD) {
        let spool = Spool::open(Path::new(&dir)).unwrap();
        let _lock = spool.lock().unwrap();
        let mut out = std::io::stdout();
        for i in 0.. {
            let id = spool
                .store(entry(&format!("<{i}@x>"), &[("r@x", &body(i))]), T0)
                .unwrap();
            writeln!(out, "stored {id} {i}").unwrap();
            spool.acknowledge(&id).unwrap();
            if i % 2 == 0 {
                spool.begin_attempt(&part(&id, 0), T0).unwrap();
                writeln!(out, "begun {id}").unwrap();
                spool.delivered(&part(&id, 0), T0).unwrap();
                writeln!(out, "delivered {id}").unwrap();
            }
        }
        unreachable!();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut stored = std::collections::BTreeMap::new();
    let mut delivered = std::collections::BTreeSet::new();
    for round in 0..6u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::nothing_is_lost_when_the_writer_is_killed",
                "--nocapture",
            ])
            .env(CHILD, dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300 + 70 * round));
        child.kill().unwrap();
        let output = child.wait_with_output().unwrap();
        let mut begun = std::collections::BTreeSet::new();
        // Only whole lines count (the child may die in the middle of one).
        let text = String::from_utf8_lossy(&output.stdout);
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            let words: Vec<&str> = line.trim_end().split(' ').collect();
            let id = |w: &str| w.parse::<QueueId>().unwrap();
            match words.as_slice() {
                ["stored", i_d, i] => {
                    stored.insert(id(i_d), i.parse::<u64>().unwrap());
                }
                ["begun", i_d] => {
                    begun.insert(id(i_d));
                }
                ["delivered", i_d] => {
                    begun.remove(&id(i_d));
                    delivered.insert(id(i_d));
                }
                _ => {}
            }
        }
        assert!(
            !stored.is_empty(),
            "round {round}: the child stored nothing"
        );

        let spool = Spool::open(dir.path()).unwrap();
        assert_eq!(files(&dir.path().join("tmp")), Vec::<String>::new());
        assert_eq!(files(&dir.path().join("corrupt")), Vec::<String>::new());
        let recovered = spool.recover().unwrap();
        for id in &begun {
            // Killed after `begin_attempt`: either `delivered` finished (the entry is gone) or
            // the interrupted attempt must be reported.
            if let Err(SpoolError::NotFound(_)) = spool.read_part(&part(id, 0)) {
                delivered.insert(id.clone());
                continue;
            }
            assert!(
                recovered.iter().any(|r| &r.id == id
                    && r.kind == RecoveredKind::AttemptInterrupted { part: 0 }),
                "round {round}: interrupted attempt on {id} not reported"
            );
        }
        for (id, i) in &stored {
            let read = spool.read_part(&part(id, 0));
            if delivered.contains(id) {
                assert!(
                    matches!(read, Err(SpoolError::NotFound(_))),
                    "{id} came back"
                );
            } else {
                assert_eq!(read.unwrap().data, body(*i), "round {round}: {id} damaged");
            }
        }
    }
}
