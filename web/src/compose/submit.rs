//! Sealing the reply and talking to the gateway's reply endpoint (`POST {reply_url}/v1/replies`,
//! docs/portal.md "Replying"): the reply's policy, the submission sealed with
//! `sealpost_core::SubmissionSealing` to the organization's active license key (in parts, so
//! the caller can yield to the browser between them), the request and answer bodies, and what
//! each answer means for the person.
//!
//! The policy follows the original's (contract, step 3): the same template and rights, the
//! signed-in address as sender, To ∪ Cc as recipients, and — when the original expires — the
//! same lifetime counted from now. The key service checks all of it again before the gateway
//! counter-signs; nothing here is trusted by anyone else.

use rand_core::CryptoRng;
use sealpost_core::policy::normalize_address;
use sealpost_core::{KeyId, LicensePublicKey, Policy, Right, SubmissionSealer, SubmissionSealing};
use serde::{Deserialize, Serialize};

use super::Kind;
use super::address::Recipients;
use super::message::Threading;
use super::original::Original;
use crate::api::{CallError, TenantInfo};

/// The gateway's default limit on a reply request (`reply_max_bytes`, 96 MiB).
pub const MAX_REQUEST_BYTES: usize = 96 << 20;

/// The largest original envelope the default limit is sized for: 25 MiB of original and the
/// largest reply ([`super::message::MAX_MESSAGE_BYTES`]) fit together, both base64.
pub const MAX_ORIGINAL_BYTES: usize = 25 << 20;

/// Room in a request for everything but the two envelopes (addresses, threading ids, JSON).
const REQUEST_OVERHEAD: usize = 256 << 10;

/// Whether a request with a reply envelope of `envelope_b64_len` base64 characters and an
/// original envelope of `original_b64_len` stays within the gateway's default limit.
pub fn fits(envelope_b64_len: usize, original_b64_len: usize) -> bool {
    envelope_b64_len
        .saturating_add(original_b64_len)
        .saturating_add(REQUEST_OVERHEAD)
        <= MAX_REQUEST_BYTES
}

/// The reply endpoint for a tenant's `reply_url`: `{reply_url}/v1/replies`, or `None` when it
/// is not an absolute `http(s)` URL with a host (then no reply is offered).
pub fn reply_endpoint(reply_url: &str) -> Option<String> {
    let base = reply_url.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let ok = !host.is_empty()
        && !host.contains('@')
        && !rest.contains(['?', '#'])
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| format!("{base}/v1/replies"))
}

/// The reply's sealed policy.
pub fn policy(original: &Original, me: &str, recipients: &Recipients, now: u64) -> Policy {
    Policy {
        template: original.template.clone(),
        rights: original.rights,
        expires: original
            .expires
            .map(|e| now.saturating_add(e.saturating_sub(original.created))),
        sender: normalize_address(me),
        recipients: recipients.all(),
    }
}

/// The subject for the reply's readable header: only when the original's header showed one
/// (the organization shows subjects).
pub fn header_subject(original: &Original, subject: &str) -> Option<String> {
    original.header_subject.then(|| subject.trim().to_string())
}

/// Why the reply could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealProblem {
    /// The tenant info lists no usable active license or signing key.
    #[error(
        "The sender's organization publishes no key for protected replies, so this reply cannot be sent from here."
    )]
    NoKey,
    /// The core refused to seal (a policy it cannot encode, say).
    #[error("The reply could not be protected: {0}.")]
    Seal(String),
}

/// The organization's active license key and the id of its active signing key.
pub fn tenant_keys(tenant: &TenantInfo) -> Result<(LicensePublicKey, KeyId), SealProblem> {
    let license = tenant
        .license_keys
        .iter()
        .filter(|k| k.status == "active")
        .find_map(|k| LicensePublicKey::from_base64(&k.public_key).ok())
        .ok_or(SealProblem::NoKey)?;
    let signing = tenant
        .signing_keys
        .iter()
        .filter(|k| k.status == "active")
        .find_map(|k| KeyId::from_hex(&k.id).ok())
        .ok_or(SealProblem::NoKey)?;
    Ok((license, signing))
}

/// The composer hands the plaintext to the sealing in parts of this size, letting the browser
/// paint and handle input between them (about a second of work for the largest reply, in
/// WebAssembly, would otherwise freeze the tab).
pub const SEAL_PART: usize = 1 << 20;

