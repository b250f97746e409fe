//! The relay's connections to the next hop: lettre's [`AsyncSmtpConnection`] (EHLO, STARTTLS,
//! MAIL/RCPT/DATA, dot-stuffing, reply parsing) on TCP sockets opened here, kept in a small
//! pool shared by every delivery.
//!
//! Why not lettre's pooled `AsyncSmtpTransport`: its sockets keep Nagle's algorithm on, and
//! lettre writes the end-of-data marker as a separate small write, so each message waited for
//! the next hop's delayed ACK (about 40 ms on Linux) before the hop saw its end; and the pool
//! sent a NOOP before every reuse (a round trip, and work for the hop). Here plain and
//! STARTTLS connections are opened with `TCP_NODELAY`; a connection idle for less than
//! [`CHECK_AFTER`] is reused without a NOOP (if the hop closed it meanwhile, the transaction
//! fails as a transient error and the copy is retried like any other), one idle longer is
//! checked with NOOP first, and one idle for [`IDLE_LIMIT`] is closed. Implicit TLS
//! (`smtps://`) runs over the same kind of socket (see `tls`).
//!
//! A connection whose transaction failed is never reused (lettre marks it broken and closes
//! it); one dropped in the middle of a transaction (the caller's timeout) is simply closed.
//! This module does not build envelopes, classify errors or bound a transaction in time (the
//! parent module does).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::tls::ImplicitTls;

/// A pooled connection idle for less than this is reused without a NOOP first.
pub const CHECK_AFTER: Duration = Duration::from_secs(2);

/// A pooled connection idle for this long is closed instead of reused.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// Why no connection could be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The TCP connection failed.
    Io(std::io::Error),
    /// The TCP connection did not complete in time.
    TimedOut,
    /// The greeting, EHLO or STARTTLS failed (lettre's error).
    Smtp(lettre::transport::smtp::Error),
    /// The implicit-TLS handshake failed.
    Tls(std::io::Error),
}

/// How the pool's connections are protected.
pub enum Protection {
    /// Plain SMTP.
    Plain,
    /// STARTTLS after the greeting: always (`required`), or when the hop offers it.
    StartTls {
        /// lettre's TLS settings for the upgrade.
        params: TlsParameters,
        /// Whether a hop that does not offer STARTTLS is an error.
        required: bool,
    },
    /// TLS from the first byte.
    Implicit(ImplicitTls),
}

/// Where and how to connect, and the idle connections.
pub struct Pool {
    host: String,
    port: u16,
    protection: Protection,
    hello: ClientId,
    /// Bound on opening the TCP connection.
    connect_timeout: Duration,
    /// Most idle connections kept.
    max_idle: usize,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Pool {
    /// A pool with no connection yet.
    pub fn new(
        (host, port): (String, u16),
        protection: Protection,
        hello: ClientId,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Pool {
        Pool {
            host,
            port,
            protection,
            hello,
            connect_timeout,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The most recently used idle connection that still works, or a new one.
    pub async fn get(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        loop {
            let candidate = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some((mut conn, since)) = candidate else {
                return self.connect().await;
            };
            let idle = since.elapsed();
            if idle >= IDLE_LIMIT {
                close(conn);
                continue;
            }
            if idle < CHECK_AFTER || conn.test_connected().await {
                return Ok(conn);
            }
            // The NOOP failed: lettre closed it; try the next one.
        }
    }

    /// Returns a connection after a successful transaction; closed instead when the pool is
    /// full or the connection is broken.
    pub fn put(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Drop what has idled too long while we are here.
        idle.retain(|(_, since)| since.elapsed() < IDLE_LIMIT);
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            close(conn);
        }
    }

    /// Idle connections now (for tests).
    pub fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, ConnectError> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| ConnectError::TimedOut)?
        .map_err(ConnectError::Io)?;
        // The end-of-data marker is a small write of its own: without this it waits for the
        // ACK of the data before it (see the module docs).
        tcp.set_nodelay(true).map_err(ConnectError::Io)?;
        let stream = match &self.protection {
            // The handshake is bounded like the TCP connection; the greeting and EHLO that
            // follow are bounded by the caller's limit on the whole transaction.
            Protection::Implicit(tls) => {
                tokio::time::timeout(self.connect_timeout, tls.connect(tcp))
                    .await
                    .map_err(|_| ConnectError::TimedOut)?
                    .map_err(ConnectError::Tls)?
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(ConnectError::Smtp)?;
        if let Protection::StartTls { params, required } = &self.protection
            && (*required || conn.can_starttls())
        {
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(ConnectError::Smtp)?;
        }
        Ok(conn)
    }
}

/// Says QUIT and closes, in the background.
fn close(mut conn: AsyncSmtpConnection) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::spawn(async move { conn.abort().await });
    }
}
