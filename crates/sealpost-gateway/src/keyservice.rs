//! The key service's gateway endpoints, as the gateway calls them: `POST
//! /v1/gateway/replies/authorize` (may this signed-in recipient send this reply?) and `POST
//! /v1/gateway/transport/rewrap` (share B for an internal recipient, sealed to the gateway's
//! ephemeral key). Both carry the gateway token (`sealpost admin token create --role
//! gateway`) as a bearer token.
//!
//! Every request is bounded in time (connect and whole request) so that neither an SMTP
//! session nor a reply request waits on a slow key service for long. A refusal (a 4xx with the
//! key service's JSON error) becomes [`KeyServiceError::Refused`] with its code typed as
//! [`Refusal`]; anything else (no connection, timeout, 5xx, 429, an answer that cannot be
//! read) is [`KeyServiceError::Unavailable`]. This module decides nothing and logs nothing: it
//! never sees a payload, and the token and session are never put into an error or a `Debug`.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// How long a connection to the key service may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway token; shown as `***` by `Debug`.
#[derive(Clone)]
pub struct GatewayToken(String);

impl GatewayToken {
    /// Takes the token text (surrounding white space, such as the file's final newline, is
    /// dropped); `None` when nothing is left or it is not a printable ASCII word.
    pub fn new(text: &str) -> Option<GatewayToken> {
        let t = text.trim();
        (!t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic())).then(|| GatewayToken(t.into()))
    }
}

impl fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayToken(***)")
    }
}

/// A code the key service refuses with (docs/api.md), typed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `unauthorized`: the gateway token was refused (a configuration mistake).
    Unauthorized,
    /// `not_signed_in`: the recipient's session is unknown or over.
    NotSignedIn,
    /// `not_a_recipient`: the address is not a recipient of the message.
    NotARecipient,
    /// `right_not_granted`: the policy does not grant the right this reply needs.
    RightNotGranted,
    /// `recipients_not_allowed`: the reply goes to addresses the original does not allow.
    RecipientsNotAllowed,
    /// `sender_mismatch`: the reply's sender is not the signed-in address.
    SenderMismatch,
    /// `reply_policy_invalid`: the reply's policy does not follow the original's.
    ReplyPolicyInvalid,
    /// `revoked`: the original message was revoked.
    Revoked,
    /// `expired`: the original message has expired.
    Expired,
    /// `malformed_license`: a license does not open or does not belong to its header.
    MalformedLicense,
    /// `unknown_key`: sealed to a key the key service does not hold.
    UnknownKey,
    /// `transport_decryption_disabled`: the tenant does not allow transport decryption.
    TransportDecryptionDisabled,
    /// `not_internal`: the recipient is not in one of the tenant's domains.
    NotInternal,
    /// Any other code (a newer key service, or a request the gateway got wrong).
    Other(String),
}

impl Refusal {
    /// Reads a code.
    pub fn parse(code: &str) -> Refusal {
        match code {
            "unauthorized" => Refusal::Unauthorized,
            "not_signed_in" => Refusal::NotSignedIn,
            "not_a_recipient" => Refusal::NotARecipient,
            "right_not_granted" => Refusal::RightNotGranted,
            "recipients_not_allowed" => Refusal::RecipientsNotAllowed,
            "sender_mismatch" => Refusal::SenderMismatch,
            "reply_policy_invalid" => Refusal::ReplyPolicyInvalid,
            "revoked" => Refusal::Revoked,
            "expired" => Refusal::Expired,
            "malformed_license" => Refusal::MalformedLicense,
            "unknown_key" => Refusal::UnknownKey,
            "transport_decryption_disabled" => Refusal::TransportDecryptionDisabled,
            "not_internal" => Refusal::NotInternal,
            other => Refusal::Other(other.to_string()),
        }
    }

    /// The code as the key service writes it.
    pub fn code(&self) -> &str {
        match self {
            Refusal::Unauthorized => "unauthorized",
            Refusal::NotSignedIn => "not_signed_in",
            Refusal::NotARecipient => "not_a_recipient",
            Refusal::RightNotGranted => "right_not_granted",
            Refusal::RecipientsNotAllowed => "recipients_not_allowed",
            Refusal::SenderMismatch => "sender_mismatch",
            Refusal::ReplyPolicyInvalid => "reply_policy_invalid",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::MalformedLicense => "malformed_license",
            Refusal::UnknownKey => "unknown_key",
            Refusal::TransportDecryptionDisabled => "transport_decryption_disabled",
            Refusal::NotInternal => "not_internal",
            Refusal::Other(code) => code,
        }
    }
}

/// A call to the key service failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyServiceError {
    /// The key service answered with a refusal.
    #[error("the key service refused ({status} {}): {message}", code.code())]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code.
        code: Refusal,
        /// The key service's explanation.
        message: String,
    },
    /// No usable answer: unreachable, too slow, overloaded, failing, or unreadable.
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
}

/// The client could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the key service client for {url}: {message}")]
pub struct ClientError {
    /// The base URL.
    pub url: String,
    /// Why.
    pub message: String,
}

