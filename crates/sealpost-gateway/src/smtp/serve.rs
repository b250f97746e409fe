//! The accept loop: one tokio task per SMTP session, a limit on concurrent sessions, and a
//! graceful shutdown.
//!
//! Beyond `max_sessions` a connection gets `421 4.3.2` and is closed at once. When the
//! shutdown channel turns true (or its sender is dropped), the listener is closed, idle
//! sessions are told `421 4.3.2` at their next wait for a command, sessions in the middle of a
//! transaction finish it first, and `serve` returns when every session has ended. Session
//! errors are logged with the peer's IP, never with addresses or content. Binding the
//! listener is the caller's job.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::conn::Conn;
use super::session::run_session_until;
use super::{Handler, SessionError, SmtpConfig, reply};

/// How long a refused connection may take to receive its 421.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause after a failed accept (for example out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts connections on `listener` and runs an SMTP session for each, at most
/// `max_sessions` at once, until `shutdown` becomes true; then waits for the sessions to end.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    cfg: Arc<SmtpConfig>,
    handler: Arc<H>,
    max_sessions: usize,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(max_sessions));
    let mut sessions = JoinSet::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_sessions, "SMTP server listening");
    }
    while !*shutdown.borrow_and_update() {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "SMTP accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let cfg = cfg.clone();
                        let handler = handler.clone();
                        let shutdown = shutdown.clone();
                        sessions.spawn(async move {
                            let result =
                                run_session_until(Box::new(stream), peer, cfg, handler, shutdown)
                                    .await;
                            drop(permit);
                            log_end(peer, result);
                        });
                    }
                    Err(_) => {
                        tracing::warn!(%peer, max_sessions, "SMTP connection refused: too many sessions");
                        sessions.spawn(refuse(stream));
                    }
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => log_join(joined),
        }
    }
    drop(listener);
    tracing::info!(
        sessions = sessions.len(),
        "SMTP server stopping: waiting for sessions"
    );
    while let Some(joined) = sessions.join_next().await {
        log_join(joined);
    }
    Ok(())
}

async fn refuse(stream: TcpStream) {
    let mut conn = Conn::new(Box::new(stream));
    reply::TOO_MANY_SESSIONS.write_to(conn.output());
    let _ = tokio::time::timeout(REFUSE_TIMEOUT, async {
        if conn.flush().await.is_ok() {
            conn.shutdown().await;
        }
    })
    .await;
}

fn log_end(peer: SocketAddr, result: Result<(), SessionError>) {
    match result {
        Ok(()) => tracing::debug!(%peer, "SMTP session ended"),
        Err(SessionError::Timeout) => tracing::info!(%peer, "SMTP session ended: timeout"),
        Err(e) => tracing::warn!(%peer, error = %e, "SMTP session failed"),
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(error = %e, "SMTP session task failed");
    }
}
