//! One error type per operation. Each variant is a documented refusal reason with a stable
//! machine-readable code (docs/api.md); none says more than the caller may know.

use crate::store::StoreError;

/// Why a passcode could not be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpStartError {
    /// The header or license is not a readable Sealpost structure.
    #[error("the message data is malformed")]
    Malformed,
    /// No such tenant here.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The license is sealed to a key this tenant does not have or has retired.
    #[error("the message was sealed to an unknown or retired key")]
    UnknownKey,
    /// The e-mail address is not an address.
    #[error("not an e-mail address")]
    BadAddress,
    /// Ten codes were requested for this address within the hour.
    #[error("too many passcodes requested for this address; retry in {0} s")]
    TooManyCodes(i64),
    /// The address is locked after too many failures.
    #[error("this address is locked after too many failed sign-ins")]
    Locked,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

/// Why a passcode was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtpVerifyError {
    /// Wrong code, unknown challenge, or already used; `remaining` tries on this code.
    #[error("the passcode is not correct")]
    WrongCode {
        /// Tries left for this code.
        remaining: i64,
    },
    /// The code is older than its lifetime.
    #[error("the passcode has expired; request a new one")]
    Expired,
    /// Five wrong tries: this code is dead.
    #[error("too many wrong tries; request a new passcode")]
    TooManyAttempts,
    /// The address is locked after too many failures.
    #[error("this address is locked after too many failed sign-ins")]
    Locked,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

/// Why share B was not released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError {
    /// No session, or it timed out.
    #[error("not signed in")]
    NotSignedIn,
    /// The signed-in address is not a recipient of this message.
    #[error("this address is not a recipient of the message")]
    NotARecipient,
    /// The sender's organization revoked the message.
    #[error("the message was revoked")]
    Revoked,
    /// The message's expiry has passed.
    #[error("the message has expired")]
    Expired,
    /// The license names a key the tenant does not have or has retired.
    #[error("the message was sealed to an unknown or retired key")]
    UnknownKey,
    /// No such tenant here.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The header or license cannot be read or opened.
    #[error("the license is malformed")]
    MalformedLicense,
    /// The client's public key is not an uncompressed P-256 point.
    #[error("the client public key is not a P-256 point")]
    BadClientKey,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

/// Why an administrative call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Missing or unknown admin token.
    #[error("not authorized")]
    Unauthorized,
    /// The message id is not 32 hex digits.
    #[error("not a message id (32 hex digits)")]
    BadMessageId,
    /// No such tenant here.
    #[error("unknown tenant")]
    UnknownTenant,
    /// The tenant or key is already there.
    #[error("already exists")]
    Conflict,
    /// The tenant data is invalid.
    #[error("invalid tenant data: {0}")]
    Invalid(String),
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// Too many requests from this address; retry after the given seconds.
    #[error("too many requests; retry in {0} s")]
    RateLimited(i64),
}

