//! The session's connection: a read buffer filled in large chunks, a write buffer flushed on
//! demand, and the switch to TLS.
//!
//! The stream is boxed so that one session type serves both the plain stream and the TLS
//! stream after STARTTLS. Reads go straight into the spare capacity of one `Vec` (no per-byte
//! work, no zeroing); the session takes lines and data out of it. This module knows nothing
//! of SMTP except what a line is; timeouts are the session's.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Anything the session can talk over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How much is asked of the stream per read.
const READ_CHUNK: usize = 64 * 1024;

/// What [`Conn::take_line`] found.
pub(crate) enum Line {
    /// A complete line, LF included.
    Complete(Vec<u8>),
    /// A line longer than the limit: its bytes up to the LF are dropped.
    TooLong,
    /// No complete line is buffered yet.
    Incomplete,
}

pub(crate) struct Conn {
    stream: Box<dyn Io>,
    /// Received bytes; the unread ones are `input[pos..]`.
    input: Vec<u8>,
    pos: usize,
    /// Dropping an over-long line: bytes are discarded until the next LF.
    discarding_line: bool,
    output: Vec<u8>,
}

impl Conn {
    pub fn new(stream: Box<dyn Io>) -> Conn {
        Conn {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            discarding_line: false,
            output: Vec::with_capacity(1024),
        }
    }

    /// The bytes received and not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.input[self.pos..]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.input.len());
    }

    /// Drops everything buffered; returns how many bytes that was.
    pub fn discard_buffered(&mut self) -> usize {
        let n = self.input.len() - self.pos;
        self.input.clear();
        self.pos = 0;
        n
    }

    /// Reads more bytes from the stream (at least one, unless the peer closed: then 0).
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.input.len() {
            self.input.clear();
            self.pos = 0;
        } else if self.pos > 0 {
            self.input.drain(..self.pos);
            self.pos = 0;
        }
        self.input.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.input).await
    }

    /// Takes the next line out of the buffer, if a whole one is there. A line longer than
    /// `max` (LF included) is reported once as [`Line::TooLong`] and dropped as it arrives, so
    /// the buffer never holds more than `max` bytes of it.
    pub fn take_line(&mut self, max: usize) -> Line {
        let unread = &self.input[self.pos..];
        match memchr::memchr(b'\n', unread) {
            Some(i) if self.discarding_line => {
                self.consume(i + 1);
                self.discarding_line = false;
                Line::TooLong
            }
            Some(i) if i + 1 > max => {
                self.consume(i + 1);
                Line::TooLong
            }
            Some(i) => {
                let line = unread[..=i].to_vec();
                self.consume(i + 1);
                Line::Complete(line)
            }
            None if self.discarding_line || unread.len() > max => {
                self.discarding_line = true;
                self.discard_buffered();
                Line::Incomplete
            }
            None => Line::Incomplete,
        }
    }

    /// Queues bytes to send.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.output
    }

    /// Sends the queued bytes.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).await?;
            self.output.clear();
        }
        self.stream.flush().await
    }

    /// Shuts the write side down (best effort: the peer may be gone).
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Replaces the stream by a TLS stream over it (the server side of the handshake). The
    /// buffers must be empty: plaintext received before the handshake is never read.
    pub async fn start_tls(
        &mut self,
        config: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> io::Result<()> {
        debug_assert!(self.pos == self.input.len() && self.output.is_empty());
        self.discard_buffered();
        self.discarding_line = false;
        // A stand-in while the handshake owns the stream; never read or written.
        let placeholder = Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        let plain = std::mem::replace(&mut self.stream, placeholder);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let tls = acceptor.accept(plain).await?;
        self.stream = Box::new(tls);
        Ok(())
    }
}
