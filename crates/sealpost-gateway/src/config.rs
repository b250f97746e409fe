//! `sealpost gateway` configuration: the `[gateway]` table of the same TOML file that holds the
//! mail-flow rules (`[organization]`, `[[templates]]`, `[[rules]]`, read by `sealpost-rules`)
//! and that `sealpost serve` may also read (`[keyservice]`).
//!
//! Loading collects every mistake in the file — in the gateway table and in the rules — each
//! with its line and column, and never returns a half-loaded configuration. Relative paths are
//! resolved against the directory of the file. This module does not read the tenant's keys:
//! it only says where the tenant directory is.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealpost_rules::{LoadError, RuleSet, parse_size};
use serde::Deserialize;
use toml::Spanned;

use crate::process::BrokenMime;
pub use crate::worker::Destination;

/// Default SMTP listening address (Postfix's customary content-filter port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10025";
/// Default metrics listening address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:10080";
/// Default largest accepted message.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// Default largest reply-endpoint request body: the whole original envelope (up to 25 MiB)
/// and the reply's, both base64 in JSON.
pub const DEFAULT_REPLY_MAX_BYTES: usize = 96 * 1024 * 1024;
/// Default most reply-endpoint requests handled at once.
pub const DEFAULT_REPLY_MAX_IN_FLIGHT: usize = 64;
/// Largest accepted `reply_max_in_flight`.
pub const MAX_REPLY_MAX_IN_FLIGHT: usize = 100_000;
/// Default longest time a reply request may take to arrive (96 MiB at about 2.7 Mbit/s).
pub const DEFAULT_REPLY_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// The whole file: only `[gateway]` is read here.
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(default)]
    gateway: Option<GatewayToml>,
}

/// The `[gateway]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatewayToml {
    listen: Option<Spanned<String>>,
    hostname: Option<String>,
    next_hop: Option<Spanned<String>>,
    spool_dir: Option<PathBuf>,
    tenant: Option<PathBuf>,
    max_message_size: Option<Spanned<String>>,
    max_recipients: Option<usize>,
    max_sessions: Option<usize>,
    metrics_listen: Option<Spanned<String>>,
    retry_first: Option<Spanned<String>>,
    retry_max: Option<Spanned<String>>,
    bounce_after: Option<Spanned<String>>,
    delivery_workers: Option<usize>,
    relay_first: Option<bool>,
    broken_mime: Option<Spanned<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    reply_listen: Option<Spanned<String>>,
    reply_from: Option<Spanned<String>>,
    reply_allowed_origins: Option<Vec<Spanned<String>>>,
    reply_max_bytes: Option<Spanned<String>>,
    reply_trust_forwarded_for: Option<bool>,
    reply_tls_cert: Option<Spanned<PathBuf>>,
    reply_tls_key: Option<Spanned<PathBuf>>,
    reply_max_in_flight: Option<Spanned<i64>>,
    reply_request_timeout: Option<Spanned<String>>,
    key_service_url: Option<Spanned<String>>,
    key_service_token_file: Option<Spanned<PathBuf>>,
}

/// The gateway's settings, checked, with paths resolved.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// SMTP listening address.
    pub listen: SocketAddr,
    /// Name in the greeting, in `Received`-style logs and as `Reporting-MTA` of bounces.
    pub hostname: String,
    /// Where accepted mail is relayed.
    pub next_hop: Destination,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// The tenant directory (`sealpost tenant init`) whose keys protect mail.
    pub tenant: PathBuf,
    /// Largest accepted message in bytes.
    pub max_message_size: usize,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Most SMTP sessions at once.
    pub max_sessions: usize,
    /// Prometheus `/metrics` and `/healthz` listening address.
    pub metrics_listen: SocketAddr,
    /// Delay before the first retry; it doubles up to `retry_max`.
    pub retry_first: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// Age after which undeliverable mail is bounced to its sender.
    pub bounce_after: Duration,
    /// Deliveries to the next hop at once.
    pub delivery_workers: usize,
    /// Relay each message to the next hop before answering its client; spool only what the
    /// next hop does not take ([`crate::relay_first`]). Default false.
    pub relay_first: bool,
    /// What to do with mail that is not valid MIME.
    pub broken_mime: BrokenMime,
    /// Certificate and key (PEM) for STARTTLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The reply endpoint (`reply_listen` and its keys), when configured.
    pub reply: Option<ReplyConfig>,
    /// The key service's base URL for the gateway endpoints; `None`: the tenant's
    /// `key_service_url`.
    pub key_service_url: Option<String>,
    /// The file holding the gateway token for the key service (`sealpost admin token create
    /// --role gateway`).
    pub key_service_token_file: Option<PathBuf>,
}

