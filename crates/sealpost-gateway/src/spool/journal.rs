//! The relay journal (`SPOOL/relaying`): what makes duplicates visible when the gateway relays
//! a message *before* answering its client (`relay_first`, see [`crate::relay_first`]).
//!
//! Relaying first opens the window every SMTP relay has (RFC 1047): once the next hop has the
//! message, a crash before our 250 reaches the client makes the client send it again. The
//! spool reports such cases from its state files ([`super::Spool::recover`]); a message relayed
//! first never has one, so this journal records it instead, with one appended line before the
//! relay (`B ID MESSAGE-ID`) and one once the client has its answer (`E ID`). Lines are
//! appended with one `write` each and are not fsynced: like the spool's `acknowledge`, they
//! survive a crash of the process (kill -9), not necessarily a power cut, which at worst
//! loses a duplicate report, never a message.
//!
//! [`RelayJournal::open`] reads what the previous run left: every `B` without its `E` is
//! logged as `possible duplicate message_id=…` (WARN) and returned; then the file starts
//! empty. With `relay_first` off the gateway only calls [`RelayJournal::recover`], which
//! reports the same and removes the file (so a spool that never relays first has none).
//! While running, a begun message whose client never got its answer (the 250 could not be
//! written) is reported the same way after [`super::ACK_GRACE_SECS`]; the file is rewritten
//! with only the open messages once it passes [`ROTATE_AT`] bytes.
//!
//! This module does not relay, and holds no message content (only queue ids and Message-IDs).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::id::QueueId;
use super::state::{Recovered, RecoveredKind, shown};
use super::{ACK_GRACE_SECS, SpoolError, io_err};

/// The journal is rewritten (open messages only) when it grows past this many bytes.
pub const ROTATE_AT: u64 = 4 * 1024 * 1024;

/// How many `begin`s pass between two looks for messages whose client never got its answer.
const SWEEP_EVERY: u32 = 512;

/// One message being relayed first.
#[derive(Debug, Clone)]
struct Open {
    message_id: Option<String>,
    began: u64,
    /// Copies the next hop did not take were spooled under the same id.
    spooled: bool,
}

struct Inner {
    file: File,
    len: u64,
    open: HashMap<QueueId, Open>,
    since_sweep: u32,
}

/// The relay journal of one spool directory. Only the process holding the spool's lock may
/// open it.
pub struct RelayJournal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RelayJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// How a message relayed first ended, once its client has the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Every copy was relayed; nothing is in the spool.
    Relayed,
    /// Some copies were spooled under the same id: the spool must be told too.
    Spooled,
    /// Not a message of this journal (or already finished).
    Unknown,
}

impl RelayJournal {
    /// Opens the journal in `spool_dir` (the spool's root): reports every message the previous
    /// run began relaying and never answered (WARN `possible duplicate message_id=…`), returns
    /// them, and starts an empty journal. Lines that cannot be read (a torn write after a power
    /// cut) are skipped with a warning.
    pub fn open(spool_dir: &Path) -> Result<(RelayJournal, Vec<Recovered>), SpoolError> {
        let path = spool_dir.join("relaying");
        let found = read_left(&path)?;
        let file = create_empty(&path).map_err(io_err("start the relay journal", &path))?;
        let journal = RelayJournal {
            path,
            inner: Mutex::new(Inner {
                file,
                len: 0,
                open: HashMap::new(),
                since_sweep: 0,
            }),
        };
        Ok((journal, found))
    }

