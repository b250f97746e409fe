//! The draft a person edits and the RFC 5322 message built from it with `mail-builder`.
//!
//! The message: `From` = the signed-in address, `To`/`Cc`, `Subject`, `Date` = now (UTC),
//! `Message-ID` = `<32 random hex digits@sealpost.invalid>`, `In-Reply-To` = the original's
//! Message-ID and `References` = the original's References followed by its Message-ID (for
//! forward too), a `text/plain` body (line breaks CRLF) and, when the text uses formatting, an
//! escaped `text/html` alternative ([`super::text::to_html`]); the attachments follow with
//! their content types and names. `mail-builder` picks the transfer encodings and encodes
//! non-ASCII header text (RFC 2047); its MIME boundaries are not secret.

use std::sync::Arc;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::message_id::MessageId as MessageIdHeader;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::address::{self, AddressError, Recipients};
use super::original::Original;
use super::{Kind, text};

/// The most text and attachments the composer takes. Attachments grow by a third in the
/// message (base64, with line breaks) and the envelope again in the request (base64), so
/// 19 MiB of content fit the gateway's default request limit
/// ([`super::submit::MAX_REQUEST_BYTES`]) beside an original envelope of up to
/// [`super::submit::MAX_ORIGINAL_BYTES`] (`the_largest_message_fits…` checks it).
pub const MAX_MESSAGE_BYTES: usize = 19 << 20;

/// The domain of generated Message-IDs (reserved: it names no real host).
pub const MESSAGE_ID_DOMAIN: &str = "sealpost.invalid";

/// How many ids of the original's `References` are kept (the first and the latest ones).
pub const MAX_REFERENCES: usize = 20;

/// An attached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    /// The file name.
    pub name: String,
    /// Its MIME type, `type/subtype`.
    pub content_type: String,
    /// The bytes.
    pub data: Arc<[u8]>,
}

impl FileItem {
    /// A picked file: its name made safe, its browser-given type used only when it is a
    /// plain `type/subtype`.
    pub fn picked(name: &str, content_type: &str, data: Vec<u8>) -> FileItem {
        let name = crate::render::mime::sanitize_file_name(name);
        let ty = content_type.trim().to_ascii_lowercase();
        FileItem {
            name: if name.is_empty() {
                "attachment".into()
            } else {
                name
            },
            content_type: if is_content_type(&ty) {
                ty
            } else {
                "application/octet-stream".into()
            },
            data: data.into(),
        }
    }
}

/// Whether `t` is a bare `type/subtype` of RFC 2045 token characters.
pub fn is_content_type(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    t.split_once('/')
        .is_some_and(|(ty, sub)| token(ty) && token(sub))
}

/// What the person is writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Reply, reply-all or forward.
    pub kind: Kind,
    /// To, as typed (forward) or as fixed (shown read-only).
    pub to: String,
    /// Cc, likewise.
    pub cc: String,
    /// The subject.
    pub subject: String,
    /// The text, with the toolbar's markup.
    pub body: String,
    /// The attachments (for forward, the original's to begin with).
    pub attachments: Vec<FileItem>,
}

impl Draft {
    /// A new draft of `kind` for `original`, by the signed-in address `me`: the fixed
    /// recipients, the prefixed subject, the quoted original, the forwarded attachments.
    pub fn new(kind: Kind, original: &Original, me: &str) -> Draft {
        let fixed = address::fixed(kind, original, me).unwrap_or_default();
        Draft {
            kind,
            to: address::display_list(&fixed.to),
            cc: address::display_list(&fixed.cc),
            subject: text::subject(kind, &original.subject),
            body: text::prefill(kind, original),
            attachments: if kind == Kind::Forward {
                original.attachments.clone()
            } else {
                Vec::new()
            },
        }
    }

