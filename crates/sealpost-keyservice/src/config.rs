//! `sealpost serve` configuration: a TOML file (`[keyservice]` table; `sealpost gateway` reads
//! its `[gateway]` table and the rules from the same file) overlaid by command-line flags and the environment.
//!
//! Loading collects every problem before failing, so an operator fixes the file in one go.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::daemon::DEFAULT_OUTBOX_RETENTION_SECS;
use crate::delivery::{DEFAULT_FROM, DeliveryConfig, SmtpSettings};
use crate::oidc::{OidcProvider, OidcProviderToml, check_providers};
use crate::otp::OtpLimits;
use crate::service::Limits;
use crate::session::SessionLimits;

/// Environment variable that may hold the key-encryption key (base64 of 32 bytes).
pub const KEK_ENV: &str = "SEALPOST_KEK";

/// Environment variable that may hold the SMTP relay URL (it may contain a password).
pub const SMTP_URL_ENV: &str = "SEALPOST_SMTP_URL";

/// The whole file; tables other than `[keyservice]` belong to other commands.
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    keyservice: Option<KeyServiceToml>,
}

/// The database pool's size when `max_connections` is not set: two connections per core of
/// this machine, at least 4 and at most 16. Each query holds a connection for a fraction of a
/// millisecond, so more connections than the cores can serve only add processes (on a
/// co-located PostgreSQL) or threads (SQLite) that compete with the requests for the cores:
/// on the 2-core benchmark machine 4 connections gave PostgreSQL a shorter tail than 16
/// (docs/benchmarks.md, "Key service: rewrap").
pub fn default_max_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores.saturating_mul(2))
        .unwrap_or(u32::MAX)
        .clamp(4, 16)
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
    /// Database connections per instance (default: [`default_max_connections`]).
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
    /// The portal bundle (Trunk's `dist/`) served at `/`; default `./dist` if it holds an
    /// `index.html`.
    pub portal_dir: Option<PathBuf>,
    /// This service's base URL as browsers reach it, first in the portal's `config.json`;
    /// default `http://` and the listening address.
    pub public_url: Option<String>,
    /// More key-service URLs for the portal's `config.json`, after `public_url`.
    #[serde(default)]
    pub portal_key_services: Vec<String>,
    /// SMTP relay for passcode mail (`smtp://…`, `smtps://…`); none keeps mail in the outbox.
    pub smtp_url: Option<String>,
    /// Sender of passcode mail (default [`DEFAULT_FROM`]).
    pub smtp_from: Option<String>,
    /// Seconds after which undelivered passcode mail is given up (default a day).
    pub smtp_give_up_secs: Option<i64>,
    /// Seconds after which outbox mail is deleted whatever its state (default 7 days).
    pub outbox_retention_secs: Option<i64>,
    /// OpenID Connect providers recipients may sign in with (`[[keyservice.oidc]]`,
    /// docs/oidc.md).
    #[serde(default)]
    pub oidc: Vec<OidcProviderToml>,
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

impl KeyServiceToml {
    /// The OpenID Connect providers, checked; a relative `client_secret_file` is read from
    /// `base`, or the current directory (as every path of the file). Every problem is listed.
    pub fn oidc_providers(&self, base: Option<&Path>) -> Result<Vec<OidcProvider>, Vec<String>> {
        check_providers(&self.oidc, base)
    }

    /// The delivery settings if `smtp_url` is set, checked; every problem is listed.
    pub fn delivery(&self) -> Result<Option<DeliveryConfig>, Vec<String>> {
        let mut errors = Vec::new();
        let give_up = self
            .smtp_give_up_secs
            .unwrap_or(crate::delivery::DEFAULT_GIVE_UP_SECS as i64);
        if !(60..=self.retention()).contains(&give_up) {
            errors.push(format!(
                "smtp_give_up_secs = {give_up} must be between 60 and outbox_retention_secs"
            ));
        }
        if let Err(e) = self.outbox_retention() {
            errors.extend(e);
        }
        let Some(url) = &self.smtp_url else {
            return if errors.is_empty() {
                Ok(None)
            } else {
                Err(errors)
            };
        };
        let from = self.smtp_from.as_deref().unwrap_or(DEFAULT_FROM);
        match SmtpSettings::new(url, from) {
            Ok(smtp) if errors.is_empty() => {
                let mut config = DeliveryConfig::new(smtp);
                config.give_up_after = std::time::Duration::from_secs(give_up.unsigned_abs());
                Ok(Some(config))
            }
            Ok(_) => Err(errors),
            Err(e) => {
                errors.push(e.to_string());
                Err(errors)
            }
        }
    }

    /// How long outbox mail is kept at most, checked (at least an hour).
    pub fn outbox_retention(&self) -> Result<i64, Vec<String>> {
        let secs = self.retention();
        if secs < 3600 {
            return Err(vec![format!(
                "outbox_retention_secs = {secs} must be at least 3600"
            )]);
        }
        Ok(secs)
    }

    fn retention(&self) -> i64 {
        self.outbox_retention_secs
            .unwrap_or(DEFAULT_OUTBOX_RETENTION_SECS)
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

    #[test]
    fn delivery_settings() {
        let none = KeyServiceToml::default();
        assert!(none.delivery().unwrap().is_none());
        assert_eq!(none.outbox_retention(), Ok(7 * 24 * 3600));
        let c = KeyServiceToml {
            smtp_url: Some("smtp://user:secret@127.0.0.1:2525".into()),
            smtp_give_up_secs: Some(7200),
            ..KeyServiceToml::default()
        };
        let d = c.delivery().unwrap().unwrap();
        assert_eq!(d.give_up_after.as_secs(), 7200);
        assert_eq!(d.smtp.relay(), "smtp://127.0.0.1:2525");
        assert_eq!(d.smtp.from().to_string(), DEFAULT_FROM);
        let bad = KeyServiceToml {
            smtp_url: Some("imap://user:secret@host".into()),
            smtp_from: Some("nobody".into()),
            smtp_give_up_secs: Some(10),
            outbox_retention_secs: Some(60),
            ..KeyServiceToml::default()
        };
        let errors = bad.delivery().unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().all(|e| !e.contains("secret")), "{errors:?}");
    }
}

#[cfg(test)]
mod pool_size_tests {
    #[test]
    fn the_default_pool_follows_the_cores_within_bounds() {
        let n = super::default_max_connections();
        assert!((4..=16).contains(&n), "{n}");
        let cores = std::thread::available_parallelism().map_or(2, |c| c.get());
        assert_eq!(n as usize, (cores * 2).clamp(4, 16));
    }
}
