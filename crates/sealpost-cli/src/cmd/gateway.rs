//! `sealpost gateway`: run the mail gateway, and `sealpost queue list|retry|delete`: its spool,
//! for operators.
//!
//! This module reads the configuration, the tenant directory and the gateway token file, and
//! prints; the gateway itself (SMTP, rules, encryption, spool, relay, the reply endpoint,
//! transport decryption) is `sealpost-gateway`'s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use sealpost_gateway::config::{self, ConfigError, Destination, Loaded};
use sealpost_gateway::daemon::{Options, run};
use sealpost_gateway::handler::system_clock;
use sealpost_gateway::keyservice::{self, GatewayToken, KeyServiceClient};
use sealpost_gateway::process::{Processor, Protector};
use sealpost_gateway::spool::{QueueId, Spool};

use super::keyservice::runtime;
use super::serve::init_logging;
use super::write_stdout;
use crate::error::{CliError, CliResult};
use crate::tenant::Tenant;

/// Arguments of `gateway`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Configuration file: the `[gateway]` table and the mail-flow rules (docs/gateway.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// SMTP listening address [default: `listen` from the file, else 127.0.0.1:10025].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Next hop: smtp://HOST:PORT, smtp+starttls://HOST:PORT, smtps://HOST:PORT, or
    /// file:///DIR (one .eml per recipient, for trials) [default: `next_hop` from the file].
    #[arg(long, value_name = "URL")]
    pub next_hop: Option<String>,
    /// Spool directory [default: `spool_dir` from the file, else `spool` beside it].
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Metrics listening address [default: `metrics_listen`, else 127.0.0.1:10080].
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
}

/// Which spool a `queue` command works on.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct SpoolArg {
    /// The gateway's configuration file (its `spool_dir`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The spool directory itself.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
}

/// Arguments of `queue list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
}

/// Arguments of `queue retry`.
#[derive(clap::Args, Debug)]
pub struct RetryArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// The queue id to retry now (see `sealpost queue list`).
    #[arg(value_name = "ID", required_unless_present = "all")]
    pub id: Option<String>,
    /// Retry every waiting message now.
    #[arg(long, conflicts_with = "id")]
    pub all: bool,
}

/// Arguments of `queue delete`.
#[derive(clap::Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub spool: SpoolArg,
    /// The queue id to delete (see `sealpost queue list`); its mail is not delivered.
    #[arg(value_name = "ID")]
    pub id: String,
}

/// Prints every configuration mistake as `FILE:LINE:COL: message` and returns the error.
pub fn config_errors(path: &Path, errors: &[ConfigError]) -> CliError {
    for e in errors {
        if e.line == 0 {
            eprintln!("{}: {}", path.display(), e.message);
        } else {
            eprintln!("{}:{e}", path.display());
        }
    }
    let n = errors.len();
    CliError::new(
        format!(
            "{} has {n} mistake{}",
            path.display(),
            if n == 1 { "" } else { "s" }
        ),
        "fix the lines listed above; `sealpost rules check --config FILE` checks the rules alone",
    )
}

fn load(path: &Path) -> CliResult<Loaded> {
    config::load(path).map_err(|errs| config_errors(path, &errs))
}

/// Runs `gateway` until Ctrl-C or SIGTERM.
pub fn run_cmd(a: Args) -> CliResult<()> {
    let Loaded { mut gateway, rules } = load(&a.config)?;
    if let Some(l) = a.listen {
        gateway.listen = l;
    }
    if let Some(m) = a.metrics_listen {
        gateway.metrics_listen = m;
    }
    if let Some(s) = &a.spool {
        gateway.spool_dir = s.clone();
    }
    if let Some(h) = &a.next_hop {
        gateway.next_hop = Destination::parse(h, Path::new(".")).map_err(|e| {
            CliError::new(
                format!("--next-hop {h:?}: {e}"),
                "write smtp://HOST:PORT, smtp+starttls://HOST:PORT, smtps://HOST:PORT or file:///DIR",
            )
        })?;
    }
    let tenant = Tenant::load(&gateway.tenant)?;
    let protector = Protector {
        tenant_id: tenant.settings.tenant_id.clone(),
        key_service_url: tenant.settings.key_service_url.clone(),
        license_key: tenant.license_public_key()?,
        signing_key: tenant.signing_key()?,
        verifying_keys: tenant.verifying_keys()?,
        wrapper: tenant.wrapper_settings(),
    };
    let transport_decryption = tenant.settings.transport_decryption;
    let key_service = key_service_client(&a.config, &gateway, &tenant, transport_decryption)?;
    let processor = Processor {
        rules,
        protector,
        broken_mime: gateway.broken_mime,
        transport_decryption,
    };
    init_logging();
    let opts = Options {
        config: gateway,
        processor,
        clock: system_clock(),
        key_service,
    };
    runtime()?.block_on(run(opts)).map_err(|e| {
        CliError::new(
            format!("the gateway stopped: {e}"),
            "see the log lines above; `sealpost gateway --help` lists the options",
        )
    })
}

