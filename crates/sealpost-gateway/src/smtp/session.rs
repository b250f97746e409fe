//! One SMTP session: the state machine from the greeting to QUIT.
//!
//! Commands are taken one line at a time from the connection's buffer and answered in order;
//! replies are only flushed when the buffer holds no complete command, so a pipelined group
//! (RFC 2920) gets its replies together. STARTTLS drops any plaintext pipelined after it (the
//! command-injection attack of CVE-2011-0411) and resets the session. Message data is
//! dot-unstuffed by `smtp-proto` in whole buffers; only `<CRLF>.<CRLF>` ends it, and a message
//! in which a lone dot sits next to a bare CR or LF is refused (SMTP smuggling). Data over the
//! size limit is read to its end without being kept.
//!
//! The session never looks inside the message: the [`Handler`] does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::command::{self, Command, MailCommand};
use super::conn::{Conn, Io, Line};
use super::reply::{self, Reply};
use super::{Handler, SessionError, SmtpConfig, Transaction, Verdict};

/// The longest command line accepted, CRLF included: RFC 5321's 512 plus room for the
/// parameters of SIZE, BODY and SMTPUTF8 and for UTF-8 addresses.
pub(crate) const MAX_COMMAND_LINE: usize = 1024;
/// After this many client errors the session is closed with 421.
pub(crate) const MAX_ERRORS: u32 = 10;
/// How long the final 421 of a timed-out session may take to be written.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one SMTP session over `stream` until the client quits, the connection fails, the
/// client is idle for too long or makes too many errors.
pub async fn run_session<S, H>(
    stream: S,
    peer: SocketAddr,
    cfg: Arc<SmtpConfig>,
    handler: Arc<H>,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    Session::new(Box::new(stream), peer, cfg, handler, None)
        .run()
        .await
}

/// [`run_session`] that also ends, between transactions, when `shutdown` becomes true.
pub(crate) async fn run_session_until<H: Handler>(
    stream: Box<dyn Io>,
    peer: SocketAddr,
    cfg: Arc<SmtpConfig>,
    handler: Arc<H>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    Session::new(stream, peer, cfg, handler, Some(shutdown))
        .run()
        .await
}

/// The envelope being built between MAIL and the end of DATA.
struct Envelope {
    mail_from: String,
    recipients: Vec<String>,
    smtputf8: bool,
    eight_bit: bool,
    declared_size: usize,
}

/// What came of one read for a command.
enum Next {
    Line(Vec<u8>),
    TooLong,
    /// The session is over (peer closed, or shutdown).
    Closed,
}

/// What ended a wait for input.
enum Wake {
    Read(Result<std::io::Result<usize>, tokio::time::error::Elapsed>),
    Shutdown(Result<bool, watch::error::RecvError>),
}

/// What came of the message data.
enum Received {
    Message(Vec<u8>),
    TooBig,
    Smuggling,
}

struct Session<H> {
    conn: Conn,
    peer: SocketAddr,
    cfg: Arc<SmtpConfig>,
    handler: Arc<H>,
    tls: bool,
    helo: Option<String>,
    envelope: Option<Envelope>,
    errors: u32,
    shutdown: Option<watch::Receiver<bool>>,
    shutting_down: bool,
}

impl<H: Handler> Session<H> {
    fn new(
        stream: Box<dyn Io>,
        peer: SocketAddr,
        cfg: Arc<SmtpConfig>,
        handler: Arc<H>,
        shutdown: Option<watch::Receiver<bool>>,
    ) -> Session<H> {
        let shutting_down = shutdown.as_ref().is_some_and(|rx| *rx.borrow());
        Session {
            conn: Conn::new(stream),
            peer,
            cfg,
            handler,
            tls: false,
            helo: None,
            envelope: None,
            errors: 0,
            shutdown,
            shutting_down,
        }
    }

    async fn run(mut self) -> Result<(), SessionError> {
        tracing::debug!(peer = %self.peer, "SMTP session opened");
        let greeting = format!("220 {} ESMTP Sealpost\r\n", self.cfg.hostname);
        self.conn.output().extend_from_slice(greeting.as_bytes());
        loop {
            let line = match self.next_line().await? {
                Next::Line(line) => line,
                Next::TooLong => {
                    self.error(reply::LINE_TOO_LONG);
                    if self.too_many_errors().await? {
                        return Ok(());
                    }
                    continue;
                }
                Next::Closed => return Ok(()),
            };
            let keep_going = match command::parse(&line) {
                Ok(cmd) => self.execute(cmd).await?,
                Err(reply) => {
                    self.error(reply);
                    true
                }
            };
            if !keep_going || self.too_many_errors().await? {
                return Ok(());
            }
        }
    }

