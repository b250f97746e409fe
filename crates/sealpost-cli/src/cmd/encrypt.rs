//! `sealpost encrypt`: mail on stdin → wrapper mail on stdout.

use std::io::Read;

use sealpost_core::mail::{rfc5322, wrap};
use sealpost_core::{Envelope, Sealer};

use super::{now, os_rng, write_stdout};
use crate::TenantArg;
use crate::error::{CliError, CliResult};
use crate::tenant::Tenant;

/// Arguments of `encrypt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Template: Encrypt-Only (default), Do-Not-Forward, or one defined in tenant.toml.
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// Recipient allowed to open the message (repeatable). Default: the To, Cc and Bcc addresses.
    #[arg(long = "to", value_name = "ADDR")]
    pub to: Vec<String>,
}

/// Checks the shape of an address given on the command line.
fn check_address(a: &str) -> CliResult<String> {
    let a = a.trim();
    let valid = sealpost_core::policy::is_plausible_address(a);
    if valid {
        Ok(sealpost_core::policy::normalize_address(a))
    } else {
        Err(CliError::new(
            format!("--to {a:?} is not an e-mail address"),
            "pass a bare address such as --to bob@example.com",
        ))
    }
}

/// Runs `encrypt`.
pub fn run(a: Args) -> CliResult<()> {
    let tenant = Tenant::load(&a.tenant.dir)?;
    let template = tenant.template(a.template.as_deref())?;
    let explicit =
        a.to.iter()
            .map(|t| check_address(t))
            .collect::<CliResult<Vec<_>>>()?;

    let mut raw = Vec::new();
    std::io::stdin().read_to_end(&mut raw).map_err(|e| {
        CliError::new(
            format!("cannot read standard input: {e}"),
            "pipe a message into sealpost encrypt",
        )
    })?;
    if !rfc5322::looks_like_mail(&raw) {
        return Err(CliError::new(
            "standard input is not an e-mail message (it does not start with a header field such as \"From: ...\")",
            "pipe an RFC 5322 message (.eml) into sealpost encrypt",
        ));
    }
    let addrs = rfc5322::addresses(&raw);
    let sender = addrs.from.ok_or_else(|| {
        CliError::new(
            "the message has no From address",
            "add a From: header; the sender is sealed into the policy",
        )
    })?;
    let recipients = if explicit.is_empty() {
        addrs.recipients
    } else {
        explicit
    };
    if recipients.is_empty() {
        return Err(CliError::new(
            "the message has no To, Cc or Bcc recipient",
            "add recipients to the message or pass --to ADDR",
        ));
    }

    let now = now();
    let policy = template.policy(&sender, &recipients, now);
    let protected = rfc5322::strip_bcc(&raw);
    let subject = if tenant.settings.show_subject {
        addrs.subject
    } else {
        None
    };
    let license_key = tenant.license_public_key()?;
    let signing_key = tenant.signing_key()?;
    let sealer = Sealer {
        tenant_id: &tenant.settings.tenant_id,
        key_service_url: &tenant.settings.key_service_url,
        license_key: &license_key,
        signing_key: &signing_key,
    };
    let envelope = sealpost_core::seal(
        &sealer,
        &policy,
        subject.as_deref(),
        now,
        &protected,
        &mut os_rng(),
    )
    .map_err(|e| {
        CliError::new(
            format!("cannot protect this message: {e}"),
            "shorten the offending field",
        )
    })?;
    let header = Envelope::parse(&envelope)
        .expect("a freshly sealed envelope parses")
        .header()
        .clone();
    let wrapper = wrap(&raw, &envelope, &header, &tenant.wrapper_settings());
    write_stdout(&wrapper)
}
