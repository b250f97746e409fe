//! Rights, templates and the sealed policy.
//!
//! A [`Template`] is what an administrator picks (Encrypt-Only, Do-Not-Forward, or a custom
//! one); applied to a message it becomes a [`Policy`]: who may read, what they may do, until
//! when, on whose behalf. The policy travels only inside the license, so neither the mail
//! carrier nor the recipient can change it. Enforcement lives elsewhere: the key service
//! enforces recipients, expiry and revocation; the portal enforces the rest in the UI.

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, SealError};
use crate::wire::{Reader, Writer, check_str};

/// One thing a recipient may do with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    /// Read the message.
    View,
    /// Reply to the sender.
    Reply,
    /// Reply to the sender and every recipient.
    ReplyAll,
    /// Forward to new recipients.
    Forward,
    /// Print.
    Print,
    /// Copy text out of the message.
    Copy,
    /// Download attachments and the decrypted message.
    Export,
}

impl Right {
    /// Every right, in bit order.
    pub const ALL: [Right; 7] = [
        Right::View,
        Right::Reply,
        Right::ReplyAll,
        Right::Forward,
        Right::Print,
        Right::Copy,
        Right::Export,
    ];

    /// The bit of this right in the encoded rights field.
    pub const fn bit(self) -> u16 {
        match self {
            Right::View => 0x01,
            Right::Reply => 0x02,
            Right::ReplyAll => 0x04,
            Right::Forward => 0x08,
            Right::Print => 0x10,
            Right::Copy => 0x20,
            Right::Export => 0x40,
        }
    }

    /// The name used in configuration, JSON and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Right::View => "view",
            Right::Reply => "reply",
            Right::ReplyAll => "reply_all",
            Right::Forward => "forward",
            Right::Print => "print",
            Right::Copy => "copy",
            Right::Export => "export",
        }
    }

    /// Parses a right's name (`reply-all` is accepted for `reply_all`).
    pub fn parse(s: &str) -> Option<Right> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Right::ALL.into_iter().find(|r| r.name() == s)
    }
}

/// A set of rights.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u16);

impl Rights {
    /// No rights at all.
    pub const NONE: Rights = Rights(0);
    /// Every right.
    pub const ALL: Rights = Rights(0x7f);

    /// The set containing exactly `rights`.
    pub fn of(rights: &[Right]) -> Rights {
        Rights(rights.iter().fold(0, |acc, r| acc | r.bit()))
    }
    /// Whether `right` is in the set.
    pub fn contains(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }
    /// The encoded bits.
    pub fn bits(self) -> u16 {
        self.0
    }
    /// Decodes bits; `None` if any bit is not a known right.
    pub fn from_bits(bits: u16) -> Option<Rights> {
        (bits & !Rights::ALL.0 == 0).then_some(Rights(bits))
    }
    /// The rights in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = Right> {
        Right::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl std::fmt::Debug for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(Right::name)).finish()
    }
}

impl Serialize for Rights {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Rights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Right>::deserialize(d)?;
        Ok(Rights::of(&list))
    }
}

/// Name of the built-in template that protects content but allows everything.
pub const ENCRYPT_ONLY: &str = "Encrypt-Only";
/// Name of the built-in template that forbids forwarding, printing, copying and export.
pub const DO_NOT_FORWARD: &str = "Do-Not-Forward";

/// What an administrator chooses for a message: rights and an optional lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Display name, also recorded in the envelope header.
    pub name: String,
    /// Rights granted to every recipient.
    pub rights: Rights,
    /// Seconds after sending when the message can no longer be opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_secs: Option<u64>,
}

/// Why a template definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Every template must grant `view`.
    #[error("template {0:?} does not grant the view right; every template must")]
    NoView(String),
    /// The name is empty, too long, or reuses a built-in name.
    #[error(
        "template name {0:?} is empty, longer than 100 bytes, or the name of a built-in template"
    )]
    BadName(String),
    /// An expiry of zero seconds would make the message unreadable at once.
    #[error("template {0:?} expires after 0 seconds")]
    ZeroExpiry(String),
}

