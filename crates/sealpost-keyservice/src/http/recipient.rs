//! The recipient's endpoints, used by the portal: tenant public info, passcode sign-in and
//! rewrap. Each handler extracts, calls one [`KeyService`](crate::service::KeyService) method
//! and maps the result; the wire types here are the API's, apart from the service's own.

use axum::Json;
use axum::extract::State;
use sealpost_core::policy::Right;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, B64, Bearer, ClientIp};
use super::oidc::OidcProviderResponse;
use super::openapi::{ClientMarker, OtpStartErrors, OtpVerifyErrors, RewrapErrors, TenantErrors};
use crate::service::{OtpStarted, Released, SessionIssued, TenantInfo, TenantKeyInfo};

/// A tenant's public information.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantInfoResponse {
    /// Tenant id (the organization's primary domain).
    tenant_id: String,
    /// Name shown to recipients.
    display_name: String,
    /// HPKE license keys (DHKEM(P-256)) that envelopes are sealed to.
    license_keys: Vec<KeyInfo>,
    /// ECDSA P-256 keys that verify the tenant's envelopes.
    signing_keys: Vec<KeyInfo>,
    /// Portal origins allowed to call the key service from a browser.
    allowed_origins: Vec<String>,
    /// How the portal presents the tenant.
    branding: BrandingInfo,
    /// OpenID Connect providers the recipient may sign in with, beside the passcode.
    oidc_providers: Vec<OidcProviderResponse>,
    /// Base URL of the gateway's encrypted-reply endpoint; null when the tenant accepts no
    /// encrypted replies (the portal then offers none).
    #[schema(example = "https://mail.example.com:8090")]
    reply_url: Option<String>,
}

/// One public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyInfo {
    /// Key id, 16 hex digits.
    id: String,
    /// SEC1 uncompressed point, standard base64.
    #[schema(format = Byte)]
    public_key: String,
    /// `active` or `retired`.
    status: String,
}

/// Branding shown by the portal.
#[derive(Debug, Serialize, ToSchema)]
pub struct BrandingInfo {
    /// Accent colour, CSS hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    accent_color: Option<String>,
    /// Short text under the organization's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    tagline: Option<String>,
}

impl From<TenantKeyInfo> for KeyInfo {
    fn from(k: TenantKeyInfo) -> KeyInfo {
        KeyInfo {
            id: k.id,
            public_key: k.public_key,
            status: k.status,
        }
    }
}

impl From<TenantInfo> for TenantInfoResponse {
    fn from(t: TenantInfo) -> TenantInfoResponse {
        TenantInfoResponse {
            tenant_id: t.tenant_id,
            display_name: t.display_name,
            license_keys: t.license_keys.into_iter().map(KeyInfo::from).collect(),
            signing_keys: t.signing_keys.into_iter().map(KeyInfo::from).collect(),
            allowed_origins: t.allowed_origins,
            branding: BrandingInfo {
                accent_color: t.branding.accent_color,
                tagline: t.branding.tagline,
            },
            oidc_providers: Vec::new(),
            reply_url: t.reply_url,
        }
    }
}

/// Public information about a tenant: keys, display name, branding, portal origins.
#[utoipa::path(get, path = "/v1/tenants/{tenant_id}", tag = "recipient",
    params(("tenant_id" = String, Path, description = "Tenant id, as in the envelope header.", example = "example.com")),
    responses((status = 200, description = "The tenant.", body = TenantInfoResponse), TenantErrors))]
pub(super) async fn tenant_info(
    State(s): State<AppState>,
    ApiPath(tenant_id): ApiPath<String>,
) -> Result<Json<TenantInfoResponse>, ApiError> {
    let info = s.service.tenant_info(&tenant_id).await?;
    let mut response = TenantInfoResponse::from(info);
    response.oidc_providers = s
        .service
        .oidc_providers()
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(response))
}

/// Request a passcode for an address, for the message whose header and license are given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpStartRequest {
    /// The envelope's encoded header, standard base64.
    #[schema(value_type = String, format = Byte)]
    header: B64,
    /// The envelope's license, standard base64.
    #[schema(value_type = String, format = Byte)]
    license: B64,
    /// The recipient's e-mail address.
    #[schema(example = "bob@example.org")]
    email: String,
}

/// A started sign-in. Identical in shape whether or not the address is a recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct OtpStartResponse {
    /// Pass this back to `/v1/otp/verify` with the code.
    challenge: String,
    /// Seconds the code stays valid.
    expires_in: i64,
    /// The message reference the passcode mail names; the portal shows it too.
    reference: String,
}

impl From<OtpStarted> for OtpStartResponse {
    fn from(o: OtpStarted) -> OtpStartResponse {
        OtpStartResponse {
            challenge: o.challenge,
            expires_in: o.expires_in,
            reference: o.reference,
        }
    }
}