/// Header and license of an envelope, base64 on the wire.
#[derive(Debug, Clone, Serialize)]
pub struct Sealed {
    /// The encoded header, standard base64.
    pub header: String,
    /// The license, standard base64.
    pub license: String,
}

impl Sealed {
    /// From the raw bytes.
    pub fn new(header: &[u8], license: &[u8]) -> Sealed {
        Sealed {
            header: B64.encode(header),
            license: B64.encode(license),
        }
    }
}

/// The authorize request (`/v1/gateway/replies/authorize`).
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizeRequest<'a> {
    /// The recipient's session token (never logged).
    #[serde(serialize_with = "plain")]
    pub session: &'a SessionToken,
    /// `reply`, `reply_all` or `forward`.
    pub kind: &'a str,
    /// The browser's address.
    pub client_ip: String,
    /// The message replied to.
    pub original: Sealed,
    /// The reply's submission.
    pub reply: Sealed,
}

/// A recipient's session token, from the reply request's `Authorization`; `Debug` hides it.
pub struct SessionToken(pub String);

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

fn plain<S: serde::Serializer>(t: &&SessionToken, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.0)
}

/// The key service's yes to a reply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Authorized {
    /// The signed-in address that submits the reply.
    pub submitter: String,
    /// The reply's recipients as authorized (normalized).
    pub recipients: Vec<String>,
    /// The original message's sender.
    pub original_sender: String,
    /// The original's message id (32 hex).
    pub original_message_id: String,
    /// The reply's message id (32 hex).
    pub reply_message_id: String,
    /// `reply`, `reply_all` or `forward`.
    pub kind: String,
}

/// The transport rewrap request (`/v1/gateway/transport/rewrap`).
#[derive(Debug, Clone, Serialize)]
pub struct TransportRequest<'a> {
    /// The internal recipient to decrypt for.
    pub recipient: &'a str,
    /// Header and license of the envelope.
    #[serde(flatten)]
    pub sealed: &'a Sealed,
    /// The gateway's ephemeral P-256 public key (65-byte SEC1), standard base64.
    pub client_public_key: String,
    /// The SMTP peer (or the reply's browser), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// Share B for one recipient, sealed to the gateway's ephemeral key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransportShare {
    /// Share B sealed to `client_public_key`, standard base64.
    pub sealed_share: String,
    /// The message id (32 hex).
    pub message_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    message: String,
}

/// The client: one connection pool, the base URL and the token.
#[derive(Debug, Clone)]
pub struct KeyServiceClient {
    http: reqwest::Client,
    base: String,
    token: GatewayToken,
}

impl KeyServiceClient {
    /// A client for the key service at `base_url` (http or https), each request bounded by
    /// `timeout` (and [`CONNECT_TIMEOUT`] to connect).
    pub fn new(
        base_url: &str,
        token: GatewayToken,
        timeout: Duration,
    ) -> Result<KeyServiceClient, ClientError> {
        let err = |message: String| ClientError {
            url: base_url.to_string(),
            message,
        };
        let base = crate::config::check_http_url(base_url).map_err(err)?;
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sealpost-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| err(e.to_string()))?;
        Ok(KeyServiceClient { http, base, token })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Asks whether a reply may be sent.
    pub async fn authorize_reply(
        &self,
        req: &AuthorizeRequest<'_>,
    ) -> Result<Authorized, KeyServiceError> {
        self.post("/v1/gateway/replies/authorize", req).await
    }

    /// Asks for share B for an internal recipient.
    pub async fn transport_rewrap(
        &self,
        req: &TransportRequest<'_>,
    ) -> Result<TransportShare, KeyServiceError> {
        self.post("/v1/gateway/transport/rewrap", req).await
    }

    async fn post<T: Serialize, A: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<A, KeyServiceError> {
        let url = format!("{}{path}", self.base);
        let unavailable = |what: &str, e: &dyn fmt::Display| {
            KeyServiceError::Unavailable(format!("{what} {url}: {e}"))
        };
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token.0)
            .header("X-Sealpost-Client", "1")
            .json(body)
            .send()
            .await
            .map_err(|e| unavailable("cannot reach", &without_url(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unavailable("no complete answer from", &without_url(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| unavailable("unreadable answer from", &e));
        }
        // A 4xx with the key service's error body is a refusal; 408, 429 and the rest mean
        // "not now".
        let refusal = status.is_client_error() && !matches!(status.as_u16(), 408 | 429);
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) if refusal => Err(KeyServiceError::Refused {
                status: status.as_u16(),
                code: Refusal::parse(&b.error),
                message: b.message,
            }),
            Ok(b) => Err(KeyServiceError::Unavailable(format!(
                "{url} answered {status}: {}",
                b.error
            ))),
            Err(_) => Err(KeyServiceError::Unavailable(format!(
                "{url} answered {status}"
            ))),
        }
    }
}

/// reqwest's error text without its URL (the caller names it once).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// The IP address as the key service wants it.
pub fn ip_text(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}
