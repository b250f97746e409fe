//! Addresses: the mailboxes of a reply, fixed by its kind, and the forward recipients a person
//! types, validated with a plain-words error.
//!
//! Reply goes to the sealed policy's sender; Reply all to the sender (To) and the original's
//! To and Cc (Cc), without the signed-in address; Forward to what the person types in To and Cc
//! (1 to [`MAX_RECIPIENTS`] addresses, as the key service allows). Addresses are compared and
//! sent to the gateway normalized (`sealpost_core::policy::normalize_address`); the message's
//! header fields keep the display names. The key service decides what is allowed; this module
//! only prepares what the person meant.

use sealpost_core::policy::{is_plausible_address, normalize_address};

use super::Kind;
use super::original::Original;

/// The most addresses a forward may go to (the key service's limit).
pub const MAX_RECIPIENTS: usize = 100;

/// One mailbox: an address and, when known, a display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The display name, if any.
    pub name: Option<String>,
    /// The address as written.
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a name.
    pub fn bare(address: &str) -> Mailbox {
        Mailbox {
            name: None,
            address: address.trim().to_string(),
        }
    }

    /// The address normalized, for comparisons and the gateway.
    pub fn normalized(&self) -> String {
        normalize_address(&self.address)
    }

    /// `Name <address>` or the bare address, for showing.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) if n.contains([',', ';', '<', '>', '"', '@', '(', ')', ':']) => {
                format!("\"{}\" <{}>", n.replace('"', "'"), self.address)
            }
            Some(n) if !n.is_empty() => format!("{n} <{}>", self.address),
            _ => self.address.clone(),
        }
    }
}

/// The recipients of a reply or forward.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    /// To.
    pub to: Vec<Mailbox>,
    /// Cc (never an address that is also in To).
    pub cc: Vec<Mailbox>,
}

impl Recipients {
    /// To's addresses, normalized.
    pub fn to_addresses(&self) -> Vec<String> {
        self.to.iter().map(Mailbox::normalized).collect()
    }

    /// Cc's addresses, normalized.
    pub fn cc_addresses(&self) -> Vec<String> {
        self.cc.iter().map(Mailbox::normalized).collect()
    }

    /// To ∪ Cc, normalized, in order (the reply policy's recipients).
    pub fn all(&self) -> Vec<String> {
        let mut all = self.to_addresses();
        all.extend(self.cc_addresses());
        all
    }

    /// Whether there is nobody to send to.
    pub fn is_empty(&self) -> bool {
        self.to.is_empty() && self.cc.is_empty()
    }
}

/// Why the recipients cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Something typed is not an e-mail address.
    #[error(
        "“{0}” is not an e-mail address. Write addresses like name@example.com, separated by commas."
    )]
    Invalid(String),
    /// To is empty.
    #[error("Add at least one recipient in To.")]
    NoRecipients,
    /// More than [`MAX_RECIPIENTS`].
    #[error("A message can go to at most 100 addresses. Remove some recipients.")]
    TooMany,
    /// Reply all, but everybody on the original is the signed-in address.
    #[error("There is nobody else to reply to: you were the only other person on this message.")]
    NobodyElse,
}

/// Splits a typed list (`a@x.org, "Doe, Jane" <j@y.org>; b@z.org`) into mailboxes: commas,
/// semicolons and line breaks separate entries outside quotes and angle brackets.
pub fn parse_list(input: &str) -> Result<Vec<Mailbox>, AddressError> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut angle) = (false, false);
    for c in input.chars() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' | ';' | '\n' | '\r' if !quoted && !angle => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    let mut out: Vec<Mailbox> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mailbox = parse_one(item).ok_or_else(|| AddressError::Invalid(item.to_string()))?;
        if !out.iter().any(|m| m.normalized() == mailbox.normalized()) {
            out.push(mailbox);
        }
    }
    Ok(out)
}

fn parse_one(item: &str) -> Option<Mailbox> {
    let (name, address) = match item.rfind('<') {
        Some(open) => {
            let rest = &item[open + 1..];
            let close = rest.find('>')?;
            if !rest[close + 1..].trim().is_empty() {
                return None;
            }
            let name = item[..open].trim().trim_matches('"').trim();
            (
                (!name.is_empty()).then(|| name.to_string()),
                rest[..close].trim(),
            )
        }
        None => (None, item),
    };
    valid_address(address).then(|| Mailbox {
        name,
        address: address.to_string(),
    })
}

/// The shape check for a typed address: the core's (`local@domain`, no spaces, controls or
/// angle brackets) plus no list separators, group colons or quotes (the characters the
/// gateway refuses in a reply's address fields), and a domain with a dot between labels.
pub fn valid_address(address: &str) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    is_plausible_address(address)
        && !address.contains([',', ';', ':', '"', '(', ')', '[', ']', '\\'])
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// The recipients a reply or reply-all fixes (forward's come from [`forward`]).
///
/// `me` is the signed-in address: it is left out of reply-all. The sender keeps the display
/// name the original's `From` gave it.
pub fn fixed(kind: Kind, original: &Original, me: &str) -> Result<Recipients, AddressError> {
    let me = normalize_address(me);
    let sender = original.sender_mailbox();
    match kind {
        Kind::Reply => Ok(Recipients {
            to: vec![sender],
            cc: Vec::new(),
        }),
        Kind::ReplyAll => {
            let mut seen = vec![me.clone()];
            let mut to = Vec::new();
            if sender.normalized() != me {
                seen.push(sender.normalized());
                to.push(sender);
            }
            let mut cc = Vec::new();
            for m in original.to.iter().chain(&original.cc) {
                let n = m.normalized();
                if !seen.contains(&n) && is_plausible_address(&m.address) {
                    seen.push(n);
                    cc.push(m.clone());
                }
            }
            if to.is_empty() {
                to = std::mem::take(&mut cc);
            }
            if to.is_empty() {
                return Err(AddressError::NobodyElse);
            }
            Ok(Recipients { to, cc })
        }
        Kind::Forward => Ok(Recipients::default()),
    }
}

/// The recipients of a forward from what was typed in To and Cc: at least one in To, at most
/// [`MAX_RECIPIENTS`] in all; an address in both counts once (in To).
pub fn forward(to: &str, cc: &str) -> Result<Recipients, AddressError> {
    let to = parse_list(to)?;
    let cc: Vec<Mailbox> = parse_list(cc)?
        .into_iter()
        .filter(|m| !to.iter().any(|t| t.normalized() == m.normalized()))
        .collect();
    if to.is_empty() {
        return Err(AddressError::NoRecipients);
    }
    if to.len() + cc.len() > MAX_RECIPIENTS {
        return Err(AddressError::TooMany);
    }
    Ok(Recipients { to, cc })
}

/// The mailboxes as a header-style list, for read-only fields.
pub fn display_list(list: &[Mailbox]) -> String {
    list.iter()
        .map(Mailbox::display)
        .collect::<Vec<_>>()
        .join(", ")
}
