//! Parsing one command line into a [`Command`], or into the error reply it deserves.
//!
//! The grammar work is done by Stalwart's `smtp-proto` (`Request::parse`): verbs are
//! case-insensitive, source routes (`<@a,@b:user@c>`) are stripped, parameters are read. This
//! module adds what a gateway must check on top of it:
//!
//! - the line must be UTF-8 (an address that is not: `553 5.6.7`);
//! - only the parameters we advertise are accepted (`SIZE=`, `BODY=7BIT|8BITMIME`,
//!   `SMTPUTF8` on MAIL, none on RCPT); any other: `555 5.5.4`;
//! - addresses are checked strictly (dot-atom local part, LDH or UTF-8 domain labels or an
//!   no address literals): `553 5.1.3`. `smtp-proto` unquotes quoted local parts, so a quoted local
//!   part is accepted only when its unquoted form is a valid dot-atom (then both mean the same
//!   mailbox);
//! - `<>` and `<postmaster>` (which `smtp-proto` both returns as `""`) are told apart from the
//!   raw line: `<>` is the null sender, `<postmaster>` is valid only as a recipient;
//! - DATA, RSET, QUIT and STARTTLS take no argument.
//!
//! Whether a command is allowed now (sequence), and whether a non-ASCII address is allowed
//! (SMTPUTF8), is the session's business. The line length limit is the connection's.

use smtp_proto::{
    Error as ProtoError, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8, MailFrom, Request,
};

use super::reply::{self, Reply};

/// A command that parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Ehlo(String),
    Helo(String),
    Mail(MailCommand),
    /// The forward-path, syntax checked (non-ASCII allowed), or `postmaster`.
    Rcpt(String),
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
    StartTls,
    /// A command we know but do not offer (EXPN, AUTH, BDAT, ETRN, …).
    NotImplemented,
}

/// MAIL FROM with the parameters we support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MailCommand {
    /// `""` for the null sender; syntax checked (non-ASCII allowed).
    pub address: String,
    /// `SIZE=n`, when given.
    pub size: Option<usize>,
    /// `BODY=8BITMIME`.
    pub eight_bit: bool,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
}

/// Parses one line (ending in LF, with or without CR).
pub(crate) fn parse(line: &[u8]) -> Result<Command, Reply> {
    if std::str::from_utf8(line).is_err() {
        let verb = line.get(..4).unwrap_or(line);
        return Err(
            if verb.eq_ignore_ascii_case(b"MAIL") || verb.eq_ignore_ascii_case(b"RCPT") {
                reply::NOT_UTF8
            } else {
                Reply::fixed(501, "5.5.4", "Syntax error: invalid UTF-8")
            },
        );
    }
    let request = Request::parse(&mut line.iter()).map_err(proto_error)?;
    Ok(match request {
        Request::Ehlo { host } => Command::Ehlo(host.into_owned()),
        Request::Helo { host } => Command::Helo(host.into_owned()),
        Request::Mail { from } => Command::Mail(mail_command(line, from)?),
        Request::Rcpt { to } => {
            if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
                return Err(Reply::fixed(
                    555,
                    "5.5.4",
                    "RCPT TO parameters not supported",
                ));
            }
            Command::Rcpt(recipient(line, to.address.into_owned())?)
        }
        Request::Data => no_argument(line, 4, Command::Data, "Syntax: DATA")?,
        Request::Rset => no_argument(line, 4, Command::Rset, "Syntax: RSET")?,
        Request::Quit => no_argument(line, 4, Command::Quit, "Syntax: QUIT")?,
        Request::StartTls => no_argument(line, 8, Command::StartTls, "Syntax: STARTTLS")?,
        Request::Noop { .. } => Command::Noop,
        Request::Vrfy { .. } => Command::Vrfy,
        Request::Help { .. } => Command::Help,
        Request::Lhlo { .. }
        | Request::Bdat { .. }
        | Request::Auth { .. }
        | Request::Expn { .. }
        | Request::Etrn { .. }
        | Request::Atrn { .. }
        | Request::Burl { .. } => Command::NotImplemented,
    })
}

