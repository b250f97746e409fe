//! The header block a reply's wrapper is made from, and the checks on what the portal sends
//! for it (addresses, message ids).
//!
//! The wrapper (`sealpost_core::mail::wrap`) copies From, Reply-To, To, Cc, Date,
//! Message-ID, In-Reply-To, References and, when the tenant shows subjects, Subject from this
//! block; `X-Sealpost-Relayed-For` is written in front of the wrapper by the caller, as the
//! rules' added headers are. Every value here is either checked syntax or encoded by
//! mail-builder, so nothing a browser sends can add a field or break a line.

use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;

/// The most characters of one message id (RFC 5322's line limit).
const MAX_ID_LEN: usize = 998;

/// Whether `id` is one `<left@right>` message id: printable ASCII, no white space, one `@`,
/// no `<`, `>` or `"` inside.
pub fn is_message_id(id: &str) -> bool {
    let Some(inner) = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
        return false;
    };
    id.len() <= MAX_ID_LEN
        && inner
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
        && inner
            .split_once('@')
            .is_some_and(|(l, r)| !l.is_empty() && !r.is_empty() && !r.contains('@'))
}

/// Whether `refs` is one or more message ids separated by single spaces.
pub fn is_references(refs: &str) -> bool {
    !refs.is_empty() && refs.len() <= 32 * 1024 && refs.split(' ').all(is_message_id)
}

/// Whether `addr` can be written as an address field: a plausible address with no
/// characters that would need quoting.
pub fn is_simple_address(addr: &str) -> bool {
    sealpost_core::policy::is_plausible_address(addr)
        && addr.bytes().all(|b| {
            !matches!(
                b,
                b'"' | b'(' | b')' | b',' | b';' | b':' | b'\\' | b'[' | b']'
            )
        })
}

/// What the synthesized header block says.
pub struct Block<'a> {
    /// The signed-in address that wrote the reply.
    pub submitter: &'a str,
    /// The organization's display name.
    pub organization: &'a str,
    /// The gateway's `reply_from` address.
    pub reply_from: &'a str,
    /// To addresses.
    pub to: &'a [String],
    /// Cc addresses.
    pub cc: &'a [String],
    /// Unix seconds.
    pub now: u64,
    /// Checked message ids.
    pub message_id: &'a str,
    /// Checked, or none.
    pub in_reply_to: Option<&'a str>,
    /// Checked, or none.
    pub references: Option<&'a str>,
    /// The envelope header's subject (shown only when the tenant shows subjects).
    pub subject: Option<&'a str>,
}

fn field(out: &mut Vec<u8>, name: &str, value: &impl mail_builder::headers::Header) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    value.write_header(&mut *out, name.len() + 2);
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
}

fn list(addrs: &[String]) -> Address<'_> {
    Address::new_list(
        addrs
            .iter()
            .map(|a| Address::new_address(None::<&str>, a.as_str()))
            .collect(),
    )
}

impl Block<'_> {
    /// The header block, CRLF, ending in an empty line.
    pub fn write(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let name = format!("{} via {}", self.submitter, self.organization);
        field(
            &mut out,
            "From",
            &Address::new_address(Some(name.as_str()), self.reply_from),
        );
        field(
            &mut out,
            "Reply-To",
            &Address::new_address(None::<&str>, self.submitter),
        );
        if !self.to.is_empty() {
            field(&mut out, "To", &list(self.to));
        }
        if !self.cc.is_empty() {
            field(&mut out, "Cc", &list(self.cc));
        }
        if let Some(subject) = self.subject {
            field(&mut out, "Subject", &Text::new(subject));
        }
        out.extend_from_slice(b"Date: ");
        Date::new(self.now.min(i64::MAX as u64) as i64).write_rfc822(&mut out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(format!("Message-ID: {}\r\n", self.message_id).as_bytes());
        if let Some(v) = self.in_reply_to {
            out.extend_from_slice(format!("In-Reply-To: {v}\r\n").as_bytes());
        }
        if let Some(v) = self.references {
            out.extend_from_slice(b"References: ");
            // Folded between ids so that no line grows past RFC 5322's limits.
            let mut width = 12;
            for (i, id) in v.split(' ').enumerate() {
                if i > 0 {
                    if width + 1 + id.len() > 76 {
                        out.extend_from_slice(b"\r\n ");
                        width = 1;
                    } else {
                        out.push(b' ');
                        width += 1;
                    }
                }
                out.extend_from_slice(id.as_bytes());
                width += id.len();
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        for good in ["<a@b>", "<1.2.3@x.example>", "<abc$%&@host>"] {
            assert!(is_message_id(good), "{good}");
        }
        for bad in [
            "a@b",
            "<a@b",
            "<ab>",
            "<@b>",
            "<a@>",
            "<a b@c>",
            "<a@b>\r\nBcc: x@y",
            "<a@b@c>",
            "<a\"@b>",
        ] {
            assert!(!is_message_id(bad), "{bad:?}");
        }
        assert!(is_references("<a@b> <c@d>"));
        assert!(!is_references("<a@b>  <c@d>"));
        assert!(!is_references(""));
    }

    #[test]
    fn block_is_encoded_and_folded() {
        let to = vec!["alice@acme.example".to_string()];
        let refs = (0..20)
            .map(|i| format!("<id{i}@mail.example>"))
            .collect::<Vec<_>>()
            .join(" ");
        let b = Block {
            submitter: "bob@other.example",
            organization: "Acme \"Ünïcode\" Corp",
            reply_from: "noreply@acme.example",
            to: &to,
            cc: &[],
            now: 1_800_000_000,
            message_id: "<r1@sealpost.invalid>",
            in_reply_to: Some("<m1@acme.example>"),
            references: Some(&refs),
            subject: Some("Re: Über"),
        }
        .write();
        let text = String::from_utf8(b.clone()).unwrap();
        assert!(text.is_ascii(), "{text}");
        assert!(text.lines().all(|l| l.len() <= 998));
        assert!(text.contains("<noreply@acme.example>"), "{text}");
        assert!(text.contains("Reply-To: <bob@other.example>\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
        let parsed = mail_parser::MessageParser::default().parse(&b).unwrap();
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("noreply@acme.example"));
        assert_eq!(
            from.name(),
            Some("bob@other.example via Acme \"Ünïcode\" Corp")
        );
        assert_eq!(parsed.subject(), Some("Re: Über"));
        assert_eq!(parsed.references().as_text_list().unwrap().len(), 20);
        assert_eq!(parsed.message_id(), Some("r1@sealpost.invalid"));
    }
}
