//! `sealpost serve`: run the key service.

use std::net::SocketAddr;
use std::path::PathBuf;

use sealpost_keyservice::config::{self, KeyServiceToml};
use sealpost_keyservice::daemon::{RunOptions, run};
use sealpost_keyservice::http::HttpConfig;

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
}

/// Runs `serve` until Ctrl-C or SIGTERM.
pub fn run_cmd(a: Args) -> CliResult<()> {
    let file = match &a.config {
        Some(p) => config::read_file(p).map_err(|errs| config_error(&errs))?,
        None => KeyServiceToml::default(),
    };
    let limits = file.limits().map_err(|errs| config_error(&errs))?;
    let mut tenant_dirs = file.tenants.clone();
    tenant_dirs.extend(a.tenants.iter().cloned());
    let tenants = tenant_dirs
        .iter()
        .map(|d| Tenant::load(d).and_then(|t| tenant_import(&t)))
        .collect::<CliResult<Vec<_>>>()?;
    let opts = RunOptions {
        listen: a
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("a valid address")),
        data_dir: a.data.clone(),
        database_url: a.database_url.clone().or(file.database_url.clone()),
        kek_file: file.kek_file.clone(),
        max_connections: file.max_connections.unwrap_or(16),
        limits,
        http: HttpConfig {
            max_body_bytes: file.max_body_bytes.unwrap_or(1 << 20),
            max_in_flight: file.max_in_flight.unwrap_or(256),
            extra_allowed_origins: file.extra_allowed_origins.clone(),
            trust_forwarded_for: file.trust_forwarded_for,
        },
        tenants,
    };
    init_logging();
    runtime()?.block_on(run(opts)).map_err(|e| {
        CliError::new(
            format!("the key service stopped: {e}"),
            "see the log lines above; `sealpost serve --help` lists the options",
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
        .with_writer(std::io::stderr)
        .try_init();
}
