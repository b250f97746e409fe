//! The one error type of the HTTP layer, its JSON body, and the table of stable error codes.
//!
//! Every error a client can see is `{"error": CODE, "message": TEXT}` with the status in
//! [`ERROR_CODES`]. The message is safe to show (it is the service error's own text or the
//! code's meaning); a real cause, when there is one, goes to the log and never to the client.
//! This module maps each service error variant exhaustively, so a new refusal reason in the
//! service cannot reach a client without a code.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::service::{
    AdminError, OtpStartError, OtpVerifyError, ReplyAuthorizeError, RewrapError,
    TransportRewrapError,
};

/// A stable error code: the `error` field of an error body, its HTTP status and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The machine-readable code.
    pub code: &'static str,
    /// The HTTP status it is sent with.
    pub status: u16,
    /// What it means (also the message when there is no more specific one).
    pub meaning: &'static str,
}

macro_rules! error_codes {
    ($($name:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// The error codes, one constant each.
        pub mod code {
            use super::ErrorCode;
            $(
                #[doc = $meaning]
                pub const $name: ErrorCode = ErrorCode { code: $code, status: $status, meaning: $meaning };
            )*
        }
        /// Every error code the API sends (documented in docs/api.md).
        pub const ERROR_CODES: &[ErrorCode] = &[$(code::$name),*];
    };
}

error_codes! {
    BAD_REQUEST = "bad_request", 400, "The request body is not valid JSON of the expected shape, or a binary field is not standard base64.";
    MISSING_CLIENT_HEADER = "missing_client_header", 400, "A POST request lacks the `X-Sealpost-Client: 1` header.";
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type", 415, "A POST request's Content-Type is not application/json.";
    TOO_LARGE = "too_large", 413, "The request body is larger than the configured limit.";
    NOT_FOUND = "not_found", 404, "No such endpoint.";
    METHOD_NOT_ALLOWED = "method_not_allowed", 405, "The endpoint does not accept this method.";
    REQUEST_TIMEOUT = "request_timeout", 408, "The request took too long (usually a body sent too slowly).";
    UNKNOWN_TENANT = "unknown_tenant", 404, "No such tenant on this key service.";
    MALFORMED = "malformed", 400, "The header or license is not a readable Sealpost structure.";
    UNKNOWN_KEY = "unknown_key", 422, "The message was sealed to a key the tenant does not have or has retired.";
    BAD_ADDRESS = "bad_address", 400, "The e-mail address is not an address.";
    TOO_MANY_CODES = "too_many_codes", 429, "Too many passcodes were requested for this address within the hour; see Retry-After.";
    LOCKED = "locked", 423, "The address is locked after too many consecutive failed sign-ins.";
    WRONG_CODE = "wrong_code", 401, "The passcode is wrong, unknown or already used; `remaining` says how many tries are left on this code.";
    CODE_EXPIRED = "code_expired", 410, "The passcode is older than its lifetime; request a new one.";
    TOO_MANY_ATTEMPTS = "too_many_attempts", 429, "Too many wrong tries killed this passcode; request a new one.";
    NOT_SIGNED_IN = "not_signed_in", 401, "No session token, or the session is unknown or timed out.";
    NOT_A_RECIPIENT = "not_a_recipient", 403, "The signed-in address is not a recipient of the message.";
    REVOKED = "revoked", 410, "The sender's organization revoked the message.";
    EXPIRED = "expired", 410, "The message's expiry has passed.";
    MALFORMED_LICENSE = "malformed_license", 400, "The header or license cannot be read or opened.";
    BAD_CLIENT_KEY = "bad_client_key", 400, "The client public key is not an uncompressed P-256 point.";
    UNAUTHORIZED = "unauthorized", 401, "Missing or unknown token, or a token of the wrong role (admin tokens serve `/v1/admin/*` only, gateway tokens `/v1/gateway/*` only).";
    BAD_MESSAGE_ID = "bad_message_id", 400, "The message id is not 32 hex digits.";
    CONFLICT = "conflict", 409, "The record exists already.";
    INVALID = "invalid", 400, "The submitted data is invalid.";
    RIGHT_NOT_GRANTED = "right_not_granted", 403, "The original message's policy does not grant the right this answer needs (`reply`, `reply_all` or `forward`).";
    RECIPIENTS_NOT_ALLOWED = "recipients_not_allowed", 403, "The reply's recipients are not allowed for its kind (reply: the original sender; reply-all: the original sender and recipients other than the submitter; forward: 1 to 100 addresses).";
    SENDER_MISMATCH = "sender_mismatch", 403, "The reply's sender is not the signed-in address.";
    REPLY_POLICY_INVALID = "reply_policy_invalid", 400, "The reply is not sealed for this tenant, names another key service than the original, reuses the original's message id, or changes its template, rights, expiry or subject visibility.";
    TRANSPORT_DECRYPTION_DISABLED = "transport_decryption_disabled", 403, "The tenant has not enabled transport decryption.";
    NOT_INTERNAL = "not_internal", 403, "The recipient is not in one of the organization's own domains.";
    UNKNOWN_PROVIDER = "unknown_provider", 404, "No OpenID Connect provider with this id is configured.";
    OIDC_STATE_INVALID = "oidc_state_invalid", 400, "The OpenID Connect sign-in is unknown, older than ten minutes or already finished (a replay); start again.";
    OIDC_FAILED = "oidc_failed", 401, "The OpenID Connect sign-in failed: the provider refused the code, or its ID token did not pass the checks.";
    EMAIL_NOT_VERIFIED = "email_not_verified", 403, "The OpenID Connect provider did not confirm a verified e-mail address for the account.";
    PROVIDER_UNAVAILABLE = "provider_unavailable", 503, "The OpenID Connect provider cannot be reached or answered wrongly; see Retry-After.";
    RATE_LIMITED = "rate_limited", 429, "Too many requests from this client address; see Retry-After.";
    OVERLOADED = "overloaded", 503, "The service is at its limit of requests in flight; see Retry-After.";
    UNAVAILABLE = "unavailable", 503, "The database is unreachable or busy; see Retry-After.";
    INTERNAL = "internal", 500, "An internal error; it has been logged.";
}

/// Seconds a client is asked to wait after a 503.
pub const UNAVAILABLE_RETRY_AFTER: i64 = 5;

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code (see docs/api.md).
    #[schema(example = "not_signed_in")]
    pub error: String,
    /// Human-readable text, safe to show.
    pub message: String,
    /// Tries left on this passcode (only with `wrong_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    message: Cow<'static, str>,
    retry_after: Option<i64>,
    remaining: Option<i64>,
}