/// The reply endpoint's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyConfig {
    /// HTTP listening address (`reply_listen`).
    pub listen: SocketAddr,
    /// The wrapper's From address and the SMTP envelope sender of replies (`reply_from`).
    pub from: String,
    /// Origins allowed by CORS (`reply_allowed_origins`), as browsers send them.
    pub allowed_origins: Vec<String>,
    /// Largest request body in bytes (`reply_max_bytes`); larger requests get 413.
    pub max_bytes: usize,
    /// Take the browser's address from the last `X-Forwarded-For` entry
    /// (`reply_trust_forwarded_for`; only behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Certificate chain and private key (PEM) for HTTPS (`reply_tls_cert`, `reply_tls_key`);
    /// `None`: plain HTTP (behind a TLS-terminating proxy, or for development).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Most requests handled at once (`reply_max_in_flight`); more get 503 `overloaded`.
    pub max_in_flight: usize,
    /// Longest time a request may take to arrive once its header block is read
    /// (`reply_request_timeout`); a slower body gets 408 `request_timeout`.
    pub request_timeout: Duration,
}

/// A whole configuration: gateway settings and rules.
#[derive(Debug)]
pub struct Loaded {
    /// The `[gateway]` table.
    pub gateway: GatewayConfig,
    /// The mail-flow rules.
    pub rules: RuleSet,
}

/// One mistake in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, 0 when the mistake has no place (e.g. an unreadable file).
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        }
    }
}

impl From<LoadError> for ConfigError {
    fn from(e: LoadError) -> Self {
        ConfigError {
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }
}

/// Collects errors with positions in `src`.
struct Errors<'s> {
    src: &'s str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        let (line, column) = match span {
            Some(s) => {
                let before = &self.src[..s.start.min(self.src.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                (line, column)
            }
            None => (0, 0),
        };
        self.list.push(ConfigError {
            line,
            column,
            message: message.into(),
        });
    }

    fn addr(&mut self, v: &Option<Spanned<String>>, key: &str, default: &str) -> SocketAddr {
        let fallback = default.parse().expect("default addresses parse");
        match v {
            None => fallback,
            Some(s) => s.get_ref().parse().unwrap_or_else(|_| {
                self.at(
                    Some(s.span()),
                    format!(
                        "{key} = {:?} is not an address; write IP:PORT such as \"{default}\"",
                        s.get_ref()
                    ),
                );
                fallback
            }),
        }
    }

    fn duration(&mut self, v: &Option<Spanned<String>>, key: &str, default: Duration) -> Duration {
        match v {
            None => default,
            Some(s) => match humantime::parse_duration(s.get_ref()) {
                Ok(d) if !d.is_zero() => d,
                _ => {
                    self.at(
                        Some(s.span()),
                        format!(
                            "{key} = {:?} is not a duration; write e.g. \"30s\", \"10m\" or \"5days\"",
                            s.get_ref()
                        ),
                    );
                    default
                }
            },
        }
    }
}

/// Reads and checks `path`; `Err` lists every mistake found.
pub fn load(path: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            line: 0,
            column: 0,
            message: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_str(&text, base)
}

/// Checks configuration text; relative paths are taken from `base`.
pub fn load_str(text: &str, base: &Path) -> Result<Loaded, Vec<ConfigError>> {
    let mut errors = Errors {
        src: text,
        list: Vec::new(),
    };
    let rules = match RuleSet::load(text) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.list.extend(e.0.into_iter().map(ConfigError::from));
            None
        }
    };
    let table = match toml::from_str::<File>(text) {
        Ok(f) => f.gateway,
        Err(e) => {
            // Syntax errors are already reported by the rules loader, with their place.
            if rules.is_some() {
                errors.at(e.span(), format!("in [gateway]: {}", e.message().trim()));
            }
            return Err(finish(errors.list));
        }
    };
    let Some(t) = table else {
        errors.at(
            None,
            "the file has no [gateway] table; add one with at least next_hop and tenant (see docs/gateway.md)",
        );
        return Err(finish(errors.list));
    };
    let gateway = check(&t, base, &mut errors);
    match (gateway, rules) {
        (Some(gateway), Some(rules)) if errors.list.is_empty() => Ok(Loaded { gateway, rules }),
        _ => Err(finish(errors.list)),
    }
}

fn finish(mut list: Vec<ConfigError>) -> Vec<ConfigError> {
    list.sort_by_key(|e| (e.line, e.column));
    list.dedup();
    list
}

