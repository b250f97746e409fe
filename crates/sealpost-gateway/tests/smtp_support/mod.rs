//! Shared by the SMTP test binaries: a recording handler, a stream tap that records what the
//! server flushed, and a line-oriented SMTP client over any stream.

#![allow(dead_code)]

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use sealpost_gateway::smtp::{
    Handler, SessionError, SmtpConfig, Transaction, Verdict, run_session,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::task::JoinHandle;

pub const PEER: &str = "192.0.2.7:40000";

pub fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

pub fn config() -> SmtpConfig {
    SmtpConfig {
        hostname: "gw.example".into(),
        max_message_size: 10_000,
        max_recipients: 5,
        tls: None,
        command_timeout: Duration::from_secs(60),
        data_timeout: Duration::from_secs(30),
    }
}

/// What the recording handler answers.
#[derive(Clone)]
pub enum Mode {
    Accept,
    Reject(String),
    TempFail(String),
}

/// Records every delivered message and every acknowledgement; for each acknowledgement, also
/// whether the 250 for it had been flushed by then.
pub struct Recorder {
    pub mode: Mutex<Mode>,
    pub delivered: Mutex<Vec<(Transaction, Vec<u8>)>>,
    pub acked: Mutex<Vec<(String, bool)>>,
    pub flushed: Flushed,
}

impl Recorder {
    pub fn new(mode: Mode) -> Arc<Recorder> {
        Arc::new(Recorder {
            mode: Mutex::new(mode),
            delivered: Mutex::new(Vec::new()),
            acked: Mutex::new(Vec::new()),
            flushed: Flushed::default(),
        })
    }

    pub fn delivered(&self) -> Vec<(Transaction, Vec<u8>)> {
        self.delivered.lock().unwrap().clone()
    }

    pub fn acked(&self) -> Vec<(String, bool)> {
        self.acked.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    async fn deliver(&self, tx: Transaction, data: Vec<u8>) -> Verdict {
        let n = {
            let mut delivered = self.delivered.lock().unwrap();
            delivered.push((tx, data));
            delivered.len()
        };
        match self.mode.lock().unwrap().clone() {
            Mode::Accept => Verdict::Accepted {
                queue_id: format!("Q{n}"),
            },
            Mode::Reject(text) => Verdict::Rejected { text },
            Mode::TempFail(text) => Verdict::TempFailed { text },
        }
    }

    fn acknowledged(&self, queue_id: &str) {
        let needle = format!("250 2.0.0 Ok: queued as {queue_id}\r\n");
        let was_flushed = self.flushed.contains(needle.as_bytes());
        self.acked
            .lock()
            .unwrap()
            .push((queue_id.to_owned(), was_flushed));
    }
}

/// The bytes the server flushed, one entry per completed flush.
#[derive(Clone, Default)]
pub struct Flushed(Arc<Mutex<Vec<Vec<u8>>>>);

impl Flushed {
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|chunk| chunk.windows(needle.len()).any(|w| w == needle))
    }

    pub fn chunks(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect()
    }
}

/// A stream that records what was written, and moves it to [`Flushed`] when a flush completes.
pub struct Tap<S> {
    inner: S,
    pending: Vec<u8>,
    flushed: Flushed,
}

impl<S> Tap<S> {
    pub fn new(inner: S, flushed: Flushed) -> Tap<S> {
        Tap {
            inner,
            pending: Vec::new(),
            flushed,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            this.pending.extend_from_slice(&buf[..n]);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = poll
            && !this.pending.is_empty()
        {
            let chunk = std::mem::take(&mut this.pending);
            this.flushed.0.lock().unwrap().push(chunk);
        }
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A test client: writes raw bytes, reads whole (multi-line) replies.
pub struct Client<S> {
    pub stream: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let stream = self.stream.get_mut();
        stream.write_all(bytes.as_ref()).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// One reply, all its lines joined by "\n" (CRLF removed); "" at end of stream.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.stream.read_line(&mut line).await.unwrap();
            if n == 0 {
                return lines.join("\n");
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let line = line.trim_end_matches("\r\n").to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    /// Sends one command line and checks that the reply starts with `expect`.
    pub async fn cmd(&mut self, line: &str, expect: &str) -> String {
        self.send(format!("{line}\r\n")).await;
        let reply = self.reply().await;
        assert!(
            reply.starts_with(expect),
            "after {line:?} expected {expect:?}, got {reply:?}"
        );
        reply
    }

    /// Reads a reply and checks its start.
    pub async fn expect(&mut self, expect: &str) -> String {
        let reply = self.reply().await;
        assert!(
            reply.starts_with(expect),
            "expected {expect:?}, got {reply:?}"
        );
        reply
    }

    /// EHLO, MAIL, RCPT for each recipient, DATA, the message and its final dot.
    pub async fn transaction(&mut self, from: &str, to: &[&str], body: &str) -> String {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250 2.1.0").await;
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"), "250 2.1.5").await;
        }
        self.cmd("DATA", "354 ").await;
        self.send(format!("{body}.\r\n")).await;
        self.reply().await
    }
}

pub type Session = JoinHandle<Result<(), SessionError>>;

/// Starts `run_session` over an in-memory stream and returns the client after the greeting.
pub async fn start(
    cfg: SmtpConfig,
    handler: Arc<Recorder>,
) -> (Client<tokio::io::DuplexStream>, Session) {
    let (client, server) = tokio::io::duplex(256 * 1024);
    let server = Tap::new(server, handler.flushed.clone());
    let session = tokio::spawn(run_session(server, peer(), Arc::new(cfg), handler));
    let mut client = Client::new(client);
    client.expect("220 gw.example ESMTP Sealpost").await;
    (client, session)
}
