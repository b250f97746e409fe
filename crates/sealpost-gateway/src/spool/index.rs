//! The in-memory index of a spool: per entry, when it was stored, whether it is acknowledged,
//! and per copy whether it still waits, is being relayed, and when it is next due.
//!
//! It answers `due` and `len` without touching the disk. It is built from disk at `open`
//! (this module also holds the directory scans that build it and `list` uses),
//! updated by this process's own changes, and rebuilt when another process signals a change
//! (see the spool's module docs). It holds no message data and is never the source of truth:
//! every change re-reads the entry's state file under the entry's lock.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;

use super::entry::{self, ReadError};
use super::id::{PartRef, QueueId};
use super::state::{State, Status};
use super::{Spool, SpoolError, io_err};

/// The index.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Entries by id; ids sort by store time, so iteration is oldest first.
    entries: BTreeMap<QueueId, IndexEntry>,
    /// The content of `SPOOL/changed` when the index was last built.
    pub marker: Option<Vec<u8>>,
}

#[derive(Debug)]
struct IndexEntry {
    created: u64,
    acknowledged: bool,
    parts: Vec<IndexPart>,
}

#[derive(Debug)]
struct IndexPart {
    waiting: bool,
    in_progress: bool,
    next_attempt: u64,
}

impl Index {
    /// An empty index built against `marker`.
    pub fn with_marker(marker: Option<Vec<u8>>) -> Index {
        Index {
            entries: BTreeMap::new(),
            marker,
        }
    }

    /// Records an entry's current state (an entry with nothing waiting leaves the index).
    pub fn set(&mut self, id: &QueueId, created: u64, state: &State) {
        let parts: Vec<IndexPart> = state
            .parts
            .iter()
            .map(|p| IndexPart {
                waiting: p.status == Status::Queued,
                in_progress: p.in_progress,
                next_attempt: p.next_attempt,
            })
            .collect();
        if parts.iter().any(|p| p.waiting) {
            self.entries.insert(
                id.clone(),
                IndexEntry {
                    created,
                    acknowledged: state.acknowledged,
                    parts,
                },
            );
        } else {
            self.entries.remove(id);
        }
    }

    /// Forgets an entry.
    pub fn remove(&mut self, id: &QueueId) {
        self.entries.remove(id);
    }

    /// Whether the index says the entry is acknowledged.
    pub fn acknowledged(&self, id: &QueueId) -> bool {
        self.entries.get(id).is_some_and(|e| e.acknowledged)
    }

    /// Copies waiting.
    pub fn waiting(&self) -> usize {
        self.entries
            .values()
            .map(|e| e.parts.iter().filter(|p| p.waiting).count())
            .sum()
    }

    /// Copies due at `now`, oldest entry first; unacknowledged entries younger than
    /// `ack_grace` seconds are held back.
    pub fn due(&self, now: u64, ack_grace: u64) -> Vec<PartRef> {
        let mut out = Vec::new();
        for (id, e) in &self.entries {
            if !e.acknowledged && now < e.created.saturating_add(ack_grace) {
                continue;
            }
            for (part, p) in e.parts.iter().enumerate() {
                if p.waiting && !p.in_progress && p.next_attempt <= now {
                    out.push(PartRef {
                        id: id.clone(),
                        part,
                    });
                }
            }
        }
        out
    }
}

/// Reading the whole queue directory: building the index, listing.
impl Spool {
    /// The ids of all entry files, sorted (oldest first).
    pub(super) fn entry_ids(&self) -> Result<Vec<QueueId>, SpoolError> {
        let mut ids = Vec::new();
        let q = &self.inner.queue;
        for item in fs::read_dir(q).map_err(io_err("list", q))? {
            let item = item.map_err(io_err("list", q))?;
            let name = item.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".msg")) else {
                continue;
            };
            if let Ok(id) = stem.parse::<QueueId>() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Header and state of an entry without its lock (files are replaced atomically, so what
    /// is read is whole). `None` when it is gone or was found damaged (then quarantined).
    pub(super) fn load_unlocked(
        &self,
        id: &QueueId,
    ) -> Result<Option<(entry::Loaded, State)>, SpoolError> {
        let path = self.msg_path(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let loaded = match entry::read_header(&mut file) {
            Ok(l) => l,
            Err(ReadError::Io(e)) => return Err(io_err("read", &path)(e)),
            Err(ReadError::Corrupt(reason)) => {
                if path.exists() {
                    self.quarantine(id, &reason)?;
                }
                return Ok(None);
            }
        };
        let state = self.load_state(id, &loaded.header)?;
        Ok(Some((loaded, state)))
    }

    /// Reloads the index from disk when `force`d or when `SPOOL/changed` differs from what
    /// the index was built with.
    pub(super) fn refresh(&self, force: bool) -> Result<(), SpoolError> {
        let path = self.marker_path();
        let marker = match fs::read(&path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let mut index = self.index();
        if !force && index.marker == marker {
            return Ok(());
        }
        // Held across the reload so no concurrent update is lost; reading takes no entry locks.
        let mut fresh = Index::with_marker(marker);
        for id in self.entry_ids()? {
            if let Some((loaded, state)) = self.load_unlocked(&id)? {
                fresh.set(&id, loaded.header.created, &state);
            }
        }
        *index = fresh;
        Ok(())
    }

    /// Removes `ID.state` files whose entry file is gone (a crash between the two unlinks
    /// that finish an entry).
    pub(super) fn remove_orphan_states(&self) -> Result<(), SpoolError> {
        let q = &self.inner.queue;
        for item in fs::read_dir(q).map_err(io_err("list", q))? {
            let path = item.map_err(io_err("list", q))?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".state"))
                .and_then(|s| s.parse::<QueueId>().ok())
            else {
                continue;
            };
            if !self.msg_path(&id).exists() {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &path)(e)),
                }
            }
        }
        Ok(())
    }
}