fn check(t: &GatewayToml, base: &Path, errors: &mut Errors<'_>) -> Option<GatewayConfig> {
    let listen = errors.addr(&t.listen, "listen", DEFAULT_LISTEN);
    let metrics_listen = errors.addr(&t.metrics_listen, "metrics_listen", DEFAULT_METRICS_LISTEN);
    let next_hop = match &t.next_hop {
        None => {
            errors.at(
                None,
                "[gateway] has no next_hop; add e.g. next_hop = \"smtp://127.0.0.1:10026\" (Postfix's reinjection port)",
            );
            None
        }
        Some(s) => match Destination::parse(s.get_ref(), base) {
            Ok(h) => Some(h),
            Err(e) => {
                errors.at(Some(s.span()), format!("next_hop: {e}"));
                None
            }
        },
    };
    let tenant = t.tenant.as_ref().map(|p| base.join(p));
    if tenant.is_none() {
        errors.at(
            None,
            "[gateway] has no tenant; add tenant = \"DIR\", a directory made by `sealpost tenant init`",
        );
    }
    let max_message_size = match &t.max_message_size {
        None => DEFAULT_MAX_MESSAGE_SIZE,
        Some(s) => match parse_size(s.get_ref()) {
            Some(n) if n >= 1024 && n <= usize::MAX as u64 => n as usize,
            _ => {
                errors.at(
                    Some(s.span()),
                    format!(
                        "max_message_size = {:?} is not a size of at least 1KB; write e.g. \"50MB\"",
                        s.get_ref()
                    ),
                );
                DEFAULT_MAX_MESSAGE_SIZE
            }
        },
    };
    let retry_first = errors.duration(&t.retry_first, "retry_first", Duration::from_secs(60));
    let retry_max = errors.duration(&t.retry_max, "retry_max", Duration::from_secs(3600));
    let bounce_after = errors.duration(
        &t.bounce_after,
        "bounce_after",
        Duration::from_secs(5 * 86400),
    );
    if retry_max < retry_first {
        errors.at(
            t.retry_max.as_ref().map(|s| s.span()),
            "retry_max must not be shorter than retry_first",
        );
    }
    let broken_mime = match t
        .broken_mime
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("protect", _)) => BrokenMime::Protect,
        Some(("reject", _)) => BrokenMime::Reject,
        Some((other, span)) => {
            errors.at(
                Some(span),
                format!(
                    "broken_mime = {other:?}: write \"protect\" (encrypt it whole) or \"reject\""
                ),
            );
            BrokenMime::Protect
        }
    };
    let tls = match (&t.tls_cert, &t.tls_key) {
        (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
        (None, None) => None,
        _ => {
            errors.at(
                None,
                "[gateway] needs both tls_cert and tls_key for STARTTLS, or neither",
            );
            None
        }
    };
    let mut positive = |v: Option<usize>, key: &str, default: usize| match v {
        Some(0) => {
            errors.at(None, format!("[gateway] {key} must be at least 1"));
            default
        }
        Some(n) => n,
        None => default,
    };
    let max_recipients = positive(t.max_recipients, "max_recipients", 1000);
    let max_sessions = positive(t.max_sessions, "max_sessions", 200);
    let delivery_workers = positive(t.delivery_workers, "delivery_workers", 16);
    let key_service_url = t.key_service_url.as_ref().and_then(|s| {
        check_http_url(s.get_ref())
            .map_err(|e| errors.at(Some(s.span()), format!("key_service_url: {e}")))
            .ok()
    });
    let key_service_token_file = t
        .key_service_token_file
        .as_ref()
        .map(|p| base.join(p.get_ref()));
    let reply = check_reply(t, base, errors);
    Some(GatewayConfig {
        listen,
        hostname: t.hostname.clone().unwrap_or_else(default_hostname),
        next_hop: next_hop?,
        spool_dir: base.join(t.spool_dir.as_deref().unwrap_or(Path::new("spool"))),
        tenant: tenant?,
        max_message_size,
        max_recipients,
        max_sessions,
        metrics_listen,
        retry_first,
        retry_max,
        bounce_after,
        delivery_workers,
        relay_first: t.relay_first.unwrap_or(false),
        broken_mime,
        tls,
        reply,
        key_service_url,
        key_service_token_file,
    })
}

