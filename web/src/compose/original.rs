//! The opened message as the composer needs it, kept from the moment it was decrypted: the
//! sealed policy (from the key service's rewrap answer), two facts of the verified header, and
//! what the decrypted RFC 5322 message says (read again with `mail-parser`, for the fields the
//! message view does not keep: Message-ID, References, bare addresses, the text to quote and
//! the attachments a forward keeps).
//!
//! It holds plaintext (the text and, with the forward right, the attachments) and lives only
//! in the tab's memory, like the message view.

use std::sync::Arc;

use mail_parser::{Address, MessageParser, MimeHeaders};
use sealpost_core::policy::normalize_address;
use sealpost_core::{Right, Rights};

use super::address::Mailbox;
use super::message::FileItem;
use crate::api::{self, RewrapAnswer};
use crate::open::EnvelopeInfo;
use crate::render::mime::sanitize_file_name;

/// What a reply, reply-all or forward is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    /// The sealed policy's sender (normalized).
    pub sender: String,
    /// The sealed policy's template name.
    pub template: String,
    /// The sealed policy's rights.
    pub rights: Rights,
    /// The sealed policy's expiry, Unix seconds.
    pub expires: Option<u64>,
    /// The envelope's message id, 32 hex digits.
    pub envelope_id: String,
    /// The signed-in address the key service named.
    pub email: String,
    /// The header's tenant id (the reply's header names the same).
    pub tenant_id: String,
    /// The header's key-service URL, exactly as written there.
    pub key_service_url: String,
    /// The header's creation time, Unix seconds.
    pub created: u64,
    /// Whether the header shows the subject (the organization shows subjects).
    pub header_subject: bool,
    /// The message's `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// The message's `References`, without angle brackets, in order.
    pub references: Vec<String>,
    /// `From`.
    pub from: Vec<Mailbox>,
    /// `To`.
    pub to: Vec<Mailbox>,
    /// `Cc`.
    pub cc: Vec<Mailbox>,
    /// `Date`, formatted (empty when absent).
    pub date: String,
    /// `Subject` (empty when absent).
    pub subject: String,
    /// The text of the message (HTML bodies turned into text), for quoting.
    pub text: String,
    /// The attachments a forward keeps (empty without the forward right).
    pub attachments: Vec<FileItem>,
}

impl Original {
    /// Reads the decrypted `plaintext` of the message whose rewrap answer and verified header
    /// are given. `None` if it is not a message (the view would not have opened either).
    pub fn read(plaintext: &[u8], answer: &RewrapAnswer, info: &EnvelopeInfo) -> Option<Original> {
        let rights = api::rights_of(answer);
        let message = MessageParser::default().parse(plaintext)?;
        let text = (0..)
            .map_while(|i| message.body_text(i))
            .collect::<Vec<_>>()
            .join("\n");
        let attachments = if rights.contains(Right::Forward) {
            attachments(&message)
        } else {
            Vec::new()
        };
        Some(Original {
            sender: normalize_address(&answer.sender),
            template: answer.template.clone(),
            rights,
            expires: answer.expires,
            envelope_id: answer.message_id.clone(),
            email: answer.email.clone(),
            tenant_id: info.tenant_id.clone(),
            key_service_url: info.key_service_url.clone(),
            created: info.created,
            header_subject: info.subject.is_some(),
            message_id: message
                .message_id()
                .map(str::trim)
                .filter(|id| is_message_id(id))
                .map(String::from),
            references: message
                .references()
                .as_text_list()
                .unwrap_or_default()
                .iter()
                .map(|r| r.trim())
                .filter(|r| is_message_id(r))
                .map(String::from)
                .collect(),
            from: mailboxes(message.from()),
            to: mailboxes(message.to()),
            cc: mailboxes(message.cc()),
            date: message.date().map(|d| d.to_rfc822()).unwrap_or_default(),
            subject: message.subject().unwrap_or_default().to_string(),
            text,
            attachments,
        })
    }

    /// The sender as a mailbox: the policy's address, with the display name of the
    /// original's `From` when that is the same address.
    pub fn sender_mailbox(&self) -> Mailbox {
        let name = self
            .from
            .iter()
            .find(|m| m.normalized() == self.sender)
            .and_then(|m| m.name.clone());
        Mailbox {
            name,
            address: self.sender.clone(),
        }
    }

    /// Who wrote it, for the quote line: `From` as shown, else the policy's sender.
    pub fn author(&self) -> String {
        self.from
            .first()
            .map(Mailbox::display)
            .unwrap_or_else(|| self.sender.clone())
    }
}

/// Whether `id` (without angle brackets) is a message id the reply may repeat: `left@right`,
/// printable ASCII, no white space, brackets or quotes, at most 250 bytes.
pub fn is_message_id(id: &str) -> bool {
    id.len() <= 250
        && id
            .split_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains('@'))
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\' | b','))
}

fn mailboxes(a: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim();
            (!address.is_empty()).then(|| Mailbox {
                name: addr
                    .name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                address: address.to_string(),
            })
        })
        .collect()
}

fn attachments(message: &mail_parser::Message<'_>) -> Vec<FileItem> {
    message
        .attachments
        .iter()
        .filter_map(|&i| message.parts.get(i as usize))
        .enumerate()
        .map(|(n, part)| {
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .map(|t| t.to_ascii_lowercase())
                .filter(|t| super::message::is_content_type(t))
                .unwrap_or_else(|| {
                    if part.is_message() {
                        "message/rfc822".into()
                    } else {
                        "application/octet-stream".into()
                    }
                });
            let name = part
                .attachment_name()
                .map(sanitize_file_name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| match content_type.as_str() {
                    "message/rfc822" => format!("message-{}.eml", n + 1),
                    _ => format!("attachment-{}", n + 1),
                });
            FileItem {
                name,
                content_type,
                data: Arc::from(part.contents()),
            }
        })
        .collect()
}
