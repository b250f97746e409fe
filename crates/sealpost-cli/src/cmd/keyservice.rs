//! Key-service administration from the command line: load a tenant, make admin tokens, read
//! the passcode outbox (these open the database directly), and revoke messages or read their
//! audit trail (these call a running key service with an admin token).

use std::path::PathBuf;

use sealpost_keyservice::daemon::{load_kek, open_store};
use sealpost_keyservice::service::{
    Entropy, KeyService, Limits, TenantImport, TenantSettings, TokenRole,
};
use sealpost_keyservice::store::{DeliveryState, OutboxEntry};

use super::write_stdout;
use crate::error::{CliError, CliResult};
use crate::tenant::{KeyStatus, Tenant};

/// Where the key service keeps its data.
#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// Data directory of `sealpost serve`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// PostgreSQL URL, if the service uses PostgreSQL.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
}

/// A Tokio runtime for one command.
pub fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(
                format!("cannot start the async runtime: {e}"),
                "check system limits (threads, file descriptors)",
            )
        })
}

/// The key-service view of a tenant directory: keys, statuses and settings.
pub fn tenant_import(t: &Tenant) -> CliResult<TenantImport> {
    let status = |s: KeyStatus| match s {
        KeyStatus::Active => "active".to_string(),
        KeyStatus::Retired => "retired".to_string(),
    };
    let mut license_keys = Vec::new();
    for k in &t.settings.license_keys {
        let id = sealpost_core::KeyId::from_hex(&k.id).map_err(|e| {
            CliError::new(format!("{}: {e}", t.dir.display()), "restore tenant.toml")
        })?;
        let sk = t.license_secret_key(&id)?.ok_or_else(|| {
            CliError::new(
                format!(
                    "tenant {}: license key {} is missing",
                    t.dir.display(),
                    k.id
                ),
                "restore keys/ from backup",
            )
        })?;
        license_keys.push((sk, status(k.status)));
    }
    let verifying = t.verifying_keys()?;
    let signing_keys = verifying
        .into_iter()
        .zip(&t.settings.signing_keys)
        .map(|(vk, k)| (vk, status(k.status)))
        .collect();
    let origin = url::Url::parse(&t.settings.portal_url)
        .map(|u| u.origin().ascii_serialization())
        .map_err(|_| {
            CliError::new(
                format!("{}: portal_url is not a URL", t.dir.display()),
                "fix portal_url in tenant.toml",
            )
        })?;
    Ok(TenantImport {
        tenant_id: t.settings.tenant_id.clone(),
        display_name: t.settings.display_name.clone(),
        settings: TenantSettings {
            domains: t.settings.domains.clone(),
            allowed_origins: vec![origin],
            branding: Default::default(),
            reply_url: reply_url(t)?,
            transport_decryption: t.settings.transport_decryption,
        },
        license_keys,
        signing_keys,
    })
}

/// The tenant's `reply_url`, checked to be an http(s) URL, without a trailing slash.
fn reply_url(t: &Tenant) -> CliResult<Option<String>> {
    let Some(value) = &t.settings.reply_url else {
        return Ok(None);
    };
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            Ok(Some(u.to_string().trim_end_matches('/').to_string()))
        }
        _ => Err(CliError::new(
            format!(
                "{}: reply_url {value:?} is not an http(s) URL",
                t.dir.join(crate::tenant::SETTINGS_FILE).display()
            ),
            "set reply_url in tenant.toml to the gateway's reply endpoint, e.g. reply_url = \"https://mail.example.com:8090\", or remove it",
        )),
    }
}

async fn open(d: &DataArgs) -> CliResult<KeyService> {
    let store = open_store(&d.data, d.database_url.as_deref(), 2)
        .await
        .map_err(ks_error)?;
    // Only `sealpost serve` generates a key-encryption key: an administrative command that
    // made one here would store tenant keys under a key the service does not use.
    let kek = load_kek(&d.data, None, false).map_err(ks_error)?;
    KeyService::new(
        store,
        std::sync::Arc::new(sealpost_keyservice::clock::SystemClock),
        Entropy::Os,
        kek,
        Limits::default(),
    )
    .await
    .map_err(|e| ks_error(e.into()))
}

fn ks_error(e: sealpost_keyservice::daemon::RunError) -> CliError {
    CliError::new(
        e.to_string(),
        "check --data and --database-url (the same as for `sealpost serve`)",
    )
}

/// `sealpost tenant add`: loads (or updates) a tenant directory into the key service's database.
#[derive(clap::Args, Debug)]
pub struct TenantAddArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Tenant directory made by `sealpost tenant init`.
    #[arg(value_name = "TENANT_DIR")]
    pub tenant_dir: PathBuf,
}

