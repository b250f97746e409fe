//! Running the reply endpoint's router on its socket: HTTP/1.1 over plain TCP, or over TLS
//! (tokio-rustls, ALPN `http/1.1`) when `reply_tls_cert`/`reply_tls_key` are set; then only
//! TLS is spoken on the port.
//!
//! Each connection runs in a task of its own, so a slow or failing TLS handshake never holds
//! up the others; a handshake must finish within [`HANDSHAKE_TIMEOUT`] and a request's header
//! block arrive within [`HEADER_READ_TIMEOUT`] (which also closes idle keep-alive
//! connections). At most `max_connections` connections are open at once; past that the
//! listener waits, and the kernel's backlog holds new ones. On shutdown the listener closes,
//! pending handshakes are dropped, idle connections close and requests in progress finish.
//!
//! HTTP/2 is not offered: it would add the `h2` crate for one small JSON POST per reply. The
//! request limits (in flight, body size and time) are the router's ([`super::router`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tower::ServiceExt as _;

/// Longest time a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest time a request's header block may take to arrive, and an idle connection may wait
/// for its next request.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long accepting pauses after the listener fails (for example when out of file
/// descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The TLS side of the endpoint from a server configuration (the STARTTLS loader's,
/// [`crate::smtp::load_tls`]), offering ALPN `http/1.1`.
pub fn acceptor(config: &ServerConfig) -> TlsAcceptor {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown` turns true, then lets
/// the requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    // Every connection task holds a receiver; `closed()` resolves when the last one is gone.
    let (open_tx, open_rx) = watch::channel(());
    let mut stop = shutdown.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut stopped => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "the reply endpoint cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            tls.clone(),
            router.clone(),
            shutdown.clone(),
            (open_rx.clone(), permit),
        ));
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// One connection: the TLS handshake (bounded), then HTTP/1.1 until the client leaves or the
/// gateway stops. `_held` (the connection's slot) is released when it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
    _held: (watch::Receiver<()>, OwnedSemaphorePermit),
) {
    let Some(acceptor) = tls else {
        return http(TokioIo::new(stream), peer, router, shutdown).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "reply endpoint: TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "reply endpoint: TLS handshake timed out");
                return;
            }
        },
        _ = shutdown.wait_for(|s| *s) => return,
    };
    http(TokioIo::new(stream), peer, router, shutdown).await;
}

/// HTTP/1.1 on an established stream; the peer's address is the request's `ConnectInfo`.
async fn http<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        served = conn.as_mut() => {
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "reply endpoint: connection ended with an error");
            }
            return;
        }
        _ = shutdown.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "reply endpoint: connection ended with an error");
    }
}
