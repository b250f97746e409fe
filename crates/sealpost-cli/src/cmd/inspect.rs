//! `sealpost inspect`: the readable header as JSON; needs no key and verifies nothing.

use std::path::PathBuf;

use sealpost_core::Envelope;
use sealpost_core::envelope::FORMAT_VERSION;
use sealpost_core::mail::extract_envelope;
use serde::Serialize;

use super::{envelope_error, parse_error, read_input, write_stdout};
use crate::error::CliResult;

/// Arguments of `inspect`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Wrapper mail (.eml), message.html, or raw envelope; `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Serialize)]
struct Report<'a> {
    format_version: u8,
    #[serde(flatten)]
    header: &'a sealpost_core::Header,
    reference: String,
    created_utc: String,
    license_bytes: usize,
    payload_bytes: usize,
    signature: &'static str,
}

/// Runs `inspect`.
pub fn run(a: Args) -> CliResult<()> {
    let input = read_input(&a.file)?;
    let bytes = extract_envelope(&input).map_err(|e| envelope_error(&a.file, e))?;
    let env = Envelope::parse(&bytes).map_err(|e| parse_error(&a.file, e))?;
    let header = env.header();
    let created =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(header.created.min(253_402_300_799));
    let report = Report {
        format_version: FORMAT_VERSION,
        header,
        reference: header.message_id.reference(),
        created_utc: humantime::format_rfc3339_seconds(created).to_string(),
        license_bytes: env.license().len(),
        payload_bytes: env.payload_len(),
        signature: "not verified (inspect uses no keys; decrypt and the portal verify it)",
    };
    let mut json = serde_json::to_vec_pretty(&report).expect("the report serializes");
    json.push(b'\n');
    write_stdout(&json)
}
