//! # sealpost-portal
//!
//! The recipient's portal: a browser app that opens `message.html`, signs the recipient in,
//! and decrypts and renders the message in WebAssembly. This crate is the shell of that app:
//! today it only proves that the core format builds for `wasm32-unknown-unknown` and offers
//! the first step the portal takes with a file the recipient hands it — finding and reading
//! the envelope's readable header, with no key and no network. The Leptos app, sign-in and
//! rendering come with the portal work (see ARCHITECTURE.md, "Planned").

#![forbid(unsafe_code)]

use sealpost_core::mail::{ExtractError, extract_envelope};
use sealpost_core::{Envelope, Header, ParseError};

/// Why a file the recipient dropped is not something the portal can open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropError {
    /// No envelope in the file.
    #[error(transparent)]
    NoEnvelope(#[from] ExtractError),
    /// An envelope that cannot be read.
    #[error(transparent)]
    Unreadable(#[from] ParseError),
}

/// Reads the readable header of a dropped file (wrapper `.eml`, `message.html` or envelope).
pub fn read_dropped_file(bytes: &[u8]) -> Result<Header, DropError> {
    let envelope = extract_envelope(bytes)?;
    Ok(Envelope::parse(&envelope)?.header().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_an_envelope() {
        assert!(matches!(
            read_dropped_file(b"hello"),
            Err(DropError::NoEnvelope(_))
        ));
        assert!(matches!(
            read_dropped_file(b"SEALPOST\x02rest"),
            Err(DropError::Unreadable(ParseError::UnsupportedVersion(2)))
        ));
    }
}
