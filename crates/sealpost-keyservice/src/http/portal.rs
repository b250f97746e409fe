//! Serving the portal bundle (Trunk's `dist/`) at `/`, beside the API, with the portal's
//! security headers.
//!
//! What it serves:
//! - `/` and `/index.html`: the bundle's `index.html`, read from disk on every request, with a
//!   Content-Security-Policy that allows exactly the inline scripts of *that* file by their
//!   SHA-256 hashes (Trunk injects an inline module script that loads the wasm), so a rebuilt
//!   bundle is served correctly without a restart;
//! - `/config.json`: generated, `{"key_services": [...]}` — the key-service URLs the portal may
//!   talk to (this service's public URL, then the configured extras). A `config.json` inside
//!   the bundle directory is never served;
//! - every other path: the file of that name in the bundle directory (tower-http's
//!   `ServeDir`, which refuses `..` and answers 404 for what is not there). Paths under
//!   `/v1/` that no API route matched get the API's JSON `not_found`.
//!
//! Headers on every portal response: the CSP ([`content_security_policy`]; for `index.html`,
//! the page that makes the requests, `connect-src` also lists the origins of the tenants'
//! reply endpoints, [`ReplyOrigins`], so the portal can send encrypted replies),
//! `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, and `Cache-Control`:
//! file names carrying Trunk's content hash are cached for a year (`immutable`), everything
//! else (`index.html`, `config.json`, unhashed files, errors) is `no-cache`.
//!
//! What it deliberately does not do: set `Cross-Origin-Opener-Policy` (message.html opens the
//! portal with `window.open` and the two talk through `window.opener`), follow any portal
//! routing (the portal reads its input from the URL fragment, so there is no SPA fallback),
//! or compress (put a CDN or proxy in front for that). docs/portal.md ("Hosting") lists the
//! same headers for static hosting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::middleware::ORIGIN_CACHE_TTL;
use crate::service::{KeyService, TenantSettings};

/// What `sealpost serve` passes to [`Portal::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// The bundle directory (Trunk's `dist/`), holding `index.html`.
    pub dir: PathBuf,
    /// Key-service base URLs for `config.json`, this service's public URL first.
    pub key_services: Vec<String>,
}

/// Why the portal cannot be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PortalError {
    /// The bundle directory has no readable `index.html`.
    #[error(
        "no portal bundle in {dir}: cannot read index.html ({source}); build it with `scripts/portal.sh build`"
    )]
    NoIndex {
        /// The directory.
        dir: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A key-service URL is not an absolute http(s) URL with a host.
    #[error(
        "{0:?} is not a key-service URL (http:// or https:// with a host, e.g. https://keys.example.com)"
    )]
    BadKeyService(String),
    /// No key-service URL was given.
    #[error("the portal needs at least one key-service URL")]
    NoKeyService,
}

/// A loaded portal bundle: where it is and the headers derived from the configuration.
#[derive(Debug, PartialEq, Eq)]
pub struct Portal {
    dir: PathBuf,
    /// Origins of the key services, for `connect-src`.
    origins: Vec<String>,
    /// The body of `/config.json`.
    config_json: String,
    /// The CSP computed from `index.html` at start, used for every file but `index.html`.
    csp: HeaderValue,
}

