//! The portal's runtime configuration: `config.json`, fetched from beside `index.html`.
//!
//! ```json
//! { "key_services": ["https://keys.example.com"] }
//! ```
//!
//! It names the key services (base URLs) this deployment of the portal talks to. An envelope
//! whose header names any other key service is refused before the portal sends anything
//! anywhere: the header is unauthenticated until the tenant's signing key (fetched from that
//! very key service) has verified it, so the list is what stops a forged envelope from steering
//! the browser to a server of the forger's choosing. Fetching the file is the browser glue's job
//! (`net`); this module only reads and compares.

use serde::Deserialize;

/// The parsed `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Allowed key-service base URLs.
    pub key_services: Vec<String>,
}

/// Why `config.json` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON of the expected shape.
    #[error("config.json is not valid: {0}")]
    Invalid(String),
    /// The list of key services is empty.
    #[error("config.json names no key service")]
    Empty,
}

impl PortalConfig {
    /// Reads `config.json`.
    pub fn parse(text: &str) -> Result<PortalConfig, ConfigError> {
        let config: PortalConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if config.key_services.is_empty() {
            return Err(ConfigError::Empty);
        }
        Ok(config)
    }

    /// Whether the key service at `url` (from an envelope header) is one this portal uses.
    pub fn allows(&self, url: &str) -> bool {
        let wanted = normalize_url(url);
        self.key_services.iter().any(|k| normalize_url(k) == wanted)
    }
}

/// Compares URLs the way the key service compares origins: scheme and host in lower case,
/// no trailing slash. The path, if any, is kept as written.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            format!(
                "{}://{}{}",
                scheme.to_ascii_lowercase(),
                host.to_ascii_lowercase(),
                path
            )
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let c = PortalConfig::parse(r#"{"key_services":["HTTP://127.0.0.1:8080/"]}"#).unwrap();
        assert!(c.allows("http://127.0.0.1:8080"));
        assert!(c.allows("http://127.0.0.1:8080/"));
        assert!(!c.allows("http://127.0.0.1:8081"));
        assert!(!c.allows("https://127.0.0.1:8080"));
        assert!(!c.allows("http://127.0.0.1:8080.evil.example"));
        assert_eq!(
            PortalConfig::parse(r#"{"key_services":[]}"#),
            Err(ConfigError::Empty)
        );
        assert!(matches!(
            PortalConfig::parse(r#"{"key_services":[],"x":1}"#),
            Err(ConfigError::Invalid(_))
        ));
        assert!(PortalConfig::parse("nope").is_err());
    }

    #[test]
    fn normalizes_only_scheme_and_host() {
        assert_eq!(
            normalize_url("HTTPS://Keys.Example.COM/Path/"),
            "https://keys.example.com/Path"
        );
        assert_eq!(normalize_url("not a url"), "not a url");
    }
}
