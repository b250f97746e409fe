//! Tenant administration over HTTP, authorized by a tenant admin token
//! (`sealpost admin token create`): revoke a message, read its audit trail.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, Bearer, ClientIp};
use super::openapi::{AuditErrors, ClientMarker, RevokeErrors};
use crate::store::AuditRow;

/// The message to revoke.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The message id, 32 hex digits (from `sealpost inspect` or the audit log).
    #[schema(
        example = "00112233445566778899aabbccddeeff",
        pattern = "^[0-9A-Fa-f]{32}$"
    )]
    message_id: String,
}

/// The outcome of a revocation.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeResponse {
    /// True if this call revoked the message, false if it was revoked already.
    revoked: bool,
}

/// Revoke a message of the token's tenant: from now on no share B is released for it.
#[utoipa::path(post, path = "/v1/admin/revoke", tag = "admin", request_body = RevokeRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    security(("admin" = [])),
    responses((status = 200, description = "The message is revoked.", body = RevokeResponse), RevokeErrors))]
pub(super) async fn revoke(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    bearer: Bearer,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<Json<RevokeResponse>, ApiError> {
    let revoked = s
        .service
        .revoke(bearer.token(), &req.message_id, ip)
        .await?;
    Ok(Json(RevokeResponse { revoked }))
}

/// The audit trail of one message, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditResponse {
    /// The events.
    events: Vec<AuditEvent>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Increasing id.
    id: i64,
    /// When it happened, Unix seconds.
    time: i64,
    /// What happened: `otp_sent`, `otp_not_sent_not_recipient`, `otp_verified`,
    /// `otp_failed`, `share_released`, `rewrap_refused`, `revoked`, `reply_authorized`,
    /// `reply_refused`, `transport_released`, `transport_refused`.
    event: String,
    /// The recipient address, if any.
    email: Option<String>,
    /// The message id.
    message_id: Option<String>,
    /// The client's IP address, if known.
    client_ip: Option<String>,
    /// Detail: a refusal reason, the template, attempt counts.
    detail: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(a: AuditRow) -> AuditEvent {
        AuditEvent {
            id: a.id,
            time: a.time,
            event: a.event,
            email: a.email,
            message_id: a.message_id,
            client_ip: a.client_ip,
            detail: a.detail,
        }
    }
}

/// List the audit events of a message of the token's tenant.
#[utoipa::path(get, path = "/v1/admin/messages/{message_id}/audit", tag = "admin",
    params(("message_id" = String, Path, description = "The message id, 32 hex digits.",
        pattern = "^[0-9A-Fa-f]{32}$", example = "00112233445566778899aabbccddeeff")),
    security(("admin" = [])),
    responses((status = 200, description = "The events, oldest first.", body = AuditResponse), AuditErrors))]
pub(super) async fn audit(
    State(s): State<AppState>,
    bearer: Bearer,
    ApiPath(message_id): ApiPath<String>,
) -> Result<Json<AuditResponse>, ApiError> {
    let rows = s.service.message_audit(bearer.token(), &message_id).await?;
    Ok(Json(AuditResponse {
        events: rows.into_iter().map(AuditEvent::from).collect(),
    }))
}
