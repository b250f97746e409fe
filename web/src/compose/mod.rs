//! Encrypted Reply, Reply all and Forward: everything the composer decides, as plain Rust
//! that builds and tests natively (`docs/portal.md`, "Replying").
//!
//! The flow, one module per step:
//! - [`original`]: what the composer needs from the opened message — the sealed policy from
//!   the rewrap answer (sender, rights, template, expiry), the readable header (created, whether
//!   the subject is shown) and, read from the decrypted message with `mail-parser`, its
//!   Message-ID, References, addresses, date, text and (for forward) attachments;
//! - [`address`]: mailboxes, the recipients each kind fixes ([`Kind`]) and the forward
//!   recipients a person types, validated;
//! - [`text`]: subject prefixes, the quoted original, and the body's light formatting (bold,
//!   italic, bulleted lists) — both how the buttons edit the text and the escaped `text/html`
//!   alternative sent when formatting was used;
//! - [`message`]: the RFC 5322 message, built with `mail-builder` (From, To, Cc, Subject,
//!   Date, a random Message-ID, In-Reply-To, References, bodies, attachments);
//! - [`submit`]: the reply's policy (contract step 3), the submission sealed with
//!   `sealpost_core::SubmissionSealing` to the tenant's active license key, the JSON for the
//!   gateway's `POST /v1/replies`, and what each answer means for the person.
//!
//! On `wasm32` only, `flow` runs these steps from the composer page (seal, then send, with
//! progress). What leaves the browser is the sealed envelope, the original's header and
//! license, the recipients' addresses and the threading ids: never the message text, its
//! subject (unless the organization shows subjects in envelope headers) or attachments.
//!
//! This module deliberately does not touch key material or the envelope format: sealing is
//! one call into the core, with the tenant's public license key.

pub mod address;
pub mod message;
pub mod original;
pub mod submit;
pub mod text;

#[cfg(target_arch = "wasm32")]
pub mod flow;

use sealpost_core::Right;

pub use address::{Mailbox, Recipients};
pub use message::{Built, Draft, FileItem};
pub use original::Original;

/// What the person is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// To the original's sender only.
    Reply,
    /// To the sender and the original's other recipients.
    ReplyAll,
    /// To new addresses, with the original's attachments.
    Forward,
}

impl Kind {
    /// All kinds, in the order the buttons appear.
    pub const ALL: [Kind; 3] = [Kind::Reply, Kind::ReplyAll, Kind::Forward];

    /// The name the gateway's API uses (`kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reply => "reply",
            Kind::ReplyAll => "reply_all",
            Kind::Forward => "forward",
        }
    }

    /// The right of the sealed policy that allows it.
    pub fn right(self) -> Right {
        match self {
            Kind::Reply => Right::Reply,
            Kind::ReplyAll => Right::ReplyAll,
            Kind::Forward => Right::Forward,
        }
    }

    /// The button's text (also its accessible name).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Reply => "Reply",
            Kind::ReplyAll => "Reply all",
            Kind::Forward => "Forward",
        }
    }

    /// The composer's heading.
    pub fn heading(self) -> &'static str {
        match self {
            Kind::Reply => "Reply",
            Kind::ReplyAll => "Reply to all",
            Kind::Forward => "Forward",
        }
    }

    /// Whether the person types the recipients (only for forward).
    pub fn editable_recipients(self) -> bool {
        self == Kind::Forward
    }
}

/// Where the composer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Being written.
    Editing,
    /// Something to fix before sending (shown as an alert).
    Problem(String),
    /// Building and sealing the message in the browser.
    Sealing,
    /// Sending the sealed message.
    Sending,
    /// The gateway accepted it.
    Sent {
        /// What was sent.
        kind: Kind,
        /// To whom.
        recipients: Vec<String>,
    },
    /// The gateway or the network refused it.
    Failed(submit::SendProblem),
}

impl Status {
    /// Whether sealing or sending is under way (Send is disabled).
    pub fn busy(&self) -> bool {
        matches!(self, Status::Sealing | Status::Sending)
    }

    /// The sentence for the status region and the page.
    pub fn announcement(&self) -> String {
        match self {
            Status::Editing => String::new(),
            Status::Problem(text) => text.clone(),
            Status::Sealing => "Encrypting your message in this browser…".into(),
            Status::Sending => "Sending the encrypted message…".into(),
            Status::Sent { kind, recipients } => format!(
                "Sent. Your encrypted {} is on its way to {}.",
                match kind {
                    Kind::Forward => "message",
                    Kind::Reply | Kind::ReplyAll => "reply",
                },
                recipients.join(", ")
            ),
            Status::Failed(p) => p.text.clone(),
        }
    }
}

/// Which of Reply, Reply all and Forward the message view offers: those whose right the
/// sealed policy grants, and none when the organization has no reply endpoint.
pub fn offered(rights: sealpost_core::Rights, reply_url: Option<&str>) -> Vec<Kind> {
    if reply_url.is_none_or(|u| submit::reply_endpoint(u).is_none()) {
        return Vec::new();
    }
    Kind::ALL
        .into_iter()
        .filter(|k| rights.contains(k.right()))
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod message_tests;
