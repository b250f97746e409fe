//! SMTP replies: the fixed texts the server sends, and how a reply is written.
//!
//! Every reply carries an enhanced status code (RFC 3463), since ENHANCEDSTATUSCODES is
//! advertised. Text that comes from elsewhere (a handler's verdict) is cleaned to one line of
//! printable characters. This module only formats; the session decides which reply to send.

use std::borrow::Cow;
use std::fmt::Write as _;

/// One single-line reply: `{code} {status} {text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub status: &'static str,
    pub text: Cow<'static, str>,
}

impl Reply {
    pub const fn fixed(code: u16, status: &'static str, text: &'static str) -> Reply {
        Reply {
            code,
            status,
            text: Cow::Borrowed(text),
        }
    }

    /// A reply whose text comes from elsewhere: control characters become spaces, and the
    /// text is cut to keep the line short.
    pub fn dynamic(code: u16, status: &'static str, text: &str) -> Reply {
        const MAX_TEXT: usize = 400;
        let mut clean = String::with_capacity(text.len().min(MAX_TEXT));
        for ch in text.chars() {
            if clean.len() + ch.len_utf8() > MAX_TEXT {
                break;
            }
            clean.push(if ch.is_control() { ' ' } else { ch });
        }
        let clean = clean.trim();
        Reply {
            code,
            status,
            text: Cow::Owned(if clean.is_empty() {
                "-".to_owned()
            } else {
                clean.to_owned()
            }),
        }
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut line = String::with_capacity(8 + self.status.len() + self.text.len());
        if self.status.is_empty() {
            let _ = write!(line, "{} {}\r\n", self.code, self.text);
        } else {
            let _ = write!(line, "{} {} {}\r\n", self.code, self.status, self.text);
        }
        out.extend_from_slice(line.as_bytes());
    }
}

/// Writes a multi-line reply (`250-a`, `250-b`, `250 c`).
pub(crate) fn write_multiline(out: &mut Vec<u8>, code: u16, lines: &[&str]) {
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        let mut text = String::with_capacity(line.len() + 6);
        let _ = write!(text, "{code}{sep}{line}\r\n");
        out.extend_from_slice(text.as_bytes());
    }
}

pub(crate) const OK: Reply = Reply::fixed(250, "2.0.0", "Ok");
pub(crate) const OK_SENDER: Reply = Reply::fixed(250, "2.1.0", "Sender ok");
pub(crate) const OK_RECIPIENT: Reply = Reply::fixed(250, "2.1.5", "Recipient ok");
pub(crate) const START_DATA: Reply = Reply::fixed(354, "", "End data with <CR><LF>.<CR><LF>");
pub(crate) const BYE: Reply = Reply::fixed(221, "2.0.0", "Bye");
pub(crate) const HELP: Reply = Reply::fixed(
    214,
    "2.0.0",
    "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS",
);
pub(crate) const VRFY: Reply = Reply::fixed(
    252,
    "2.0.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
);
pub(crate) const READY_TLS: Reply = Reply::fixed(220, "2.0.0", "Ready to start TLS");

pub(crate) const TIMEOUT: Reply = Reply::fixed(421, "4.4.2", "Timeout, closing connection");
pub(crate) const TOO_MANY_ERRORS: Reply =
    Reply::fixed(421, "4.7.0", "Too many errors, closing connection");
pub(crate) const TOO_MANY_SESSIONS: Reply =
    Reply::fixed(421, "4.3.2", "Too many connections, try again later");
pub(crate) const SHUTTING_DOWN: Reply =
    Reply::fixed(421, "4.3.2", "Service shutting down, try again later");
pub(crate) const TOO_MANY_RECIPIENTS: Reply = Reply::fixed(452, "4.5.3", "Too many recipients");

pub(crate) const UNKNOWN_COMMAND: Reply = Reply::fixed(500, "5.5.2", "Command not recognized");
pub(crate) const LINE_TOO_LONG: Reply = Reply::fixed(500, "5.5.6", "Line too long");
pub(crate) const NOT_IMPLEMENTED: Reply = Reply::fixed(502, "5.5.1", "Command not implemented");
pub(crate) const NEED_HELO: Reply = Reply::fixed(503, "5.5.1", "Send EHLO or HELO first");
pub(crate) const NESTED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Nested MAIL command");
pub(crate) const NEED_MAIL: Reply = Reply::fixed(503, "5.5.1", "Need MAIL command first");
pub(crate) const NEED_RCPT: Reply = Reply::fixed(554, "5.5.1", "No valid recipients");
pub(crate) const TLS_ACTIVE: Reply = Reply::fixed(554, "5.5.1", "TLS already active");
pub(crate) const TLS_IN_TRANSACTION: Reply = Reply::fixed(
    503,
    "5.5.1",
    "STARTTLS not allowed during a mail transaction",
);
pub(crate) const TOO_BIG: Reply = Reply::fixed(552, "5.3.4", "Message size exceeds fixed limit");
pub(crate) const SMUGGLING: Reply = Reply::fixed(
    554,
    "5.5.2",
    "Message refused: a line holding only a dot next to a bare CR or LF",
);
pub(crate) const BAD_ADDRESS: Reply = Reply::fixed(553, "5.1.3", "Bad address syntax");
pub(crate) const NEEDS_SMTPUTF8: Reply = Reply::fixed(
    553,
    "5.6.7",
    "Non-ASCII address requires SMTPUTF8 in MAIL FROM",
);
pub(crate) const NOT_UTF8: Reply = Reply::fixed(553, "5.6.7", "Address is not valid UTF-8");