/// Runs `tenant add`.
pub fn tenant_add(a: TenantAddArgs) -> CliResult<()> {
    let tenant = Tenant::load(&a.tenant_dir)?;
    let import = tenant_import(&tenant)?;
    let id = import.tenant_id.clone();
    runtime()?.block_on(async {
        let svc = open(&a.data).await?;
        svc.import_tenant(import).await.map_err(|e| {
            CliError::new(
                format!("cannot load tenant {id}: {e}"),
                "check the tenant directory",
            )
        })
    })?;
    println!(
        "Tenant {id} is loaded into the key service at {}.",
        a.data.data.display()
    );
    Ok(())
}

/// `sealpost admin token create`.
#[derive(clap::Args, Debug)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Tenant id the token administers.
    #[arg(long = "tenant-id", visible_alias = "tenant", value_name = "ID")]
    pub tenant_id: String,
    /// A note saying who or what uses the token.
    #[arg(long, default_value = "cli")]
    pub label: String,
    /// What the token may call: `admin` (revoke, audit) or `gateway` (the mail gateway's
    /// reply authorization and transport decryption); each is refused by the other's endpoints.
    #[arg(long, value_enum, default_value_t = Role::Admin)]
    pub role: Role,
}

/// The role of a new token.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Revocation and audit (`/v1/admin/*`).
    Admin,
    /// The mail gateway (`/v1/gateway/*`).
    Gateway,
}

impl From<Role> for TokenRole {
    fn from(r: Role) -> TokenRole {
        match r {
            Role::Admin => TokenRole::Admin,
            Role::Gateway => TokenRole::Gateway,
        }
    }
}

/// Runs `admin token create`: prints the token once; only its hash is stored.
pub fn token_create(a: TokenCreateArgs) -> CliResult<()> {
    let token = runtime()?.block_on(async {
        let svc = open(&a.data).await?;
        svc.create_token(&a.tenant_id, &a.label, a.role.into())
            .await
            .map_err(|e| {
                CliError::new(
                    format!("cannot create a token for {:?}: {e}", a.tenant_id),
                    "load the tenant first with `sealpost tenant add`",
                )
            })
    })?;
    write_stdout(format!("{}\n", &*token).as_bytes())
}

/// `sealpost outbox list`.
#[derive(clap::Args, Debug)]
pub struct OutboxArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// How many mails, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

/// Runs `outbox list`: the passcode mails of the outbox with their delivery state (decoys
/// for non-recipients are never listed).
pub fn outbox_list(a: OutboxArgs) -> CliResult<()> {
    let mails = runtime()?.block_on(async {
        let store = open_store(&a.data.data, a.data.database_url.as_deref(), 1)
            .await
            .map_err(ks_error)?;
        store
            .outbox_entries(a.limit)
            .await
            .map_err(|e| CliError::new(format!("cannot read the outbox: {e}"), "check --data"))
    })?;
    let mut out = String::new();
    for e in mails {
        let m = &e.mail;
        out.push_str(&format!(
            "--- #{} {} to {} [{}]\nSubject: {}\n\n{}\n",
            m.id,
            rfc3339(m.created),
            m.to_addr,
            delivery_state(&e),
            m.subject,
            if m.body.is_empty() {
                "(body removed once the mail was delivered or given up)\n"
            } else {
                &m.body
            }
        ));
    }
    write_stdout(out.as_bytes())
}

/// `queued`, `retrying, 2 attempts, next 2026-…, last error: …`, `delivered 2026-…`,
/// `failed 2026-…, 3 attempts, last error: …`.
fn delivery_state(e: &OutboxEntry) -> String {
    let mut s = String::from(e.state().as_str());
    match e.state() {
        DeliveryState::Queued => {}
        DeliveryState::Retrying => {
            s.push_str(&format!(", next {}", rfc3339(e.next_attempt_at)));
        }
        DeliveryState::Delivered => {
            s.push_str(&format!(" {}", rfc3339(e.delivered_at.unwrap_or_default())));
        }
        DeliveryState::Failed => {
            s.push_str(&format!(" {}", rfc3339(e.failed_at.unwrap_or_default())));
        }
    }
    if e.attempts > 0 && e.state() != DeliveryState::Delivered {
        s.push_str(&format!(", {} attempt(s)", e.attempts));
    }
    if let Some(err) = e
        .last_error
        .as_deref()
        .filter(|_| e.state() != DeliveryState::Delivered)
    {
        s.push_str(&format!(", last error: {}", err.replace(['\r', '\n'], " ")));
    }
    s
}

fn rfc3339(unix: i64) -> humantime::Rfc3339Timestamp {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(when)
}
