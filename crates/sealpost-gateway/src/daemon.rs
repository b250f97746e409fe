//! Running the gateway: lock and recover the spool, start the delivery workers, the metrics
//! endpoint, the reply endpoint (with `reply_listen`; HTTPS with `reply_tls_cert`) and the SMTP
//! listener, and stop cleanly on Ctrl-C or SIGTERM (the listeners stop accepting, open sessions
//! and requests finish, running deliveries are recorded).
//!
//! Everything the gateway needs is passed in ([`Options`]); this module reads no files of its
//! own besides the spool.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::config::{Destination, GatewayConfig};
use crate::handler::{Clock, Gateway, SharedGateway};
use crate::keyservice::KeyServiceClient;
use crate::maildrop::Maildrop;
use crate::metrics::{self, Metrics};
use crate::process::Processor;
use crate::relay::Relay;
use crate::relay_first::RelayFirst;
use crate::reply::{self, ReplyService};
use crate::smtp::{self, SmtpConfig};
use crate::spool::{RelayJournal, Spool};
use crate::transport::{self, Transport};
use crate::worker::{self, Deliverer, Outbound, RetryPolicy};

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spool could not be opened, locked or recovered.
    #[error("spool {dir}: {message}")]
    Spool {
        /// The spool directory.
        dir: String,
        /// What went wrong.
        message: String,
    },
    /// The STARTTLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The reply endpoint's certificate or key (`reply_tls_cert`, `reply_tls_key`) could not be
    /// loaded.
    #[error("reply endpoint HTTPS (reply_tls_cert, reply_tls_key): {0}")]
    ReplyTls(String),
    /// The next hop is unusable.
    #[error("next hop: {0}")]
    Relay(String),
    /// The reply endpoint is configured without a key service client.
    #[error("reply_listen is set but no key service client was given (key_service_token_file)")]
    NoKeyService,
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        error: std::io::Error,
    },
}

/// What [`run`] needs.
pub struct Options {
    /// Settings from the `[gateway]` table.
    pub config: GatewayConfig,
    /// Rules and the tenant's keys.
    pub processor: Processor,
    /// The clock.
    pub clock: Clock,
    /// The key service's gateway endpoints (gateway token): needed by the reply endpoint and
    /// by transport decryption.
    pub key_service: Option<KeyServiceClient>,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub async fn run(opts: Options) -> Result<(), RunError> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stopping: no new connections; finishing open sessions and deliveries");
        let _ = tx.send(true);
    });
    run_until(opts, rx).await
}

