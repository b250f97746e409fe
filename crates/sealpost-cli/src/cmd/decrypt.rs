//! `sealpost decrypt`: the tenant's own recovery path (compliance, eDiscovery), using its
//! private keys directly. Verifies the signature before writing a single byte.

use std::path::PathBuf;

use sealpost_core::mail::extract_envelope;
use sealpost_core::{Envelope, OpenError, open_with_tenant_keys};

use super::{envelope_error, parse_error, read_input, write_stdout};
use crate::TenantArg;
use crate::error::{CliError, CliResult};
use crate::tenant::Tenant;

/// Arguments of `decrypt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub tenant: TenantArg,
    /// Wrapper mail (.eml), message.html, or raw envelope; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Runs `decrypt`.
pub fn run(a: Args) -> CliResult<()> {
    let tenant = Tenant::load(&a.tenant.dir)?;
    let input = read_input(&a.file)?;
    let bytes = extract_envelope(&input).map_err(|e| envelope_error(&a.file, e))?;
    let env = Envelope::parse(&bytes).map_err(|e| parse_error(&a.file, e))?;
    let license_key = tenant.license_secret_key(&env.header().license_key_id)?;
    let opened = open_with_tenant_keys(
        &env,
        &tenant.verifying_keys()?,
        license_key.as_slice(),
    )
    .map_err(|e| match e {
        OpenError::CannotOpen => CliError::new(
            format!(
                "{}: {e} (it was sealed by tenant {:?})",
                a.file.display(),
                env.header().tenant_id
            ),
            "use the --tenant directory of the organization that sent it",
        ),
        _ => CliError::new(
            format!("{}: {e}", a.file.display()),
            "it was altered or cut short in transit; ask the sender for the original wrapper mail",
        ),
    })?;
    write_stdout(&opened.plaintext)
}
