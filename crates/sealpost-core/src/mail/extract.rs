//! Getting an envelope back: from raw envelope bytes, from a `message.html`, or from a
//! wrapper mail (`.eml`) that has `message.html` attached (also when that mail was itself
//! forwarded as an attachment).

use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::html;
use crate::envelope::MAGIC;

/// Why no envelope could be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// Neither an envelope, nor a message.html, nor a mail with one attached.
    #[error(
        "no Sealpost envelope found: expected a wrapper mail (.eml), its message.html attachment, or a raw envelope"
    )]
    NotFound,
    /// A message.html whose envelope block is not valid base64.
    #[error("the message.html is damaged: its envelope block is not valid base64")]
    BadEncoding,
}

/// How deep to look into forwarded mails.
const MAX_DEPTH: usize = 4;

/// Returns the envelope bytes found in `input`.
pub fn extract_envelope(input: &[u8]) -> Result<Vec<u8>, ExtractError> {
    if input.starts_with(MAGIC) {
        return Ok(input.to_vec());
    }
    if let Some(found) = html::read(input) {
        return found.map_err(|_| ExtractError::BadEncoding);
    }
    from_mail(input, 0).unwrap_or(Err(ExtractError::NotFound))
}

fn from_mail(input: &[u8], depth: usize) -> Option<Result<Vec<u8>, ExtractError>> {
    if depth > MAX_DEPTH {
        return None;
    }
    let msg = MessageParser::default().parse(input)?;
    let mut nested = Vec::new();
    for part in msg.parts.iter() {
        match &part.body {
            PartType::Html(_)
            | PartType::Text(_)
            | PartType::Binary(_)
            | PartType::InlineBinary(_) => {
                let named = part
                    .attachment_name()
                    .is_some_and(|n| n.eq_ignore_ascii_case("message.html"));
                let contents = part.contents();
                if let Some(found) = html::read(contents) {
                    return Some(found.map_err(|_| ExtractError::BadEncoding));
                }
                if named && contents.starts_with(MAGIC) {
                    return Some(Ok(contents.to_vec()));
                }
            }
            PartType::Message(m) => nested.push(m.raw_message().to_vec()),
            PartType::Multipart(_) => {}
        }
    }
    nested.iter().find_map(|raw| from_mail(raw, depth + 1))
}