/// Starts sealing a plaintext of `len` bytes as a submission of the original's tenant under
/// `policy`: then [`Sealing::update`] with its parts in order, and [`Sealing::finish`].
pub fn start_seal(
    original: &Original,
    tenant: &TenantInfo,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    len: usize,
    rng: &mut impl CryptoRng,
) -> Result<Sealing, SealProblem> {
    let (license_key, signing_key_id) = tenant_keys(tenant)?;
    let sealer = SubmissionSealer {
        tenant_id: &original.tenant_id,
        key_service_url: &original.key_service_url,
        license_key: &license_key,
        signing_key_id,
    };
    SubmissionSealing::start(&sealer, policy, subject, now, len, rng)
        .map(Sealing)
        .map_err(|e| SealProblem::Seal(e.to_string()))
}

/// A reply being sealed ([`start_seal`]).
pub struct Sealing(SubmissionSealing);

impl Sealing {
    /// Encrypts the next part of the plaintext.
    pub fn update(&mut self, part: &[u8]) -> Result<(), SealProblem> {
        self.0
            .update(part)
            .map_err(|e| SealProblem::Seal(e.to_string()))
    }

    /// The sealed submission.
    pub fn finish(self) -> Result<Vec<u8>, SealProblem> {
        self.0
            .finish()
            .map_err(|e| SealProblem::Seal(e.to_string()))
    }
}

/// Seals `plaintext` at once as a submission of the original's tenant under `policy` (what
/// [`start_seal`] and its parts make, in one call).
pub fn seal(
    original: &Original,
    tenant: &TenantInfo,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SealProblem> {
    let mut sealing = start_seal(original, tenant, policy, subject, now, plaintext.len(), rng)?;
    sealing.update(plaintext)?;
    sealing.finish()
}

/// `original` of the request: the whole original envelope, base64, so that the gateway can
/// check that the organization signed it.
#[derive(Debug, Clone, Serialize)]
pub struct OriginalJson<'a> {
    /// The original envelope, base64.
    pub envelope: &'a str,
}

/// `threading` of the request.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadingJson<'a> {
    /// `<…@sealpost.invalid>`.
    pub message_id: &'a str,
    /// The original's `<Message-ID>`.
    pub in_reply_to: Option<&'a str>,
    /// `<…> <…>`.
    pub references: Option<&'a str>,
}

/// The body of `POST /v1/replies`. It carries no plaintext: both envelopes are sealed, the rest
/// are addresses and message ids.
#[derive(Debug, Clone, Serialize)]
pub struct ReplyRequest<'a> {
    /// `reply`, `reply_all` or `forward`.
    pub kind: &'static str,
    /// The original envelope.
    pub original: OriginalJson<'a>,
    /// The submission, base64.
    pub envelope: String,
    /// To, normalized.
    pub to: Vec<String>,
    /// Cc, normalized.
    pub cc: Vec<String>,
    /// The threading ids.
    pub threading: ThreadingJson<'a>,
}

impl<'a> ReplyRequest<'a> {
    /// The request for a sealed `envelope` (base64) of `kind` to `recipients`.
    pub fn new(
        kind: Kind,
        original: OriginalJson<'a>,
        envelope: String,
        recipients: &Recipients,
        threading: &'a Threading,
    ) -> ReplyRequest<'a> {
        ReplyRequest {
            kind: kind.as_str(),
            original,
            envelope,
            to: recipients.to_addresses(),
            cc: recipients.cc_addresses(),
            threading: ThreadingJson {
                message_id: &threading.message_id,
                in_reply_to: threading.in_reply_to.as_deref(),
                references: threading.references.as_deref(),
            },
        }
    }
}

/// The 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReplyQueued {
    /// The gateway's spool id.
    pub queued: String,
    /// The reply's envelope message id, 32 hex digits.
    pub message_id: String,
    /// Who it goes to.
    pub recipients: Vec<String>,
}

/// A failed send, in words for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendProblem {
    /// What happened and what to do.
    pub text: String,
    /// The session ended: offer to sign in again (the draft is kept).
    pub sign_in_again: bool,
}

fn problem(text: impl Into<String>) -> SendProblem {
    SendProblem {
        text: text.into(),
        sign_in_again: false,
    }
}

const NOTHING_SENT: &str = "Nothing was sent.";

