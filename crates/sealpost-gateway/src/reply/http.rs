//! `POST /v1/replies` over HTTP (axum): a thin handler around [`ReplyService::submit`].
//!
//! It checks what a browser request must carry (`X-Sealpost-Client: 1`, a JSON content type,
//! a bearer session), reads the body up to `reply_max_bytes` (413 `too_large` past it),
//! answers CORS preflights for the configured origins only, and writes every error as JSON
//! `{"error", "message"}` (503s with `Retry-After: 5`). Every answer is `Cache-Control:
//! no-store`. Decisions are [`ReplyService`]'s; nothing here logs a session or a body.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::{ReplyError, ReplyRequest, ReplyService};
use crate::keyservice::{Refusal, SessionToken};
use crate::metrics::Metrics;

/// The header every request must carry with the value `1`.
pub const CLIENT_HEADER: &str = "x-sealpost-client";

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER: &str = "5";

#[derive(Clone)]
struct AppState {
    service: Arc<ReplyService>,
    max_bytes: usize,
    trust_forwarded_for: bool,
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
    let mut r = json(
        status,
        ErrorBody {
            error: e.code(),
            message: e.to_string(),
        },
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
    }
    r
}

/// The reply endpoint's router: `POST /v1/replies`, CORS for `allowed_origins`, bodies up to
/// `max_bytes`, the client's address from `X-Forwarded-For` when `trust_forwarded_for`.
pub fn router(
    service: Arc<ReplyService>,
    allowed_origins: &[String],
    max_bytes: usize,
    trust_forwarded_for: bool,
) -> Router {
    let origins: Vec<HeaderValue> = allowed_origins
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
    Router::new()
        .route("/v1/replies", post(post_reply))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .with_state(AppState {
            service,
            max_bytes,
            trust_forwarded_for,
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
        Err(e) => {
            metrics.reply_refused(e.code());
            tracing::info!(code = e.code(), status = e.status(), "reply refused");
            error_response(&e)
        }
    }
}

async fn handle(s: &AppState, req: Request) -> Result<super::ReplyQueued, ReplyError> {
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
        return Err(ReplyError::TooLarge);
    }
    if headers.get(CLIENT_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Err(ReplyError::MissingClientHeader);
    }
    if !is_json(headers) {
        return Err(ReplyError::UnsupportedMediaType);
    }
    let session = bearer(headers).ok_or_else(|| ReplyError::Refused {
        status: 401,
        code: Refusal::NotSignedIn,
        message: "sign in first: the request needs Authorization: Bearer <session>".into(),
    })?;
    let bytes = axum::body::to_bytes(Body::new(body), s.max_bytes)
        .await
        .map_err(|_| ReplyError::TooLarge)?;
    let request: ReplyRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ReplyError::BadRequest(format!("the body is not a reply request: {e}")))?;
    drop(bytes);
    s.service.submit(session, peer, request).await
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
