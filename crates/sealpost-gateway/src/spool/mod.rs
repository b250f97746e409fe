//! The gateway's durable spool: accepted mail waits here, on disk, until every copy is relayed
//! or bounced.
//!
//! # Layout
//!
//! ```text
//! SPOOL/lock           held (flock) by the running gateway: one gateway per spool
//! SPOOL/changed        rewritten by `retry_now`/`delete`, so a running gateway notices
//! SPOOL/tmp/*.tmp      files being written (removed at `open` once their writer is gone)
//! SPOOL/queue/ID.msg   one accepted message with ALL its copies; never changed once written
//! SPOOL/queue/ID.state its delivery state (JSON), replaced atomically; absent = nothing yet
//! SPOOL/corrupt/       entries and state files found damaged (never deleted by the spool)
//! SPOOL/relaying       the relay journal, only with `relay_first` (see `RelayJournal`)
//! ```
//!
//! # Guarantees
//!
//! - [`Spool::store`] returns `Ok` only once the entry file is written to `tmp/`, fsynced,
//!   linked into `queue/` and `queue/` itself fsynced: a crash at any moment leaves either no
//!   entry or a complete one. Torn or damaged files are detected by checksums (see `entry`),
//!   moved to `corrupt/` and logged at ERROR, never delivered and never silently deleted.
//! - State changes are written to a temp file and renamed over `ID.state`. They survive any
//!   crash of the process (kill -9). Against power loss or an OS crash, the transitions that
//!   stop a copy from being relayed twice are also fsynced: `delivered`/`bounced` (and deleting
//!   a finished entry, which is how the last copy's delivery is recorded). `acknowledge`,
//!   `begin_attempt`, `deferred` and `retry_now` are not: losing one of those to a power cut
//!   at worst retries early or misses a duplicate report. Costs are measured in
//!   docs/gateway.md (`store` costs what its write + two fsyncs cost on the disk).
//! - Duplicates are never silent after a process crash: [`Spool::recover`] reports (WARN,
//!   `possible duplicate message_id=…`) every entry whose client may not have seen 250 and
//!   every copy whose relay attempt was interrupted. An entry is not handed to the delivery
//!   workers until it is acknowledged, or until [`ACK_GRACE_SECS`] have passed (then
//!   `begin_attempt` logs the same warning), so mail whose 250 was never sent is not relayed
//!   silently either.
//!
//! # Concurrency
//!
//! The running gateway holds [`Spool::lock`]. `queue list|retry|delete` open the same directory
//! from another process without the lock: every change to an entry takes an exclusive `flock`
//! on its `ID.msg` file (per entry, across threads and processes), re-reads the state from disk,
//! and writes it back. The gateway keeps an in-memory index for [`Spool::due`] and
//! [`Spool::len`]; `retry_now` and `delete` rewrite `SPOOL/changed`, and `due`, `len` and
//! `rescan` read that small file each time and reload the index when it changed, so the
//! worker sees operators' changes on its next `due` call without doing anything. A copy whose
//! entry was deleted meanwhile makes `begin_attempt`/`read_part` fail with
//! [`SpoolError::NotFound`]: the worker skips it.
//!
//! # How the worker uses it
//!
//! `due(now)` → for each copy: `begin_attempt` (refused if the copy is already being relayed or
//! finished) → `read_part` → relay → exactly one of `delivered`, `deferred`, `bounced`.
//! Store a DSN or any entry that no SMTP client waits for with `store` then `acknowledge`.
//! Wake the scheduler after [`Spool::acknowledge`] (not only after `store`): until then the new
//! entry is not due.
//!
//! This module does not relay, decide retry delays or build DSNs' delivery policy; [`dsn`]
//! only formats the notification.

pub mod dsn;
mod entry;
mod error;
mod id;
mod index;
mod journal;
mod state;

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;

pub use error::SpoolError;
use error::io_err;
pub use id::{ParseQueueIdError, PartRef, QUEUE_ID_LEN, QueueId};
pub use journal::{Finished, RelayJournal};
pub use state::{PartStatus, Recovered, RecoveredKind};

use entry::{Header, PartHeader, ReadError};
use index::Index;
use state::State;

/// Seconds an unacknowledged entry is held back from delivery: the SMTP session acknowledges
/// within milliseconds of `store`, unless the client vanished before reading its 250.
pub const ACK_GRACE_SECS: u64 = 30;

/// One copy of an accepted message, to be stored.
#[derive(Debug, Clone)]
pub struct NewPart {
    /// Its envelope recipients.
    pub recipients: Vec<String>,
    /// The message bytes.
    pub data: Vec<u8>,
    /// What it is, for operators: "original", "encrypted (Do-Not-Forward)", …
    pub label: String,
}

