//! Rules, splitting and encryption: one accepted message in, the copies to relay out.
//!
//! [`Processor::process`] reads the message once ([`MessageView::parse`]), evaluates the
//! mail-flow rules for every recipient ([`RuleSet::evaluate_all`]), merges recipients with the
//! same treatment ([`group`]) and makes one [`Copy`] per group:
//!
//! - *original*: the message as received, minus its `Bcc` fields, with the group's added
//!   headers (including `X-Sealpost-Rule-Test` from rules in test mode) put in front of its
//!   header section;
//! - *encrypt*: the wrapper mail, made exactly as `sealpost encrypt` makes it (the policy of
//!   the group's template for the group's recipients, `Bcc` cut from the payload, sealed and
//!   signed by `sealpost-core`, wrapped with the tenant's wrapper settings), with the added
//!   headers in front;
//! - *reject*: no copy; the recipient is listed in `rejected`, and when every recipient is
//!   rejected the whole message is ([`Processed::RejectAll`]).
//!
//! Input that is not an RFC 5322 message ([`BrokenMime`]) is rejected, or protected whole: the
//! rules run on whatever can be read and an encrypted copy carries the original bytes as they
//! came. Nothing here panics on any input.
//!
//! Mail that is already a Sealpost wrapper is never encrypted again ([`protected`]); when the
//! tenant allows transport decryption and the wrapper is our own, verified, the result names
//! the copies for internal recipients that may be decrypted ([`Decryptable`]) — the key
//! service is asked by the caller, not here.
//!
//! This module does not speak SMTP, spool, relay or log: it returns [`Processed::Deliver`]'s
//! `summary` lines (recipient, matched rule names, action; never subject or body text) for the
//! caller to log. Key material stays inside `sealpost-core`: this module only hands the keys
//! of the [`Protector`] to its API.

use std::fmt;

use sealpost_core::mail::{WrapperSettings, rfc5322};
use sealpost_core::policy::normalize_address;
use sealpost_core::{LicensePublicKey, SealError, SigningKey, VerifyingKey};
use sealpost_rules::{Decision, MessageView, Outcome, RuleSet, Step, group};

mod copies;
pub mod protected;

pub use protected::{Candidate, DECRYPTED_FIELD, Decryptable, MARKER_FIELD};

/// The tenant's identity and keys, as needed to seal copies (public license key and signing
/// key only: the gateway can encrypt but never decrypt).
#[derive(Clone)]
pub struct Protector {
    /// Tenant id written to every envelope header.
    pub tenant_id: String,
    /// The key service's base URL written to every envelope header.
    pub key_service_url: String,
    /// The tenant's license key (public half).
    pub license_key: LicensePublicKey,
    /// The tenant's signing key.
    pub signing_key: SigningKey,
    /// Every signing public key of the tenant (active and retired): wrappers of our own that
    /// verify with one of them count as already protected.
    pub verifying_keys: Vec<VerifyingKey>,
    /// How wrapper mails look (organization name, portal URL, subject shown or replaced).
    pub wrapper: WrapperSettings,
}

impl fmt::Debug for Protector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Protector")
            .field("tenant_id", &self.tenant_id)
            .field("key_service_url", &self.key_service_url)
            .field("license_key", &self.license_key)
            .field("signing_key", &self.signing_key)
            .field("verifying_keys", &self.verifying_keys.len())
            .field("wrapper", &self.wrapper)
            .finish()
    }
}

/// What to do with input that is not a readable RFC 5322 message (configuration key
/// `broken_mime`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokenMime {
    /// Apply the rules to what can be read; an encrypted copy seals the original bytes whole
    /// (`broken_mime = "protect"`, the default).
    #[default]
    Protect,
    /// Refuse the message for every recipient (`broken_mime = "reject"`).
    Reject,
}

/// Rules, keys and the broken-MIME policy: everything [`Processor::process`] needs.
#[derive(Debug, Clone)]
pub struct Processor {
    /// The loaded mail-flow rules.
    pub rules: RuleSet,
    /// The tenant's keys and wrapper settings.
    pub protector: Protector,
    /// What to do with input that is not valid MIME.
    pub broken_mime: BrokenMime,
    /// The tenant allows transport decryption (tenant.toml `transport_decryption`): plan it
    /// for internal recipients of our own protected mail.
    pub transport_decryption: bool,
}