/// The reply endpoint's keys; `None` without `reply_listen`.
fn check_reply(t: &GatewayToml, base: &Path, errors: &mut Errors<'_>) -> Option<ReplyConfig> {
    let listen_key = t.reply_listen.as_ref()?;
    let listen = errors.addr(&t.reply_listen, "reply_listen", "127.0.0.1:8090");
    let from = match &t.reply_from {
        None => {
            errors.at(
                Some(listen_key.span()),
                "reply_listen needs reply_from, the address replies are sent from; add e.g. reply_from = \"noreply@acme.example\"",
            );
            String::new()
        }
        Some(s) => {
            let v = s.get_ref().trim();
            if sealpost_core::policy::is_plausible_address(v)
                && !v.contains(['<', '>', '"', ',', ';'])
            {
                v.to_string()
            } else {
                errors.at(
                    Some(s.span()),
                    format!("reply_from = {:?} is not an e-mail address; write e.g. \"noreply@acme.example\"", s.get_ref()),
                );
                String::new()
            }
        }
    };
    if t.key_service_token_file.is_none() {
        errors.at(
            Some(listen_key.span()),
            "reply_listen needs key_service_token_file, a file holding a gateway token (`sealpost admin token create --role gateway`)",
        );
    }
    let mut allowed_origins = Vec::new();
    for o in t.reply_allowed_origins.iter().flatten() {
        match check_origin(o.get_ref()) {
            Ok(origin) => allowed_origins.push(origin),
            Err(e) => errors.at(Some(o.span()), format!("reply_allowed_origins: {e}")),
        }
    }
    let max_bytes = match &t.reply_max_bytes {
        None => DEFAULT_REPLY_MAX_BYTES,
        Some(s) => match parse_size(s.get_ref()) {
            Some(n) if n >= 1024 && n <= usize::MAX as u64 => n as usize,
            _ => {
                errors.at(
                    Some(s.span()),
                    format!(
                        "reply_max_bytes = {:?} is not a size of at least 1KB; write e.g. \"96MB\"",
                        s.get_ref()
                    ),
                );
                DEFAULT_REPLY_MAX_BYTES
            }
        },
    };
    let tls = match (&t.reply_tls_cert, &t.reply_tls_key) {
        (Some(c), Some(k)) => Some((base.join(c.get_ref()), base.join(k.get_ref()))),
        (None, None) => None,
        (Some(c), None) => {
            errors.at(
                Some(c.span()),
                "reply_tls_cert needs reply_tls_key, the certificate's private key (PEM); set both for HTTPS, or neither for plain HTTP",
            );
            None
        }
        (None, Some(k)) => {
            errors.at(
                Some(k.span()),
                "reply_tls_key needs reply_tls_cert, the certificate chain (PEM); set both for HTTPS, or neither for plain HTTP",
            );
            None
        }
    };
    let max_in_flight = match &t.reply_max_in_flight {
        None => DEFAULT_REPLY_MAX_IN_FLIGHT,
        Some(n) if (1..=MAX_REPLY_MAX_IN_FLIGHT as i64).contains(n.get_ref()) => {
            *n.get_ref() as usize
        }
        Some(n) => {
            errors.at(
                Some(n.span()),
                format!("reply_max_in_flight must be between 1 and {MAX_REPLY_MAX_IN_FLIGHT}"),
            );
            DEFAULT_REPLY_MAX_IN_FLIGHT
        }
    };
    let request_timeout = errors.duration(
        &t.reply_request_timeout,
        "reply_request_timeout",
        DEFAULT_REPLY_REQUEST_TIMEOUT,
    );
    Some(ReplyConfig {
        listen,
        from,
        allowed_origins,
        max_bytes,
        trust_forwarded_for: t.reply_trust_forwarded_for.unwrap_or(false),
        tls,
        max_in_flight,
        request_timeout,
    })
}

/// An `http://` or `https://` base URL without credentials, query or fragment, returned
/// without a trailing slash.
pub fn check_http_url(s: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| {
        format!("{s:?} is not a URL ({e}); write e.g. \"https://keys.acme.example\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{s:?} must be an http:// or https:// URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?} must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not have a query or a fragment"));
    }
    Ok(s.trim().trim_end_matches('/').to_string())
}

/// A web origin (`https://portal.acme.example`, with a port when not the default), returned
/// as browsers send it in `Origin`.
fn check_origin(s: &str) -> Result<String, String> {
    let hint = "write scheme://host[:port] such as \"https://portal.acme.example\"";
    let url =
        reqwest::Url::parse(s.trim()).map_err(|_| format!("{s:?} is not an origin; {hint}"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https")
        || origin != s.trim().trim_end_matches('/').to_ascii_lowercase()
    {
        return Err(format!(
            "{s:?} is not an origin (no path, query or user); {hint}"
        ));
    }
    Ok(origin)
}

/// The machine's host name, or `localhost`.
fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
