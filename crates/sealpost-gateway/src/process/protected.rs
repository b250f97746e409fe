//! Mail that is already protected, and the plan for transport decryption.
//!
//! A message is *already protected* when it is itself a Sealpost wrapper: a top-level
//! `X-Sealpost-Envelope` field names a message id, the message has a `message.html`
//! attachment of its own (not only inside a forwarded message), the envelope found in it
//! parses and has that id, and, when the envelope names our tenant, it verifies
//! with one of our signing keys. Such mail is never encrypted again: a rule that would encrypt
//! it passes the wrapper on unchanged. An envelope that claims our tenant but does not verify
//! is not taken as protected (the rules treat the message as any other).
//!
//! These checks stop accidents and forgeries that do not hold a real envelope; a sender who
//! builds a wrapper-shaped message around a real envelope of someone else's can still pass
//! extra text through unsealed. The rules are a policy for the organization's own senders,
//! not a barrier against one of them deliberately leaking (docs/threat-model.md).
//!
//! Transport decryption (tenant setting `transport_decryption`): for a wrapper of our own
//! tenant that verifies, the copies that go to internal recipients as the original (the rules
//! said "deliver the original") are *candidates*: the caller asks the key service for share
//! B per recipient ([`crate::transport`]) and, for those it releases it to, replaces the
//! wrapper with the decrypted message ([`Decryptable::decrypted_copy`]). This module decides
//! who is a candidate and builds the bytes; it makes no network call and logs nothing.

use std::fmt;

use mail_parser::MimeHeaders as _;
use sealpost_core::Envelope;
use sealpost_core::mail::{extract_envelope, rfc5322};
use sealpost_rules::AddHeader;

use super::Protector;
use super::copies::prefix;

/// The field that marks a wrapper mail (written by `sealpost_core::mail::wrap`).
pub const MARKER_FIELD: &str = "X-Sealpost-Envelope";
/// The field put first in a message decrypted by the gateway; its value is the message id.
pub const DECRYPTED_FIELD: &str = "X-Sealpost-Decrypted";

/// What [`detect`] found.
pub(super) struct Protected {
    /// The envelope, when it is ours and verified (else `None`: someone else's wrapper).
    pub ours: Option<Vec<u8>>,
    /// The envelope's message id, 32 hex.
    pub message_id: String,
}

/// The `id=` of a marker field's value (`v1; id=HEX; tenant=…`).
fn marker_id(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    text.split(';')
        .filter_map(|p| p.trim().strip_prefix("id="))
        .map(|id| id.trim().to_ascii_lowercase())
        .next()
}

/// Whether `raw` is already a Sealpost wrapper (see the module docs).
pub(super) fn detect(raw: &[u8], p: &Protector) -> Option<Protected> {
    let marker = rfc5322::fields(raw)
        .into_iter()
        .find(|f| f.name.trim().eq_ignore_ascii_case(MARKER_FIELD))?;
    let field = &raw[marker.range];
    let colon = field.iter().position(|&b| b == b':')?;
    let id = marker_id(&field[colon + 1..])?;
    // The envelope must be this message's own attachment, not one of a message forwarded
    // inside it.
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let own = msg.parts.iter().any(|p| {
        !matches!(p.body, mail_parser::PartType::Message(_))
            && p.attachment_name()
                .is_some_and(|n| n.eq_ignore_ascii_case("message.html"))
    });
    if !own {
        return None;
    }
    let bytes = extract_envelope(raw).ok()?;
    let env = Envelope::parse(&bytes).ok()?;
    let message_id = env.header().message_id.to_hex();
    if message_id != id {
        return None;
    }
    if env.header().tenant_id != p.tenant_id {
        return Some(Protected {
            ours: None,
            message_id,
        });
    }
    env.verify_any(&p.verifying_keys).ok()?;
    Some(Protected {
        ours: Some(bytes),
        message_id,
    })
}

/// One copy whose internal recipients may get the message decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the copy in `Processed::Deliver::copies`.
    pub copy: usize,
    /// Its internal recipients: (as spelled in RCPT TO, normalized).
    pub recipients: Vec<(String, String)>,
    /// The headers the rules add to this copy.
    pub add_headers: Vec<AddHeader>,
}

/// A wrapper of our own tenant, verified, with the copies that may be decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct Decryptable {
    /// The envelope.
    pub envelope: Vec<u8>,
    /// Its message id, 32 hex.
    pub message_id: String,
    /// The copies to internal recipients.
    pub candidates: Vec<Candidate>,
}

impl fmt::Debug for Decryptable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptable")
            .field("envelope_len", &self.envelope.len())
            .field("message_id", &self.message_id)
            .field("candidates", &self.candidates)
            .finish()
    }
}

impl Decryptable {
    /// The bytes for internal recipients of `candidate`: `X-Sealpost-Decrypted: ID` first,
    /// then the rules' added headers, then the decrypted message byte for byte (the added
    /// fields in the message's own line ending).
    pub fn decrypted_copy(&self, candidate: &Candidate, plaintext: &[u8]) -> Vec<u8> {
        let crlf = match plaintext.iter().position(|&b| b == b'\n') {
            Some(0) => false,
            Some(i) => plaintext[i - 1] == b'\r',
            None => true,
        };
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::with_capacity(plaintext.len() + 256);
        out.extend_from_slice(format!("{DECRYPTED_FIELD}: {}", self.message_id).as_bytes());
        out.extend_from_slice(eol);
        out.extend_from_slice(&prefix(&candidate.add_headers, crlf));
        out.extend_from_slice(plaintext);
        out
    }
}
