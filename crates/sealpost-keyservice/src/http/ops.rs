//! Operational endpoints: liveness, readiness, metrics and the OpenAPI document. They are
//! outside the overload limit, so probes and scrapes are answered while the API sheds load.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::error::{ApiError, UNAVAILABLE_RETRY_AFTER, code};
use super::openapi::openapi_json;

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`ok`.", body = String, content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`ok`: the database answers.", body = String, content_type = "text/plain"),
        (status = 503, description = "`unavailable`: the database does not answer.", body = super::ErrorBody),
    ))]
pub(super) async fn readyz(State(s): State<AppState>) -> Result<&'static str, ApiError> {
    match s.service.store().ping().await {
        Ok(()) => Ok("ok"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::new(code::UNAVAILABLE).retry_after(UNAVAILABLE_RETRY_AFTER))
        }
    }
}

/// Counters in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String,
        content_type = "text/plain")))]
pub(super) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], s.metrics.render())
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document.", body = Object)))]
pub(super) async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
