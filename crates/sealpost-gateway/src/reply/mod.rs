//! The reply endpoint: encrypted replies, replies-to-all and forwards sealed in the portal,
//! counter-signed by the gateway and sent through the same pipeline as SMTP mail.
//!
//! [`ReplyService::submit`] is the whole logic, testable without a socket; [`http`] is the
//! thin axum layer around it (`POST /v1/replies`, CORS, limits, JSON errors). In order:
//!
//! 1. the request is read: `kind`, the whole original envelope, the submission envelope,
//!    To/Cc, the threading ids (`bad_request` for anything malformed);
//! 2. the original must be an envelope of our tenant that verifies with one of our signing
//!    keys (`bad_original`): licenses are not sender-authenticated (anyone holding the
//!    tenant's public license key can make one), so only the signature proves that the
//!    organization sent the message being answered; without it anyone could forge an
//!    "original" granting themselves every right and have us counter-sign their text;
//! 3. the envelope must be an unsigned submission of our tenant naming our signing key
//!    (`bad_envelope`);
//! 4. the key service authorizes it (`/v1/gateway/replies/authorize`, given the original's
//!    header and license: session, recipient of the original, right, allowed recipients,
//!    policy); its refusals pass through unchanged, and a key service that cannot answer is
//!    `key_service_unavailable` (503);
//! 5. To ∪ Cc must be exactly the authorized recipients (`recipients_mismatch`);
//! 6. the submission is counter-signed with the tenant's signing key
//!    (`sealpost_core::countersign`) and wrapped (`sealpost_core::mail::wrap`) under a
//!    synthesized header block ([`headers`]) with `X-Sealpost-Relayed-For: <submitter>` in
//!    front;
//! 7. the wrapper goes through [`crate::handler::accept`] (rules, transport decryption,
//!    durable spool) with MAIL FROM = `reply_from` and the authorized recipients; only then is
//!    the answer 202.
//!
//! Nothing is spooled unless every check passed. The submission's plaintext is never seen
//! here: the gateway handles ciphertext only (transport decryption aside, which is the
//! tenant's choice and happens in the common pipeline). Sessions are never logged.

pub mod headers;
pub mod http;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::mail::wrap;
use sealpost_core::policy::normalize_address;
use sealpost_core::{Envelope, countersign};
use serde::{Deserialize, Serialize};

use crate::handler::{Accepted, Gateway, Incoming, accept_async, acknowledge};
use crate::keyservice::{
    AuthorizeRequest, KeyServiceClient, KeyServiceError, Refusal, Sealed, SessionToken, ip_text,
};
use crate::process::Protector;

/// The most recipients of one reply (the key service allows forwards to 100).
pub const MAX_RECIPIENTS: usize = 100;

/// The reply endpoint's logic.
pub struct ReplyService {
    /// The pipeline replies go through (and the tenant's keys).
    pub gateway: Arc<Gateway>,
    /// The key service's gateway endpoints.
    pub client: KeyServiceClient,
    /// `reply_from`: the wrapper's From address and the envelope sender.
    pub from: String,
}

/// The original message: its whole envelope, so that its signature can be checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Original {
    /// The original envelope, standard base64.
    pub envelope: String,
}

/// The ids the reply threads with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threading {
    /// The reply's Message-ID, `<…@…>`.
    pub message_id: String,
    /// The original's Message-ID.
    #[serde(default)]
    pub in_reply_to: Option<String>,
    /// The original's References plus its Message-ID, space-separated.
    #[serde(default)]
    pub references: Option<String>,
}

/// `POST /v1/replies`'s body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// `reply`, `reply_all` or `forward`.
    pub kind: String,
    /// The message replied to.
    pub original: Original,
    /// The submission envelope, standard base64.
    pub envelope: String,
    /// To addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// Cc addresses.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Threading ids.
    pub threading: Threading,
}

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyQueued {
    /// The spool's queue id.
    pub queued: String,
    /// The reply's envelope message id, 32 hex.
    pub message_id: String,
    /// Who it goes to.
    pub recipients: Vec<String>,
}

/// Why a reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The request is malformed (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// `X-Sealpost-Client: 1` is missing (400 `missing_client_header`).
    #[error("the request must carry X-Sealpost-Client: 1")]
    MissingClientHeader,
    /// Not JSON (415 `unsupported_media_type`).
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// The original is not an envelope this tenant signed (400 `bad_original`).
    #[error("the original message is not one this organization signed: {0}")]
    BadOriginal(String),
    /// The envelope is not an unsigned submission of this tenant (400 `bad_envelope`).
    #[error("{0}")]
    BadEnvelope(String),
    /// To and Cc are not the recipients the key service authorized (400
    /// `recipients_mismatch`).
    #[error("To and Cc must be exactly the recipients the sealed reply is addressed to")]
    RecipientsMismatch,
    /// The body is over `reply_max_bytes` (413 `too_large`).
    #[error("the reply is larger than this gateway accepts")]
    TooLarge,
    /// The key service could not be asked (503 `key_service_unavailable`).
    #[error("the key service cannot be reached; try again in a moment")]
    KeyServiceUnavailable,
    /// The spool could not store the reply (503 `unavailable`).
    #[error("the reply could not be queued; try again in a moment")]
    Unavailable,
    /// A mail-flow rule refused the reply (422 `rejected`).
    #[error("{0}")]
    Rejected(String),
    /// The key service refused (its status and code, passed through).
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The code.
        code: Refusal,
        /// The key service's explanation.
        message: String,
    },
}