    /// For a gateway that does not relay first: reports (and returns) what a previous run
    /// with `relay_first` left, as [`RelayJournal::open`] does, and removes the journal.
    pub fn recover(spool_dir: &Path) -> Result<Vec<Recovered>, SpoolError> {
        let path = spool_dir.join("relaying");
        let found = read_left(&path)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err("remove the relay journal", &path)(e))
            }
            _ => Ok(found),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that message `id` is about to be relayed (before anything is sent). An error
    /// means the relay must not begin (the message is spooled instead).
    pub fn begin(&self, id: &QueueId, message_id: Option<&str>, now: u64) -> io::Result<()> {
        let mut inner = self.lock();
        inner.since_sweep += 1;
        if inner.since_sweep >= SWEEP_EVERY {
            inner.since_sweep = 0;
            self.sweep(&mut inner, now)?;
        }
        if inner.len >= ROTATE_AT {
            self.rotate(&mut inner)?;
        }
        let line = begin_line(id, message_id);
        inner.file.write_all(line.as_bytes())?;
        inner.len += line.len() as u64;
        inner.open.insert(
            id.clone(),
            Open {
                message_id: message_id.map(str::to_owned),
                began: now,
                spooled: false,
            },
        );
        Ok(())
    }

    /// Records that the copies the next hop did not take are in the spool under `id`.
    pub fn spooled(&self, id: &QueueId) {
        if let Some(open) = self.lock().open.get_mut(id) {
            open.spooled = true;
        }
    }

    /// Records that the client has its answer for `id` (or that nothing was relayed after
    /// all). A failed write is logged: it can only cause a false duplicate report later.
    pub fn finish(&self, id: &QueueId) -> Finished {
        let mut inner = self.lock();
        let Some(open) = inner.open.remove(id) else {
            return Finished::Unknown;
        };
        let line = format!("E {id}\n");
        match inner.file.write_all(line.as_bytes()) {
            Ok(()) => inner.len += line.len() as u64,
            Err(e) => {
                tracing::warn!(queue_id = %id, error = %e, path = %self.path.display(), "cannot write to the relay journal")
            }
        }
        if open.spooled {
            Finished::Spooled
        } else {
            Finished::Relayed
        }
    }

    /// Messages begun and not finished.
    pub fn open_count(&self) -> usize {
        self.lock().open.len()
    }

    /// Reports (and forgets) messages whose client has not had its answer for
    /// [`ACK_GRACE_SECS`]: writing the 250 failed, so the client may send them again.
    fn sweep(&self, inner: &mut Inner, now: u64) -> io::Result<()> {
        let stale: Vec<QueueId> = inner
            .open
            .iter()
            .filter(|(_, o)| !o.spooled && now >= o.began.saturating_add(ACK_GRACE_SECS))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(o) = inner.open.remove(&id) {
                tracing::warn!(
                    queue_id = %id,
                    "possible duplicate message_id={}: relayed, but its client did not get the 250; the client may send it again",
                    shown(o.message_id.as_deref())
                );
                let line = format!("E {id}\n");
                inner.file.write_all(line.as_bytes())?;
                inner.len += line.len() as u64;
            }
        }
        Ok(())
    }

    /// Rewrites the journal with only the open messages (temp file + rename: a crash leaves
    /// the old or the new file, both correct).
    fn rotate(&self, inner: &mut Inner) -> io::Result<()> {
        let temp = self.path.with_extension("new");
        let mut file = create_empty(&temp)?;
        let mut text = String::new();
        for (id, o) in &inner.open {
            text.push_str(&begin_line(id, o.message_id.as_deref()));
        }
        file.write_all(text.as_bytes())?;
        fs::rename(&temp, &self.path)?;
        inner.file = file;
        inner.len = text.len() as u64;
        Ok(())
    }
}