/// Why a reply was not authorized (`/v1/gateway/replies/authorize`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyAuthorizeError {
    /// Missing or unknown gateway token, or a token of another role.
    #[error("not authorized: a gateway token is needed")]
    Unauthorized,
    /// The recipient's session is unknown or timed out.
    #[error("not signed in")]
    NotSignedIn,
    /// The original's or the reply's header or license cannot be read or opened, or the
    /// reply's license does not belong to the reply's header.
    #[error("the license is malformed")]
    MalformedLicense,
    /// The original was sealed to a key this gateway's tenant does not have or has retired.
    #[error("the message was sealed to an unknown or retired key")]
    UnknownKey,
    /// The sender's organization revoked the original message.
    #[error("the message was revoked")]
    Revoked,
    /// The original message's expiry has passed.
    #[error("the message has expired")]
    Expired,
    /// The signed-in address is not a recipient of the original message.
    #[error("this address is not a recipient of the message")]
    NotARecipient,
    /// The original's policy does not grant the right this kind of answer needs.
    #[error("the message's policy does not grant the {0} right")]
    RightNotGranted(&'static str),
    /// The reply's tenant, message id, template, rights or expiry break the rules.
    #[error("the reply's policy is not allowed: {0}")]
    ReplyPolicyInvalid(&'static str),
    /// The reply's sender is not the signed-in address.
    #[error("the reply's sender is not the signed-in address")]
    SenderMismatch,
    /// The reply's recipients are not allowed for this kind of answer.
    #[error("these recipients are not allowed: {0}")]
    RecipientsNotAllowed(&'static str),
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
}

impl ReplyAuthorizeError {
    /// The stable reason code (the API's error code), as recorded in the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            ReplyAuthorizeError::Unauthorized => "unauthorized",
            ReplyAuthorizeError::NotSignedIn => "not_signed_in",
            ReplyAuthorizeError::MalformedLicense => "malformed_license",
            ReplyAuthorizeError::UnknownKey => "unknown_key",
            ReplyAuthorizeError::Revoked => "revoked",
            ReplyAuthorizeError::Expired => "expired",
            ReplyAuthorizeError::NotARecipient => "not_a_recipient",
            ReplyAuthorizeError::RightNotGranted(_) => "right_not_granted",
            ReplyAuthorizeError::ReplyPolicyInvalid(_) => "reply_policy_invalid",
            ReplyAuthorizeError::SenderMismatch => "sender_mismatch",
            ReplyAuthorizeError::RecipientsNotAllowed(_) => "recipients_not_allowed",
            ReplyAuthorizeError::Unavailable => "unavailable",
        }
    }
}

/// Why share B was not released to the gateway (`/v1/gateway/transport/rewrap`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportRewrapError {
    /// Missing or unknown gateway token, or a token of another role.
    #[error("not authorized: a gateway token is needed")]
    Unauthorized,
    /// The tenant has not enabled transport decryption.
    #[error("the tenant has not enabled transport decryption")]
    Disabled,
    /// The gateway's public key is not an uncompressed P-256 point.
    #[error("the client public key is not a P-256 point")]
    BadClientKey,
    /// The header or license cannot be read or opened.
    #[error("the license is malformed")]
    MalformedLicense,
    /// The license was sealed to a key this gateway's tenant does not have or has retired.
    #[error("the message was sealed to an unknown or retired key")]
    UnknownKey,
    /// The recipient's domain is not one of the tenant's domains.
    #[error("the recipient is not in one of the organization's domains")]
    NotInternal,
    /// The recipient is not a recipient of the message.
    #[error("this address is not a recipient of the message")]
    NotARecipient,
    /// The sender's organization revoked the message.
    #[error("the message was revoked")]
    Revoked,
    /// The message's expiry has passed.
    #[error("the message has expired")]
    Expired,
    /// The database is unreachable or overloaded; retry later.
    #[error("the service is temporarily unavailable")]
    Unavailable,
}

impl TransportRewrapError {
    /// The stable reason code (the API's error code), as recorded in the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            TransportRewrapError::Unauthorized => "unauthorized",
            TransportRewrapError::Disabled => "transport_decryption_disabled",
            TransportRewrapError::BadClientKey => "bad_client_key",
            TransportRewrapError::MalformedLicense => "malformed_license",
            TransportRewrapError::UnknownKey => "unknown_key",
            TransportRewrapError::NotInternal => "not_internal",
            TransportRewrapError::NotARecipient => "not_a_recipient",
            TransportRewrapError::Revoked => "revoked",
            TransportRewrapError::Expired => "expired",
            TransportRewrapError::Unavailable => "unavailable",
        }
    }
}

macro_rules! from_store {
    ($($t:ty),*) => {$(
        impl From<StoreError> for $t {
            fn from(e: StoreError) -> Self {
                log_store_error(&e);
                <$t>::Unavailable
            }
        }
    )*};
}

/// The cause of a database failure goes to the log (clients only learn "unavailable").
pub(super) fn log_store_error(e: &StoreError) {
    match e {
        StoreError::Unavailable | StoreError::Conflict => {
            tracing::warn!(error = %e, "database operation failed")
        }
        _ => tracing::error!(error = %e, "database error"),
    }
}
from_store!(
    OtpStartError,
    OtpVerifyError,
    RewrapError,
    ReplyAuthorizeError,
    TransportRewrapError
);

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => AdminError::Conflict,
            e => {
                log_store_error(&e);
                AdminError::Unavailable
            }
        }
    }
}