    /// The recipients: fixed by the kind, or (forward) what was typed, validated.
    pub fn recipients(&self, original: &Original, me: &str) -> Result<Recipients, AddressError> {
        match self.kind {
            Kind::Forward => address::forward(&self.to, &self.cc),
            kind => address::fixed(kind, original, me),
        }
    }

    /// The size of the message's content (text and attachments).
    pub fn content_len(&self) -> usize {
        self.body.len() + self.attachments.iter().map(|a| a.data.len()).sum::<usize>()
    }
}

/// The threading ids, with angle brackets, as the gateway's `threading` wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threading {
    /// The new message's `<…@sealpost.invalid>`.
    pub message_id: String,
    /// The original's Message-ID.
    pub in_reply_to: Option<String>,
    /// The original's References and Message-ID, space-separated.
    pub references: Option<String>,
}

/// Why the message was not built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither text nor attachments.
    #[error("The message is empty. Write something or attach a file.")]
    Empty,
    /// Over [`MAX_MESSAGE_BYTES`].
    #[error(
        "The message is too large to send: text and attachments together may be at most 19 MB. Remove an attachment."
    )]
    TooLarge,
}

/// The message, ready to seal.
pub struct Built {
    /// The RFC 5322 bytes (wiped when dropped).
    pub bytes: Zeroizing<Vec<u8>>,
    /// Its threading ids.
    pub threading: Threading,
}

/// The `References` of a reply to `original`, without brackets: its References (the first
/// and the latest, at most [`MAX_REFERENCES`]) and then its Message-ID.
pub fn references(original: &Original) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for id in original.references.iter().chain(&original.message_id) {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    ids
}

/// Builds the message of `draft` from the signed-in address `from` to `recipients`, dated
/// `now` (Unix seconds), with a Message-ID from `rng`.
pub fn build(
    draft: &Draft,
    original: &Original,
    from: &str,
    recipients: &Recipients,
    now: u64,
    rng: &mut impl CryptoRng,
) -> Result<Built, BuildError> {
    if draft.body.trim().is_empty() && draft.attachments.is_empty() {
        return Err(BuildError::Empty);
    }
    if draft.content_len() > MAX_MESSAGE_BYTES {
        return Err(BuildError::TooLarge);
    }
    let message_id = format!(
        "{}@{MESSAGE_ID_DOMAIN}",
        sealpost_core::MessageId::random(rng).to_hex()
    );
    let refs = references(original);
    let threading = Threading {
        message_id: format!("<{message_id}>"),
        in_reply_to: original.message_id.as_ref().map(|id| format!("<{id}>")),
        references: (!refs.is_empty()).then(|| {
            refs.iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" ")
        }),
    };
    let mailboxes = |list: &[address::Mailbox]| {
        Address::new_list(
            list.iter()
                .map(|m| Address::new_address(m.name.clone(), m.address.clone()))
                .collect(),
        )
    };
    let subject: String = draft
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut b = MessageBuilder::new()
        .from(Address::new_address(
            None::<String>,
            from.trim().to_string(),
        ))
        .to(mailboxes(&recipients.to));
    if !recipients.cc.is_empty() {
        b = b.cc(mailboxes(&recipients.cc));
    }
    b = b
        .subject(subject.trim().to_string())
        .date(now as i64)
        .message_id(message_id);
    if let Some(id) = &original.message_id {
        b = b.in_reply_to(id.clone());
    }
    if !refs.is_empty() {
        b = b.references(MessageIdHeader::new_list(refs.into_iter()));
    }
    let body = crlf(&draft.body);
    if let Some(html) = text::to_html(&draft.body) {
        b = b.html_body(crlf(&html));
    }
    b = b.text_body(body);
    for a in &draft.attachments {
        b = b.attachment(a.content_type.clone(), a.name.clone(), a.data.as_ref());
    }
    let mut bytes = Zeroizing::new(Vec::new());
    b.serialize(&mut *bytes);
    Ok(Built { bytes, threading })
}

/// `text` with every line break CRLF.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}
