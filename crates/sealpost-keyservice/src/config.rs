//! `sealpost serve` configuration: a TOML file (`[keyservice]` table; the gateway will read
//! its own table from the same file) overlaid by command-line flags and the environment.
//!
//! Loading collects every problem before failing, so an operator fixes the file in one go.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::otp::OtpLimits;
use crate::service::Limits;
use crate::session::SessionLimits;

/// Environment variable that may hold the key-encryption key (base64 of 32 bytes).
pub const KEK_ENV: &str = "SEALPOST_KEK";

/// The whole file; tables other than `[keyservice]` belong to other commands.
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    keyservice: Option<KeyServiceToml>,
}

/// The `[keyservice]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyServiceToml {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// `postgres://…` to use PostgreSQL instead of SQLite.
    pub database_url: Option<String>,
    /// File holding the key-encryption key (base64).
    pub kek_file: Option<PathBuf>,
    /// Database connections per instance.
    pub max_connections: Option<u32>,
    /// Tenant directories (`sealpost tenant init`) to load at start.
    #[serde(default)]
    pub tenants: Vec<PathBuf>,
    /// Requests per client IP per minute on sign-in and rewrap.
    pub per_ip_per_minute: Option<u32>,
    /// Passcode lifetime in seconds (at most 600).
    pub passcode_lifetime_secs: Option<i64>,
    /// Session idle timeout in seconds.
    pub session_idle_secs: Option<i64>,
    /// Session absolute lifetime in seconds.
    pub session_absolute_secs: Option<i64>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Requests handled at once before answering 503.
    pub max_in_flight: Option<usize>,
    /// Browser origins allowed besides the tenants' own portal origins.
    #[serde(default)]
    pub extra_allowed_origins: Vec<String>,
    /// Take the client IP from X-Forwarded-For (only behind a trusted proxy).
    #[serde(default)]
    pub trust_forwarded_for: bool,
}

/// Reads the `[keyservice]` table of a config file (absent table: all defaults).
pub fn read_file(path: &Path) -> Result<KeyServiceToml, Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![format!("cannot read {}: {e}", path.display())])?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
            .map_or(String::new(), |l| format!(" (line {l})"));
        vec![format!("{}{line}: {}", path.display(), e.message())]
    })?;
    Ok(file.keyservice.unwrap_or_default())
}

impl KeyServiceToml {
    /// The limits, checked; every problem is listed.
    pub fn limits(&self) -> Result<Limits, Vec<String>> {
        let mut errors = Vec::new();
        let otp = OtpLimits {
            lifetime_secs: self.passcode_lifetime_secs.unwrap_or(600),
            ..OtpLimits::default()
        };
        if !(60..=600).contains(&otp.lifetime_secs) {
            errors.push(format!(
                "passcode_lifetime_secs = {} must be between 60 and 600",
                otp.lifetime_secs
            ));
        }
        let session = SessionLimits {
            idle_secs: self
                .session_idle_secs
                .unwrap_or(SessionLimits::default().idle_secs),
            absolute_secs: self
                .session_absolute_secs
                .unwrap_or(SessionLimits::default().absolute_secs),
        };
        if session.idle_secs < 60
            || session.absolute_secs < session.idle_secs
            || session.absolute_secs > 7 * 86400
        {
            errors.push("session timeouts must satisfy 60 <= session_idle_secs <= session_absolute_secs <= 604800".into());
        }
        for o in &self.extra_allowed_origins {
            if !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/') {
                errors.push(format!(
                    "extra_allowed_origins: {o:?} is not an origin like https://portal.example.com"
                ));
            }
        }
        if errors.is_empty() {
            Ok(Limits {
                otp,
                session,
                per_ip_per_minute: self.per_ip_per_minute.unwrap_or(120),
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sealpost.toml");
        std::fs::write(&p, "[keyservice]\nlisten = \"127.0.0.1:9000\"\npasscode_lifetime_secs = 900\nextra_allowed_origins = [\"portal\"]\n[gateway]\nanything = 1\n").unwrap();
        let c = read_file(&p).unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:9000".parse().unwrap()));
        let errors = c.limits().unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        std::fs::write(&p, "[keyservice]\nlisten = 5\n").unwrap();
        let e = read_file(&p).unwrap_err();
        assert!(e[0].contains("line 2"), "{e:?}");
        std::fs::write(&p, "[keyservice]\nlisen = \"x\"\n").unwrap();
        assert!(read_file(&p).unwrap_err()[0].contains("unknown field"));
    }
}
