//! Per-copy delivery state (`queue/ID.state`) and every operation that changes it:
//! acknowledge, begin_attempt, delivered, deferred, bounced, retry_now, delete, recover.
//!
//! Each change takes the entry's lock (an exclusive `flock` on `ID.msg`, which serializes
//! threads and processes alike), re-reads the state from disk, changes it and writes it back
//! atomically (temp file + rename), then updates this process's index. An absent state file
//! means "nothing happened yet". A state file that cannot be read is moved to `corrupt/` and
//! replaced by a fresh state that is reported as a possible duplicate. This module does not
//! choose retry delays or build notifications.

use std::fs::{self, File};
use std::io;

use serde::{Deserialize, Serialize};

use super::entry::{self, Header, Loaded};
use super::id::{PartRef, QueueId};
use super::{Spool, SpoolError, io_err};

/// Longest `last_error` kept, in bytes.
const MAX_ERROR_LEN: usize = 2000;

/// The state file's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    /// The client got its 250 (or the entry was already reported as a possible duplicate).
    pub acknowledged: bool,
    /// Per copy, in header order.
    pub parts: Vec<PartState>,
}

/// One copy's delivery state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PartState {
    pub status: Status,
    /// Finished attempts.
    pub attempts: u32,
    /// Not tried before this time.
    pub next_attempt: u64,
    pub last_attempt: Option<u64>,
    pub last_error: Option<String>,
    /// An attempt began and has not finished.
    pub in_progress: bool,
}

/// Whether a copy still waits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    #[default]
    Queued,
    Delivered,
    Bounced,
}

/// Where a copy stands, as `sealpost queue list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    /// Waiting for its first attempt.
    Queued,
    /// Tried and failed; waits for `next_attempt`.
    Deferred,
    /// Being relayed now.
    InProgress,
    /// Relayed.
    Delivered,
    /// Given up; the sender was notified.
    Bounced,
}

/// Something `recover` found after an abrupt stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The entry.
    pub id: QueueId,
    /// The original's Message-ID.
    pub message_id: Option<String>,
    /// What happened.
    pub kind: RecoveredKind,
}

/// Why an entry may be delivered twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveredKind {
    /// Stored, but the gateway stopped before recording that the client got 250: the client
    /// may send the message again.
    NeverAcknowledged,
    /// The relay of this copy was under way: the next hop may already have it; it is relayed
    /// again.
    AttemptInterrupted {
        /// The copy.
        part: usize,
    },
    /// Relayed before answering the client (`relay_first`), and the gateway stopped before
    /// the client had its answer: the client may send it again (reported from the relay
    /// journal, [`super::RelayJournal`]).
    RelayedUnanswered,
}

impl State {
    /// Nothing happened yet: every copy due at once.
    pub fn initial(parts: usize) -> State {
        State {
            acknowledged: false,
            parts: vec![PartState::default(); parts],
        }
    }

    fn part_mut(&mut self, p: &PartRef) -> Result<&mut PartState, SpoolError> {
        self.parts
            .get_mut(p.part)
            .ok_or_else(|| SpoolError::NoSuchPart(p.clone()))
    }

    fn finished(&self) -> bool {
        self.parts.iter().all(|p| p.status != Status::Queued)
    }
}

impl PartState {
    /// The list view of this state.
    pub fn summary(&self) -> PartStatus {
        match self.status {
            Status::Delivered => PartStatus::Delivered,
            Status::Bounced => PartStatus::Bounced,
            Status::Queued if self.in_progress => PartStatus::InProgress,
            Status::Queued if self.attempts > 0 => PartStatus::Deferred,
            Status::Queued => PartStatus::Queued,
        }
    }
}

/// How an attempt ended.
enum Outcome<'a> {
    Delivered,
    Deferred { error: &'a str, next_attempt: u64 },
    Bounced { error: &'a str },
}

/// An entry under its lock.
struct Locked {
    /// Holds the lock until dropped.
    _file: File,
    loaded: Loaded,
    state: State,
}

/// The message id as logged: as stored, control characters blanked; "none" when absent.
pub(super) fn shown(message_id: Option<&str>) -> String {
    message_id.map_or_else(
        || "none".into(),
        |m| {
            m.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        },
    )
}

fn clip(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_LEN);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].to_owned()
}

