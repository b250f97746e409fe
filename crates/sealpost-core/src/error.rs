//! One error type per operation. Errors that a recipient or an attacker can provoke say
//! *what kind* of thing went wrong, never *which check* failed: opening an envelope fails
//! either with [`OpenError::CannotOpen`] ("not for this key") or [`OpenError::Damaged`].

/// Reading the structure of an envelope or of one of its parts failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes do not start with the Sealpost magic.
    #[error("not a Sealpost envelope (the magic bytes are missing)")]
    NotAnEnvelope,
    /// A format version this library does not read.
    #[error("envelope format version {0} is not supported (this build reads version {supported})", supported = crate::envelope::FORMAT_VERSION)]
    UnsupportedVersion(u8),
    /// The named structure ends early.
    #[error("the envelope is truncated (in the {0})")]
    Truncated(&'static str),
    /// The named structure has bytes after its last field.
    #[error("the envelope has unexpected bytes after the {0}")]
    TrailingBytes(&'static str),
    /// A text field in the named structure is not UTF-8.
    #[error("a text field in the {0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A field holds a value the format does not allow.
    #[error("invalid {0} in the envelope")]
    InvalidField(&'static str),
}

/// Opening an envelope (verifying, unwrapping the license, decrypting) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The envelope is not addressed to, or not signed by, the keys that were offered.
    #[error("the message cannot be opened with this key")]
    CannotOpen,
    /// The envelope was modified, truncated or assembled from parts of others.
    #[error("the message is damaged")]
    Damaged,
}

impl From<crate::chunked::ChunkError> for OpenError {
    fn from(_: crate::chunked::ChunkError) -> Self {
        OpenError::Damaged
    }
}

/// Making an envelope failed. Only caller mistakes can cause this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A text field is longer than the format allows (65 535 bytes).
    #[error("the {0} is too long (at most 65535 bytes)")]
    FieldTooLong(&'static str),
    /// The policy names no recipient.
    #[error("the policy names no recipient")]
    NoRecipients,
    /// More recipients than the format allows (65 535).
    #[error("too many recipients (at most 65535)")]
    TooManyRecipients,
    /// A recipient address is empty or not in normalized form (see `normalize_address`).
    #[error("recipient {0:?} is empty or not normalized (trimmed, lowercase)")]
    InvalidRecipient(String),
    /// An expiry of 0 would be read back as "never".
    #[error("the expiry time must be after 1970-01-01T00:00:00Z")]
    InvalidExpiry,
    /// The message is larger than chunked encryption allows.
    #[error("the message is too large to encrypt")]
    TooLarge,
}

/// Reading or writing key material failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes or text are not a key of the expected kind.
    #[error("not a valid {0}")]
    Invalid(&'static str),
}
