//! Queue ids: the names of spool entries.
//!
//! A queue id is 16 lowercase hexadecimal digits: the store time (seconds since the Unix epoch,
//! 8 digits) followed by 32 random bits, so ids sort by age. Parsing accepts exactly that
//! shape and nothing else, which is what keeps an id typed on the command line from naming a
//! file outside the spool (`../x`, `a/b`, an empty string). This module does not check that
//! an entry with the id exists.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Length of a queue id in characters.
pub const QUEUE_ID_LEN: usize = 16;

/// The name of one spool entry (one accepted message with all its copies).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct QueueId(String);

impl QueueId {
    /// A new id for an entry stored at `now` (seconds since the Unix epoch): time first, so
    /// ids sort by age, then 32 bits from the operating system's random number generator.
    pub fn generate(now: u64) -> Result<QueueId, getrandom::Error> {
        let mut random = [0u8; 4];
        getrandom::fill(&mut random)?;
        let secs = u32::try_from(now).unwrap_or(u32::MAX);
        Ok(QueueId(format!("{secs:08x}{}", hex::encode(random))))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The text is not a queue id (16 lowercase hexadecimal digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a queue id (expected 16 lowercase hexadecimal digits)")]
pub struct ParseQueueIdError;

impl FromStr for QueueId {
    type Err = ParseQueueIdError;

    fn from_str(s: &str) -> Result<QueueId, ParseQueueIdError> {
        let well_formed =
            s.len() == QUEUE_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if well_formed {
            Ok(QueueId(s.to_owned()))
        } else {
            Err(ParseQueueIdError)
        }
    }
}

/// One copy (part) of a spool entry: the unit the delivery workers relay.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PartRef {
    /// The entry.
    pub id: QueueId,
    /// The index of the copy within the entry, from 0.
    pub part: usize,
}

impl fmt::Display for PartRef {
    /// `QUEUEID/PART`, e.g. `6929f0a1c3d4e5f6/0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.id, self.part)
    }
}