/// One copy of the message for some of its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Envelope recipients of this copy, spelled as given in RCPT TO.
    pub recipients: Vec<String>,
    /// The message bytes to relay.
    pub data: Vec<u8>,
    /// What this copy is, for logs and the spool: `original` or `encrypted (TEMPLATE)`.
    pub label: String,
    /// Whether `data` is a wrapper mail.
    pub encrypted: bool,
}

/// The result of processing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Relay these copies; the recipients in `rejected` get nothing.
    Deliver {
        /// One copy per group of recipients treated alike, in the order their first
        /// recipient was given.
        copies: Vec<Copy>,
        /// Rejected recipients (as given) with the rule's text.
        rejected: Vec<(String, String)>,
        /// One line per recipient for the log: recipient, matched rules, action. Never
        /// subject or body text.
        summary: Vec<String>,
        /// Our own protected mail whose internal recipients may get it decrypted (only with
        /// [`Processor::transport_decryption`]).
        decryptable: Option<Decryptable>,
    },
    /// Every recipient was rejected: answer `550 5.7.1 {text}`.
    RejectAll {
        /// The first rejecting rule's text, or why the message is not valid MIME.
        text: String,
    },
}

/// A copy could not be protected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// Sealing refused the message (too large, a header field too long to record, an
    /// address it cannot seal). The same input always fails the same way.
    #[error("cannot protect the copy for {recipients} recipient(s): {source}")]
    Seal {
        /// How many recipients the copy was for.
        recipients: usize,
        /// Why sealing failed.
        source: SealError,
    },
    /// The envelope just sealed did not read back (a fault in `sealpost-core`, never seen).
    #[error("the envelope just sealed cannot be read back")]
    Unreadable,
}

impl ProcessError {
    /// Whether retrying the same message can never succeed (sealing is deterministic in its
    /// refusals), so the client should get a 5xx rather than a 4xx.
    pub fn is_permanent(&self) -> bool {
        match self {
            ProcessError::Seal { .. } => true,
            ProcessError::Unreadable => false,
        }
    }
}

/// The reply text for a message refused because it is not valid MIME.
pub const BROKEN_MIME_TEXT: &str =
    "message is not valid MIME (it must be an RFC 5322 message that starts with header fields)";

/// Whether `raw` is not a readable message (`view` is what mail-parser made of it).
fn broken(raw: &[u8], view: &MessageView) -> bool {
    !rfc5322::looks_like_mail(raw) || !view.readable
}