fn proto_error(e: ProtoError) -> Reply {
    match e {
        ProtoError::UnknownCommand => reply::UNKNOWN_COMMAND,
        ProtoError::InvalidSenderAddress | ProtoError::InvalidRecipientAddress => {
            reply::BAD_ADDRESS
        }
        ProtoError::SyntaxError { syntax } => {
            Reply::dynamic(501, "5.5.4", &format!("Syntax: {syntax}"))
        }
        ProtoError::InvalidParameter { param } => {
            Reply::dynamic(501, "5.5.4", &format!("Invalid {param} parameter"))
        }
        ProtoError::UnsupportedParameter { param } => {
            Reply::dynamic(555, "5.5.4", &format!("Unsupported parameter {param}"))
        }
        _ => Reply::fixed(501, "5.5.4", "Syntax error"),
    }
}

fn no_argument(
    line: &[u8],
    verb_len: usize,
    cmd: Command,
    syntax: &'static str,
) -> Result<Command, Reply> {
    if line.trim_ascii().len() == verb_len {
        Ok(cmd)
    } else {
        Err(Reply::fixed(501, "5.5.4", syntax))
    }
}

fn mail_command(
    line: &[u8],
    from: MailFrom<std::borrow::Cow<'_, str>>,
) -> Result<MailCommand, Reply> {
    let supported = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8;
    if from.flags & !supported != 0
        || from.trans_id.is_some()
        || from.by != 0
        || from.env_id.is_some()
        || from.solicit.is_some()
        || from.mtrk.is_some()
        || from.auth.is_some()
        || from.hold_for != 0
        || from.hold_until != 0
        || from.mt_priority != 0
    {
        return Err(Reply::fixed(
            555,
            "5.5.4",
            "Unsupported MAIL FROM parameter (SIZE, BODY and SMTPUTF8 are supported)",
        ));
    }
    let address = from.address.into_owned();
    if address.is_empty() {
        if raw_path(line) != Some(b"") {
            return Err(reply::BAD_ADDRESS);
        }
    } else {
        check_address(&address)?;
    }
    Ok(MailCommand {
        address,
        size: declared_size(line),
        eight_bit: from.flags & MAIL_BODY_8BITMIME != 0,
        smtputf8: from.flags & MAIL_SMTPUTF8 != 0,
    })
}

/// The `SIZE=` parameter, read from the raw line: `smtp-proto` reports a missing SIZE as 0
/// (like `SIZE=0`) and wraps numbers too large for `usize` around to small ones. A number too
/// large for `usize` is `usize::MAX` here (so it is over any limit).
fn declared_size(line: &[u8]) -> Option<usize> {
    let params = &line[memchr::memchr(b'>', line)? + 1..];
    params.split(|b| b.is_ascii_whitespace()).find_map(|param| {
        let value = param
            .get(5..)
            .filter(|_| param[..5].eq_ignore_ascii_case(b"SIZE="))?;
        Some(
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(usize::MAX),
        )
    })
}

fn recipient(line: &[u8], address: String) -> Result<String, Reply> {
    if address.is_empty() {
        // `smtp-proto` returns both `<>` and `<postmaster>` as "".
        let path = raw_path(line).unwrap_or(b"");
        let mailbox = path.rsplit(|&b| b == b':').next().unwrap_or(path);
        return if mailbox.eq_ignore_ascii_case(b"postmaster") {
            Ok("postmaster".to_owned())
        } else {
            Err(reply::BAD_ADDRESS)
        };
    }
    check_address(&address)?;
    Ok(address)
}

/// The text between the first `<` and the following `>` of a line, trimmed.
fn raw_path(line: &[u8]) -> Option<&[u8]> {
    let open = memchr::memchr(b'<', line)?;
    let rest = &line[open + 1..];
    let close = memchr::memchr(b'>', rest)?;
    Some(rest[..close].trim_ascii())
}

/// Checks `local@domain` (RFC 5321 `Mailbox`, with RFC 6531's UTF-8 allowed): a dot-atom local
/// part of at most 64 octets, and a domain of LDH (or UTF-8) labels. Address literals
/// (`user@[192.0.2.1]`) are not accepted: `smtp-proto` refuses them before this check.
pub(crate) fn check_address(address: &str) -> Result<(), Reply> {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(reply::BAD_ADDRESS);
    };
    if valid_local_part(local) && valid_domain(domain) {
        Ok(())
    } else {
        Err(reply::BAD_ADDRESS)
    }
}

fn valid_local_part(local: &str) -> bool {
    (1..=64).contains(&local.len())
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || "!#$%&'*+-/=?^_`{|}~".contains(c)
                        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
                })
        })
}

fn valid_domain(domain: &str) -> bool {
    (1..=255).contains(&domain.len())
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || c == '-'
                        || (!c.is_ascii() && !c.is_control() && !c.is_whitespace())
                })
        })
}
