//! Implicit TLS (`smtps://`) on a socket of our own: rustls over a TCP connection opened with
//! `TCP_NODELAY`, handed to lettre as its transport.
//!
//! lettre can open an implicit-TLS connection itself, but on a socket with Nagle's algorithm
//! on, where each message's end-of-data marker waits about 40 ms for the next hop's delayed
//! ACK (the reason the pool opens plain and STARTTLS sockets itself, see `pool`). Here the
//! TLS handshake is done with tokio-rustls (the same TLS stack and `ring` provider lettre
//! uses), trusting the same roots lettre does: the Mozilla roots of `webpki-roots`, plus the
//! hop's `ca_file` when there is one. STARTTLS stays lettre's.
//!
//! This module does not speak SMTP and does not decide when TLS is used.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// What an implicit-TLS connection to one hop needs: the client configuration and the name
/// its certificate must carry.
#[derive(Clone)]
pub struct ImplicitTls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl ImplicitTls {
    /// The configuration for `host`, trusting the Mozilla roots and the certificates in
    /// `extra_roots` (PEM; already checked to hold at least one). Errors are reasons.
    pub fn new(host: &str, extra_roots: Option<&[u8]>) -> Result<ImplicitTls, String> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = extra_roots {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("cannot read a certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("cannot use a certificate: {e}"))?;
            }
        }
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a name a certificate can carry: {e}"))?;
        Ok(ImplicitTls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The TLS handshake over `tcp`; the result is lettre's transport.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<Box<dyn AsyncTokioStream>> {
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        Ok(Box::new(TlsTcp(tls)))
    }
}

/// A TLS connection over TCP, as lettre's transport (lettre's trait is only implemented for a
/// plain TCP stream).
#[derive(Debug)]
struct TlsTcp(TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
