//! `POST /v1/replies` over HTTP (axum): a thin handler around [`ReplyService::submit`].
//!
//! It checks what a browser request must carry (`X-Sealpost-Client: 1`, a JSON content type,
//! a bearer session), reads the body up to `reply_max_bytes` (413 `too_large` past it) and
//! within `reply_request_timeout` (408 `request_timeout` past it), answers CORS preflights for
//! the configured origins only, handles at most `reply_max_in_flight` requests at once (503
//! `overloaded` with `Retry-After: 1` at once for the rest, never a queue), and writes every
//! error as JSON `{"error", "message"}` (other 503s with `Retry-After: 5`). Every answer is
//! `Cache-Control: no-store`. Decisions are [`ReplyService`]'s; nothing here logs a session or
//! a body. [`serve`] runs the router on a socket, over TLS when configured.
//!
//! The timeout bounds only what the client controls, the arrival of its request: once the body
//! is in, the key service call is bounded by its client's own timeouts and the hand-over to the
//! spool is never cut off, so a 408 always means that nothing was queued.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::{ReplyError, ReplyRequest, ReplyService};
use crate::config::ReplyConfig;
use crate::keyservice::{Refusal, SessionToken};
use crate::metrics::Metrics;

pub mod serve;

/// The header every request must carry with the value `1`.
pub const CLIENT_HEADER: &str = "x-sealpost-client";

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER: &str = "5";

/// Seconds a client is asked to wait after 503 `overloaded`.
const OVERLOADED_RETRY_AFTER: &str = "1";

#[derive(Clone)]
struct AppState {
    service: Arc<ReplyService>,
    max_bytes: usize,
    trust_forwarded_for: bool,
    request_timeout: Duration,
}

/// Why a request is refused: by [`ReplyService`], or by this layer on its own.
enum Failure {
    /// The service's refusal.
    Reply(ReplyError),
    /// The body did not arrive within `reply_request_timeout` (408 `request_timeout`).
    Timeout,
}

impl From<ReplyError> for Failure {
    fn from(e: ReplyError) -> Self {
        Failure::Reply(e)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
}

fn json(status: StatusCode, body: impl Serialize) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error_response(e: &ReplyError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_AFTER);
    refusal(status, e.code(), e.to_string(), retry_after)
}

/// A JSON error answer, with `Retry-After` when given.
fn refusal(
    status: StatusCode,
    code: &str,
    message: String,
    retry_after: Option<&'static str>,
) -> Response {
    let mut r = json(
        status,
        ErrorBody {
            error: code,
            message,
        },
    );
    if let Some(seconds) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    r
}

/// The answer to a request the in-flight limit turned away (tower's load shedding) or to any
/// other error of the limiting layers.
fn overloaded(metrics: &Metrics, err: &BoxError) -> Response {
    if err.is::<tower::load_shed::error::Overloaded>() {
        metrics.reply_refused("overloaded");
        refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the reply endpoint is at its limit of requests in flight; try again in a moment"
                .into(),
            Some(OVERLOADED_RETRY_AFTER),
        )
    } else {
        tracing::error!(error = %err, "the reply endpoint's limiting layer failed");
        refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the reply could not be handled; try again in a moment".into(),
            Some(RETRY_AFTER),
        )
    }
}

/// The reply endpoint's router for `cfg`: `POST /v1/replies`, CORS for `allowed_origins`,
/// bodies up to `max_bytes` arriving within `request_timeout`, at most `max_in_flight`
/// requests at once, the client's address from `X-Forwarded-For` when `trust_forwarded_for`.
pub fn router(service: Arc<ReplyService>, cfg: &ReplyConfig) -> Router {
    let origins: Vec<HeaderValue> = cfg
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(CLIENT_HEADER),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    let metrics = service.gateway.metrics.clone();
    // One semaphore for every route; preflights are answered by CORS outside the limit, and
    // the 503 carries CORS headers so that the portal can read it.
    let limit = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |err: BoxError| {
            let metrics = metrics.clone();
            async move { overloaded(&metrics, &err) }
        }))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(cfg.max_in_flight.max(1)));
    Router::new()
        .route("/v1/replies", post(post_reply))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(limit)
        .layer(cors)
        .with_state(AppState {
            service,
            max_bytes: cfg.max_bytes,
            trust_forwarded_for: cfg.trust_forwarded_for,
            request_timeout: cfg.request_timeout,
        })
}

async fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        ErrorBody {
            error: "not_found",
            message: "no such endpoint; replies go to POST /v1/replies".into(),
        },
    )
}

async fn method_not_allowed() -> Response {
    json(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorBody {
            error: "method_not_allowed",
            message: "use POST".into(),
        },
    )
}

/// The session from `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Option<SessionToken> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
        .then(|| SessionToken(token.to_string()))
}

/// The last address of `X-Forwarded-For` (the one the nearest proxy added).
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let v = headers.get_all("x-forwarded-for").iter().next_back()?;
    v.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

async fn post_reply(State(s): State<AppState>, req: Request) -> Response {
    let metrics = s.service.gateway.metrics.clone();
    match handle(&s, req).await {
        Ok(queued) => {
            Metrics::inc(&metrics.replies_accepted);
            json(StatusCode::ACCEPTED, queued)
        }
        Err(Failure::Reply(e)) => {
            metrics.reply_refused(e.code());
            tracing::info!(code = e.code(), status = e.status(), "reply refused");
            error_response(&e)
        }
        Err(Failure::Timeout) => {
            metrics.reply_refused("request_timeout");
            tracing::info!(
                code = "request_timeout",
                status = 408,
                "reply refused: the body came too slowly"
            );
            refusal(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request did not arrive within {}; nothing was queued",
                    humantime::format_duration(s.request_timeout)
                ),
                None,
            )
        }
    }
}

async fn handle(s: &AppState, req: Request) -> Result<super::ReplyQueued, Failure> {
    let deadline = tokio::time::Instant::now() + s.request_timeout;
    let (parts, body) = req.into_parts();
    let headers = &parts.headers;
    let socket = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let peer = if s.trust_forwarded_for {
        forwarded_for(headers).unwrap_or(socket)
    } else {
        socket
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_bytes as u64) {
        return Err(ReplyError::TooLarge.into());
    }
    if headers.get(CLIENT_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(ReplyError::MissingClientHeader.into());
    }
    if !is_json(headers) {
        return Err(ReplyError::UnsupportedMediaType.into());
    }
    let session = bearer(headers).ok_or_else(|| ReplyError::Refused {
        status: 401,
        code: Refusal::NotSignedIn,
        message: "sign in first: the request needs Authorization: Bearer <session>".into(),
    })?;
    let bytes =
        tokio::time::timeout_at(deadline, axum::body::to_bytes(Body::new(body), s.max_bytes))
            .await
            .map_err(|_| Failure::Timeout)?
            .map_err(|_| ReplyError::TooLarge)?;
    let request: ReplyRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ReplyError::BadRequest(format!("the body is not a reply request: {e}")))?;
    drop(bytes);
    Ok(s.service.submit(session, peer, request).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_read() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_for(&h), None);
        h.append(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.1, 203.0.113.9"),
        );
        assert_eq!(forwarded_for(&h), Some("203.0.113.9".parse().unwrap()));
        h.append("x-forwarded-for", HeaderValue::from_static("2001:db8::1"));
        assert_eq!(forwarded_for(&h), Some("2001:db8::1".parse().unwrap()));
        h.insert("x-forwarded-for", HeaderValue::from_static("junk"));
        assert_eq!(forwarded_for(&h), None);

        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  sps_abc "),
        );
        assert_eq!(bearer(&h).unwrap().0, "sps_abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&h).is_none());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/jsonp"),
        );
        assert!(!is_json(&h));
    }
}
