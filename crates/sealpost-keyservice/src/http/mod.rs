//! The key service's HTTP API (axum): routing, extraction, error mapping, CORS, limits,
//! metrics and the OpenAPI document. The logic lives in [`KeyService`]; every handler here
//! extracts its inputs, calls one service method and maps the result (docs/api.md).
//!
//! What this layer adds around the service:
//! - **Errors** are always JSON `{"error", "message"}` with a documented status
//!   ([`error::ERROR_CODES`]); axum's plain-text rejections never reach a client.
//! - **No simple-request CSRF**: every mutating call is a POST that must carry
//!   `Content-Type: application/json` and `X-Sealpost-Client: 1`, which a browser sends
//!   cross-origin only after a CORS preflight.
//! - **CORS** allows only the portal origins listed by some tenant (read from the store and
//!   cached for [`ORIGIN_CACHE_TTL`]) plus [`HttpConfig::extra_allowed_origins`].
//! - **Overload**: at most [`HttpConfig::max_in_flight`] API requests are handled at once; the
//!   next is answered 503 `overloaded` with Retry-After at once instead of queueing. A request
//!   taking longer than [`REQUEST_TIMEOUT`] is cut off with 408.
//! - **Bodies** larger than [`HttpConfig::max_body_bytes`] are refused with 413.
//! - **Caching**: every API answer is `Cache-Control: no-store` (sessions and shares travel
//!   in bodies).
//! - **The portal** (optional): the static bundle at `/` with its own security and cache
//!   headers ([`portal`]), and in demo mode the development mailbox at `/dev/mailbox`
//!   (`demo.rs`); both answer only what no API route matched.
//!
//! What it deliberately does not do: decide anything about sign-in, rights or keys (that is
//! the service), or log request bodies, passcodes, tokens or shares.

mod admin;
mod demo;
pub mod error;
pub mod extract;
mod gateway;
mod metrics;
mod middleware;
mod oidc;
mod openapi;
mod ops;
pub mod portal;
mod recipient;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::routing::{get, post};
use serde::Deserialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use demo::MAILBOX_DIR as DEMO_MAILBOX_DIR;
pub use error::{ApiError, ERROR_CODES, ErrorBody, ErrorCode};
pub use middleware::ORIGIN_CACHE_TTL;
pub use openapi::openapi_json;
pub use portal::{Portal, PortalError, PortalSettings};

use crate::service::KeyService;

/// The longest an API request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted request body in bytes (default 1 MiB).
    pub max_body_bytes: usize,
    /// API requests handled at once; more are refused with 503 (default 256).
    pub max_in_flight: usize,
    /// Origins allowed by CORS in addition to the tenants' `allowed_origins`.
    pub extra_allowed_origins: Vec<String>,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a proxy
    /// that sets it); otherwise the socket peer address is used.
    pub trust_forwarded_for: bool,
    /// The portal bundle served at `/` (set by `sealpost serve`; not read from a file).
    #[serde(skip)]
    pub portal: Option<Arc<Portal>>,
    /// Demo mode only: the directory of wrapper mails that `/dev/mailbox` lists, beside the
    /// passcode outbox. `None` (the default) means there is no `/dev/mailbox`.
    #[serde(skip)]
    pub demo_mailbox: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1 << 20,
            max_in_flight: 256,
            extra_allowed_origins: Vec::new(),
            trust_forwarded_for: false,
            portal: None,
            demo_mailbox: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    service: Arc<KeyService>,
    config: Arc<HttpConfig>,
    metrics: Arc<metrics::Metrics>,
}

/// The whole API as a router, ready for [`serve`] (or `oneshot` in tests).
pub fn router(service: Arc<KeyService>, config: HttpConfig) -> Router {
    let origins = Arc::new(middleware::Origins::new(
        service.clone(),
        &config.extra_allowed_origins,
    ));
    let state = AppState {
        service,
        config: Arc::new(config),
        metrics: Arc::new(metrics::Metrics::default()),
    };
    let api = Router::new()
        .route("/v1/tenants/{tenant_id}", get(recipient::tenant_info))
        .route("/v1/otp/start", post(recipient::otp_start))
        .route("/v1/otp/verify", post(recipient::otp_verify))
        .route("/v1/rewrap", post(recipient::rewrap))
        .route("/v1/oidc/start", post(oidc::oidc_start))
        .route("/v1/oidc/finish", post(oidc::oidc_finish))
        .route("/v1/admin/revoke", post(admin::revoke))
        .route("/v1/admin/messages/{message_id}/audit", get(admin::audit))
        .route(
            "/v1/gateway/replies/authorize",
            post(gateway::authorize_reply),
        )
        .route(
            "/v1/gateway/transport/rewrap",
            post(gateway::transport_rewrap),
        );
    let api = middleware::with_overload_limit(api, state.config.max_in_flight);
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi));
    // What no API route matches goes to the demo mailbox (only with --demo), then the
    // portal's files (when one is served), else the API's JSON `not_found`.
    let mut site = Router::new();
    if let Some(dir) = &state.config.demo_mailbox {
        tracing::warn!(
            dir = %dir.display(),
            "DEMO MODE: /dev/mailbox shows the passcode outbox IN CLEAR to anyone who can reach this address; never use --demo for real users"
        );
        let mailbox = demo::Mailbox::new(dir.clone(), state.service.store().clone());
        site = site.merge(demo::routes(mailbox));
    }
    let site = match &state.config.portal {
        Some(p) => {
            tracing::info!(dir = %p.dir().display(), config = p.config_json(), "serving the portal at /");
            let replies = portal::ReplyOrigins::new(state.service.clone());
            site.merge(portal::routes(p.clone(), Some(Arc::new(replies))))
        }
        None => site.fallback(error::not_found),
    };
    api.merge(ops)
        .fallback_service(site)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(middleware::cors(origins))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish. Client addresses come from the socket (see [`HttpConfig::trust_forwarded_for`]).
pub async fn serve<F>(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
