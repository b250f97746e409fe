//! Making the bytes of one copy: the original with headers put in front, or the wrapper mail.
//!
//! The wrapper is made the way `sealpost encrypt` makes it (policy from the template, `Bcc`
//! cut from the payload, `sealpost_core::seal`, `sealpost_core::mail::wrap`); the only
//! differences are the gateway's: the policy's recipients are the group's envelope
//! recipients, the subject is hidden when a rule says `remove_subject`, and input that is not
//! a message is sealed whole under a minimal wrapper header. This module decides nothing.

use mail_builder::headers::Header as _;
use mail_builder::headers::text::Text;
use sealpost_core::mail::{rfc5322, wrap};
use sealpost_core::policy::{Template, normalize_address};
use sealpost_core::{Envelope, Sealer, seal};
use sealpost_rules::AddHeader;

use super::{ProcessError, Protector};

/// One message, read once for all its copies.
pub(super) struct Source<'a> {
    raw: &'a [u8],
    /// Not a readable RFC 5322 message: sealed whole, wrapped under a made-up header.
    broken: bool,
    /// The message's own line ending is CRLF (or it has none).
    crlf: bool,
    /// What copies carry: the message without its `Bcc` fields (the bytes as given when
    /// broken).
    payload: Vec<u8>,
    /// The policy's sender: the first From address, else the envelope sender.
    sender: String,
    /// The decoded subject, for the envelope header when the tenant shows subjects.
    subject: Option<String>,
}

impl<'a> Source<'a> {
    pub(super) fn new(raw: &'a [u8], mail_from: &str, broken: bool) -> Source<'a> {
        let (payload, addrs) = if broken {
            (raw.to_vec(), rfc5322::Addresses::default())
        } else {
            (rfc5322::strip_bcc(raw), rfc5322::addresses(raw))
        };
        let sender = addrs
            .from
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| normalize_address(mail_from));
        let crlf = match raw.iter().position(|&b| b == b'\n') {
            Some(0) => false,
            Some(i) => raw[i - 1] == b'\r',
            None => true,
        };
        Source {
            raw,
            broken,
            crlf,
            payload,
            sender,
            subject: addrs.subject,
        }
    }

    /// The original for `headers`' group: the headers, then the message without `Bcc`.
    pub(super) fn original(&self, headers: &[AddHeader]) -> Vec<u8> {
        let mut out = prefix(headers, self.crlf);
        out.extend_from_slice(&self.payload);
        out
    }

    /// The wrapper mail for a group, sealed for `recipients` (normalized) with `template`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn protect(
        &self,
        p: &Protector,
        template: &Template,
        remove_subject: bool,
        recipients: &[String],
        headers: &[AddHeader],
        now: u64,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Vec<u8>, ProcessError> {
        let seal_error = |source| ProcessError::Seal {
            recipients: recipients.len(),
            source,
        };
        let policy = template.policy(&self.sender, recipients, now);
        let mut settings = p.wrapper.clone();
        settings.show_subject = settings.show_subject && !remove_subject;
        let subject = if settings.show_subject {
            self.subject.as_deref()
        } else {
            None
        };
        let sealer = Sealer {
            tenant_id: &p.tenant_id,
            key_service_url: &p.key_service_url,
            license_key: &p.license_key,
            signing_key: &p.signing_key,
        };
        let envelope =
            seal(&sealer, &policy, subject, now, &self.payload, rng).map_err(seal_error)?;
        let header = Envelope::parse(&envelope)
            .map_err(|_| ProcessError::Unreadable)?
            .header()
            .clone();
        let made_up;
        let addressing: &[u8] = if self.broken {
            made_up = minimal_header(&self.sender);
            &made_up
        } else {
            self.raw
        };
        let mut out = prefix(headers, true);
        out.extend_from_slice(&wrap(addressing, &envelope, &header, &settings));
        Ok(out)
    }
}

/// The header a wrapper takes its addressing from when the input is not a message: the
/// sender (when known) and no recipient list, so that no copy names another's recipients.
fn minimal_header(sender: &str) -> Vec<u8> {
    let sender: String = sender
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '<' | '>'))
        .collect();
    let mut out = Vec::new();
    if !sender.is_empty() {
        out.extend_from_slice(format!("From: <{sender}>\r\n").as_bytes());
    }
    out.extend_from_slice(b"To: undisclosed-recipients:;\r\n\r\n");
    out
}

/// Header fields for `headers`, each one field (RFC 2047-encoded when not ASCII, folded), with
/// CRLF or LF line ends. Names that are not valid field names are left out (the rules loader
/// never lets one through); control characters in values become spaces.
pub(super) fn prefix(headers: &[AddHeader], crlf: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        let name = h.name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            continue;
        }
        let value: String = h
            .value
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut field = format!("{name}: ").into_bytes();
        Text::new(value.trim()).write_header(&mut field, name.len() + 2);
        if !field.ends_with(b"\n") {
            field.extend_from_slice(b"\r\n");
        }
        if crlf {
            out.extend_from_slice(&field);
        } else {
            let mut prev = 0u8;
            for &b in &field {
                if prev == b'\r' && b != b'\n' {
                    out.push(b'\r');
                }
                if b != b'\r' {
                    out.push(b);
                }
                prev = b;
            }
        }
    }
    out
}

/// `encrypted (TEMPLATE)`, with `, subject removed` and `, whole input: not valid MIME`.
pub(super) fn label(template: &Template, remove_subject: bool, broken: bool) -> String {
    let mut s = format!("encrypted ({}", template.name);
    if remove_subject {
        s.push_str(", subject removed");
    }
    if broken {
        s.push_str(", whole input: not valid MIME");
    }
    s.push(')');
    s
}
