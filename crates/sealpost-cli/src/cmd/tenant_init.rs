//! `sealpost tenant init`: a new tenant directory with fresh keys.

use std::path::PathBuf;

use sealpost_core::{LicenseSecretKey, SigningKey};

use super::os_rng;
use crate::error::{CliError, CliResult};
use crate::tenant::{KeyEntry, KeyStatus, Settings, Tenant};

/// Arguments of `tenant init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to create the tenant in (made if missing; must not hold a tenant yet).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The organization's mail domain; also the tenant id.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// Key service base URL that recipients' browsers will call.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub key_service_url: String,
    /// Portal URL where recipients open messages.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080/")]
    pub portal_url: String,
    /// Organization name shown to recipients (default: the domain).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Show original subjects on wrapper mails and in envelope headers.
    #[arg(long)]
    pub show_subject: bool,
    /// Base URL of the gateway's encrypted-reply endpoint (its `reply_listen`); without it
    /// recipients cannot send encrypted replies.
    #[arg(long, value_name = "URL")]
    pub reply_url: Option<String>,
    /// Let the gateway decrypt protected mail for the organization's own recipients.
    #[arg(long)]
    pub transport_decryption: bool,
}

/// Checks a mail domain: dot-separated labels of letters, digits and hyphens.
pub fn check_domain(domain: &str) -> CliResult<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err(CliError::new(
            format!("{domain:?} is not a mail domain"),
            "pass the organization's domain, e.g. --domain example.com",
        ))
    }
}

/// Checks an http(s) URL.
pub fn check_url(flag: &str, value: &str) -> CliResult<String> {
    match url::Url::parse(value) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => {
            Ok(u.to_string())
        }
        _ => Err(CliError::new(
            format!("{flag} {value:?} is not an http(s) URL"),
            format!("pass a full URL, e.g. {flag} https://sealpost.example.com"),
        )),
    }
}

/// Runs `tenant init`.
pub fn run(a: Args) -> CliResult<()> {
    let domain = check_domain(&a.domain)?;
    let key_service_url = check_url("--key-service-url", &a.key_service_url)?
        .trim_end_matches('/')
        .to_string();
    let portal_url = check_url("--portal-url", &a.portal_url)?;
    let reply_url = match &a.reply_url {
        Some(u) => Some(
            check_url("--reply-url", u)?
                .trim_end_matches('/')
                .to_string(),
        ),
        None => None,
    };
    let mut rng = os_rng();
    let license = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let name = a.name.unwrap_or_else(|| domain.clone());
    let settings = Settings {
        tenant_id: domain.clone(),
        display_name: name.clone(),
        domains: vec![domain.clone()],
        key_service_url,
        portal_url,
        show_subject: a.show_subject,
        replacement_subject: format!("Encrypted message from {name}"),
        default_template: sealpost_core::policy::ENCRYPT_ONLY.to_string(),
        reply_url,
        transport_decryption: a.transport_decryption,
        license_keys: vec![KeyEntry {
            id: license.public_key().key_id().to_string(),
            public: license.public_key().to_base64(),
            status: KeyStatus::Active,
        }],
        signing_keys: vec![KeyEntry {
            id: signing.verifying_key().key_id().to_string(),
            public: signing.verifying_key().to_base64(),
            status: KeyStatus::Active,
        }],
        templates: Vec::new(),
    };
    let t = Tenant::create(&a.dir, settings, &license, &signing)?;
    println!(
        "Created tenant {domain} in {}\n  license key {}\n  signing key {}\nPrivate keys are in {} (mode 0600). Back them up: without them no message can be recovered.",
        t.dir.display(),
        t.settings.license_keys[0].id,
        t.settings.signing_keys[0].id,
        t.dir.join("keys").display()
    );
    Ok(())
}