    /// Queues a normal reply.
    fn send(&mut self, reply: Reply) {
        reply.write_to(self.conn.output());
    }

    /// Queues a reply to a client mistake, which counts towards [`MAX_ERRORS`].
    fn error(&mut self, reply: Reply) {
        self.errors += 1;
        reply.write_to(self.conn.output());
    }

    /// After too many errors: says so and ends the session (returns true).
    async fn too_many_errors(&mut self) -> Result<bool, SessionError> {
        if self.errors < MAX_ERRORS {
            return Ok(false);
        }
        tracing::info!(peer = %self.peer, "SMTP session closed after too many errors");
        self.send(reply::TOO_MANY_ERRORS);
        self.goodbye().await?;
        Ok(true)
    }

    /// Flushes what is queued, within the command timeout.
    async fn flush(&mut self) -> Result<(), SessionError> {
        match tokio::time::timeout(self.cfg.command_timeout, self.conn.flush()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SessionError::Timeout),
        }
    }

    /// Sends what is queued (best effort, the client may be gone) and closes.
    async fn goodbye(&mut self) -> Result<(), SessionError> {
        let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
            if self.conn.flush().await.is_ok() {
                self.conn.shutdown().await;
            }
        })
        .await;
        Ok(())
    }

    /// The next command line, reading (and flushing the replies first) when none is buffered.
    async fn next_line(&mut self) -> Result<Next, SessionError> {
        loop {
            match self.conn.take_line(MAX_COMMAND_LINE) {
                Line::Complete(line) => return Ok(Next::Line(line)),
                Line::TooLong => return Ok(Next::TooLong),
                Line::Incomplete => {}
            }
            if self.shutting_down && self.envelope.is_none() {
                tracing::debug!(peer = %self.peer, "SMTP session closed for shutdown");
                self.send(reply::SHUTTING_DOWN);
                self.goodbye().await?;
                return Ok(Next::Closed);
            }
            self.flush().await?;
            let timeout = self.cfg.command_timeout;
            let watch = if self.shutting_down {
                None
            } else {
                self.shutdown.as_mut()
            };
            let wake = match watch {
                Some(rx) => tokio::select! {
                    read = tokio::time::timeout(timeout, self.conn.fill()) => Wake::Read(read),
                    changed = rx.changed() => Wake::Shutdown(changed.map(|()| *rx.borrow())),
                },
                None => Wake::Read(tokio::time::timeout(timeout, self.conn.fill()).await),
            };
            match wake {
                Wake::Shutdown(Ok(now)) => self.shutting_down = now,
                // The sender is gone: no shutdown will come.
                Wake::Shutdown(Err(_)) => self.shutdown = None,
                Wake::Read(Err(_elapsed)) => {
                    tracing::info!(peer = %self.peer, "SMTP session timed out waiting for a command");
                    self.send(reply::TIMEOUT);
                    self.goodbye().await?;
                    return Err(SessionError::Timeout);
                }
                Wake::Read(Ok(Ok(0))) => {
                    tracing::debug!(peer = %self.peer, "SMTP client closed the connection");
                    return Ok(Next::Closed);
                }
                Wake::Read(Ok(Ok(_))) => {}
                Wake::Read(Ok(Err(e))) => return Err(e.into()),
            }
        }
    }

    /// Runs one command; false ends the session.
    async fn execute(&mut self, cmd: Command) -> Result<bool, SessionError> {
        match cmd {
            Command::Ehlo(host) => self.ehlo(host),
            Command::Helo(host) => {
                self.helo = Some(host);
                self.envelope = None;
                let text = format!("250 {}\r\n", self.cfg.hostname);
                self.conn.output().extend_from_slice(text.as_bytes());
            }
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(address) => self.rcpt(address),
            Command::Data => return self.data().await,
            Command::Rset => {
                self.envelope = None;
                self.send(reply::OK);
            }
            Command::Noop => self.send(reply::OK),
            Command::Vrfy => self.send(reply::VRFY),
            Command::Help => self.send(reply::HELP),
            Command::Quit => {
                self.send(reply::BYE);
                self.goodbye().await?;
                return Ok(false);
            }
            Command::StartTls => return self.starttls().await,
            Command::NotImplemented => self.error(reply::NOT_IMPLEMENTED),
        }
        Ok(true)
    }

    fn ehlo(&mut self, host: String) {
        self.helo = Some(host);
        self.envelope = None;
        let size = format!("SIZE {}", self.cfg.max_message_size);
        let mut lines = vec![
            self.cfg.hostname.as_str(),
            "PIPELINING",
            size.as_str(),
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
        ];
        if self.cfg.tls.is_some() && !self.tls {
            lines.push("STARTTLS");
        }
        let mut out = Vec::with_capacity(160);
        reply::write_multiline(&mut out, 250, &lines);
        self.conn.output().extend_from_slice(&out);
    }

    fn mail(&mut self, mail: MailCommand) {
        if self.helo.is_none() {
            return self.error(reply::NEED_HELO);
        }
        if self.envelope.is_some() {
            return self.error(reply::NESTED_MAIL);
        }
        let declared_size = mail.size.unwrap_or(0);
        if declared_size > self.cfg.max_message_size {
            return self.send(reply::TOO_BIG);
        }
        if !mail.address.is_ascii() && !mail.smtputf8 {
            return self.error(reply::NEEDS_SMTPUTF8);
        }
        self.envelope = Some(Envelope {
            mail_from: mail.address,
            recipients: Vec::new(),
            smtputf8: mail.smtputf8,
            eight_bit: mail.eight_bit,
            declared_size,
        });
        self.send(reply::OK_SENDER);
    }

    fn rcpt(&mut self, address: String) {
        let max = self.cfg.max_recipients;
        let Some(envelope) = self.envelope.as_mut() else {
            return self.error(reply::NEED_MAIL);
        };
        if !address.is_ascii() && !envelope.smtputf8 {
            return self.error(reply::NEEDS_SMTPUTF8);
        }
        if envelope.recipients.len() >= max {
            return self.send(reply::TOO_MANY_RECIPIENTS);
        }
        envelope.recipients.push(address);
        self.send(reply::OK_RECIPIENT);
    }

    async fn data(&mut self) -> Result<bool, SessionError> {
        match &self.envelope {
            None => {
                self.error(reply::NEED_MAIL);
                return Ok(true);
            }
            Some(envelope) if envelope.recipients.is_empty() => {
                self.error(reply::NEED_RCPT);
                return Ok(true);
            }
            Some(_) => {}
        }
        self.send(reply::START_DATA);
        let received = self.receive_data().await?;
        let Some(envelope) = self.envelope.take() else {
            return Ok(true);
        };
        let data = match received {
            Received::Message(data) => data,
            Received::TooBig => {
                tracing::info!(peer = %self.peer, "message refused: over the size limit");
                self.send(reply::TOO_BIG);
                return Ok(true);
            }
            Received::Smuggling => {
                tracing::warn!(peer = %self.peer, "message refused: lone dot next to a bare CR or LF");
                self.send(reply::SMUGGLING);
                return Ok(true);
            }
        };
        let size = data.len();
        let recipients = envelope.recipients.len();
        let tx = Transaction {
            peer: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            tls: self.tls,
            mail_from: envelope.mail_from,
            recipients: envelope.recipients,
            smtputf8: envelope.smtputf8,
            eight_bit: envelope.eight_bit,
        };
        match self.handler.deliver(tx, data).await {
            Verdict::Accepted { queue_id } => {
                let text = format!("Ok: queued as {queue_id}");
                self.send(Reply::dynamic(250, "2.0.0", &text));
                self.flush().await?;
                tracing::info!(peer = %self.peer, %queue_id, size, recipients, "message accepted");
                self.handler.acknowledged(&queue_id);
            }
            Verdict::Rejected { text } => {
                tracing::info!(peer = %self.peer, size, recipients, "message rejected by the handler");
                self.send(Reply::dynamic(550, "5.7.1", &text));
            }
            Verdict::TempFailed { text } => {
                tracing::warn!(peer = %self.peer, size, recipients, "message deferred by the handler");
                self.send(Reply::dynamic(451, "4.3.0", &text));
            }
        }
        Ok(true)
    }

    /// Reads message data up to `<CRLF>.<CRLF>`, unstuffed, keeping at most the size limit.
    async fn receive_data(&mut self) -> Result<Received, SessionError> {
        let max = self.cfg.max_message_size;
        let declared = self.envelope.as_ref().map_or(0, |e| e.declared_size);
        let mut receiver = DataReceiver::new();
        // Reserve what the client announced, within reason; the Vec grows if it lied.
        let mut data = Vec::with_capacity(declared.min(max).clamp(16 * 1024, 1 << 20) + 2);
        // Start as if after a CRLF, so that a first line starting with a dot is unstuffed and
        // an empty message (".\r\n" at once) ends; the two bytes are dropped below.
        receiver.ingest(&mut b"\r\n".iter(), &mut data);
        let mut discard: Option<DummyDataReceiver> = None;
        loop {
            let buffered = self.conn.buffered();
            if !buffered.is_empty() {
                let mut bytes = buffered.iter();
                let done = match discard.as_mut() {
                    Some(discard) => discard.ingest(&mut bytes),
                    None => receiver.ingest(&mut bytes, &mut data),
                };
                let used = buffered.len() - bytes.len();
                self.conn.consume(used);
                if discard.is_none() && data.len() - 2 > max {
                    discard = Some(DummyDataReceiver::new_data(&receiver));
                    data = Vec::new();
                }
                if done {
                    break;
                }
                continue;
            }
            self.flush().await?;
            match tokio::time::timeout(self.cfg.data_timeout, self.conn.fill()).await {
                Err(_elapsed) => {
                    tracing::info!(peer = %self.peer, "SMTP session timed out during DATA");
                    self.send(reply::TIMEOUT);
                    self.goodbye().await?;
                    return Err(SessionError::Timeout);
                }
                Ok(Ok(0)) => {
                    tracing::info!(peer = %self.peer, "SMTP client closed the connection during DATA");
                    return Err(SessionError::ClosedDuringData);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        if discard.is_some() {
            return Ok(Received::TooBig);
        }
        data.drain(..2);
        if smuggling(&data) {
            return Ok(Received::Smuggling);
        }
        Ok(Received::Message(data))
    }

    async fn starttls(&mut self) -> Result<bool, SessionError> {
        let Some(config) = self.cfg.tls.clone() else {
            self.error(reply::NOT_IMPLEMENTED);
            return Ok(true);
        };
        if self.tls {
            self.error(reply::TLS_ACTIVE);
            return Ok(true);
        }
        if self.envelope.is_some() {
            self.error(reply::TLS_IN_TRANSACTION);
            return Ok(true);
        }
        let injected = self.conn.discard_buffered();
        if injected > 0 {
            tracing::warn!(peer = %self.peer, bytes = injected, "discarded plaintext pipelined after STARTTLS");
        }
        self.send(reply::READY_TLS);
        self.flush().await?;
        let handshake = self.conn.start_tls(config);
        match tokio::time::timeout(self.cfg.command_timeout, handshake).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(SessionError::TlsHandshake(e)),
            Err(_elapsed) => return Err(SessionError::Timeout),
        }
        tracing::debug!(peer = %self.peer, "TLS started");
        self.tls = true;
        self.helo = None;
        self.envelope = None;
        Ok(true)
    }
}

/// Whether unstuffed message data has a line holding only a dot that touches a bare CR or LF
/// (`\n.\r\n`, `\r\n.\n`, `\r.\r`, …): a receiver that accepts bare line ends could see the
/// end of the data there, and take what follows for commands (SMTP smuggling).
fn smuggling(data: &[u8]) -> bool {
    let is_eol = |b: Option<&u8>| matches!(b, Some(b'\r' | b'\n'));
    if data.first() == Some(&b'.') && is_eol(data.get(1)) && !data[1..].starts_with(b"\r\n") {
        return true;
    }
    let bare_cr_dot = memchr::memmem::find_iter(data, b"\r.").any(|p| is_eol(data.get(p + 2)));
    bare_cr_dot
        || memchr::memmem::find_iter(data, b"\n.").any(|p| {
            is_eol(data.get(p + 2))
                && !(p > 0 && data[p - 1] == b'\r' && data[p + 2..].starts_with(b"\r\n"))
        })
}