/// The key service client, when the reply endpoint or transport decryption needs one: the
/// token from `key_service_token_file`, the URL from `key_service_url` or the tenant's.
fn key_service_client(
    config: &Path,
    gateway: &sealpost_gateway::config::GatewayConfig,
    tenant: &Tenant,
    transport_decryption: bool,
) -> CliResult<Option<KeyServiceClient>> {
    let needed = gateway.reply.is_some() || transport_decryption;
    let Some(file) = &gateway.key_service_token_file else {
        if transport_decryption {
            return Err(CliError::new(
                format!(
                    "{}/tenant.toml enables transport_decryption, but {} has no key_service_token_file",
                    tenant.dir.display(),
                    config.display()
                ),
                "create a token with `sealpost admin token create --role gateway`, save it to a file and set [gateway] key_service_token_file",
            ));
        }
        return Ok(None);
    };
    if !needed {
        return Ok(None);
    }
    let text = std::fs::read_to_string(file).map_err(|e| {
        CliError::new(
            format!("cannot read key_service_token_file {}: {e}", file.display()),
            "create it with `sealpost admin token create --role gateway` (the token alone, one line)",
        )
    })?;
    let token = GatewayToken::new(&text).ok_or_else(|| {
        CliError::new(
            format!("{} does not hold a token", file.display()),
            "write the token printed by `sealpost admin token create --role gateway` into it",
        )
    })?;
    let url = gateway
        .key_service_url
        .clone()
        .unwrap_or_else(|| tenant.settings.key_service_url.clone());
    KeyServiceClient::new(&url, token, keyservice::REQUEST_TIMEOUT)
        .map(Some)
        .map_err(|e| {
            CliError::new(
                e.to_string(),
                "set [gateway] key_service_url to the key service's http(s) base URL",
            )
        })
}

fn open_spool(a: &SpoolArg) -> CliResult<Spool> {
    let dir = match (&a.spool, &a.config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => load(c)?.gateway.spool_dir,
        (None, None) => unreachable!("clap requires --config or --spool"),
    };
    if !dir.is_dir() {
        return Err(CliError::new(
            format!(
                "{} is not a spool directory (it does not exist)",
                dir.display()
            ),
            "pass the gateway's --config FILE or its --spool DIR",
        ));
    }
    Spool::open(&dir).map_err(|e| {
        CliError::new(
            format!("cannot open the spool {}: {e}", dir.display()),
            "check the directory and its permissions",
        )
    })
}

fn spool_error(e: impl std::fmt::Display) -> CliError {
    CliError::new(
        format!("spool: {e}"),
        "check the spool directory and its permissions",
    )
}

fn queue_id(s: &str) -> CliResult<QueueId> {
    s.parse().map_err(|_| {
        CliError::new(
            format!("{s:?} is not a queue id"),
            "copy an id from `sealpost queue list`",
        )
    })
}

/// `queue list`: the spool as JSON.
pub fn queue_list(a: ListArgs) -> CliResult<()> {
    let spool = open_spool(&a.spool)?;
    let entries = spool.list().map_err(spool_error)?;
    let mut out = serde_json::to_vec_pretty(&entries).expect("queue entries serialize");
    out.push(b'\n');
    write_stdout(&out)
}

/// `queue retry`: make messages due now; a running gateway picks them up within seconds.
pub fn queue_retry(a: RetryArgs) -> CliResult<()> {
    let spool = open_spool(&a.spool)?;
    let id = a.id.as_deref().map(queue_id).transpose()?;
    let n = spool.retry_now(id.as_ref()).map_err(spool_error)?;
    eprintln!(
        "sealpost: {n} cop{} will be retried now",
        if n == 1 { "y" } else { "ies" }
    );
    Ok(())
}

/// `queue delete`: remove a message from the spool without delivering it.
pub fn queue_delete(a: DeleteArgs) -> CliResult<()> {
    let spool = open_spool(&a.spool)?;
    let id = queue_id(&a.id)?;
    spool.delete(&id).map_err(spool_error)?;
    eprintln!("sealpost: deleted {id}; it will not be delivered");
    Ok(())
}
