//! Running the key service: open the store, load the key-encryption key, load tenants,
//! start the passcode-mail delivery worker (when an SMTP relay is configured) and the purge
//! task, listen, and shut down gracefully on Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealpost_core::keys::KeyEncryptionKey;

use crate::clock::SystemClock;
use crate::config::KEK_ENV;
use crate::delivery::{DeliveryConfig, DeliveryConfigError, DeliveryWorker};
use crate::http::{HttpConfig, router, serve};
use crate::oidc::OidcProvider;
use crate::service::{Entropy, KeyService, Limits, OidcProviders, TenantImport};
use crate::store::Store;

/// Everything `sealpost serve` decided from its flags and config file.
pub struct RunOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Data directory (SQLite database and generated key-encryption key).
    pub data_dir: PathBuf,
    /// PostgreSQL URL, if not SQLite.
    pub database_url: Option<String>,
    /// Key-encryption-key file, if not in the data directory or environment.
    pub kek_file: Option<PathBuf>,
    /// Database connections.
    pub max_connections: u32,
    /// Limits.
    pub limits: Limits,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Tenants to load or update at start.
    pub tenants: Vec<TenantImport>,
    /// Passcode mail delivery over SMTP; `None` keeps mail in the outbox table.
    pub delivery: Option<DeliveryConfig>,
    /// Outbox mail older than this is deleted whatever its state (seconds).
    pub outbox_retention_secs: i64,
    /// OpenID Connect providers (`[[keyservice.oidc]]`); empty: passcodes only.
    pub oidc: Vec<OidcProvider>,
}

/// How long outbox mail is kept at most by default: 7 days.
pub const DEFAULT_OUTBOX_RETENTION_SECS: i64 = 7 * 24 * 3600;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The key-encryption key is missing or invalid.
    #[error("{0}")]
    Kek(String),
    /// A tenant could not be loaded.
    #[error("cannot load tenant {0}: {1}")]
    Tenant(String, crate::service::AdminError),
    /// The address is in use or not ours.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The SMTP settings cannot be used.
    #[error("{0}")]
    Delivery(#[from] DeliveryConfigError),
    /// The OpenID Connect client could not be set up.
    #[error("{0}")]
    Oidc(String),
}

/// Opens the store named by the options.
pub async fn open_store(
    data_dir: &Path,
    database_url: Option<&str>,
    max_connections: u32,
) -> Result<Store, RunError> {
    Ok(match database_url {
        Some(url) => Store::connect(url, max_connections).await?,
        None => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                RunError::Kek(format!(
                    "cannot create data directory {}: {e}",
                    data_dir.display()
                ))
            })?;
            Store::sqlite_in_dir(data_dir, max_connections).await?
        }
    })
}

/// Loads the key-encryption key: `SEALPOST_KEK`, else the file named, else `DATA/kek`. With
/// the embedded SQLite default and no key anywhere, a new one is generated into `DATA/kek`.
pub fn load_kek(
    data_dir: &Path,
    kek_file: Option<&Path>,
    may_generate: bool,
) -> Result<KeyEncryptionKey, RunError> {
    if let Ok(v) = std::env::var(KEK_ENV) {
        return KeyEncryptionKey::from_base64(&v)
            .map_err(|e| RunError::Kek(format!("{KEK_ENV}: {e}")));
    }
    let path = kek_file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| data_dir.join("kek"));
    match std::fs::read_to_string(&path) {
        Ok(text) => KeyEncryptionKey::from_base64(&text)
            .map_err(|e| RunError::Kek(format!("{}: {e}", path.display()))),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && may_generate && kek_file.is_none() =>
        {
            let kek = KeyEncryptionKey::generate(&mut rand_core::UnwrapErr(getrandom::SysRng));
            write_private(&path, kek.to_base64().as_bytes())
                .map_err(|e| RunError::Kek(format!("cannot write {}: {e}", path.display())))?;
            tracing::warn!(
                path = %path.display(),
                "GENERATED A NEW KEY-ENCRYPTION KEY. It protects every tenant private key in the database: back it up \
                 separately from the database; without it the tenants' keys cannot be used."
            );
            Ok(kek)
        }
        Err(e) => Err(RunError::Kek(format!(
            "no key-encryption key: cannot read {} ({e}); set {KEK_ENV} or kek_file (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)",
            path.display()
        ))),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Builds the service from the options (store, key, tenants).
pub async fn build(opts: &mut RunOptions) -> Result<Arc<KeyService>, RunError> {
    let store = open_store(
        &opts.data_dir,
        opts.database_url.as_deref(),
        opts.max_connections,
    )
    .await?;
    let kek = load_kek(
        &opts.data_dir,
        opts.kek_file.as_deref(),
        opts.database_url.is_none(),
    )?;
    let mut service =
        KeyService::new(store, Arc::new(SystemClock), Entropy::Os, kek, opts.limits).await?;
    service.set_oidc(OidcProviders::new(std::mem::take(&mut opts.oidc)).map_err(RunError::Oidc)?);
    for t in std::mem::take(&mut opts.tenants) {
        let id = t.tenant_id.clone();
        service
            .import_tenant(t)
            .await
            .map_err(|e| RunError::Tenant(id.clone(), e))?;
        tracing::info!(tenant = %id, "tenant loaded");
    }
    Ok(Arc::new(service))
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(mut opts: RunOptions) -> Result<(), RunError> {
    let service = build(&mut opts).await?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| RunError::Listen(opts.listen, e))?;
    let addr = listener.local_addr().unwrap_or(opts.listen);
    tracing::info!(%addr, backend = ?service.store().backend(), "key service listening");
    let worker = match opts.delivery.take() {
        Some(config) => Some(DeliveryWorker::spawn(
            service.store().clone(),
            Arc::new(SystemClock),
            config,
        )?),
        None => {
            tracing::info!(
                "no SMTP relay configured: passcode mail stays in the outbox (`sealpost outbox list`)"
            );
            None
        }
    };
    spawn_purge(service.clone(), opts.outbox_retention_secs);
    let served = serve(listener, router(service, opts.http), shutdown_signal())
        .await
        .map_err(RunError::Serve);
    if let Some(worker) = worker {
        worker.stop().await;
    }
    served
}

/// Every ten minutes, deletes expired sessions and passcode challenges (challenges are kept
/// a day, so the hourly limits still see them), and outbox mail that is delivered, given up,
/// a decoy, or older than `outbox_retention_secs`, and OpenID sign-in flows a day past expiry.
fn spawn_purge(service: Arc<KeyService>, outbox_retention_secs: i64) {
    use crate::clock::Clock;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            let now = SystemClock.now();
            match service.store().delete_expired(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired sessions and challenges"),
                Err(e) => {
                    tracing::warn!(error = %e, "purge of expired sessions and challenges failed")
                }
            }
            match service
                .store()
                .purge_outbox(now, outbox_retention_secs)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged settled and old outbox mail"),
                Err(e) => tracing::warn!(error = %e, "purge of the outbox failed"),
            }
            match service.store().delete_expired_oidc_flows(now).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired OpenID sign-in flows"),
                Err(e) => tracing::warn!(error = %e, "purge of OpenID sign-in flows failed"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