/// Compares template names the way users type them: case, spaces, `-` and `_` do not matter.
pub fn template_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Template {
    /// Encrypt-Only: every right.
    pub fn encrypt_only() -> Template {
        Template {
            name: ENCRYPT_ONLY.into(),
            rights: Rights::ALL,
            expires_after_secs: None,
        }
    }

    /// Do-Not-Forward: view, reply and reply-all only.
    pub fn do_not_forward() -> Template {
        Template {
            name: DO_NOT_FORWARD.into(),
            rights: Rights::of(&[Right::View, Right::Reply, Right::ReplyAll]),
            expires_after_secs: None,
        }
    }

    /// The built-in template with this name, if any.
    pub fn builtin(name: &str) -> Option<Template> {
        let key = template_key(name);
        [Template::encrypt_only(), Template::do_not_forward()]
            .into_iter()
            .find(|t| template_key(&t.name) == key)
    }

    /// A custom template, checked.
    pub fn custom(
        name: &str,
        rights: Rights,
        expires_after_secs: Option<u64>,
    ) -> Result<Template, TemplateError> {
        let t = Template {
            name: name.trim().to_string(),
            rights,
            expires_after_secs,
        };
        t.validate()?;
        Ok(t)
    }

    /// Checks a custom template's definition.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.name.is_empty()
            || self.name.len() > 100
            || Template::builtin(&self.name).is_some_and(|b| b != *self)
        {
            return Err(TemplateError::BadName(self.name.clone()));
        }
        if !self.rights.contains(Right::View) {
            return Err(TemplateError::NoView(self.name.clone()));
        }
        if self.expires_after_secs == Some(0) {
            return Err(TemplateError::ZeroExpiry(self.name.clone()));
        }
        Ok(())
    }

    /// The policy for one message sent at `now` (Unix seconds).
    pub fn policy(&self, sender: &str, recipients: &[String], now: u64) -> Policy {
        Policy {
            template: self.name.clone(),
            rights: self.rights,
            expires: self.expires_after_secs.map(|s| now.saturating_add(s)),
            sender: normalize_address(sender),
            recipients: recipients.iter().map(|r| normalize_address(r)).collect(),
        }
    }
}

/// The canonical form of an address for comparisons: trimmed, ASCII-lowercased.
pub fn normalize_address(addr: &str) -> String {
    addr.trim().to_ascii_lowercase()
}

/// Whether `addr` has the shape of a bare e-mail address (`local@domain`, at most 320
/// bytes, no white space, control characters or angle brackets). A shape check for input
/// typed by people, not an RFC 5321 validator.
pub fn is_plausible_address(addr: &str) -> bool {
    addr.len() <= 320
        && addr.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// The sealed policy of one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Name of the template it came from.
    pub template: String,
    /// What recipients may do.
    pub rights: Rights,
    /// Unix seconds after which the message may no longer be opened.
    pub expires: Option<u64>,
    /// The sending address.
    pub sender: String,
    /// Addresses that may open the message (normalized).
    pub recipients: Vec<String>,
}

impl Policy {
    /// Whether `addr` is one of the recipients (compared normalized).
    pub fn is_recipient(&self, addr: &str) -> bool {
        let addr = normalize_address(addr);
        self.recipients.contains(&addr)
    }