/// All copies of one accepted message, stored atomically as one entry.
#[derive(Debug, Clone)]
pub struct NewEntry {
    /// The envelope sender; "" is the null sender (DSNs).
    pub mail_from: String,
    /// The original's Message-ID, for logs and duplicate reports (logged as given).
    pub message_id: Option<String>,
    /// Who handed the message over: "helo [ip]".
    pub received_from: String,
    /// The copies; at least one.
    pub parts: Vec<NewPart>,
}

/// One stored copy, read back for relaying.
#[derive(Debug, Clone)]
pub struct PartData {
    /// The entry.
    pub id: QueueId,
    /// The copy's index in the entry.
    pub part: usize,
    /// The copy's label.
    pub label: String,
    /// The envelope sender ("" = null sender).
    pub mail_from: String,
    /// The copy's envelope recipients.
    pub recipients: Vec<String>,
    /// The message bytes, checksum-verified.
    pub data: Vec<u8>,
    /// The original's Message-ID.
    pub message_id: Option<String>,
    /// Who handed the message over.
    pub received_from: String,
    /// When it was stored (seconds since the Unix epoch).
    pub created: u64,
    /// Finished attempts so far (failed ones, plus interrupted ones found by `recover`).
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// One entry as `sealpost queue list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct EntrySummary {
    /// The queue id.
    pub id: QueueId,
    /// When it was stored (seconds since the Unix epoch).
    pub created: u64,
    /// The envelope sender ("" = null sender).
    pub mail_from: String,
    /// The original's Message-ID.
    pub message_id: Option<String>,
    /// Who handed it over.
    pub received_from: String,
    /// Whether the client is known to have received 250 (or the entry was reported).
    pub acknowledged: bool,
    /// Size of the entry file in bytes.
    pub size: u64,
    /// The copies.
    pub parts: Vec<PartSummary>,
}

/// One copy as `sealpost queue list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PartSummary {
    /// The copy's label.
    pub label: String,
    /// Its envelope recipients.
    pub recipients: Vec<String>,
    /// Its size in bytes.
    pub size: u64,
    /// Finished attempts.
    pub attempts: u32,
    /// Not tried before this time (seconds since the Unix epoch; 0 = now).
    pub next_attempt: u64,
    /// When it was last tried.
    pub last_attempt: Option<u64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Where it stands.
    pub state: PartStatus,
}

/// The exclusive lock of a spool directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct SpoolLock {
    _file: File,
}