/// Explains a failed `POST /v1/replies` of `kind`.
pub fn send_problem(kind: Kind, e: &CallError) -> SendProblem {
    let wait = match e {
        CallError::Status {
            retry_after: Some(s),
            ..
        } if *s > 1 => format!("{s} seconds"),
        _ => "a moment".into(),
    };
    let text = match e.code() {
        Some("not_signed_in") => {
            return SendProblem {
                text: "Your sign-in has ended, so nothing was sent. Sign in again: your message is kept and you can send it afterwards.".into(),
                sign_in_again: true,
            };
        }
        Some("sender_mismatch") => {
            return SendProblem {
                text: "The reply's sender does not match the address you are signed in with. Sign in again; your message is kept.".into(),
                sign_in_again: true,
            };
        }
        Some("not_a_recipient") => format!(
            "The address you are signed in with was not a recipient of this message, so it cannot answer it. {NOTHING_SENT}"
        ),
        Some("right_not_granted") => format!(
            "The sender does not allow this message to be {}. {NOTHING_SENT}",
            match kind {
                Kind::Reply => "replied to",
                Kind::ReplyAll => "answered with reply all",
                Kind::Forward => "forwarded",
            }
        ),
        Some("recipients_not_allowed") => format!(
            "{} {NOTHING_SENT}",
            match kind {
                Kind::Reply => "A reply can go only to the sender of the message.",
                Kind::ReplyAll =>
                    "Reply all can go only to the sender and the message's other recipients, and one of the addresses was not among them (people who got the message in another copy cannot be reached this way). Use Reply instead.",
                Kind::Forward =>
                    "These recipients are not allowed: a forward can go to between 1 and 100 addresses.",
            }
        ),
        Some("revoked") => format!(
            "The sender's organization withdrew the original message, so it can no longer be answered. {NOTHING_SENT}"
        ),
        Some("expired") => format!(
            "The original message has expired, so it can no longer be answered. {NOTHING_SENT}"
        ),
        Some("reply_policy_invalid" | "recipients_mismatch") => format!(
            "The reply service did not accept the protection of this reply. Open the message again and retry. {NOTHING_SENT}"
        ),
        Some("bad_original") => format!(
            "The reply service could not confirm that the sender's organization sent the original message, so it cannot be answered from here. {NOTHING_SENT}"
        ),
        Some("malformed_license" | "unknown_key" | "bad_envelope") => format!(
            "The reply service could not check the original message or the protected reply. Open the message again and retry. {NOTHING_SENT}"
        ),
        Some("too_large") => format!(
            "The message is too large for the reply service. Remove an attachment and try again. {NOTHING_SENT}"
        ),
        Some("key_service_unavailable") => format!(
            "The organization's key service did not answer. Try again in {wait}. {NOTHING_SENT}"
        ),
        Some("unavailable" | "overloaded") => format!(
            "The reply service cannot take messages right now. Try again in {wait}. {NOTHING_SENT}"
        ),
        Some("rate_limited") => format!(
            "Too many requests came from your network. Wait {wait} and try again. {NOTHING_SENT}"
        ),
        Some("bad_request" | "missing_client_header" | "unsupported_media_type") => format!(
            "The reply service refused the request. Reload the portal and try again. {NOTHING_SENT}"
        ),
        _ => match e {
            CallError::Network => format!(
                "The reply service of the sender's organization could not be reached. Check your connection and try again. {NOTHING_SENT}"
            ),
            CallError::Status { status, .. } => format!(
                "The reply service answered with an error (HTTP {status}). Try again later. {NOTHING_SENT}"
            ),
        },
    };
    problem(text)
}

/// The line naming the protection in the composer: the template, what it allows, and the
/// lifetime when the original has one.
pub fn protection_note(original: &Original) -> String {
    let r = original.rights;
    let not: Vec<&str> = [
        (Right::Forward, "forwarded"),
        (Right::Print, "printed"),
        (Right::Copy, "copied"),
        (Right::Export, "downloaded"),
    ]
    .into_iter()
    .filter(|(right, _)| !r.contains(*right))
    .map(|(_, word)| word)
    .collect();
    let mut note = format!(
        "This message is encrypted in your browser and protected with {}, like the original",
        original.template
    );
    if not.is_empty() {
        note.push_str(": its recipients can read it without restrictions.");
    } else {
        let list = match not.as_slice() {
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
            [] => String::new(),
        };
        note.push_str(&format!(": it cannot be {list} in the portal."));
    }
    if let Some(life) = original.expires.map(|e| e.saturating_sub(original.created)) {
        note.push_str(&format!(
            " Like the original, it can be opened for {} after it is sent.",
            duration(life)
        ));
    }
    note
}

/// `3 days`, `5 hours`, `10 minutes`.
fn duration(secs: u64) -> String {
    let (n, unit) = if secs >= 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 3_600 {
        (secs / 3_600, "hour")
    } else {
        ((secs / 60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
