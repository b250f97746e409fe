//! Relay to the next hop: the SMTP client that hands each spooled copy to the organization's
//! MTA (Postfix's reinjection port, a smarthost).
//!
//! [`NextHop::parse`] reads the next hop's URL once; [`Relay::new`] sets up a pool of lettre
//! SMTP connections (`pool`: `TCP_NODELAY`, no NOOP before a prompt reuse) with the EHLO name
//! and TLS settings; [`Relay::send`] sends raw bytes with an envelope (`""` is the null
//! sender `<>`), the whole transaction bounded in time. lettre adds `BODY=8BITMIME` when the data is not 7-bit ASCII and `SMTPUTF8`
//! when an address is not ASCII, and refuses to send such mail to a server that does not
//! offer the extension (that refusal is reported as permanent: the hop cannot take it).
//!
//! Failures are [`SendError`]s: a 5xx reply is permanent; a 4xx reply, a refused or broken
//! connection, a TLS failure and a timeout are transient. The message names the hop and the
//! server's reply. [`Relay::send_each`] retries a refused multi-recipient transaction one
//! recipient at a time, so that one refused recipient does not hold back the others.
//!
//! This module does not retry, back off, spool or bounce (the delivery worker does), and does
//! not authenticate to the next hop (no SMTP AUTH).

mod pool;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::{Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use pool::{ConnectError, Pool, Protection};
use tls::ImplicitTls;

/// How the connection to the next hop is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopSecurity {
    /// Plain SMTP (`smtp://`): for a next hop on loopback or a trusted network only.
    Plain,
    /// STARTTLS when the server offers it, plain otherwise (`smtp://…?tls=opportunistic`).
    StartTlsIfOffered,
    /// STARTTLS or no delivery (`smtp+starttls://`, or `smtp://…?tls=required`).
    StartTlsRequired,
    /// TLS from the first byte (`smtps://`).
    ImplicitTls,
}

/// Where copies are relayed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Plain, STARTTLS or implicit TLS.
    pub security: HopSecurity,
    /// The name sent in EHLO.
    pub helo_name: String,
    /// Limit for connecting and for each command's reply.
    pub timeout: Duration,
    /// Most connections kept open to the hop at once (the pool's size).
    pub max_connections: u32,
    /// A PEM file of certificate authorities trusted for the hop's TLS certificate, besides
    /// the built-in web roots (for a next hop with a private CA).
    pub ca_file: Option<PathBuf>,
}

/// The next hop's settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The URL is not `smtp://HOST[:PORT]`, `smtp+starttls://HOST[:PORT]` or
    /// `smtps://HOST[:PORT]`.
    #[error(
        "next hop {url:?} is not usable: {reason}; expected smtp://HOST:PORT, smtp+starttls://HOST:PORT or smtps://HOST:PORT"
    )]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("next hop CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// [`Relay::new`] was called outside a tokio runtime (the pool needs one for its
    /// background task).
    #[error("the relay to the next hop must be created inside a tokio runtime")]
    NoRuntime,
    /// The TLS settings cannot be built.
    #[error("next hop {hop}: TLS settings cannot be built: {reason}")]
    Tls {
        /// The hop.
        hop: String,
        /// lettre's reason.
        reason: String,
    },
}

/// A copy was not accepted by the next hop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// A 5xx reply (or mail the hop can never take): bounce, do not retry.
    pub permanent: bool,
    /// What happened, naming the hop and quoting the server's reply.
    pub message: String,
    /// The hop's reply code, when it answered (`None`: no connection, timeout, TLS, or the
    /// mail was not sent at all).
    pub code: Option<u16>,
}

/// The default SMTP port for each kind of hop.
const PLAIN_PORT: u16 = 25;
const SUBMISSIONS_PORT: u16 = 465;