    /// Whether the message has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    pub(crate) fn check(&self) -> Result<(), SealError> {
        check_str("template name", &self.template)?;
        check_str("sender", &self.sender)?;
        if self.recipients.is_empty() {
            return Err(SealError::NoRecipients);
        }
        if self.recipients.len() > u16::MAX as usize {
            return Err(SealError::TooManyRecipients);
        }
        for r in &self.recipients {
            check_str("recipient", r)?;
            if r.is_empty() || *r != normalize_address(r) {
                return Err(SealError::InvalidRecipient(r.clone()));
            }
        }
        if self.expires == Some(0) {
            return Err(SealError::InvalidExpiry);
        }
        Ok(())
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.str(&self.template);
        w.u16(self.rights.bits());
        w.u64(self.expires.unwrap_or(0));
        w.str(&self.sender);
        w.u16(self.recipients.len() as u16);
        for r in &self.recipients {
            w.str(r);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Policy, ParseError> {
        let template = r.str()?;
        let rights = Rights::from_bits(r.u16()?).ok_or(ParseError::InvalidField("rights"))?;
        let expires = match r.u64()? {
            0 => None,
            t => Some(t),
        };
        let sender = r.str()?;
        let n = r.u16()?;
        if n == 0 {
            return Err(ParseError::InvalidField("recipient list"));
        }
        let recipients = (0..n).map(|_| r.str()).collect::<Result<Vec<_>, _>>()?;
        Ok(Policy {
            template,
            rights,
            expires,
            sender,
            recipients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        let dnf = Template::builtin("do not forward").unwrap();
        assert!(dnf.rights.contains(Right::Reply) && dnf.rights.contains(Right::ReplyAll));
        for r in [Right::Forward, Right::Print, Right::Copy, Right::Export] {
            assert!(!dnf.rights.contains(r));
        }
        assert_eq!(
            Template::builtin("ENCRYPT_ONLY").unwrap().rights,
            Rights::ALL
        );
        assert!(Template::builtin("view only").is_none());
    }

    #[test]
    fn custom_templates_are_checked() {
        let view = Rights::of(&[Right::View]);
        assert!(Template::custom("View only, 7 days", view, Some(7 * 86400)).is_ok());
        assert!(matches!(
            Template::custom("x", Rights::of(&[Right::Print]), None),
            Err(TemplateError::NoView(_))
        ));
        assert!(matches!(
            Template::custom("encrypt only", view, None),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::custom("", view, None),
            Err(TemplateError::BadName(_))
        ));
        assert!(matches!(
            Template::custom("x", view, Some(0)),
            Err(TemplateError::ZeroExpiry(_))
        ));
    }

    #[test]
    fn policy_round_trip_and_checks() {
        let t = Template::custom(
            "Week",
            Rights::of(&[Right::View, Right::Reply]),
            Some(604800),
        )
        .unwrap();
        let p = t.policy("Alice@Example.COM", &["Bob@Gmail.com".into()], 1000);
        assert_eq!(p.expires, Some(605800));
        assert!(p.is_recipient(" bob@gmail.COM"));
        assert!(!p.is_recipient("eve@gmail.com"));
        assert!(!p.is_expired(605799) && p.is_expired(605800));
        let mut w = Writer::default();
        p.encode(&mut w);
        let mut r = Reader::new(&w.buf, "policy");
        assert_eq!(Policy::decode(&mut r).unwrap(), p);
        r.finish().unwrap();
    }

    #[test]
    fn address_shapes() {
        for good in ["bob@gmail.com", "a.b+tag@example.co.uk", "admin@localhost"] {
            assert!(is_plausible_address(good), "{good}");
        }
        for bad in [
            "",
            "bob",
            "@gmail.com",
            "bob@",
            "bob@a@b",
            "Bob <bob@x.y>",
            "bo b@x.y",
            "b\n@x.y",
        ] {
            assert!(!is_plausible_address(bad), "{bad:?}");
        }
        assert!(!is_plausible_address(&format!("{}@x.y", "a".repeat(320))));
    }

    #[test]
    fn unknown_right_bits_are_refused() {
        assert!(Rights::from_bits(0x80).is_none());
        assert_eq!(Right::parse("Reply-All"), Some(Right::ReplyAll));
        let json = serde_json::to_string(&Rights::of(&[Right::View, Right::Export])).unwrap();
        assert_eq!(json, r#"["view","export"]"#);
    }
}