/// `B ID MESSAGE-ID\n`; the Message-ID without spaces or control characters, `-` when absent.
fn begin_line(id: &QueueId, message_id: Option<&str>) -> String {
    let mid: String = match message_id {
        Some(m) if !m.is_empty() => m
            .chars()
            .map(|c| {
                if c.is_control() || c.is_whitespace() {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
        _ => "-".into(),
    };
    format!("B {id} {mid}\n")
}

/// Reads the journal a previous run left at `path` (none: nothing) and reports every message
/// it began relaying and never answered.
fn read_left(path: &Path) -> Result<Vec<Recovered>, SpoolError> {
    let left = match File::open(path) {
        Ok(f) => read_open(BufReader::new(f), path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err("read the relay journal", path)(e)),
    };
    let mut found = Vec::with_capacity(left.len());
    for (id, message_id) in left {
        tracing::warn!(
            queue_id = %id,
            "possible duplicate message_id={}: it was being relayed before its client got an answer when the gateway stopped; the client may have sent it again",
            shown(message_id.as_deref())
        );
        found.push(Recovered {
            id,
            message_id,
            kind: RecoveredKind::RelayedUnanswered,
        });
    }
    Ok(found)
}

fn create_empty(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    OpenOptions::new().append(true).open(path)
}

/// The messages begun and not finished, in the order they began.
fn read_open(reader: impl BufRead, path: &Path) -> Vec<(QueueId, Option<String>)> {
    let mut open: Vec<(QueueId, Option<String>)> = Vec::new();
    let mut skipped = 0usize;
    for line in reader.split(b'\n') {
        let Ok(line) = line else {
            skipped += 1;
            break;
        };
        let text = String::from_utf8_lossy(&line);
        let mut fields = text.split(' ');
        let (kind, id) = (fields.next(), fields.next().and_then(|i| i.parse().ok()));
        match (kind, id) {
            (Some("B"), Some(id)) => {
                let mid = fields.next().filter(|m| *m != "-").map(str::to_owned);
                open.push((id, mid));
            }
            (Some("E"), Some(id)) => open.retain(|(o, _)| *o != id),
            _ if line.is_empty() => {}
            _ => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(path = %path.display(), skipped, "unreadable lines in the relay journal were skipped");
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> QueueId {
        format!("6a000000000000{n:02x}").parse().expect("an id")
    }

    #[test]
    fn unfinished_messages_are_reported_once_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, found) = RelayJournal::open(dir.path()).expect("open");
        assert!(found.is_empty());
        j.begin(&id(1), Some("<a@x>"), 100).expect("begin");
        j.begin(&id(2), Some("<b c@x>"), 100).expect("begin");
        j.begin(&id(3), None, 100).expect("begin");
        assert_eq!(j.finish(&id(2)), Finished::Relayed);
        assert_eq!(j.finish(&id(2)), Finished::Unknown);
        drop(j);
        let (j, found) = RelayJournal::open(dir.path()).expect("reopen");
        let ids: Vec<_> = found
            .iter()
            .map(|r| (r.id.clone(), r.message_id.clone()))
            .collect();
        assert_eq!(ids, [(id(1), Some("<a@x>".into())), (id(3), None)]);
        assert!(
            found
                .iter()
                .all(|r| r.kind == RecoveredKind::RelayedUnanswered)
        );
        assert_eq!(j.open_count(), 0);
        drop(j);
        let (_, found) = RelayJournal::open(dir.path()).expect("third open");
        assert!(found.is_empty(), "reported once, then forgotten");
    }

    #[test]
    fn without_relay_first_the_left_journal_is_reported_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(RelayJournal::recover(dir.path()).expect("none").is_empty());
        assert!(!dir.path().join("relaying").exists(), "not created");
        let (j, _) = RelayJournal::open(dir.path()).expect("open");
        j.begin(&id(4), Some("<d@x>"), 100).expect("begin");
        drop(j);
        let found = RelayJournal::recover(dir.path()).expect("recover");
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].id.clone(), found[0].kind),
            (id(4), RecoveredKind::RelayedUnanswered)
        );
        assert!(!dir.path().join("relaying").exists(), "removed");
    }

    #[test]
    fn spooled_messages_say_so_when_finished() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = RelayJournal::open(dir.path()).expect("open");
        j.begin(&id(1), Some("<a@x>"), 100).expect("begin");
        j.spooled(&id(1));
        assert_eq!(j.finish(&id(1)), Finished::Spooled);
    }

    #[test]
    fn rotation_keeps_only_open_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = RelayJournal::open(dir.path()).expect("open");
        j.begin(&id(0), Some("<kept@x>"), 100).expect("begin");
        let mut n = 0u32;
        while fs::metadata(dir.path().join("relaying"))
            .expect("meta")
            .len()
            < ROTATE_AT
        {
            let i: QueueId = format!("6b{n:014x}").parse().expect("id");
            j.begin(
                &i,
                Some("<some-long-message-id-for-the-rotation-test@example.org>"),
                100,
            )
            .expect("begin");
            j.finish(&i);
            n += 1;
        }
        j.begin(&id(9), None, 100).expect("begin after rotation");
        let len = fs::metadata(dir.path().join("relaying"))
            .expect("meta")
            .len();
        assert!(
            len < 200,
            "rewritten with the open messages only: {len} bytes"
        );
        drop(j);
        let (_, found) = RelayJournal::open(dir.path()).expect("reopen");
        let mut ids: Vec<_> = found.into_iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, [id(0), id(9)]);
    }

    #[test]
    fn unanswered_messages_are_reported_after_the_grace_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (j, _) = RelayJournal::open(dir.path()).expect("open");
        j.begin(&id(1), Some("<lost-250@x>"), 100).expect("begin");
        j.begin(&id(2), Some("<spooled@x>"), 100).expect("begin");
        j.spooled(&id(2));
        for n in 0..SWEEP_EVERY {
            let i: QueueId = format!("6c{n:014x}").parse().expect("id");
            j.begin(&i, None, 100 + ACK_GRACE_SECS).expect("begin");
            j.finish(&i);
        }
        assert_eq!(j.finish(&id(1)), Finished::Unknown, "swept and reported");
        assert_eq!(
            j.finish(&id(2)),
            Finished::Spooled,
            "the spool reports its own"
        );
    }

    #[test]
    fn torn_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("relaying"),
            format!(
                "B {} <a@x>\nB 6a00\nX\nE {}\nB {} -\nB 6a0000",
                id(1),
                id(1),
                id(2)
            ),
        )
        .expect("write");
        let (_, found) = RelayJournal::open(dir.path()).expect("open");
        let ids: Vec<_> = found.into_iter().map(|r| (r.id, r.message_id)).collect();
        assert_eq!(ids, [(id(2), None)]);
    }
}