impl NextHop {
    /// Reads `smtp://HOST[:PORT]` (plain; `?tls=opportunistic` or `?tls=required` for
    /// STARTTLS), `smtp+starttls://HOST[:PORT]` (STARTTLS required) or `smtps://HOST[:PORT]`
    /// (implicit TLS). IPv6 hosts are written in brackets. Defaults: port 25 (465 for
    /// `smtps`), EHLO name the machine's host name, timeout 60 s, 8 connections, no extra CA.
    pub fn parse(url: &str) -> Result<NextHop, RelayError> {
        let bad = |reason: &str| RelayError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .trim()
            .split_once("://")
            .ok_or_else(|| bad("no scheme"))?;
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains('/') {
            return Err(bad("a path is not allowed"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials are not supported (no SMTP AUTH to the next hop)",
            ));
        }
        let tls = match query {
            None => None,
            Some(q) => match q.strip_prefix("tls=") {
                Some("opportunistic") => Some(HopSecurity::StartTlsIfOffered),
                Some("required") => Some(HopSecurity::StartTlsRequired),
                _ => {
                    return Err(bad(
                        "the only parameter is tls=opportunistic or tls=required",
                    ));
                }
            },
        };
        let (security, default_port) = match (scheme.to_ascii_lowercase().as_str(), tls) {
            ("smtp", None) => (HopSecurity::Plain, PLAIN_PORT),
            ("smtp", Some(s)) => (s, PLAIN_PORT),
            ("smtp+starttls", None) => (HopSecurity::StartTlsRequired, PLAIN_PORT),
            ("smtps", None) => (HopSecurity::ImplicitTls, SUBMISSIONS_PORT),
            (_, Some(_)) => return Err(bad("tls= goes with smtp:// only")),
            _ => return Err(bad("unknown scheme")),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("bad port"))?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
        if !valid_host {
            return Err(bad(
                "the host is missing or has characters a host name cannot have",
            ));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
        };
        Ok(NextHop {
            host: host.to_string(),
            port,
            security,
            helo_name: ClientId::default().to_string(),
            timeout: Duration::from_secs(60),
            max_connections: 8,
            ca_file: None,
        })
    }

    /// The hop as logs and errors show it: `smtp://HOST:PORT`, `smtp+starttls://…`,
    /// `smtps://…` (opportunistic STARTTLS as `smtp://…?tls=opportunistic`).
    pub fn describe(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.security {
            HopSecurity::Plain => format!("smtp://{host}:{}", self.port),
            HopSecurity::StartTlsIfOffered => {
                format!("smtp://{host}:{}?tls=opportunistic", self.port)
            }
            HopSecurity::StartTlsRequired => format!("smtp+starttls://{host}:{}", self.port),
            HopSecurity::ImplicitTls => format!("smtps://{host}:{}", self.port),
        }
    }
}

/// The SMTP client for one next hop. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    hop: String,
    timeout: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("hop", &self.inner.hop)
            .finish()
    }
}

