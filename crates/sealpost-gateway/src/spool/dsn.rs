//! Delivery status notifications (RFC 3464): the mail that tells a sender which recipients
//! did not get their message, and why.
//!
//! [`build`] writes a `multipart/report; report-type=delivery-status` with three parts: a
//! short human-readable explanation, the machine-readable `message/delivery-status`
//! (`Reporting-MTA`, `Arrival-Date`, and per recipient `Final-Recipient`, `Action: failed`,
//! `Status`, `Diagnostic-Code`), and `text/rfc822-headers` holding the original's header
//! section only. The original's body is never included: it may be the plaintext that the
//! gateway protects. When an address or the original's headers are not ASCII (SMTPUTF8
//! mail), the parts become `message/global-delivery-status` and `message/global-headers`
//! (RFC 6533).
//!
//! The DSN is `From: MAILER-DAEMON@reporting_mta` and `To:` the original sender; the caller
//! spools it with the null sender (`mail_from = ""`), so it can never cause another DSN. This
//! module does not decide when to bounce, and builds nothing for mail from the null sender.

use std::fmt::Write as _;

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::{BodyPart, MimePart};

/// Longest Diagnostic-Code text kept (a header line must stay under 998 bytes).
const MAX_DIAGNOSTIC: usize = 900;

/// One recipient that could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The recipient address, as given in RCPT TO.
    pub recipient: String,
    /// The enhanced status code (RFC 3463), e.g. "5.0.0", "5.7.1", "4.4.7". Anything else is
    /// reported as "5.0.0".
    pub status: String,
    /// What went wrong, e.g. the next hop's reply "550 5.1.1 no such user"; written as
    /// `Diagnostic-Code: smtp; …` on one line, cut to 900 characters.
    pub diagnostic: String,
}

/// The message being reported on.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// Its envelope sender: the DSN's recipient. Empty for the null sender.
    pub mail_from: &'a str,
    /// Its Message-ID, with or without angle brackets.
    pub message_id: Option<&'a str>,
    /// Its bytes; only the header section is used.
    pub data: &'a [u8],
    /// When the gateway accepted it (seconds since the Unix epoch).
    pub arrival: u64,
}

/// The DSN for `failures` of `original`, dated `now`, as RFC 5322 bytes (CRLF line ends).
///
/// `None` when `original.mail_from` is the null sender ("" or "<>"): notifications are never
/// sent about notifications (RFC 3461 §6.2, RFC 5321 §4.5.5). `None` also when `failures` is
/// empty.
pub fn build(
    reporting_mta: &str,
    original: &Original<'_>,
    failures: &[Failure],
    now: u64,
) -> Option<Vec<u8>> {
    let to = original.mail_from.trim();
    if to.is_empty() || to == "<>" || failures.is_empty() {
        return None;
    }
    let mta = host_name(reporting_mta);
    let headers = header_section(original.data);
    let headers_utf8 = !headers.is_ascii();
    let global = headers_utf8 || failures.iter().any(|f| !f.recipient.is_ascii());

    let report = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", human_text(&mta, original, failures)),
            MimePart::new(
                ContentType::new(if global {
                    "message/global-delivery-status"
                } else {
                    "message/delivery-status"
                }),
                BodyPart::Binary(delivery_status(&mta, original, failures, now).into()),
            )
            .transfer_encoding(if global { "8bit" } else { "7bit" }),
            MimePart::new(
                ContentType::new(if headers_utf8 {
                    "message/global-headers"
                } else {
                    "text/rfc822-headers"
                }),
                BodyPart::Binary(headers.into()),
            )
            .transfer_encoding(if headers_utf8 { "8bit" } else { "7bit" }),
        ],
    );

    let mut token = [0u8; 8];
    // A Message-ID needs no secrecy: fall back to the time if the OS generator fails.
    if getrandom::fill(&mut token).is_err() {
        token = now.to_be_bytes();
    }
    let mut builder = MessageBuilder::new()
        .from((
            "Mail Delivery System".to_owned(),
            format!("MAILER-DAEMON@{mta}"),
        ))
        .to(to)
        .subject("Undelivered Mail Returned to Sender")
        .date(Date::new(i64::try_from(now).unwrap_or(i64::MAX)))
        .message_id(format!("dsn.{}@{mta}", hex::encode(token)))
        .header("Auto-Submitted", Raw::new("auto-replied"));
    if let Some(id) = original.message_id.and_then(bare_message_id) {
        builder = builder.in_reply_to(id.clone()).references(id);
    }
    builder.body(report).write_to_vec().ok()
}