impl ReplyError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ReplyError::BadRequest(_)
            | ReplyError::MissingClientHeader
            | ReplyError::BadOriginal(_)
            | ReplyError::BadEnvelope(_)
            | ReplyError::RecipientsMismatch => 400,
            ReplyError::UnsupportedMediaType => 415,
            ReplyError::TooLarge => 413,
            ReplyError::KeyServiceUnavailable | ReplyError::Unavailable => 503,
            ReplyError::Rejected(_) => 422,
            ReplyError::Refused { status, .. } => *status,
        }
    }

    /// The error code.
    pub fn code(&self) -> &str {
        match self {
            ReplyError::BadRequest(_) => "bad_request",
            ReplyError::MissingClientHeader => "missing_client_header",
            ReplyError::UnsupportedMediaType => "unsupported_media_type",
            ReplyError::BadOriginal(_) => "bad_original",
            ReplyError::BadEnvelope(_) => "bad_envelope",
            ReplyError::RecipientsMismatch => "recipients_mismatch",
            ReplyError::TooLarge => "too_large",
            ReplyError::KeyServiceUnavailable => "key_service_unavailable",
            ReplyError::Unavailable => "unavailable",
            ReplyError::Rejected(_) => "rejected",
            ReplyError::Refused { code, .. } => code.code(),
        }
    }
}

fn decode(what: &str, s: &str) -> Result<Vec<u8>, ReplyError> {
    B64.decode(s.trim())
        .map_err(|_| ReplyError::BadRequest(format!("{what} is not standard base64")))
}

/// Checks and normalizes one address list.
fn addresses(field: &str, list: &[String]) -> Result<Vec<String>, ReplyError> {
    list.iter()
        .map(|a| {
            let a = a.trim();
            if headers::is_simple_address(a) {
                Ok(a.to_string())
            } else {
                Err(ReplyError::BadRequest(format!(
                    "{field}: {a:?} is not an e-mail address"
                )))
            }
        })
        .collect()
}

/// The original's header and license, once its envelope is found to be one of our tenant
/// signed with one of our signing keys (see the module docs, step 2).
fn signed_original(bytes: &[u8], protector: &Protector) -> Result<Sealed, ReplyError> {
    let env = Envelope::parse(bytes)
        .map_err(|e| ReplyError::BadOriginal(format!("it does not read as an envelope ({e})")))?;
    if env.header().tenant_id != protector.tenant_id {
        return Err(ReplyError::BadOriginal(format!(
            "it is a message of tenant {:?}",
            env.header().tenant_id
        )));
    }
    if env.is_submission() {
        return Err(ReplyError::BadOriginal("it carries no signature".into()));
    }
    env.verify_any(&protector.verifying_keys)
        .map_err(|_| ReplyError::BadOriginal("its signature does not verify".into()))?;
    Ok(Sealed::new(env.header_bytes(), env.license()))
}

