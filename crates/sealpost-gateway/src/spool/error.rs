//! The spool's one error type, and the helper that names the file an I/O error happened on.
//! Nothing here touches the disk.

use std::io;
use std::path::{Path, PathBuf};

use super::id::{PartRef, QueueId};

/// Errors of the spool's operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Another process (a running gateway) holds the spool's lock.
    #[error(
        "the spool directory {} is in use by another gateway (its lock file {} is held)",
        dir.display(),
        lock.display()
    )]
    Locked {
        /// The spool directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// No such entry (delivered, deleted or never stored).
    #[error("no spooled message {0}")]
    NotFound(QueueId),
    /// The entry has no such copy.
    #[error("spooled message {} has no copy {}", .0.id, .0.part)]
    NoSuchPart(PartRef),
    /// The copy is being relayed already, or was delivered or bounced.
    #[error("copy {0} is already being relayed or is finished")]
    NotDue(PartRef),
    /// The entry is damaged; it was moved to `corrupt/`.
    #[error("spooled message {id} is damaged ({reason}); moved to {}", quarantined.display())]
    Corrupt {
        /// The entry.
        id: QueueId,
        /// What is wrong.
        reason: String,
        /// Where it now is.
        quarantined: PathBuf,
    },
    /// An entry must have at least one copy.
    #[error("a spool entry needs at least one copy")]
    NoParts,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// Maps an I/O error to [`SpoolError::Io`] with what was done to which path.
pub(super) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
