//! One module per command: argument struct and `run`. Commands read and write files and
//! streams; everything about the format is `sealpost-core`'s.

pub mod decrypt;
pub mod encrypt;
pub mod gateway;
pub mod inspect;
pub mod keyservice;
pub mod remote;
pub mod rules;
pub mod serve;
pub mod tenant_init;

use std::io::{Read, Write};
use std::path::Path;

use crate::error::{CliError, CliResult, io_error};

/// Reads a whole file, or stdin for `-`.
pub fn read_input(path: &Path) -> CliResult<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| {
            CliError::new(format!("cannot read standard input: {e}"), "check the pipe")
        })?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| io_error("read", path, e))
}

/// Writes the finished result to stdout in one go.
pub fn write_stdout(bytes: &[u8]) -> CliResult<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            CliError::new(
                format!("cannot write to standard output: {e}"),
                "check the pipe or redirection",
            )
        })
}

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The operating system's CSPRNG.
pub fn os_rng() -> rand_core::UnwrapErr<getrandom::SysRng> {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Explains an envelope that could not be found or parsed.
pub fn envelope_error(file: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::new(
        format!("{}: {e}", file.display()),
        "pass the wrapper mail (.eml) as received, or its message.html attachment",
    )
}

/// Explains an envelope that was found but cannot be read.
pub fn parse_error(file: &Path, e: sealpost_core::ParseError) -> CliError {
    match e {
        sealpost_core::ParseError::UnsupportedVersion(_) => CliError::new(
            format!("{}: {e}", file.display()),
            "upgrade sealpost to a release that reads this version",
        ),
        e => CliError::new(
            format!("{}: {e}", file.display()),
            "the file was cut short or altered; ask the sender for the original wrapper mail",
        ),
    }
}