impl ReplyService {
    /// Checks, authorizes, counter-signs, wraps and spools one reply (see the module docs).
    /// `session` is the recipient's session token, `client_ip` the browser's address.
    pub async fn submit(
        &self,
        session: SessionToken,
        client_ip: IpAddr,
        req: ReplyRequest,
    ) -> Result<ReplyQueued, ReplyError> {
        if !matches!(req.kind.as_str(), "reply" | "reply_all" | "forward") {
            return Err(ReplyError::BadRequest(format!(
                "kind {:?} is not one of reply, reply_all, forward",
                req.kind
            )));
        }
        let original_envelope = decode("original.envelope", &req.original.envelope)?;
        let submission = decode("envelope", &req.envelope)?;
        let t = &req.threading;
        if !headers::is_message_id(&t.message_id) {
            return Err(ReplyError::BadRequest(
                "threading.message_id must be one <left@right> message id".into(),
            ));
        }
        if t.in_reply_to
            .as_deref()
            .is_some_and(|v| !headers::is_message_id(v))
        {
            return Err(ReplyError::BadRequest(
                "threading.in_reply_to must be one <left@right> message id or null".into(),
            ));
        }
        if t.references
            .as_deref()
            .is_some_and(|v| !headers::is_references(v))
        {
            return Err(ReplyError::BadRequest(
                "threading.references must be message ids separated by single spaces, or null"
                    .into(),
            ));
        }
        let to = addresses("to", &req.to)?;
        let cc = addresses("cc", &req.cc)?;
        if to.is_empty() && cc.is_empty() || to.len() + cc.len() > MAX_RECIPIENTS {
            return Err(ReplyError::BadRequest(format!(
                "a reply needs between 1 and {MAX_RECIPIENTS} recipients in to and cc"
            )));
        }

        let protector = &self.gateway.processor.protector;
        let original = signed_original(&original_envelope, protector)?;
        drop(original_envelope);
        let env = Envelope::parse(&submission)
            .map_err(|e| ReplyError::BadEnvelope(format!("the envelope does not read: {e}")))?;
        if !env.is_submission() {
            return Err(ReplyError::BadEnvelope(
                "the envelope is already signed; the portal must send an unsigned submission"
                    .into(),
            ));
        }
        let header = env.header().clone();
        if header.tenant_id != protector.tenant_id {
            return Err(ReplyError::BadEnvelope(format!(
                "the envelope is for tenant {:?}, not this gateway's",
                header.tenant_id
            )));
        }
        if header.signing_key_id != protector.signing_key.verifying_key().key_id() {
            return Err(ReplyError::BadEnvelope(
                "the envelope names another signing key than this gateway's; reload the tenant information".into(),
            ));
        }

        let authorized = self
            .client
            .authorize_reply(&AuthorizeRequest {
                session: &session,
                kind: &req.kind,
                client_ip: ip_text(client_ip),
                original,
                reply: Sealed::new(env.header_bytes(), env.license()),
            })
            .await
            .map_err(|e| match e {
                KeyServiceError::Refused {
                    code: Refusal::Unauthorized,
                    ..
                } => {
                    tracing::error!(
                        "the key service refused the gateway token; check key_service_token_file"
                    );
                    ReplyError::KeyServiceUnavailable
                }
                KeyServiceError::Refused {
                    status,
                    code,
                    message,
                } => ReplyError::Refused {
                    status,
                    code,
                    message,
                },
                KeyServiceError::Unavailable(why) => {
                    tracing::warn!(reason = %why, "cannot authorize a reply");
                    ReplyError::KeyServiceUnavailable
                }
            })?;
        let asked: BTreeSet<String> = to.iter().chain(&cc).map(|a| normalize_address(a)).collect();
        let allowed: BTreeSet<String> = authorized
            .recipients
            .iter()
            .map(|a| normalize_address(a))
            .collect();
        if asked != allowed {
            return Err(ReplyError::RecipientsMismatch);
        }
        let message_id = header.message_id.to_hex();
        if authorized.reply_message_id != message_id {
            tracing::error!(reply = %message_id, authorized = %authorized.reply_message_id, "the key service authorized another message id");
            return Err(ReplyError::KeyServiceUnavailable);
        }
        let signed = countersign(&submission, &protector.signing_key)
            .map_err(|e| ReplyError::BadEnvelope(e.to_string()))?;
        drop(submission);

        let now = (self.gateway.clock)();
        let block = headers::Block {
            submitter: &authorized.submitter,
            organization: &protector.wrapper.organization,
            reply_from: &self.from,
            to: &to,
            cc: &cc,
            now,
            message_id: &t.message_id,
            in_reply_to: t.in_reply_to.as_deref(),
            references: t.references.as_deref(),
            subject: header.subject.as_deref(),
        }
        .write();
        let mut data =
            format!("X-Sealpost-Relayed-For: <{}>\r\n", authorized.submitter).into_bytes();
        // The subject shows only when the sealed header has one (the portal sets it only when
        // the tenant shows subjects); otherwise the tenant's replacement subject.
        let mut settings = protector.wrapper.clone();
        settings.show_subject = settings.show_subject && header.subject.is_some();
        data.extend_from_slice(&wrap(&block, &signed, &header, &settings));
        drop(signed);

        let incoming = Incoming {
            mail_from: self.from.clone(),
            recipients: authorized.recipients.clone(),
            peer: client_ip,
            received_from: format!("reply endpoint [{}]", ip_text(client_ip)),
        };
        match accept_async(&self.gateway, incoming, data).await {
            Accepted::Stored(id) => {
                let g = self.gateway.clone();
                let ack = id.clone();
                let _ = tokio::task::spawn_blocking(move || acknowledge(&g, &ack)).await;
                tracing::info!(
                    queue_id = %id,
                    kind = %authorized.kind,
                    original = %authorized.original_message_id,
                    reply = %message_id,
                    recipients = authorized.recipients.len(),
                    "reply accepted"
                );
                Ok(ReplyQueued {
                    queued: id.to_string(),
                    message_id,
                    recipients: authorized.recipients,
                })
            }
            Accepted::Rejected { text } => Err(ReplyError::Rejected(text)),
            Accepted::TempFailed { .. } => Err(ReplyError::Unavailable),
        }
    }
}
