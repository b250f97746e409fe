//! Getting an envelope into the portal: the URL fragment, the `postMessage` hand-off from
//! `message.html`, a dropped or picked file, and a pasted portal link.
//!
//! The protocol (see `docs/portal.md`):
//! - `#envelope=<base64url, no padding>`: the envelope itself, for small envelopes;
//! - `#await-envelope`: the opener (`message.html`) is waiting for `sealpost-ready`, and will
//!   answer with `{type: "sealpost-envelope", version: 1, envelope: "<standard base64>"}`;
//! - a file: a raw envelope, a `message.html` or a wrapper `.eml` (found by the core's
//!   [`extract_envelope`]);
//! - a pasted link: any URL whose fragment is `#envelope=…`.
//!
//! This module turns those inputs into envelope bytes. It does not read the envelope (that is
//! [`crate::open`]) and calls no browser API itself (a picked file arrives as a JavaScript
//! buffer, which [`read_file_js`] hands to the core): the event listeners live in the UI glue.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use sealpost_core::mail::extract_envelope;

/// The `type` the portal posts to its opener when it is ready.
pub const READY_MESSAGE_TYPE: &str = "sealpost-ready";
/// The `type` of the opener's answer.
pub const ENVELOPE_MESSAGE_TYPE: &str = "sealpost-envelope";
/// The only hand-off protocol version.
pub const HANDOFF_VERSION: u32 = 1;
/// Fragment that asks the portal to wait for the envelope by `postMessage`.
pub const AWAIT_FRAGMENT: &str = "await-envelope";

const ANY_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, ANY_PADDING);
const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, ANY_PADDING);

/// Why an input holds no envelope the portal can take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    /// The file holds no Sealpost envelope.
    #[error(
        "This file does not contain a protected message. Choose the message.html attachment or the whole e-mail (.eml)."
    )]
    NoEnvelope,
    /// The link has no `#envelope=` part, or it is cut short.
    #[error(
        "This link does not contain a message. Copy the whole link, including everything after the # sign."
    )]
    BadLink,
    /// The hand-off message from `message.html` is not one the portal understands.
    #[error("The page that opened the portal sent something the portal does not understand.")]
    BadHandoff,
}

/// What the URL fragment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// No fragment the portal knows: show the intake page.
    Nothing,
    /// The envelope itself.
    Envelope(Vec<u8>),
    /// Wait for the opener's `postMessage`.
    AwaitEnvelope,
    /// `#envelope=` with something that is not base64url.
    Broken,
}

/// Reads `location.hash` (with or without its leading `#`).
pub fn parse_fragment(hash: &str) -> Fragment {
    let hash = hash.strip_prefix('#').unwrap_or(hash);
    if hash == AWAIT_FRAGMENT {
        return Fragment::AwaitEnvelope;
    }
    match hash.strip_prefix("envelope=") {
        None => Fragment::Nothing,
        Some(data) => match URL_SAFE_ANY.decode(data.trim()) {
            Ok(bytes) if !bytes.is_empty() => Fragment::Envelope(bytes),
            _ => Fragment::Broken,
        },
    }
}

/// Reads a pasted portal link (`https://portal/#envelope=…`, or just the fragment).
pub fn parse_link(link: &str) -> Result<Vec<u8>, IntakeError> {
    let link = link.trim();
    let fragment = link.split_once('#').map_or(link, |(_, f)| f);
    match parse_fragment(fragment) {
        Fragment::Envelope(bytes) => Ok(bytes),
        _ => Err(IntakeError::BadLink),
    }
}

/// Reads the opener's hand-off message, given its `type`, `version` and `envelope` fields
/// (each `None` when absent or of the wrong JavaScript type).
pub fn parse_handoff(
    kind: Option<&str>,
    version: Option<f64>,
    envelope: Option<&str>,
) -> Result<Vec<u8>, IntakeError> {
    if kind != Some(ENVELOPE_MESSAGE_TYPE) || version != Some(f64::from(HANDOFF_VERSION)) {
        return Err(IntakeError::BadHandoff);
    }
    let data: String = envelope
        .ok_or(IntakeError::BadHandoff)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    match STANDARD_ANY.decode(data) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => Err(IntakeError::BadHandoff),
    }
}

/// Finds the envelope in a dropped or picked file.
pub fn read_file(bytes: &[u8]) -> Result<Vec<u8>, IntakeError> {
    extract_envelope(bytes).map_err(|_| IntakeError::NoEnvelope)
}

/// [`read_file`] of a file still in a JavaScript buffer: the core finds a `message.html`'s
/// envelope with the browser's own search and base64 decoder, and copies only the envelope
/// into WebAssembly memory (the same result; see `sealpost_core::mail::extract_envelope_js`).
#[cfg(target_arch = "wasm32")]
pub fn read_file_js(bytes: &js_sys::Uint8Array) -> Result<Vec<u8>, IntakeError> {
    sealpost_core::mail::extract_envelope_js(bytes).map_err(|_| IntakeError::NoEnvelope)
}

/// The fragment a link to the portal carries for `envelope` (used by tests and by the
/// portal's "copy link" helpers; the same encoding `message.html` writes).
pub fn fragment_for(envelope: &[u8]) -> String {
    format!(
        "#envelope={}",
        general_purpose::URL_SAFE_NO_PAD.encode(envelope)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments() {
        assert_eq!(parse_fragment(""), Fragment::Nothing);
        assert_eq!(parse_fragment("#other"), Fragment::Nothing);
        assert_eq!(parse_fragment("#await-envelope"), Fragment::AwaitEnvelope);
        assert_eq!(
            parse_fragment("#envelope=AP8"),
            Fragment::Envelope(vec![0, 0xff])
        );
        assert_eq!(
            parse_fragment("envelope=AP8="),
            Fragment::Envelope(vec![0, 0xff])
        );
        assert_eq!(parse_fragment("#envelope=A+8"), Fragment::Broken);
        assert_eq!(parse_fragment("#envelope="), Fragment::Broken);
        assert_eq!(fragment_for(&[0, 0xff]), "#envelope=AP8");
    }

    #[test]
    fn links() {
        assert_eq!(
            parse_link(" https://p.example/#envelope=AP8 "),
            Ok(vec![0, 0xff])
        );
        assert_eq!(parse_link("#envelope=AP8"), Ok(vec![0, 0xff]));
        assert_eq!(parse_link("https://p.example/"), Err(IntakeError::BadLink));
        assert_eq!(
            parse_link("https://p.example/#envelope=%%"),
            Err(IntakeError::BadLink)
        );
    }

    #[test]
    fn handoff() {
        let ok = parse_handoff(Some("sealpost-envelope"), Some(1.0), Some("AP8=\n"));
        assert_eq!(ok, Ok(vec![0, 0xff]));
        for (k, v, e) in [
            (Some("sealpost-ready"), Some(1.0), Some("AP8=")),
            (Some("sealpost-envelope"), Some(2.0), Some("AP8=")),
            (Some("sealpost-envelope"), None, Some("AP8=")),
            (Some("sealpost-envelope"), Some(1.0), None),
            (Some("sealpost-envelope"), Some(1.0), Some("AP8_")),
            (None, Some(1.0), Some("AP8=")),
        ] {
            assert_eq!(
                parse_handoff(k, v, e),
                Err(IntakeError::BadHandoff),
                "{k:?} {v:?} {e:?}"
            );
        }
    }

    #[test]
    fn files() {
        assert_eq!(read_file(b"hello"), Err(IntakeError::NoEnvelope));
    }
}