/// The explanation a person reads.
fn human_text(mta: &str, original: &Original<'_>, failures: &[Failure]) -> String {
    let mut t = format!(
        "This is the mail system at {mta}.\r\n\r\n\
         I'm sorry to have to inform you that your message could not be delivered to the \
         following recipient{}. It was not delivered to {}:\r\n\r\n",
        if failures.len() == 1 { "" } else { "s" },
        if failures.len() == 1 {
            "this recipient"
        } else {
            "these recipients"
        },
    );
    for f in failures {
        let _ = write!(
            t,
            "  <{}>: {}\r\n",
            clean_address(&f.recipient),
            one_line(&f.diagnostic, MAX_DIAGNOSTIC, false)
        );
    }
    let _ = write!(
        t,
        "\r\nThe message was accepted on {}",
        Date::new(i64::try_from(original.arrival).unwrap_or(i64::MAX)).to_rfc822()
    );
    if let Some(id) = original.message_id {
        let _ = write!(t, " with Message-ID {}", one_line(id, 200, false));
    }
    t.push_str(
        ".\r\nIts headers are attached below; its content is not included.\r\n\
         Other recipients of the same message, if any, are not affected by this notice.\r\n",
    );
    t
}

/// The `message/delivery-status` body: per-message fields, then one block per recipient.
fn delivery_status(mta: &str, original: &Original<'_>, failures: &[Failure], now: u64) -> Vec<u8> {
    let date = |t: u64| Date::new(i64::try_from(t).unwrap_or(i64::MAX)).to_rfc822();
    let mut s = format!(
        "Reporting-MTA: dns; {mta}\r\nArrival-Date: {}\r\n",
        date(original.arrival)
    );
    for f in failures {
        let addr = clean_address(&f.recipient);
        let kind = if addr.is_ascii() { "rfc822" } else { "utf-8" };
        let status = if valid_status(&f.status) {
            f.status.as_str()
        } else {
            "5.0.0"
        };
        let _ = write!(
            s,
            "\r\nFinal-Recipient: {kind}; {addr}\r\nAction: failed\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {}\r\n",
            one_line(&f.diagnostic, MAX_DIAGNOSTIC, true),
            date(now)
        );
    }
    s.into_bytes()
}

/// The original's header section: its leading header fields (with their continuation
/// lines), up to the first line that is not one, with CRLF line ends. Never the body.
fn header_section(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut first = true;
    for line in data.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let continuation = !first && matches!(content.first(), Some(b' ' | b'\t'));
        if !(continuation || is_field_start(content)) {
            break;
        }
        out.extend_from_slice(content);
        out.extend_from_slice(b"\r\n");
        first = false;
    }
    out
}

/// Whether a line starts a header field: a name of printable ASCII without ':' then ':'.
fn is_field_start(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0 && line.get(name_len) == Some(&b':')
}

/// One line of text: control characters become spaces, and (`ascii`) other characters
/// outside ASCII become '?'; trimmed and cut to `max` characters.
fn one_line(s: &str, max: usize, ascii: bool) -> String {
    s.chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if ascii && !c.is_ascii() => '?',
            c => c,
        })
        .take(max)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An address without angle brackets, whitespace or control characters.
fn clean_address(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && *c != '<' && *c != '>')
        .collect()
}

/// A host name usable in `dns;` and addresses: letters, digits, '.', '-' only.
fn host_name(s: &str) -> String {
    let name: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// RFC 3463 `class "." subject "." detail`: class 2, 4 or 5, then 1–3 digits twice.
fn valid_status(s: &str) -> bool {
    let mut it = s.split('.');
    let digits = |p: Option<&str>| {
        p.is_some_and(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    };
    matches!(it.next(), Some("2" | "4" | "5"))
        && digits(it.next())
        && digits(it.next())
        && it.next().is_none()
}

/// A Message-ID without its angle brackets, if it is one token.
fn bare_message_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !id.is_empty()
        && id.contains('@')
        && id
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '<' && c != '>');
    ok.then(|| id.to_owned())
}