impl Processor {
    /// Applies the rules to one message and makes its copies.
    ///
    /// `mail_from` is the envelope sender (`""` for the null sender), `recipients` the RCPT TO
    /// addresses as given, `raw` the message, `now` the time in Unix seconds (sealed into the
    /// envelope and its expiry) and `rng` the randomness for sealing. With no recipients the
    /// result is `Deliver` with no copies.
    pub fn process(
        &self,
        mail_from: &str,
        recipients: &[String],
        raw: &[u8],
        now: u64,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Processed, ProcessError> {
        // Parsed once: the broken-MIME check and the rules read the same view.
        let view = MessageView::parse(raw);
        let is_broken = broken(raw, &view);
        if is_broken && self.broken_mime == BrokenMime::Reject {
            return Ok(Processed::RejectAll {
                text: BROKEN_MIME_TEXT.into(),
            });
        }
        let outcomes = self.rules.evaluate_all(&view, mail_from, recipients);
        let summary = outcomes.iter().map(summary_line).collect();
        let protected = if is_broken {
            None
        } else {
            protected::detect(raw, &self.protector)
        };
        let plan_decryption =
            self.transport_decryption && protected.as_ref().is_some_and(|p| p.ours.is_some());
        let mut candidates = Vec::new();

        // Deliver to recipients as they were spelled in RCPT TO (the first spelling of each).
        let spelled = |normalized: &str| -> String {
            recipients
                .iter()
                .find(|r| normalize_address(r) == normalized)
                .cloned()
                .unwrap_or_else(|| normalized.to_string())
        };
        let mut rejected = Vec::new();
        for o in &outcomes {
            if let Decision::Reject { text } = &o.decision
                && !rejected
                    .iter()
                    .any(|(r, _): &(String, String)| normalize_address(r) == o.recipient)
            {
                rejected.push((spelled(&o.recipient), text.clone()));
            }
        }
        let groups = group(&outcomes);
        if !groups.is_empty()
            && groups
                .iter()
                .all(|g| matches!(g.decision, Decision::Reject { .. }))
        {
            let text = rejected.first().map(|(_, t)| t.clone()).unwrap_or_default();
            return Ok(Processed::RejectAll { text });
        }

        let source = copies::Source::new(raw, mail_from, is_broken);
        let mut out = Vec::with_capacity(groups.len());
        for g in &groups {
            let to: Vec<String> = g.recipients.iter().map(|r| spelled(r)).collect();
            match &g.decision {
                Decision::Reject { .. } => {}
                Decision::Original => {
                    if plan_decryption {
                        let internal: Vec<(String, String)> = g
                            .recipients
                            .iter()
                            .filter(|r| outcomes.iter().any(|o| &o.recipient == *r && o.internal))
                            .map(|r| (spelled(r), r.clone()))
                            .collect();
                        if !internal.is_empty() {
                            candidates.push(Candidate {
                                copy: out.len(),
                                recipients: internal,
                                add_headers: g.add_headers.clone(),
                            });
                        }
                    }
                    out.push(Copy {
                        recipients: to,
                        data: source.original(&g.add_headers),
                        label: "original".into(),
                        encrypted: false,
                    })
                }
                // Already protected: passed on as it is, never sealed twice.
                Decision::Encrypt { .. } if protected.is_some() => out.push(Copy {
                    recipients: to,
                    data: source.original(&g.add_headers),
                    label: "original (already protected)".into(),
                    encrypted: false,
                }),
                Decision::Encrypt {
                    template,
                    remove_subject,
                } => {
                    let data = source.protect(
                        &self.protector,
                        template,
                        *remove_subject,
                        &g.recipients,
                        &g.add_headers,
                        now,
                        rng,
                    )?;
                    out.push(Copy {
                        recipients: to,
                        data,
                        label: copies::label(template, *remove_subject, is_broken),
                        encrypted: true,
                    });
                }
            }
        }
        let decryptable = match protected {
            Some(p) if plan_decryption && !candidates.is_empty() => {
                p.ours.map(|envelope| Decryptable {
                    envelope,
                    message_id: p.message_id,
                    candidates,
                })
            }
            _ => None,
        };
        Ok(Processed::Deliver {
            copies: out,
            rejected,
            summary,
            decryptable,
        })
    }
}

/// `bob@x.example: encrypt with Do-Not-Forward, subject removed (rules: Contracts, Trial [test])`.
fn summary_line(o: &Outcome) -> String {
    let action = match &o.decision {
        Decision::Original => "deliver the original".to_string(),
        Decision::Encrypt {
            template,
            remove_subject,
        } => format!(
            "encrypt with {}{}",
            template.name,
            if *remove_subject {
                ", subject removed"
            } else {
                ""
            }
        ),
        Decision::Reject { text } => format!("reject (550 5.7.1 {text})"),
    };
    let matched: Vec<String> = o
        .trail
        .iter()
        .filter_map(|s| match s {
            Step::Matched { rule, mode, .. } => Some(match mode {
                sealpost_rules::Mode::Enforce => format!("{rule:?}"),
                sealpost_rules::Mode::Test => format!("{rule:?} [test]"),
            }),
            _ => None,
        })
        .collect();
    let rules = if matched.is_empty() {
        "no rule matched".to_string()
    } else {
        format!("rules: {}", matched.join(", "))
    };
    format!(
        "{} ({}): {action} ({rules})",
        o.recipient,
        if o.internal { "inside" } else { "outside" }
    )
}