/// A spool directory. Cheap to clone; blocking `std::fs` calls (use `spawn_blocking`).
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    queue: PathBuf,
    tmp: PathBuf,
    corrupt: PathBuf,
    index: Mutex<Index>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir`: removes temp files left by a crashed
    /// writer (only those no live process holds), removes state files of finished entries,
    /// and reads every entry's header and state into the index (damaged ones are quarantined).
    /// Safe to call while a gateway runs on the same directory.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        let inner = Inner {
            root: dir.to_path_buf(),
            queue: dir.join("queue"),
            tmp: dir.join("tmp"),
            corrupt: dir.join("corrupt"),
            index: Mutex::new(Index::default()),
        };
        for d in [&inner.root, &inner.queue, &inner.tmp, &inner.corrupt] {
            entry::create_dir(d).map_err(io_err("create the directory", d))?;
        }
        entry::sync_dir(&inner.root).map_err(io_err("sync the directory", &inner.root))?;
        let removed =
            entry::clean_temp(&inner.tmp).map_err(io_err("clean the directory", &inner.tmp))?;
        if removed > 0 {
            tracing::info!(
                spool = %dir.display(),
                removed,
                "removed half-written temp files left by a stopped writer"
            );
        }
        let spool = Spool {
            inner: Arc::new(inner),
        };
        spool.remove_orphan_states()?;
        spool.refresh(true)?;
        Ok(spool)
    }

    /// Takes the spool's exclusive lock, so that two gateways never share one spool. Fails at
    /// once with [`SpoolError::Locked`] naming the directory when another process holds it.
    pub fn lock(&self) -> Result<SpoolLock, SpoolError> {
        let path = self.inner.root.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open the lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(SpoolError::Locked {
                    dir: self.inner.root.clone(),
                    lock: path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock", &path)(e)),
        }
        // The holder's pid, for operators; the lock is what counts.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(SpoolLock { _file: file })
    }

    /// Stores all copies of one accepted message as one entry. `Ok` means durable: the file
    /// is written, fsynced, in `queue/`, and the directory fsynced. `now` is the store time
    /// (seconds since the Unix epoch); the copies are due at once, once acknowledged.
    pub fn store(&self, e: NewEntry, now: u64) -> Result<QueueId, SpoolError> {
        self.store_named(e, now, None, now)
    }

    /// [`Spool::store`] for recipients moved out of an entry that arrived at `arrived`: the
    /// new entry (fresh id) keeps that arrival time, so its `bounce_after` and the arrival
    /// date of its delivery notification count from when the message came in.
    pub fn store_moved(&self, e: NewEntry, now: u64, arrived: u64) -> Result<QueueId, SpoolError> {
        self.store_named(e, now, None, arrived.min(now))
    }

    /// [`Spool::store`] under an id the caller chose (with [`QueueId::generate`]): how
    /// `relay_first` spools what the next hop did not take under the id its client is told.
    /// Fails, storing nothing, if an entry with that id exists.
    pub fn store_as(&self, id: &QueueId, e: NewEntry, now: u64) -> Result<(), SpoolError> {
        self.store_named(e, now, Some(id), now).map(|_| ())
    }

    fn store_named(
        &self,
        e: NewEntry,
        now: u64,
        name: Option<&QueueId>,
        created: u64,
    ) -> Result<QueueId, SpoolError> {
        if e.parts.is_empty() {
            return Err(SpoolError::NoParts);
        }
        let header = Header {
            created,
            mail_from: e.mail_from,
            message_id: e.message_id,
            received_from: e.received_from,
            parts: e
                .parts
                .iter()
                .map(|p| PartHeader {
                    label: p.label.clone(),
                    recipients: p.recipients.clone(),
                    len: p.data.len() as u64,
                    crc32: crc32fast::hash(&p.data),
                })
                .collect(),
        };
        let prefix = entry::encode_header(&header);
        let mut chunks: Vec<&[u8]> = Vec::with_capacity(1 + e.parts.len());
        chunks.push(&prefix);
        chunks.extend(e.parts.iter().map(|p| p.data.as_slice()));
        let tmp = &self.inner.tmp;
        let mut attempt = 0;
        let id = loop {
            attempt += 1;
            let temp = match entry::write_temp(tmp, &chunks, true) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => continue,
                Err(e) => return Err(io_err("write a temp file in", tmp)(e)),
            };
            let linked = match name {
                Some(id) => fs::hard_link(&temp.path, self.msg_path(id)).map(|()| id.clone()),
                None => self.link_new(&temp.path, now),
            };
            temp.discard();
            match linked {
                Ok(id) => break id,
                // The temp file vanished under us (a cleaner's race): write it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => continue,
                Err(e) => return Err(io_err("link a new entry into", &self.inner.queue)(e)),
            }
        };
        if let Err(e) = entry::sync_dir(&self.inner.queue) {
            // Not durable, so not accepted: take it back (if it survives anyway, `recover`
            // reports it as never acknowledged).
            let _ = fs::remove_file(self.msg_path(&id));
            return Err(io_err("sync", &self.inner.queue)(e));
        }
        self.index()
            .set(&id, created, &State::initial(header.parts.len()));
        tracing::debug!(queue_id = %id, copies = header.parts.len(), "spooled");
        Ok(id)
    }

    /// Links the written temp file into `queue/` under a fresh id (never replacing a file).
    fn link_new(&self, temp: &Path, now: u64) -> io::Result<QueueId> {
        let mut tries = 0;
        loop {
            tries += 1;
            let id = QueueId::generate(now).map_err(io::Error::other)?;
            match fs::hard_link(temp, self.msg_path(&id)) {
                Ok(()) => return Ok(id),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one copy (checksum-verified) with what the relay and a DSN need. A damaged entry
    /// is quarantined and reported as [`SpoolError::Corrupt`].
    pub fn read_part(&self, p: &PartRef) -> Result<PartData, SpoolError> {
        let path = self.msg_path(&p.id);
        let mut file = self.open_entry(&p.id)?;
        let loaded = self.checked(&p.id, entry::read_header(&mut file), &path)?;
        if p.part >= loaded.header.parts.len() {
            return Err(SpoolError::NoSuchPart(p.clone()));
        }
        let state = self.load_state(&p.id, &loaded.header)?;
        let data = self.checked(&p.id, entry::read_part(&mut file, &loaded, p.part), &path)?;
        let ps = &state.parts[p.part];
        let h = loaded.header;
        let ph = &h.parts[p.part];
        Ok(PartData {
            id: p.id.clone(),
            part: p.part,
            label: ph.label.clone(),
            mail_from: h.mail_from,
            recipients: ph.recipients.clone(),
            data,
            message_id: h.message_id,
            received_from: h.received_from,
            created: h.created,
            attempts: ps.attempts,
            last_error: ps.last_error.clone(),
        })
    }

    /// Every entry, oldest first, read fresh from disk (for `sealpost queue list`).
    pub fn list(&self) -> Result<Vec<EntrySummary>, SpoolError> {
        let mut out = Vec::new();
        for id in self.entry_ids()? {
            let Some((loaded, state)) = self.load_unlocked(&id)? else {
                continue;
            };
            let h = loaded.header;
            let parts = h
                .parts
                .into_iter()
                .zip(&state.parts)
                .map(|(ph, ps)| PartSummary {
                    label: ph.label,
                    recipients: ph.recipients,
                    size: ph.len,
                    attempts: ps.attempts,
                    next_attempt: ps.next_attempt,
                    last_attempt: ps.last_attempt,
                    last_error: ps.last_error.clone(),
                    state: ps.summary(),
                })
                .collect();
            out.push(EntrySummary {
                id,
                created: h.created,
                mail_from: h.mail_from,
                message_id: h.message_id,
                received_from: h.received_from,
                acknowledged: state.acknowledged,
                size: loaded.file_len,
                parts,
            });
        }
        Ok(out)
    }

    /// Copies waiting (neither delivered nor bounced), for metrics.
    pub fn len(&self) -> Result<usize, SpoolError> {
        self.refresh(false)?;
        Ok(self.index().waiting())
    }

    /// Whether no copy is waiting.
    pub fn is_empty(&self) -> Result<bool, SpoolError> {
        Ok(self.len()? == 0)
    }

    /// Copies to relay now, oldest entry first: not delivered or bounced, not being relayed,
    /// `next_attempt <= now`, and acknowledged (or older than [`ACK_GRACE_SECS`]). Picks up
    /// other processes' `retry_now`/`delete` first (see the module docs).
    pub fn due(&self, now: u64) -> Result<Vec<PartRef>, SpoolError> {
        self.refresh(false)?;
        Ok(self.index().due(now, ACK_GRACE_SECS))
    }

    /// Reloads the index if another process changed the spool (`retry_now`, `delete`); cheap
    /// otherwise (one small file read). `due` and `len` already do this; calling it every few
    /// seconds is harmless.
    pub fn rescan(&self) -> Result<(), SpoolError> {
        self.refresh(false)
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    // ---- helpers shared with `state` ----

    fn index(&self) -> MutexGuard<'_, Index> {
        self.inner
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn msg_path(&self, id: &QueueId) -> PathBuf {
        self.inner.queue.join(format!("{id}.msg"))
    }

    fn state_path(&self, id: &QueueId) -> PathBuf {
        self.inner.queue.join(format!("{id}.state"))
    }

    fn marker_path(&self) -> PathBuf {
        self.inner.root.join("changed")
    }

    /// Opens an entry file; a missing one is [`SpoolError::NotFound`] (and leaves the index).
    fn open_entry(&self, id: &QueueId) -> Result<File, SpoolError> {
        let path = self.msg_path(id);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                self.index().remove(id);
                SpoolError::NotFound(id.clone())
            } else {
                io_err("open", &path)(e)
            }
        })
    }

    /// Passes a read through; a damaged entry is quarantined and becomes `Corrupt`.
    fn checked<T>(
        &self,
        id: &QueueId,
        r: Result<T, ReadError>,
        path: &Path,
    ) -> Result<T, SpoolError> {
        match r {
            Ok(v) => Ok(v),
            Err(ReadError::Io(e)) => Err(io_err("read", path)(e)),
            Err(ReadError::Corrupt(reason)) => {
                let quarantined = self.quarantine(id, &reason)?;
                self.index().remove(id);
                Err(SpoolError::Corrupt {
                    id: id.clone(),
                    reason,
                    quarantined,
                })
            }
        }
    }

    /// Moves a damaged entry (and its state) to `corrupt/`, loudly. Never touches the index
    /// (callers may hold its lock).
    fn quarantine(&self, id: &QueueId, reason: &str) -> Result<PathBuf, SpoolError> {
        let dest = self.move_to_corrupt(&self.msg_path(id), &format!("{id}.msg"))?;
        let _ = self.move_to_corrupt(&self.state_path(id), &format!("{id}.state"));
        tracing::error!(
            queue_id = %id,
            reason,
            moved_to = %dest.display(),
            "DAMAGED SPOOL ENTRY: it will not be delivered; inspect it by hand"
        );
        Ok(dest)
    }

    /// Renames `from` into `corrupt/` under `name` (or `name.N` if taken).
    fn move_to_corrupt(&self, from: &Path, name: &str) -> Result<PathBuf, SpoolError> {
        let mut dest = self.inner.corrupt.join(name);
        let mut n = 1;
        while dest.exists() {
            dest = self.inner.corrupt.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(from, &dest).map_err(io_err("move to corrupt/", from))?;
        Ok(dest)
    }
}
