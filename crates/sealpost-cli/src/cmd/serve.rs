//! `sealpost serve`: run the key service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use sealpost_keyservice::config::{self, KeyServiceToml, SMTP_URL_ENV};
use sealpost_keyservice::daemon::{RunOptions, run};
use sealpost_keyservice::http::portal::default_public_url;
use sealpost_keyservice::http::{DEMO_MAILBOX_DIR, HttpConfig, Portal, PortalSettings};

use super::keyservice::{runtime, tenant_import};
use crate::error::{CliError, CliResult};
use crate::tenant::Tenant;

/// Arguments of `serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Data directory: the SQLite database and, unless given otherwise, the key-encryption key.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Use PostgreSQL (postgres://user@host/db) instead of SQLite in the data directory.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Configuration file (TOML, `[keyservice]` table; flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Tenant directory (from `sealpost tenant init`) to load at start; repeatable.
    #[arg(long = "tenant", value_name = "DIR")]
    pub tenants: Vec<PathBuf>,
    /// Portal bundle (`scripts/portal.sh build` output) to serve at `/` [default:
    /// `portal_dir` from the config file, else ./dist if it holds an index.html].
    #[arg(long, value_name = "DIR", conflicts_with = "no_portal")]
    pub portal_dir: Option<PathBuf>,
    /// Serve no portal, only the API.
    #[arg(long)]
    pub no_portal: bool,
    /// This service's URL as browsers reach it, for the portal's config.json [default:
    /// `public_url` from the config file, else http:// and the listening address].
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Demo mode: also serve /dev/mailbox, a development mailbox that lists DATA/demo-mailbox/*.eml
    /// and shows the passcode outbox IN CLEAR. Never for real users.
    #[arg(long)]
    pub demo: bool,
    /// SMTP relay for passcode mail: smtp://HOST:PORT, smtps://HOST:PORT, or
    /// smtp://USER:PASS@HOST:PORT?tls=required [default: `smtp_url` from the config file;
    /// without one, passcode mail stays in the outbox, see `sealpost outbox list`].
    #[arg(long, value_name = "URL", env = SMTP_URL_ENV, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of passcode mail [default: `smtp_from` from the config file, else
    /// "Sealpost <no-reply@localhost>"].
    #[arg(long, value_name = "MAILBOX")]
    pub smtp_from: Option<String>,
}

/// Runs `serve` until Ctrl-C or SIGTERM.
pub fn run_cmd(a: Args) -> CliResult<()> {
    let mut file = match &a.config {
        Some(p) => config::read_file(p).map_err(|errs| config_error(&errs))?,
        None => KeyServiceToml::default(),
    };
    if a.smtp_url.is_some() {
        file.smtp_url = a.smtp_url.clone();
    }
    if a.smtp_from.is_some() {
        file.smtp_from = a.smtp_from.clone();
    }
    let limits = file.limits().map_err(|errs| config_error(&errs))?;
    let delivery = file.delivery().map_err(|errs| config_error(&errs))?;
    let outbox_retention_secs = file
        .outbox_retention()
        .map_err(|errs| config_error(&errs))?;
    let oidc = file
        .oidc_providers(None)
        .map_err(|errs| config_error(&errs))?;
    let mut tenant_dirs = file.tenants.clone();
    tenant_dirs.extend(a.tenants.iter().cloned());
    let tenants = tenant_dirs
        .iter()
        .map(|d| Tenant::load(d).and_then(|t| tenant_import(&t)))
        .collect::<CliResult<Vec<_>>>()?;
    let listen = a
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("a valid address"));
    let portal = portal(&a, &file, listen)?;
    let opts = RunOptions {
        listen,
        data_dir: a.data.clone(),
        database_url: a.database_url.clone().or(file.database_url.clone()),
        kek_file: file.kek_file.clone(),
        max_connections: file
            .max_connections
            .unwrap_or_else(sealpost_keyservice::config::default_max_connections),
        limits,
        http: HttpConfig {
            max_body_bytes: file.max_body_bytes.unwrap_or(1 << 20),
            max_in_flight: file.max_in_flight.unwrap_or(256),
            extra_allowed_origins: file.extra_allowed_origins.clone(),
            trust_forwarded_for: file.trust_forwarded_for,
            portal,
            demo_mailbox: a.demo.then(|| a.data.join(DEMO_MAILBOX_DIR)),
        },
        tenants,
        delivery,
        outbox_retention_secs,
        oidc,
    };
    init_logging();
    runtime()?.block_on(run(opts)).map_err(|e| {
        CliError::new(
            format!("the key service stopped: {e}"),
            "see the log lines above; `sealpost serve --help` lists the options",
        )
    })
}

/// The portal to serve: `--portal-dir`, else `portal_dir`, else `./dist` when it holds an
/// `index.html`; none with `--no-portal`. A directory named explicitly must hold a bundle.
fn portal(a: &Args, file: &KeyServiceToml, listen: SocketAddr) -> CliResult<Option<Arc<Portal>>> {
    if a.no_portal {
        return Ok(None);
    }
    let dir = match a.portal_dir.clone().or_else(|| file.portal_dir.clone()) {
        Some(dir) => dir,
        None if PathBuf::from("dist/index.html").is_file() => PathBuf::from("dist"),
        None => return Ok(None),
    };
    let public_url = a
        .public_url
        .clone()
        .or_else(|| file.public_url.clone())
        .unwrap_or_else(|| default_public_url(listen));
    let mut key_services = vec![public_url];
    key_services.extend(file.portal_key_services.iter().cloned());
    Portal::load(PortalSettings { dir, key_services })
        .map(|p| Some(Arc::new(p)))
        .map_err(|e| {
            CliError::new(
                format!("cannot serve the portal: {e}"),
                "build it (`scripts/portal.sh build`), fix --portal-dir/portal_dir or --public-url/public_url, or pass --no-portal",
            )
        })
}

fn config_error(errors: &[String]) -> CliError {
    CliError::new(
        format!("invalid configuration: {}", errors.join("; ")),
        "fix every listed problem (see docs/api.md for the [keyservice] table)",
    )
}

/// Log lines to stderr; `RUST_LOG` adjusts the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
