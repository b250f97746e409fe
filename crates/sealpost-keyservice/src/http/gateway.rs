//! The mail gateway's endpoints, authorized by a gateway token (`Authorization: Bearer spg_…`):
//! reply authorization and transport decryption. Each handler extracts, calls one
//! [`KeyService`](crate::service::KeyService) method and maps the result; the checks, their
//! order and the audit records are the service's (`service/gateway.rs`).

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, B64, Bearer};
use super::openapi::{ClientMarker, ReplyAuthorizeErrors, TransportRewrapErrors};
use super::recipient::RewrapResponse;
use crate::service::{ReplyAuthorized, ReplyKind, ReplyRequest, TransportRequest};

/// What kind of answer a reply is, and so which right it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKindName {
    /// To the original sender; needs `reply`.
    Reply,
    /// To the original sender and recipients; needs `reply_all`.
    ReplyAll,
    /// To new addresses; needs `forward`.
    Forward,
}

impl From<ReplyKindName> for ReplyKind {
    fn from(k: ReplyKindName) -> ReplyKind {
        match k {
            ReplyKindName::Reply => ReplyKind::Reply,
            ReplyKindName::ReplyAll => ReplyKind::ReplyAll,
            ReplyKindName::Forward => ReplyKind::Forward,
        }
    }
}

impl From<ReplyKind> for ReplyKindName {
    fn from(k: ReplyKind) -> ReplyKindName {
        match k {
            ReplyKind::Reply => ReplyKindName::Reply,
            ReplyKind::ReplyAll => ReplyKindName::ReplyAll,
            ReplyKind::Forward => ReplyKindName::Forward,
        }
    }
}

/// An envelope's header and license.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeParts {
    /// The envelope's encoded header, standard base64.
    #[schema(value_type = String, format = Byte)]
    header: B64,
    /// The envelope's license, standard base64.
    #[schema(value_type = String, format = Byte)]
    license: B64,
}

/// A reply to authorize: the recipient's session and both envelopes. (No `Debug`: it holds
/// a session token.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyAuthorizeRequest {
    /// The recipient's session token (`sps_…`), as the portal sent it to the gateway.
    session: String,
    /// Reply, reply-all or forward.
    kind: ReplyKindName,
    /// The browser's IP address, for the audit log.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "203.0.113.9")]
    client_ip: Option<IpAddr>,
    /// The message answered.
    original: EnvelopeParts,
    /// The reply, sealed in the browser.
    reply: EnvelopeParts,
}

/// An authorized reply: who sends it, to whom.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplyAuthorizeResponse {
    /// The signed-in address: the reply's sender.
    submitter: String,
    /// The reply's recipients, normalized, each once.
    recipients: Vec<String>,
    /// The original message's sender.
    original_sender: String,
    /// The original message id, 32 hex digits.
    original_message_id: String,
    /// The reply's message id, 32 hex digits.
    reply_message_id: String,
    /// The kind, as asked.
    kind: ReplyKindName,
}

impl From<ReplyAuthorized> for ReplyAuthorizeResponse {
    fn from(r: ReplyAuthorized) -> ReplyAuthorizeResponse {
        ReplyAuthorizeResponse {
            submitter: r.submitter,
            recipients: r.recipients,
            original_sender: r.original_sender,
            original_message_id: r.original_message_id,
            reply_message_id: r.reply_message_id,
            kind: r.kind.into(),
        }
    }
}

/// Authorize an encrypted reply, reply-all or forward sealed in a recipient's browser.
#[utoipa::path(post, path = "/v1/gateway/replies/authorize", tag = "gateway",
    request_body = ReplyAuthorizeRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    security(("gateway" = [])),
    responses((status = 200, description = "The reply may be sent.", body = ReplyAuthorizeResponse),
        ReplyAuthorizeErrors))]
pub(super) async fn authorize_reply(
    State(s): State<AppState>,
    bearer: Bearer,
    ApiJson(req): ApiJson<ReplyAuthorizeRequest>,
) -> Result<Json<ReplyAuthorizeResponse>, ApiError> {
    let request = ReplyRequest {
        session: &req.session,
        kind: req.kind.into(),
        client_ip: req.client_ip,
        original_header: &req.original.header.0,
        original_license: &req.original.license.0,
        reply_header: &req.reply.header.0,
        reply_license: &req.reply.license.0,
    };
    let result = s
        .service
        .authorize_reply(bearer.token(), &request)
        .await
        .map_err(ApiError::from);
    s.metrics.reply_authorization(&result);
    Ok(Json(result?.into()))
}

/// A message to decrypt for one of the organization's recipients, and the gateway's key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransportRewrapRequest {
    /// The internal recipient the gateway delivers the message to.
    #[schema(example = "alice@example.com")]
    recipient: String,
    /// The envelope's encoded header, standard base64.
    #[schema(value_type = String, format = Byte)]
    header: B64,
    /// The envelope's license, standard base64.
    #[schema(value_type = String, format = Byte)]
    license: B64,
    /// The gateway's ephemeral P-256 public key, SEC1 uncompressed (65 bytes), standard base64.
    #[schema(value_type = String, format = Byte)]
    client_public_key: B64,
    /// The SMTP peer that brought the message, for the audit log.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "192.0.2.25")]
    client_ip: Option<IpAddr>,
}

/// Release share B of a message of the tenant to its gateway, for an internal recipient.
#[utoipa::path(post, path = "/v1/gateway/transport/rewrap", tag = "gateway",
    request_body = TransportRewrapRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    security(("gateway" = [])),
    responses((status = 200, description = "Share B released.", body = RewrapResponse),
        TransportRewrapErrors))]
pub(super) async fn transport_rewrap(
    State(s): State<AppState>,
    bearer: Bearer,
    ApiJson(req): ApiJson<TransportRewrapRequest>,
) -> Result<Json<RewrapResponse>, ApiError> {
    let request = TransportRequest {
        recipient: &req.recipient,
        header: &req.header.0,
        license: &req.license.0,
        client_public_key: &req.client_public_key.0,
        client_ip: req.client_ip,
    };
    let result = s
        .service
        .transport_rewrap(bearer.token(), &request)
        .await
        .map_err(ApiError::from);
    s.metrics.transport_rewrap(&result);
    Ok(Json(result?.into()))
}

#[cfg(test)]
mod tests {
    use crate::http::ApiError;
    use crate::service::{ReplyAuthorizeError as R, TransportRewrapError as T};

    /// The reason recorded in the audit log is the code the client gets.
    #[test]
    fn audit_reasons_are_the_api_codes() {
        let replies = [
            R::Unauthorized,
            R::NotSignedIn,
            R::MalformedLicense,
            R::UnknownKey,
            R::Revoked,
            R::Expired,
            R::NotARecipient,
            R::RightNotGranted("reply"),
            R::ReplyPolicyInvalid("x"),
            R::SenderMismatch,
            R::RecipientsNotAllowed("x"),
            R::Unavailable,
        ];
        for e in replies {
            assert_eq!(e.code(), ApiError::from(e.clone()).code().code, "{e:?}");
        }
        let transports = [
            T::Unauthorized,
            T::Disabled,
            T::BadClientKey,
            T::MalformedLicense,
            T::UnknownKey,
            T::NotInternal,
            T::NotARecipient,
            T::Revoked,
            T::Expired,
            T::Unavailable,
        ];
        for e in transports {
            assert_eq!(e.code(), ApiError::from(e.clone()).code().code, "{e:?}");
        }
    }
}
