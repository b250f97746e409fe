//! The SMTP side of delivery: the relay URL and sender address, checked once at start, the
//! lettre transport built from them, and the passcode mail as a MIME message.
//!
//! It does not decide when to send or what to do after a failure (that is the worker in
//! `mod.rs`), and never logs or returns the URL, whose user part may hold a password.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::store::OutboxRow;

/// The sender address used when none is configured.
pub const DEFAULT_FROM: &str = "Sealpost <no-reply@localhost>";

/// A setting of the delivery that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryConfigError {
    /// The SMTP URL is not one lettre accepts (the URL itself is left out: it may hold a
    /// password).
    #[error(
        "smtp_url is not usable ({0}); expected smtp://HOST:PORT, smtps://HOST:PORT or smtp://USER:PASS@HOST:PORT?tls=required"
    )]
    Url(String),
    /// The sender is not a mailbox such as `Sealpost <no-reply@example.com>`.
    #[error("smtp_from {0:?} is not an address such as \"Sealpost <no-reply@example.com>\"")]
    From(String),
}

/// Where and as whom passcode mail is sent.
#[derive(Clone)]
pub struct SmtpSettings {
    url: String,
    relay: String,
    from: Mailbox,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("relay", &self.relay)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    /// Checks the relay URL (`smtp://HOST[:PORT]` in plain text, `?tls=required` or
    /// `?tls=opportunistic` for STARTTLS, `smtps://` for implicit TLS, credentials as
    /// `USER:PASS@`, the EHLO name as a path) and the sender mailbox.
    pub fn new(url: &str, from: &str) -> Result<SmtpSettings, DeliveryConfigError> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| DeliveryConfigError::Url(e.to_string()))?;
        let from: Mailbox = from
            .parse()
            .map_err(|_| DeliveryConfigError::From(from.to_string()))?;
        Ok(SmtpSettings {
            relay: describe_relay(url),
            url: url.to_string(),
            from,
        })
    }

    /// The relay as it may be logged: scheme, host and port, never the credentials.
    pub fn relay(&self) -> &str {
        &self.relay
    }

    /// The sender mailbox.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The transport, with `timeout` on each network step.
    pub(crate) fn transport(
        &self,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, DeliveryConfigError> {
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.url)
            .map_err(|e| DeliveryConfigError::Url(e.to_string()))?
            .timeout(Some(timeout))
            .build())
    }
}

/// `scheme://host:port` and the `tls` parameter, without user, password or path.
fn describe_relay(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let tls = u
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| format!(" (tls={v})"))
                .unwrap_or_default();
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}{tls}",
                u.scheme(),
                u.host_str().unwrap_or_default()
            )
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

/// The passcode mail as a message: `text/plain; charset=utf-8`, the outbox row's subject and
/// body, `Date` from `now`, marked `Auto-Submitted` so that vacation responders keep quiet.
/// `Err` names the problem (an address the SMTP library will not take) without the body.
pub(crate) fn message(from: &Mailbox, mail: &OutboxRow, now: i64) -> Result<Message, String> {
    let to: Mailbox = mail
        .to_addr
        .parse()
        .map_err(|e| format!("the recipient address is not accepted: {e}"))?;
    let date = UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .date(date)
        .header(ContentType::TEXT_PLAIN)
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .body(mail.body.clone())
        .map_err(|e| format!("the mail cannot be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_senders() {
        let s = SmtpSettings::new(
            "smtp://user:secret@mail.example.com:2525?tls=required",
            DEFAULT_FROM,
        )
        .unwrap();
        assert_eq!(s.relay(), "smtp://mail.example.com:2525 (tls=required)");
        assert!(!format!("{s:?}").contains("secret"));
        assert_eq!(
            SmtpSettings::new("smtps://mail.example.com", DEFAULT_FROM)
                .unwrap()
                .relay(),
            "smtps://mail.example.com"
        );
        assert!(matches!(
            SmtpSettings::new("http://mail.example.com", DEFAULT_FROM),
            Err(DeliveryConfigError::Url(_))
        ));
        let e = SmtpSettings::new("smtp://user:secret@:25", DEFAULT_FROM).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(matches!(
            SmtpSettings::new("smtp://127.0.0.1:25", "not an address"),
            Err(DeliveryConfigError::From(_))
        ));
    }

    #[test]
    fn the_message_is_plain_utf8_text() {
        let from: Mailbox = DEFAULT_FROM.parse().unwrap();
        let mail = OutboxRow {
            id: 1,
            created: 1_800_000_000,
            to_addr: "bob@example.net".into(),
            subject: "Your Sealpost passcode (message ABCD-EFGH)".into(),
            body: "Grüße\n\n    12345678\n".into(),
        };
        let raw = message(&from, &mail, 1_800_000_000).unwrap().formatted();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some(mail.subject.as_str()));
        assert_eq!(
            parsed.body_text(0).as_deref(),
            Some("Grüße\r\n\r\n    12345678\r\n")
        );
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains("Auto-Submitted: auto-generated\r\n"),
            "{text}"
        );
        assert!(text.contains("charset=utf-8"), "{text}");
        let bad = OutboxRow {
            to_addr: "not an address".into(),
            ..mail
        };
        assert!(message(&from, &bad, 0).unwrap_err().contains("recipient"));
    }
}