impl Spool {
    /// The state of an entry whose header is `header`, from disk.
    pub(super) fn load_state(&self, id: &QueueId, header: &Header) -> Result<State, SpoolError> {
        let path = self.state_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(State::initial(header.parts.len()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.parts.len() == header.parts.len() => Ok(s),
            _ => {
                let dest = self.move_to_corrupt(&path, &format!("{id}.state"))?;
                tracing::error!(
                    queue_id = %id,
                    moved_to = %dest.display(),
                    "DAMAGED SPOOL STATE: possible duplicate message_id={}: its delivery state \
                     is unreadable, so every copy will be relayed again",
                    shown(header.message_id.as_deref())
                );
                Ok(State::initial(header.parts.len()))
            }
        }
    }

    /// Writes an entry's state atomically; `durable` also fsyncs it and the directory.
    fn save_state(&self, id: &QueueId, state: &State, durable: bool) -> Result<(), SpoolError> {
        let json = serde_json::to_vec(state).expect("the spool state serializes");
        let path = self.state_path(id);
        let tmp = &self.inner.tmp;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let temp = match entry::write_temp(tmp, &[&json], durable) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => continue,
                Err(e) => return Err(io_err("write a temp file in", tmp)(e)),
            };
            match fs::rename(&temp.path, &path) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt < 3 => continue,
                Err(e) => {
                    temp.discard();
                    return Err(io_err("replace", &path)(e));
                }
            }
        }
        if durable {
            entry::sync_dir(&self.inner.queue).map_err(io_err("sync", &self.inner.queue))?;
        }
        Ok(())
    }

    /// Runs `f` on an entry under its lock.
    fn with_entry<R>(
        &self,
        id: &QueueId,
        f: impl FnOnce(&mut Locked) -> Result<R, SpoolError>,
    ) -> Result<R, SpoolError> {
        let path = self.msg_path(id);
        let mut file = self.open_entry(id)?;
        file.lock().map_err(io_err("lock", &path))?;
        // Deleted (or finished) by another holder while we waited for the lock?
        if !path.exists() {
            self.index().remove(id);
            return Err(SpoolError::NotFound(id.clone()));
        }
        let loaded = self.checked(id, entry::read_header(&mut file), &path)?;
        let state = self.load_state(id, &loaded.header)?;
        let mut locked = Locked {
            _file: file,
            loaded,
            state,
        };
        f(&mut locked)
    }

    /// Saves the state and updates the index, or removes the entry when nothing waits.
    fn commit(&self, id: &QueueId, e: &Locked, durable: bool) -> Result<(), SpoolError> {
        if e.state.finished() {
            self.remove_entry(id)?;
        } else {
            self.save_state(id, &e.state, durable)?;
            self.index().set(id, e.loaded.header.created, &e.state);
        }
        Ok(())
    }

    /// Unlinks an entry (file first, then state) and makes that durable.
    fn remove_entry(&self, id: &QueueId) -> Result<(), SpoolError> {
        for path in [self.msg_path(id), self.state_path(id)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        self.index().remove(id);
        entry::sync_dir(&self.inner.queue).map_err(io_err("sync", &self.inner.queue))
    }

    /// Tells a running gateway (its `due`/`len`/`rescan`) that the spool changed.
    fn signal_change(&self) -> Result<(), SpoolError> {
        let mut token = [0u8; 8];
        getrandom::fill(&mut token).map_err(SpoolError::Random)?;
        let token = hex::encode(token);
        let temp = entry::write_temp(&self.inner.tmp, &[token.as_bytes()], false)
            .map_err(io_err("write a temp file in", &self.inner.tmp))?;
        let path = self.marker_path();
        if let Err(e) = fs::rename(&temp.path, &path) {
            temp.discard();
            return Err(io_err("replace", &path)(e));
        }
        Ok(())
    }

    /// Records that the client got its 250 for `id` (cheap: no fsync). An entry already
    /// finished and removed is fine.
    pub fn acknowledge(&self, id: &QueueId) -> Result<(), SpoolError> {
        if self.index().acknowledged(id) {
            return Ok(());
        }
        let r = self.with_entry(id, |e| {
            if !e.state.acknowledged {
                e.state.acknowledged = true;
                self.commit(id, e, false)?;
            }
            Ok(())
        });
        match r {
            Err(SpoolError::NotFound(_)) => Ok(()),
            r => r,
        }
    }

    /// Marks a copy as being relayed now (so `due` skips it, and `recover` reports it if the
    /// gateway stops before the outcome is recorded). Refused with [`SpoolError::NotDue`] if
    /// it is already being relayed or is finished. Relaying an entry that was never
    /// acknowledged logs it as a possible duplicate.
    pub fn begin_attempt(&self, p: &PartRef, now: u64) -> Result<(), SpoolError> {
        self.with_entry(&p.id, |e| {
            let part = e.state.part_mut(p)?;
            if part.status != Status::Queued || part.in_progress {
                return Err(SpoolError::NotDue(p.clone()));
            }
            part.in_progress = true;
            part.last_attempt = Some(now);
            if !e.state.acknowledged {
                tracing::warn!(
                    queue_id = %p.id,
                    "possible duplicate message_id={}: relaying a message whose client never \
                     got 250 (it may send it again)",
                    shown(e.loaded.header.message_id.as_deref())
                );
                e.state.acknowledged = true;
            }
            self.commit(&p.id, e, false)
        })
    }

    fn finish(&self, p: &PartRef, now: u64, outcome: Outcome<'_>) -> Result<(), SpoolError> {
        self.with_entry(&p.id, |e| {
            let part = e.state.part_mut(p)?;
            if part.status != Status::Queued {
                return Err(SpoolError::NotDue(p.clone()));
            }
            part.in_progress = false;
            part.attempts = part.attempts.saturating_add(1);
            part.last_attempt = Some(now);
            let durable = match outcome {
                Outcome::Delivered => {
                    part.status = Status::Delivered;
                    true
                }
                Outcome::Deferred {
                    error,
                    next_attempt,
                } => {
                    part.last_error = Some(clip(error));
                    part.next_attempt = next_attempt;
                    false
                }
                Outcome::Bounced { error } => {
                    part.status = Status::Bounced;
                    part.last_error = Some(clip(error));
                    true
                }
            };
            self.commit(&p.id, e, durable)
        })
    }

    /// Records that a copy was relayed (durably); the last copy removes the entry.
    pub fn delivered(&self, p: &PartRef, now: u64) -> Result<(), SpoolError> {
        self.finish(p, now, Outcome::Delivered)
    }

    /// Records a failed attempt: retried at `next_attempt`.
    pub fn deferred(
        &self,
        p: &PartRef,
        now: u64,
        error: &str,
        next_attempt: u64,
    ) -> Result<(), SpoolError> {
        self.finish(
            p,
            now,
            Outcome::Deferred {
                error,
                next_attempt,
            },
        )
    }

    /// Records the final failure of a copy (durably; the caller stored the DSN first); the
    /// last copy removes the entry.
    pub fn bounced(&self, p: &PartRef, now: u64, error: &str) -> Result<(), SpoolError> {
        self.finish(p, now, Outcome::Bounced { error })
    }

    /// Makes the waiting copies of `id` (or of every entry) due now; returns how many. A
    /// running gateway notices within its next `due` call.
    pub fn retry_now(&self, id: Option<&QueueId>) -> Result<usize, SpoolError> {
        let ids = match id {
            Some(id) => vec![id.clone()],
            None => self.entry_ids()?,
        };
        let mut count = 0;
        for one in &ids {
            let r = self.with_entry(one, |e| {
                let mut n = 0;
                for part in &mut e.state.parts {
                    if part.status == Status::Queued && !part.in_progress {
                        part.next_attempt = 0;
                        n += 1;
                    }
                }
                if n > 0 {
                    self.commit(one, e, false)?;
                }
                Ok(n)
            });
            match r {
                Ok(n) => count += n,
                Err(e) if id.is_some() => return Err(e),
                // Finished, deleted or damaged (logged) meanwhile: nothing to retry.
                Err(SpoolError::NotFound(_) | SpoolError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.signal_change()?;
        Ok(count)
    }

    /// Removes an entry without delivering it (operators). A copy being relayed at that
    /// moment cannot be stopped; its outcome is then not recorded.
    pub fn delete(&self, id: &QueueId) -> Result<(), SpoolError> {
        self.with_entry(id, |e| {
            self.remove_entry(id)?;
            tracing::warn!(
                queue_id = %id,
                "deleted from the spool by an operator; message_id={} will not be delivered",
                shown(e.loaded.header.message_id.as_deref())
            );
            Ok(())
        })?;
        self.signal_change()
    }

    /// At start, under the lock, before any delivery: reports (WARN `possible duplicate`) every
    /// entry never acknowledged and every copy whose attempt was interrupted, counts the
    /// interrupted attempts as failed, and clears those flags so each is reported once.
    pub fn recover(&self) -> Result<Vec<Recovered>, SpoolError> {
        let mut found = Vec::new();
        for id in self.entry_ids()? {
            let r = self.with_entry(&id, |e| {
                if e.state.finished() {
                    // Stopped between recording the last outcome and removing the entry.
                    return self.remove_entry(&id);
                }
                let message_id = e.loaded.header.message_id.clone();
                let shown_id = shown(message_id.as_deref());
                let mut changed = false;
                if !e.state.acknowledged {
                    tracing::warn!(
                        queue_id = %id,
                        "possible duplicate message_id={shown_id}: the gateway stopped before \
                         recording that the client got 250; the client may send it again"
                    );
                    found.push(Recovered {
                        id: id.clone(),
                        message_id: message_id.clone(),
                        kind: RecoveredKind::NeverAcknowledged,
                    });
                    e.state.acknowledged = true;
                    changed = true;
                }
                for (i, part) in e.state.parts.iter_mut().enumerate() {
                    if part.in_progress && part.status == Status::Queued {
                        tracing::warn!(
                            queue_id = %id,
                            part = i,
                            "possible duplicate message_id={shown_id}: relaying was under way \
                             when the gateway stopped; the next hop may have it already, and it \
                             will be relayed again"
                        );
                        found.push(Recovered {
                            id: id.clone(),
                            message_id: message_id.clone(),
                            kind: RecoveredKind::AttemptInterrupted { part: i },
                        });
                        part.in_progress = false;
                        part.attempts = part.attempts.saturating_add(1);
                        part.last_error =
                            Some("interrupted: the gateway stopped during this attempt".into());
                        changed = true;
                    }
                }
                if changed {
                    self.commit(&id, e, false)?;
                }
                Ok(())
            });
            match r {
                Ok(()) | Err(SpoolError::NotFound(_) | SpoolError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }
}
