//! The server side of ESMTP (RFC 5321): the gateway's front door.
//!
//! [`run_session`] speaks SMTP with one client over any byte stream, and [`serve`] accepts TCP
//! connections and runs one session per connection (with a session limit and a graceful
//! shutdown). At the end of DATA the session hands the message and its envelope to a
//! [`Handler`], and answers with what the handler's [`Verdict`] says; after a 250 has reached
//! the client, the handler is told with [`Handler::acknowledged`].
//!
//! Extensions: PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
//! (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034/3463) and STARTTLS (RFC 3207, with rustls, only
//! when [`SmtpConfig::tls`] is set). Commands are parsed with Stalwart's `smtp-proto`
//! (`command`), replies are built in `reply`, the session's state machine is in `session`, the
//! buffered connection in `conn`, certificates are loaded in `tls`, and the accept loop is in
//! `serve`.
//!
//! Deliberately absent: AUTH (the gateway sits behind the organization's MTA on a trusted
//! port), CHUNKING/BDAT, DSN parameters, EXPN, relay-access policy (the MTA decides who may
//! send), and anything that reads the message itself: the session only frames it.
//! Nothing here logs message content or addresses above debug level.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

mod command;
mod conn;
mod reply;
mod serve;
mod session;
mod tls;

pub use serve::serve;
pub use session::run_session;
pub use tls::{TlsError, load_tls};

/// How the SMTP server behaves; shared by all sessions.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// The name in the greeting (`220 {hostname} ESMTP Sealpost`) and the EHLO reply.
    pub hostname: String,
    /// The largest message accepted, in bytes (after dot-unstuffing); advertised as `SIZE n`.
    /// A larger `MAIL FROM … SIZE=` is refused at once, larger data after the final dot, both
    /// with `552 5.3.4`.
    pub max_message_size: usize,
    /// The most recipients in one transaction; beyond it `452 4.5.3`.
    pub max_recipients: usize,
    /// The server's TLS settings: STARTTLS is offered only when this is set.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// How long the server waits for a command (and for the client to read a reply) before
    /// `421 4.4.2` and closing.
    pub command_timeout: Duration,
    /// How long the server waits for each read of message data before `421 4.4.2` and closing.
    pub data_timeout: Duration,
}

impl SmtpConfig {
    /// A configuration with the usual limits: 25 MiB messages, 1000 recipients, 5 minutes for
    /// a command and 3 minutes per data read, no TLS.
    pub fn new(hostname: impl Into<String>) -> SmtpConfig {
        SmtpConfig {
            hostname: hostname.into(),
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 1000,
            tls: None,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
        }
    }
}

/// The envelope of one received message, as the client gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The client's address.
    pub peer: SocketAddr,
    /// The name the client gave in EHLO or HELO.
    pub helo: String,
    /// Whether the message came over TLS (after STARTTLS).
    pub tls: bool,
    /// The reverse-path without `<>`, source route removed; `""` for the null sender `<>`.
    pub mail_from: String,
    /// The forward-paths that were accepted, in order, without `<>`, source routes removed.
    pub recipients: Vec<String>,
    /// The client asked for SMTPUTF8 in MAIL FROM.
    pub smtputf8: bool,
    /// The client declared `BODY=8BITMIME`.
    pub eight_bit: bool,
}

/// What the handler made of a message; the session turns it into the reply to DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Stored durably: `250 2.0.0 Ok: queued as {queue_id}`.
    Accepted {
        /// The spool's id for the message, shown to the client and passed to
        /// [`Handler::acknowledged`].
        queue_id: String,
    },
    /// Refused for good: `550 5.7.1 {text}`.
    Rejected {
        /// A short reason for the client (one line; control characters are replaced).
        text: String,
    },
    /// Not accepted now, the client should retry: `451 4.3.0 {text}`.
    TempFailed {
        /// A short reason for the client (one line; control characters are replaced).
        text: String,
    },
}

/// What the gateway does with a complete message.
pub trait Handler: Send + Sync + 'static {
    /// Takes one message. `data` is the message, dot-unstuffed, exactly as received (CRLF line
    /// ends, ending with the CRLF before the final dot), at most
    /// [`SmtpConfig::max_message_size`] bytes. Answer [`Verdict::Accepted`] only once the
    /// message is safe: the session answers 250 on it.
    fn deliver(&self, tx: Transaction, data: Vec<u8>) -> impl Future<Output = Verdict> + Send;

    /// Called after the 250 for `queue_id` was written and flushed to the client. Not called
    /// when writing the 250 failed (the client may then send the message again).
    fn acknowledged(&self, _queue_id: &str) {}
}

/// Why a session ended abnormally. A session that ends by QUIT, by the client closing between
/// commands, by too many errors or by a shutdown returns `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Reading from or writing to the client failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS handshake after STARTTLS failed.
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(std::io::Error),
    /// The client closed the connection in the middle of message data; nothing was delivered.
    #[error("client closed the connection during DATA")]
    ClosedDuringData,
    /// The client was silent for longer than the command or data timeout (it was sent
    /// `421 4.4.2`).
    #[error("timed out waiting for the client")]
    Timeout,
}