impl ApiError {
    /// An error with the code's own meaning as its message.
    pub fn new(code: ErrorCode) -> ApiError {
        ApiError::with_message(code, code.meaning)
    }

    /// An error with a specific (client-safe) message.
    pub fn with_message(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
            remaining: None,
        }
    }

    /// Adds a Retry-After header (seconds, at least 1).
    pub fn retry_after(mut self, secs: i64) -> ApiError {
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The database could not answer: 503 with Retry-After.
    pub fn unavailable(operation: &'static str) -> ApiError {
        tracing::warn!(operation, "database unavailable");
        ApiError::new(code::UNAVAILABLE).retry_after(UNAVAILABLE_RETRY_AFTER)
    }

    /// Too many requests from one client address.
    pub fn rate_limited(secs: i64) -> ApiError {
        ApiError::new(code::RATE_LIMITED).retry_after(secs)
    }

    /// Something that should not happen: 500 with a generic message; the cause is logged.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "internal error");
        ApiError::new(code::INTERNAL)
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: self.code.code.to_string(),
            message: self.message.into_owned(),
            remaining: self.remaining,
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<OtpStartError> for ApiError {
    fn from(e: OtpStartError) -> ApiError {
        let message = e.to_string();
        match e {
            OtpStartError::Malformed => ApiError::with_message(code::MALFORMED, message),
            OtpStartError::UnknownTenant => ApiError::with_message(code::UNKNOWN_TENANT, message),
            OtpStartError::UnknownKey => ApiError::with_message(code::UNKNOWN_KEY, message),
            OtpStartError::BadAddress => ApiError::with_message(code::BAD_ADDRESS, message),
            OtpStartError::TooManyCodes(secs) => {
                ApiError::with_message(code::TOO_MANY_CODES, message).retry_after(secs)
            }
            OtpStartError::Locked => ApiError::with_message(code::LOCKED, message),
            OtpStartError::Unavailable => ApiError::unavailable("otp_start"),
            OtpStartError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}

impl From<OtpVerifyError> for ApiError {
    fn from(e: OtpVerifyError) -> ApiError {
        let message = e.to_string();
        match e {
            OtpVerifyError::WrongCode { remaining } => ApiError {
                remaining: Some(remaining),
                ..ApiError::with_message(code::WRONG_CODE, message)
            },
            OtpVerifyError::Expired => ApiError::with_message(code::CODE_EXPIRED, message),
            OtpVerifyError::TooManyAttempts => {
                ApiError::with_message(code::TOO_MANY_ATTEMPTS, message)
            }
            OtpVerifyError::Locked => ApiError::with_message(code::LOCKED, message),
            OtpVerifyError::Unavailable => ApiError::unavailable("otp_verify"),
            OtpVerifyError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}

impl From<RewrapError> for ApiError {
    fn from(e: RewrapError) -> ApiError {
        let message = e.to_string();
        match e {
            RewrapError::NotSignedIn => ApiError::with_message(code::NOT_SIGNED_IN, message),
            RewrapError::NotARecipient => ApiError::with_message(code::NOT_A_RECIPIENT, message),
            RewrapError::Revoked => ApiError::with_message(code::REVOKED, message),
            RewrapError::Expired => ApiError::with_message(code::EXPIRED, message),
            RewrapError::UnknownKey => ApiError::with_message(code::UNKNOWN_KEY, message),
            RewrapError::UnknownTenant => ApiError::with_message(code::UNKNOWN_TENANT, message),
            RewrapError::MalformedLicense => {
                ApiError::with_message(code::MALFORMED_LICENSE, message)
            }
            RewrapError::BadClientKey => ApiError::with_message(code::BAD_CLIENT_KEY, message),
            RewrapError::Unavailable => ApiError::unavailable("rewrap"),
            RewrapError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> ApiError {
        let message = e.to_string();
        match e {
            AdminError::Unauthorized => ApiError::with_message(code::UNAUTHORIZED, message),
            AdminError::BadMessageId => ApiError::with_message(code::BAD_MESSAGE_ID, message),
            AdminError::UnknownTenant => ApiError::with_message(code::UNKNOWN_TENANT, message),
            AdminError::Conflict => ApiError::with_message(code::CONFLICT, message),
            AdminError::Invalid(_) => ApiError::with_message(code::INVALID, message),
            AdminError::Unavailable => ApiError::unavailable("admin"),
            AdminError::RateLimited(secs) => ApiError::rate_limited(secs),
        }
    }
}

impl From<ReplyAuthorizeError> for ApiError {
    fn from(e: ReplyAuthorizeError) -> ApiError {
        use ReplyAuthorizeError as E;
        let message = e.to_string();
        let code = match e {
            E::Unauthorized => code::UNAUTHORIZED,
            E::NotSignedIn => code::NOT_SIGNED_IN,
            E::MalformedLicense => code::MALFORMED_LICENSE,
            E::UnknownKey => code::UNKNOWN_KEY,
            E::Revoked => code::REVOKED,
            E::Expired => code::EXPIRED,
            E::NotARecipient => code::NOT_A_RECIPIENT,
            E::RightNotGranted(_) => code::RIGHT_NOT_GRANTED,
            E::ReplyPolicyInvalid(_) => code::REPLY_POLICY_INVALID,
            E::SenderMismatch => code::SENDER_MISMATCH,
            E::RecipientsNotAllowed(_) => code::RECIPIENTS_NOT_ALLOWED,
            E::Unavailable => return ApiError::unavailable("reply_authorize"),
        };
        ApiError::with_message(code, message)
    }
}

impl From<TransportRewrapError> for ApiError {
    fn from(e: TransportRewrapError) -> ApiError {
        use TransportRewrapError as E;
        let message = e.to_string();
        let code = match e {
            E::Unauthorized => code::UNAUTHORIZED,
            E::Disabled => code::TRANSPORT_DECRYPTION_DISABLED,
            E::BadClientKey => code::BAD_CLIENT_KEY,
            E::MalformedLicense => code::MALFORMED_LICENSE,
            E::UnknownKey => code::UNKNOWN_KEY,
            E::NotInternal => code::NOT_INTERNAL,
            E::NotARecipient => code::NOT_A_RECIPIENT,
            E::Revoked => code::REVOKED,
            E::Expired => code::EXPIRED,
            E::Unavailable => return ApiError::unavailable("transport_rewrap"),
        };
        ApiError::with_message(code, message)
    }
}

/// The JSON answer for a path that matches no endpoint.
pub(super) async fn not_found() -> ApiError {
    ApiError::new(code::NOT_FOUND)
}

/// The JSON answer for a known path called with the wrong method.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(code::METHOD_NOT_ALLOWED)
}