/// Start a passcode sign-in: a code is mailed if the address is a recipient of the message.
#[utoipa::path(post, path = "/v1/otp/start", tag = "recipient", request_body = OtpStartRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    responses((status = 200, description = "Sign-in started.", body = OtpStartResponse), OtpStartErrors))]
pub(super) async fn otp_start(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OtpStartRequest>,
) -> Result<Json<OtpStartResponse>, ApiError> {
    let result = s
        .service
        .start_otp(&req.header.0, &req.license.0, &req.email, ip)
        .await
        .map_err(ApiError::from);
    s.metrics.otp_started(&result);
    Ok(Json(result?.into()))
}

/// A passcode for a challenge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpVerifyRequest {
    /// The challenge from `/v1/otp/start`.
    challenge: String,
    /// The passcode as typed (spaces and dashes are ignored).
    #[schema(example = "12345678")]
    code: String,
}

/// A session for the address the code was mailed to.
#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    /// Bearer token for `/v1/rewrap`.
    session: String,
    /// The address the session is bound to.
    email: String,
    /// Absolute end of the session, Unix seconds.
    expires_at: i64,
    /// The session ends after this many seconds without use.
    idle_timeout: i64,
    /// The key service's clock when it answered, Unix seconds: the portal counts the session's
    /// timeouts and a reply's lifetime with it, not with the browser's clock.
    server_time: i64,
}

impl From<SessionIssued> for SessionResponse {
    fn from(s: SessionIssued) -> SessionResponse {
        SessionResponse {
            session: s.session,
            email: s.email,
            expires_at: s.expires_at,
            idle_timeout: s.idle_timeout,
            server_time: s.server_time,
        }
    }
}

/// Verify a passcode and open a session.
#[utoipa::path(post, path = "/v1/otp/verify", tag = "recipient", request_body = OtpVerifyRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    responses((status = 200, description = "Signed in.", body = SessionResponse), OtpVerifyErrors))]
pub(super) async fn otp_verify(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OtpVerifyRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let result = s
        .service
        .verify_otp(&req.challenge, &req.code, ip)
        .await
        .map_err(ApiError::from);
    s.metrics.otp_verified(&result);
    Ok(Json(result?.into()))
}

/// The license of a message and the portal's ephemeral key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewrapRequest {
    /// The envelope's encoded header, standard base64.
    #[schema(value_type = String, format = Byte)]
    header: B64,
    /// The envelope's license, standard base64.
    #[schema(value_type = String, format = Byte)]
    license: B64,
    /// The portal's ephemeral P-256 public key, SEC1 uncompressed (65 bytes), standard base64.
    #[schema(value_type = String, format = Byte)]
    client_public_key: B64,
}

/// Share B, sealed to the client key, and the sealed policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct RewrapResponse {
    /// Share B sealed (HPKE) to `client_public_key`, standard base64.
    #[schema(value_type = String, format = Byte)]
    sealed_share: B64,
    /// Rights from the sealed policy.
    #[schema(value_type = Vec<RightName>)]
    rights: Vec<&'static str>,
    /// Expiry from the sealed policy, Unix seconds; null if none.
    expires: Option<u64>,
    /// The sender from the sealed policy.
    sender: String,
    /// The template name.
    template: String,
    /// The message id, 32 hex digits.
    message_id: String,
    /// The signed-in address.
    email: String,
    /// The key service's clock when it answered, Unix seconds (see `SessionResponse`).
    server_time: i64,
}

/// A right a recipient may have (schema only; the names are `sealpost_core::Right::name`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(super) enum RightName {
    View,
    Reply,
    ReplyAll,
    Forward,
    Print,
    Copy,
    Export,
}

impl From<Released> for RewrapResponse {
    fn from(r: Released) -> RewrapResponse {
        RewrapResponse {
            sealed_share: B64(r.sealed_share),
            rights: r.rights.iter().map(Right::name).collect(),
            expires: r.expires,
            sender: r.sender,
            template: r.template,
            message_id: r.message_id,
            email: r.email,
            server_time: r.server_time,
        }
    }
}

/// Release share B of a message to a signed-in recipient, sealed to the portal's key.
#[utoipa::path(post, path = "/v1/rewrap", tag = "recipient", request_body = RewrapRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    security(("session" = [])),
    responses((status = 200, description = "Share B released.", body = RewrapResponse), RewrapErrors))]
pub(super) async fn rewrap(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    bearer: Bearer,
    ApiJson(req): ApiJson<RewrapRequest>,
) -> Result<Json<RewrapResponse>, ApiError> {
    let (h, l, k) = (&req.header.0, &req.license.0, &req.client_public_key.0);
    let result = s
        .service
        .rewrap(bearer.token(), h, l, k, ip)
        .await
        .map_err(ApiError::from);
    s.metrics.rewrap(&result);
    Ok(Json(result?.into()))
}
