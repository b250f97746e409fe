//! The OpenID Connect sign-in endpoints, used by the portal: start (an authorization URL for
//! the popup) and finish (the code and state the provider sent back → a session, the same as
//! `/v1/otp/verify` answers). Each handler extracts, calls one
//! [`KeyService`](crate::service::KeyService) method and maps the result; the error mapping
//! for the two operations is here too.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::error::{ApiError, code};
use super::extract::{ApiJson, ClientIp};
use super::openapi::{ClientMarker, OidcFinishErrors, OidcStartErrors};
use super::recipient::SessionResponse;
use crate::service::{OidcFinishError, OidcProviderInfo, OidcStartError, OidcStarted};

/// A provider the portal may offer (in the tenant info).
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcProviderResponse {
    /// The provider's id, for `/v1/oidc/start`.
    #[schema(example = "google")]
    id: String,
    /// Shown as "Sign in with <display_name>".
    #[schema(example = "Google")]
    display_name: String,
    /// `google`, `microsoft`, `yahoo` or `generic` (the portal may pick an icon by it).
    #[schema(example = "google")]
    preset: String,
}

impl From<OidcProviderInfo> for OidcProviderResponse {
    fn from(p: OidcProviderInfo) -> OidcProviderResponse {
        OidcProviderResponse {
            id: p.id,
            display_name: p.display_name,
            preset: p.preset.to_string(),
        }
    }
}

/// Start a sign-in with a provider.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcStartRequest {
    /// The tenant whose message is being opened.
    #[schema(example = "example.com")]
    tenant: String,
    /// A provider id from the tenant info's `oidc_providers`.
    #[schema(example = "google")]
    provider: String,
    /// The address the recipient expects to sign in with, passed to the provider as
    /// `login_hint`; null for none.
    #[serde(default)]
    #[schema(example = "bob@example.org")]
    login_hint: Option<String>,
}

/// Where to send the popup.
#[derive(Debug, Serialize, ToSchema)]
pub struct OidcStartResponse {
    /// The provider's authorization URL (PKCE S256, state and nonce included).
    authorization_url: String,
    /// The state the provider hands back with the code; the portal checks it.
    state: String,
}

impl From<OidcStarted> for OidcStartResponse {
    fn from(s: OidcStarted) -> OidcStartResponse {
        OidcStartResponse {
            authorization_url: s.authorization_url,
            state: s.state,
        }
    }
}

/// Start an OpenID Connect sign-in: returns the URL to open in a popup.
#[utoipa::path(post, path = "/v1/oidc/start", tag = "recipient", request_body = OidcStartRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    responses((status = 200, description = "Sign-in started.", body = OidcStartResponse), OidcStartErrors))]
pub(super) async fn oidc_start(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OidcStartRequest>,
) -> Result<Json<OidcStartResponse>, ApiError> {
    let result = s
        .service
        .start_oidc(&req.tenant, &req.provider, req.login_hint.as_deref(), ip)
        .await
        .map_err(ApiError::from);
    s.metrics.oidc_started(&result);
    Ok(Json(result?.into()))
}

/// The code and state the provider sent to the redirect URL.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcFinishRequest {
    /// The `state` query parameter (as returned by `/v1/oidc/start`).
    state: String,
    /// The `code` query parameter.
    code: String,
}

/// Finish an OpenID Connect sign-in and open a session (the same as a passcode's).
#[utoipa::path(post, path = "/v1/oidc/finish", tag = "recipient", request_body = OidcFinishRequest,
    params(("X-Sealpost-Client" = ClientMarker, Header, description = "Must be `1`.")),
    responses((status = 200, description = "Signed in.", body = SessionResponse), OidcFinishErrors))]
pub(super) async fn oidc_finish(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<OidcFinishRequest>,
) -> Result<Json<SessionResponse>, ApiError> {
    let result = s
        .service
        .finish_oidc(&req.state, &req.code, ip)
        .await
        .map_err(ApiError::from);
    s.metrics.oidc_finished(&result);
    Ok(Json(result?.into()))
}

impl From<OidcStartError> for ApiError {
    fn from(e: OidcStartError) -> ApiError {
        let message = e.to_string();
        match e {
            OidcStartError::UnknownProvider => {
                ApiError::with_message(code::UNKNOWN_PROVIDER, message)
            }
            OidcStartError::UnknownTenant => ApiError::with_message(code::UNKNOWN_TENANT, message),
            OidcStartError::BadAddress => ApiError::with_message(code::BAD_ADDRESS, message),
            OidcStartError::ProviderUnavailable => {
                ApiError::with_message(code::PROVIDER_UNAVAILABLE, message)
                    .retry_after(super::error::UNAVAILABLE_RETRY_AFTER)
            }
            OidcStartError::Unavailable => ApiError::unavailable("oidc_start"),
            OidcStartError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}

impl From<OidcFinishError> for ApiError {
    fn from(e: OidcFinishError) -> ApiError {
        let message = e.to_string();
        match e {
            OidcFinishError::StateInvalid => {
                ApiError::with_message(code::OIDC_STATE_INVALID, message)
            }
            OidcFinishError::Failed => ApiError::with_message(code::OIDC_FAILED, message),
            OidcFinishError::EmailNotVerified => {
                ApiError::with_message(code::EMAIL_NOT_VERIFIED, message)
            }
            OidcFinishError::ProviderUnavailable => {
                ApiError::with_message(code::PROVIDER_UNAVAILABLE, message)
                    .retry_after(super::error::UNAVAILABLE_RETRY_AFTER)
            }
            OidcFinishError::Unavailable => ApiError::unavailable("oidc_finish"),
            OidcFinishError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}