impl Portal {
    /// Checks the settings and reads `index.html` once (a missing bundle fails here, at start).
    pub fn load(settings: PortalSettings) -> Result<Portal, PortalError> {
        if settings.key_services.is_empty() {
            return Err(PortalError::NoKeyService);
        }
        let mut urls = Vec::new();
        let mut origins = Vec::new();
        for s in &settings.key_services {
            let (url, origin) =
                key_service(s).ok_or_else(|| PortalError::BadKeyService(s.clone()))?;
            if !urls.contains(&url) {
                urls.push(url);
            }
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        let index = std::fs::read(settings.dir.join("index.html")).map_err(|source| {
            PortalError::NoIndex {
                dir: settings.dir.clone(),
                source,
            }
        })?;
        let csp = header_value(&content_security_policy(&index, &origins));
        let config_json = serde_json::json!({ "key_services": urls }).to_string();
        Ok(Portal {
            dir: settings.dir,
            origins,
            config_json,
            csp,
        })
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The body of `/config.json`.
    pub fn config_json(&self) -> &str {
        &self.config_json
    }

    /// The Content-Security-Policy sent with `index.html` as it is on disk now, allowing
    /// `connect-src` to the key services and to `reply_origins` (the tenants' reply
    /// endpoints, [`ReplyOrigins`]).
    pub fn index_csp(&self, index_html: &[u8], reply_origins: &[String]) -> String {
        let mut origins = self.origins.clone();
        for o in reply_origins {
            if !origins.contains(o) {
                origins.push(o.clone());
            }
        }
        content_security_policy(index_html, &origins)
    }
}

/// The URL `sealpost serve` calls itself when `public_url` is not configured:
/// `http://` and the listening address, with an unspecified address (`0.0.0.0`, `[::]`)
/// replaced by loopback.
pub fn default_public_url(listen: SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}")
}

/// A key-service URL normalized as `sealpost tenant init` writes it into envelopes (no
/// trailing `/`), and its origin; `None` if it is not an absolute http(s) URL with a host.
fn key_service(s: &str) -> Option<(String, String)> {
    let url = url::Url::parse(s.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    let normalized = url.as_str().trim_end_matches('/').to_string();
    Some((normalized, url.origin().ascii_serialization()))
}

/// The origin of a tenant's `reply_url` (`scheme://host[:port]`), or `None` when it is not an
/// absolute http(s) URL with a host (the portal then offers no reply either).
pub fn reply_origin(reply_url: &str) -> Option<String> {
    key_service(reply_url).map(|(_, origin)| origin)
}

/// How long a failed read of the tenants keeps the previous reply origins before trying again.
const REPLY_ORIGINS_RETRY: Duration = Duration::from_secs(5);

/// The origins of every served tenant's reply endpoint (`reply_url` in its settings), for the
/// portal page's `connect-src`: read from the store, cached for [`ORIGIN_CACHE_TTL`] like the
/// CORS origins (a tenant added or changed shows within that time, without a restart). If the
/// store cannot be read, the previous set stays in use and the next try is a few seconds later.
pub(crate) struct ReplyOrigins {
    service: Arc<KeyService>,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl ReplyOrigins {
    pub(crate) fn new(service: Arc<KeyService>) -> ReplyOrigins {
        ReplyOrigins {
            service,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    async fn origins(&self) -> Arc<Vec<String>> {
        let mut cache = self.cache.lock().await;
        if let Some((valid_until, set)) = cache.as_ref()
            && Instant::now() < *valid_until
        {
            return set.clone();
        }
        let (set, ttl) = match self.service.store().tenants().await {
            Ok(tenants) => {
                let mut set: Vec<String> = Vec::new();
                for origin in tenants
                    .iter()
                    .filter_map(|t| serde_json::from_str::<TenantSettings>(&t.settings_json).ok())
                    .filter_map(|s| s.reply_url)
                    .filter_map(|u| reply_origin(&u))
                {
                    if !set.contains(&origin) {
                        set.push(origin);
                    }
                }
                (Arc::new(set), ORIGIN_CACHE_TTL)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the tenants' reply URLs; keeping the previous set");
                let stale = cache
                    .as_ref()
                    .map(|(_, set)| set.clone())
                    .unwrap_or_default();
                (stale, REPLY_ORIGINS_RETRY)
            }
        };
        *cache = Some((Instant::now() + ttl, set.clone()));
        set
    }
}

/// The portal's Content-Security-Policy for an `index.html` and the origins it may connect to
/// (key services, reply endpoints).
///
/// The HTML body of a mail is shown in a sandboxed `srcdoc` iframe, which inherits this
/// policy (on top of the frame's own, stricter `<meta>` policy). So `style-src` includes
/// `'unsafe-inline'` (mail styles are inline attributes; the portal's own CSS is a file), and
/// `img-src` includes `http:` and `https:`, so that remote images load once the recipient
/// chooses "load remote images" (until then the frame's policy is `img-src data:` and the
/// sanitizer has removed them). Nothing else can leave: no `connect-src` beyond the key
/// services and the reply endpoints in `connect_origins`, no fonts, frames, objects or forms
/// from elsewhere.
pub fn content_security_policy(index_html: &[u8], connect_origins: &[String]) -> String {
    let mut scripts = String::new();
    for s in inline_elements(index_html, b"script") {
        scripts.push(' ');
        scripts.push_str(&sha256_source(s));
    }
    let mut connect = String::new();
    for o in connect_origins {
        connect.push(' ');
        connect.push_str(o);
    }
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{scripts}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https: http:; font-src 'self'; \
         frame-src 'self' blob: data:; connect-src 'self'{connect}; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
    )
}

/// `'sha256-…'`, the CSP source expression for exactly these bytes.
pub(crate) fn sha256_source(bytes: &[u8]) -> String {
    format!("'sha256-{}'", B64.encode(Sha256::digest(bytes)))
}

/// The contents of the inline `<NAME>` elements of an HTML document (for `script`: those
/// without a `src` attribute), exactly as the browser hashes them: the bytes between the end
/// of the start tag and the first `</NAME` after it. Names are matched ignoring ASCII case.
/// Comments are not skipped, so a commented-out element only adds a hash that matches nothing.
pub(crate) fn inline_elements<'a>(html: &'a [u8], name: &[u8]) -> Vec<&'a [u8]> {
    let lower = html.to_ascii_lowercase();
    let open: Vec<u8> = [b"<".as_slice(), name].concat();
    let close: Vec<u8> = [b"</".as_slice(), name].concat();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(start) = find(&lower[at..], &open).map(|i| at + i) {
        let after_name = start + open.len();
        at = after_name;
        // `<scripts` or `<script-x` is another element.
        match lower.get(after_name) {
            Some(c) if c.is_ascii_whitespace() || *c == b'>' || *c == b'/' => {}
            _ => continue,
        }
        let Some(tag_end) = find(&lower[after_name..], b">").map(|i| after_name + i) else {
            break;
        };
        let attributes = &lower[after_name..tag_end];
        let Some(end) = find(&lower[tag_end + 1..], &close).map(|i| tag_end + 1 + i) else {
            break;
        };
        if !(name == b"script" && has_attribute(attributes, b"src")) {
            found.push(&html[tag_end + 1..end]);
        }
        at = end + close.len();
    }
    found
}

/// Whether a (lowercased) attribute list has the attribute `name` (`name`, `name=…`).
fn has_attribute(attributes: &[u8], name: &[u8]) -> bool {
    let mut i = 0;
    let mut quote = None;
    while i < attributes.len() {
        let c = attributes[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None => {
                let starts_token = i == 0 || attributes[i - 1].is_ascii_whitespace();
                if starts_token && attributes[i..].starts_with(name) {
                    match attributes.get(i + name.len()) {
                        None | Some(b'=') | Some(b'/') => return true,
                        Some(c) if c.is_ascii_whitespace() => return true,
                        Some(_) => {}
                    }
                }
            }
        }
        i += 1;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header_value(s: &str) -> HeaderValue {
    // Every part is ASCII: hashes are base64, origins are ASCII-serialized.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// Whether a file name carries Trunk's content hash (`name-<16+ hex digits>…`), so its
/// content never changes under that name.
fn is_hashed(file_name: &str) -> bool {
    file_name.split('-').skip(1).any(|part| {
        part.bytes()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count()
            >= 16
    })
}

/// What the portal's handlers share.
#[derive(Clone)]
struct Site {
    portal: Arc<Portal>,
    /// The tenants' reply endpoints (`None`: no tenants to read, only the key services).
    replies: Option<Arc<ReplyOrigins>>,
}

/// The portal's routes as one service for the router's fallback: `/`, `/index.html`,
/// `/config.json` and the bundle's files, each answer with the portal's headers.
/// `replies` adds the tenants' reply endpoints to `index.html`'s `connect-src`.
pub(crate) fn routes(portal: Arc<Portal>, replies: Option<Arc<ReplyOrigins>>) -> Router {
    let router = Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/config.json", get(config_json))
        .fallback(static_file)
        .with_state(Site { portal, replies });
    page_headers(router).layer(SetResponseHeaderLayer::if_not_present(
        CACHE_CONTROL,
        NO_CACHE,
    ))
}

/// Adds what every page this service renders for a browser carries: `Referrer-Policy:
/// no-referrer` and `X-Content-Type-Options: nosniff`.
pub(crate) fn page_headers(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

async fn index(State(site): State<Site>) -> Response {
    let p = &site.portal;
    match tokio::fs::read(p.dir.join("index.html")).await {
        Ok(html) => {
            let replies = match &site.replies {
                Some(r) => r.origins().await,
                None => Arc::default(),
            };
            let csp = header_value(&p.index_csp(&html, &replies));
            (
                [
                    (
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/html; charset=utf-8"),
                    ),
                    (CONTENT_SECURITY_POLICY, csp),
                    (CACHE_CONTROL, NO_CACHE),
                ],
                html,
            )
                .into_response()
        }
        Err(e) => {
            tracing::warn!(dir = %p.dir.display(), error = %e, "portal index.html cannot be read");
            plain(
                StatusCode::NOT_FOUND,
                &p.csp,
                "The portal is not built here.\n",
            )
        }
    }
}

async fn config_json(State(Site { portal: p, .. }): State<Site>) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (CONTENT_SECURITY_POLICY, p.csp.clone()),
            (CACHE_CONTROL, NO_CACHE),
        ],
        p.config_json.clone(),
    )
        .into_response()
}

async fn static_file(State(Site { portal: p, .. }): State<Site>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/v1" || path.starts_with("/v1/") {
        // The API's own answer, with the API's caching.
        let mut res = super::error::not_found().await.into_response();
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    let mut res = match ServeDir::new(&p.dir)
        .append_index_html_on_directories(false)
        .oneshot(req.map(Body::new))
        .await
    {
        Ok(res) => res.map(Body::new),
        Err(never) => match never {},
    };
    let status = res.status();
    if status == StatusCode::NOT_FOUND {
        return plain(StatusCode::NOT_FOUND, &p.csp, "Not found.\n");
    }
    let headers = res.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, p.csp.clone());
    let file_name = path.rsplit('/').next().unwrap_or_default();
    let cache =
        if (status.is_success() || status == StatusCode::NOT_MODIFIED) && is_hashed(file_name) {
            IMMUTABLE
        } else {
            NO_CACHE
        };
    headers.insert(CACHE_CONTROL, cache);
    res
}

fn plain(status: StatusCode, csp: &HeaderValue, text: &'static str) -> Response {
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, csp.clone()),
            (CACHE_CONTROL, NO_CACHE),
        ],
        text,
    )
        .into_response()
}

#[cfg(test)]
#[path = "portal_tests.rs"]
mod tests;