/// Runs the gateway until `shutdown` turns true.
pub async fn run_until(opts: Options, shutdown: watch::Receiver<bool>) -> Result<(), RunError> {
    let cfg = opts.config;
    let spool_err = |e: &dyn std::fmt::Display| RunError::Spool {
        dir: cfg.spool_dir.display().to_string(),
        message: e.to_string(),
    };
    let spool = Spool::open(&cfg.spool_dir).map_err(|e| spool_err(&e))?;
    let _lock = spool.lock().map_err(|e| spool_err(&e))?;
    let mut recovered = spool.recover().map_err(|e| spool_err(&e))?;
    // The relay journal exists only while relaying first; what an earlier run with
    // `relay_first` left is reported either way.
    let journal = if cfg.relay_first {
        let (journal, relayed) = RelayJournal::open(&cfg.spool_dir).map_err(|e| spool_err(&e))?;
        recovered.extend(relayed);
        Some(journal)
    } else {
        recovered.extend(RelayJournal::recover(&cfg.spool_dir).map_err(|e| spool_err(&e))?);
        None
    };
    if !recovered.is_empty() {
        tracing::warn!(
            count = recovered.len(),
            "the previous run stopped abruptly; see the `possible duplicate` lines above"
        );
    }
    let tls = match &cfg.tls {
        Some((cert, key)) => {
            Some(smtp::load_tls(cert, key).map_err(|e| RunError::Tls(e.to_string()))?)
        }
        None => None,
    };
    let reply_tls = match cfg.reply.as_ref().and_then(|r| r.tls.as_ref()) {
        Some((cert, key)) => {
            let config =
                smtp::load_tls(cert, key).map_err(|e| RunError::ReplyTls(e.to_string()))?;
            Some(reply::http::serve::acceptor(&config))
        }
        None => None,
    };
    let relay = match &cfg.next_hop {
        Destination::Smtp(hop) => {
            let mut hop = hop.clone();
            hop.helo_name = cfg.hostname.clone();
            hop.max_connections = pool_size(&cfg);
            Outbound::Smtp(Relay::new(&hop).map_err(|e| RunError::Relay(e.to_string()))?)
        }
        Destination::Directory(dir) => Outbound::Directory(Maildrop::new(dir)),
    };
    let relay = Arc::new(relay);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|error| RunError::Listen {
            addr: cfg.listen,
            error,
        })?;
    let reply_listener = match &cfg.reply {
        Some(r) => {
            if opts.key_service.is_none() {
                return Err(RunError::NoKeyService);
            }
            Some(
                tokio::net::TcpListener::bind(r.listen)
                    .await
                    .map_err(|error| RunError::Listen {
                        addr: r.listen,
                        error,
                    })?,
            )
        }
        None => None,
    };
    let metrics_listener = tokio::net::TcpListener::bind(cfg.metrics_listen)
        .await
        .map_err(|error| RunError::Listen {
            addr: cfg.metrics_listen,
            error,
        })?;

    let metrics = Arc::new(Metrics::default());
    let wake = Arc::new(Notify::new());
    let transport = match (&opts.key_service, opts.processor.transport_decryption) {
        (Some(client), true) => Some(Transport {
            client: client.clone(),
            deadline: transport::DEFAULT_DEADLINE,
        }),
        (None, true) => {
            tracing::warn!(
                "transport decryption is on but no key service client is configured: protected mail is delivered as it is"
            );
            None
        }
        (_, false) => None,
    };
    let gateway = Arc::new(Gateway {
        processor: Arc::new(opts.processor),
        spool: spool.clone(),
        metrics: metrics.clone(),
        wake: wake.clone(),
        hostname: cfg.hostname.clone(),
        clock: opts.clock.clone(),
        transport,
        relay_first: journal.map(|journal| RelayFirst::new(relay.clone(), journal)),
    });
    let deliverer = Arc::new(Deliverer {
        spool: spool.clone(),
        relay,
        metrics: metrics.clone(),
        policy: RetryPolicy {
            first: cfg.retry_first,
            max: cfg.retry_max,
            bounce_after: cfg.bounce_after,
        },
        hostname: cfg.hostname.clone(),
        clock: opts.clock,
    });
    let workers = tokio::spawn(worker::run(
        deliverer,
        cfg.delivery_workers,
        wake,
        shutdown.clone(),
    ));
    let metrics_task = tokio::spawn(metrics::serve(
        metrics_listener,
        metrics,
        spool,
        shutdown.clone(),
    ));
    let smtp_cfg = Arc::new(SmtpConfig {
        hostname: cfg.hostname.clone(),
        max_message_size: cfg.max_message_size,
        max_recipients: cfg.max_recipients,
        tls,
        command_timeout: std::time::Duration::from_secs(300),
        data_timeout: std::time::Duration::from_secs(600),
    });
    let reply_task = match (reply_listener, &cfg.reply, &opts.key_service) {
        (Some(listener), Some(r), Some(client)) => {
            let service = Arc::new(ReplyService {
                gateway: gateway.clone(),
                client: client.clone(),
                from: r.from.clone(),
            });
            let app = reply::http::router(service, r);
            tracing::info!(
                listen = %r.listen,
                https = reply_tls.is_some(),
                max_in_flight = r.max_in_flight,
                key_service = %client.base_url(),
                "reply endpoint is running"
            );
            // On loopback a TLS-terminating proxy in front is the likely setup (or a demo).
            if reply_tls.is_none() && !r.listen.ip().is_loopback() {
                tracing::warn!(
                    "the reply endpoint speaks plain HTTP on a network address; set reply_tls_cert and reply_tls_key, or put a TLS-terminating proxy in front of it on loopback"
                );
            }
            Some(tokio::spawn(reply::http::serve::serve(
                listener,
                reply_tls,
                app,
                r.max_in_flight.saturating_mul(4).max(256),
                shutdown.clone(),
            )))
        }
        _ => None,
    };
    tracing::info!(
        listen = %cfg.listen,
        next_hop = %cfg.next_hop.describe(),
        metrics = %cfg.metrics_listen,
        spool = %cfg.spool_dir.display(),
        relay_first = cfg.relay_first,
        "sealpost gateway is running"
    );
    let served = smtp::serve(
        listener,
        smtp_cfg,
        Arc::new(SharedGateway(gateway)),
        cfg.max_sessions,
        shutdown,
    )
    .await;
    if let Some(task) = reply_task
        && let Err(e) = task.await
    {
        tracing::error!(error = %e, "the reply endpoint stopped");
    }
    let _ = workers.await;
    if let Ok(Err(e)) = metrics_task.await {
        tracing::error!(error = %e, "the metrics endpoint stopped");
    }
    served.map_err(|error| RunError::Listen {
        addr: cfg.listen,
        error,
    })
}

/// Connections kept open to the next hop: one per delivery worker, and with `relay_first`
/// one per SMTP session that may be relaying at once (at most 100 more); never fewer than 8.
/// More connections than this are still opened when needed, and closed after their message.
fn pool_size(cfg: &GatewayConfig) -> u32 {
    let sessions = if cfg.relay_first {
        cfg.max_sessions.min(100)
    } else {
        0
    };
    u32::try_from(cfg.delivery_workers.saturating_add(sessions))
        .unwrap_or(u32::MAX)
        .max(8)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