impl Relay {
    /// Sets up the relay (no connection is made until the first send). Must be called inside
    /// a tokio runtime: surplus connections are closed by tasks spawned there.
    pub fn new(hop: &NextHop) -> Result<Relay, RelayError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RelayError::NoRuntime);
        }
        let protection = match hop.security {
            HopSecurity::Plain => Protection::Plain,
            HopSecurity::StartTlsIfOffered | HopSecurity::StartTlsRequired => {
                Protection::StartTls {
                    params: tls_parameters(hop)?,
                    required: hop.security == HopSecurity::StartTlsRequired,
                }
            }
            HopSecurity::ImplicitTls => {
                let extra = ca_pem(hop)?;
                let tls = ImplicitTls::new(&hop.host, extra.as_deref()).map_err(|reason| {
                    RelayError::Tls {
                        hop: hop.describe(),
                        reason,
                    }
                })?;
                Protection::Implicit(tls)
            }
        };
        let pool = Pool::new(
            (hop.host.clone(), hop.port),
            protection,
            ClientId::Domain(hop.helo_name.clone()),
            hop.timeout,
            usize::try_from(hop.max_connections).unwrap_or(usize::MAX),
        );
        Ok(Relay {
            inner: Arc::new(Inner {
                pool,
                hop: hop.describe(),
                timeout: hop.timeout,
            }),
        })
    }

    /// The hop as logs show it.
    pub fn hop(&self) -> &str {
        &self.inner.hop
    }

    /// Sends `data` to every recipient in one transaction; all are accepted or none is.
    ///
    /// SMTP adds the final line ending itself, so one trailing CRLF (or LF) of `data` is
    /// folded into the end-of-data marker: the next hop receives `data` byte for byte
    /// (data without a final line ending arrives with one).
    ///
    /// The whole transaction is bounded here: the hop's timeout × (5 + number of recipients
    /// + MiB of data). When that runs out the connection is closed, never reused.
    pub async fn send(
        &self,
        mail_from: &str,
        recipients: &[String],
        data: &[u8],
    ) -> Result<(), SendError> {
        let envelope = self.envelope(mail_from, recipients)?;
        let body = data
            .strip_suffix(b"\r\n")
            .or_else(|| data.strip_suffix(b"\n"))
            .unwrap_or(data);
        let steps = 5 + recipients.len() + data.len() / (1 << 20);
        let limit = self
            .inner
            .timeout
            .saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
        match tokio::time::timeout(limit, self.transaction(&envelope, body)).await {
            Ok(result) => result,
            Err(_) => Err(SendError {
                permanent: false,
                message: format!(
                    "next hop {}: timed out (no complete answer within {limit:?})",
                    self.inner.hop
                ),
                code: None,
            }),
        }
    }

    /// One transaction on a pooled (or new) connection; the connection goes back to the pool
    /// only if it succeeded.
    async fn transaction(&self, envelope: &Envelope, body: &[u8]) -> Result<(), SendError> {
        let mut conn = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| self.connect_failed(e))?;
        match conn.send(envelope, body).await {
            Ok(_) => {
                self.inner.pool.put(conn);
                Ok(())
            }
            Err(e) => Err(self.classify(&e)),
        }
    }

    /// Idle connections in the pool (for tests).
    pub fn idle_connections(&self) -> usize {
        self.inner.pool.idle_count()
    }

    /// Like [`send`](Relay::send), but when the hop refuses the transaction with a reply
    /// (not a connection failure) and there are several recipients, sends once per recipient,
    /// so each recipient gets its own result. Nothing is sent twice: a refused transaction
    /// delivered nothing.
    pub async fn send_each(
        &self,
        mail_from: &str,
        recipients: &[String],
        data: &[u8],
    ) -> Vec<(String, Result<(), SendError>)> {
        let all = self.send(mail_from, recipients, data).await;
        let replied = matches!(&all, Err(e) if e.code.is_some());
        if all.is_ok() || recipients.len() < 2 || !replied {
            return recipients
                .iter()
                .map(|r| (r.clone(), all.clone()))
                .collect();
        }
        let mut out = Vec::with_capacity(recipients.len());
        for r in recipients {
            let one = self.send(mail_from, std::slice::from_ref(r), data).await;
            out.push((r.clone(), one));
        }
        out
    }

    fn envelope(&self, mail_from: &str, recipients: &[String]) -> Result<Envelope, SendError> {
        let refuse = |what: String| SendError {
            permanent: true,
            message: format!("not sent to next hop {}: {what}", self.inner.hop),
            code: None,
        };
        let from = match mail_from.trim() {
            "" => None,
            a => Some(
                a.parse::<Address>()
                    .map_err(|e| refuse(format!("sender <{a}> is not usable: {e}")))?,
            ),
        };
        let to = recipients
            .iter()
            .map(|r| {
                r.trim()
                    .parse::<Address>()
                    .map_err(|e| refuse(format!("recipient <{r}> is not usable: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::new(from, to).map_err(|e| refuse(e.to_string()))
    }

    fn connect_failed(&self, e: ConnectError) -> SendError {
        let what = match e {
            ConnectError::Smtp(e) => return self.classify(&e),
            ConnectError::Io(e) => format!("cannot connect: {e}"),
            ConnectError::Tls(e) => format!("TLS handshake failed: {e}"),
            ConnectError::TimedOut => format!("cannot connect within {:?}", self.inner.timeout),
        };
        SendError {
            permanent: false,
            message: format!("next hop {}: {what}", self.inner.hop),
            code: None,
        }
    }

    fn classify(&self, e: &lettre::transport::smtp::Error) -> SendError {
        let reason = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let hop = &self.inner.hop;
        if let Some(code) = e.status() {
            return SendError {
                permanent: e.is_permanent(),
                message: format!("next hop {hop} answered {code} {reason}")
                    .trim_end()
                    .to_string(),
                code: code.to_string().parse().ok(),
            };
        }
        if e.is_client() && reason.contains("does not support") {
            // The data is 8-bit or an address is not ASCII and the hop lacks 8BITMIME or
            // SMTPUTF8: it can never take this mail as it is.
            return SendError {
                permanent: true,
                message: format!("next hop {hop} cannot take this mail: {reason}"),
                code: None,
            };
        }
        let what = if e.is_timeout() {
            format!("timed out after {:?}", self.inner.timeout)
        } else if e.is_tls() {
            format!("TLS failed: {reason}")
        } else {
            format!("{e}")
        };
        SendError {
            permanent: false,
            message: format!("next hop {hop}: {what}"),
            code: None,
        }
    }
}

/// The hop's extra CA file (PEM), read and checked to hold a certificate, if it has one.
fn ca_pem(hop: &NextHop) -> Result<Option<Vec<u8>>, RelayError> {
    let Some(path) = &hop.ca_file else {
        return Ok(None);
    };
    let ca_err = |reason: String| RelayError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(ca_err("no PEM certificate in it".into()));
    }
    Ok(Some(pem))
}

/// lettre's TLS parameters (for STARTTLS) for the hop's host name, trusting the extra CA file
/// when there is one.
fn tls_parameters(hop: &NextHop) -> Result<TlsParameters, RelayError> {
    let mut b = TlsParameters::builder(hop.host.clone());
    if let (Some(pem), Some(path)) = (ca_pem(hop)?, &hop.ca_file) {
        let cert = Certificate::from_pem(&pem).map_err(|e| RelayError::CaFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| RelayError::Tls {
        hop: hop.describe(),
        reason: e.to_string(),
    })
}
