//! Sign-in by one-time passcode: start (mail a code if the address is a recipient) and
//! verify (turn a correct code into a session).
//!
//! Starting answers the same way whether or not the address is a recipient, and does the same
//! durable work: an audit record, then one transaction with a challenge and an outbox mail of
//! the same size. For a non-recipient the challenge has `sent = false` (no code can verify)
//! and the mail is a decoy, its code masked, which the delivery worker never sends and the
//! purge removes. The audit record comes first, so no passcode mail is queued whose request
//! is not in the audit log.

use std::net::IpAddr;

use sealpost_core::policy::{is_plausible_address, normalize_address};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{KeyService, Opened, OtpStartError, OtpVerifyError};
use crate::otp;
use crate::session;
use crate::store::{ChallengeRow, OutboxRow, SessionRow};

/// A started sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtpStarted {
    /// Pass this back with the code.
    pub challenge: String,
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// The message reference the passcode mail names.
    pub reference: String,
}

/// A new session.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct SessionIssued {
    /// Bearer token for rewrap.
    pub session: String,
    /// The address it is bound to.
    pub email: String,
    /// Absolute end, Unix seconds.
    pub expires_at: i64,
    /// Idle timeout in seconds.
    pub idle_timeout: i64,
    /// The service's clock when the session was opened, Unix seconds.
    pub server_time: i64,
}

impl std::fmt::Debug for SessionIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionIssued")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl KeyService {
    /// Starts a passcode sign-in for `email` on the message whose header and license are given.
    pub async fn start_otp(
        &self,
        header: &[u8],
        license: &[u8],
        email: &str,
        ip: Option<IpAddr>,
    ) -> Result<OtpStarted, OtpStartError> {
        self.limit_ip(ip).map_err(OtpStartError::RateLimited)?;
        let email = normalize_address(email);
        if !is_plausible_address(&email) {
            return Err(OtpStartError::BadAddress);
        }
        let (header, lic) = match self.open_license(header, license).await? {
            Opened::Ok(b) => *b,
            Opened::Malformed => return Err(OtpStartError::Malformed),
            Opened::UnknownTenant => return Err(OtpStartError::UnknownTenant),
            Opened::UnknownKey => return Err(OtpStartError::UnknownKey),
        };
        let now = self.now();
        let limits = self.limits.otp;
        if self
            .store
            .address_failures_since(&email, now - limits.lockout_secs)
            .await?
            >= limits.lockout_after_failures
        {
            return Err(OtpStartError::Locked);
        }
        if self.store.challenges_since(&email, now - 3600).await? >= limits.max_codes_per_hour {
            return Err(OtpStartError::TooManyCodes(3600));
        }
        let is_recipient = lic.policy.is_recipient(&email);
        let mut rng = self.entropy.rng();
        let challenge = otp::new_challenge_id(&mut rng);
        let code = otp::generate_code(&mut rng);
        let message_id = header.message_id.to_hex();
        let reference = header.message_id.reference();
        let event = if is_recipient {
            "otp_sent"
        } else {
            "otp_not_sent_not_recipient"
        };
        self.audit(
            &header.tenant_id,
            event,
            Some(&email),
            Some(message_id.clone()),
            ip,
            format!("challenge {challenge}"),
        )
        .await?;
        let shown_code = if is_recipient {
            Zeroizing::new(code.to_string())
        } else {
            Zeroizing::new("-".repeat(code.len()))
        };
        let mail = OutboxRow {
            id: 0,
            created: now,
            to_addr: email.clone(),
            subject: passcode_subject(&reference),
            body: passcode_body(
                &header.sender,
                &shown_code,
                &reference,
                limits.lifetime_secs,
            ),
        };
        let row = ChallengeRow {
            id: challenge.clone(),
            tenant_id: header.tenant_id.clone(),
            email,
            message_id,
            code_hash: otp::hash_code(&self.otp_secret, &challenge, &code).to_vec(),
            sent: is_recipient,
            created: now,
            expires: now + limits.lifetime_secs,
            attempts: 0,
            used: false,
        };
        self.store
            .insert_challenge_with_mail(&row, &mail, !is_recipient)
            .await?;
        Ok(OtpStarted {
            challenge,
            expires_in: limits.lifetime_secs,
            reference,
        })
    }

    /// Checks a passcode; on success opens a session for the challenge's address.
    pub async fn verify_otp(
        &self,
        challenge: &str,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<SessionIssued, OtpVerifyError> {
        self.limit_ip(ip).map_err(OtpVerifyError::RateLimited)?;
        let limits = self.limits.otp;
        let Some(row) = self.store.challenge(challenge).await? else {
            return Err(OtpVerifyError::WrongCode { remaining: 0 });
        };
        let now = self.now();
        let recent_failures = self
            .store
            .address_failures_since(&row.email, now - limits.lockout_secs)
            .await?;
        if recent_failures >= limits.lockout_after_failures {
            return Err(OtpVerifyError::Locked);
        }
        if row.used {
            return Err(OtpVerifyError::WrongCode { remaining: 0 });
        }
        if row.attempts >= limits.max_attempts {
            return Err(OtpVerifyError::TooManyAttempts);
        }
        if now >= row.expires {
            return Err(OtpVerifyError::Expired);
        }
        let correct = otp::normalize_code(code)
            .is_some_and(|c| otp::check_code(&self.otp_secret, &row.id, &c, &row.code_hash))
            && row.sent;
        if correct && self.store.consume_challenge(&row.id).await? {
            self.store.reset_address_failures(&row.email).await?;
            let (token, hash) = session::new_token(&mut self.entropy.rng());
            let expires = now + self.limits.session.absolute_secs;
            self.store
                .insert_session(&SessionRow {
                    token_hash: hash.to_vec(),
                    email: row.email.clone(),
                    tenant_id: row.tenant_id.clone(),
                    created: now,
                    last_seen: now,
                    expires,
                })
                .await?;
            self.audit(
                &row.tenant_id,
                "otp_verified",
                Some(&row.email),
                Some(row.message_id.clone()),
                ip,
                "session opened",
            )
            .await?;
            return Ok(SessionIssued {
                session: token.to_string(),
                email: row.email,
                expires_at: expires,
                idle_timeout: self.limits.session.idle_secs,
                server_time: now,
            });
        }
        let attempts = self.store.record_failed_attempt(&row.id).await?;
        if recent_failures == 0 {
            // Older failures are outside the window: they no longer count as consecutive.
            self.store.reset_address_failures(&row.email).await?;
        }
        let failures = self.store.add_address_failure(&row.email, now).await?;
        self.audit(
            &row.tenant_id,
            "otp_failed",
            Some(&row.email),
            Some(row.message_id.clone()),
            ip,
            format!("attempt {attempts}, consecutive failures {failures}"),
        )
        .await?;
        if failures >= limits.lockout_after_failures {
            Err(OtpVerifyError::Locked)
        } else if attempts >= limits.max_attempts {
            Err(OtpVerifyError::TooManyAttempts)
        } else {
            Err(OtpVerifyError::WrongCode {
                remaining: limits.max_attempts - attempts,
            })
        }
    }
}

/// The subject of a passcode mail: it names the message reference.
fn passcode_subject(reference: &str) -> String {
    format!("Your Sealpost passcode (message {reference})")
}

/// The body of a passcode mail. It names the message reference, so that a recipient lured
/// into typing a code for another message can tell.
fn passcode_body(sender: &str, code: &str, reference: &str, lifetime_secs: i64) -> String {
    let lifetime = if lifetime_secs % 60 == 0 {
        format!("{} minutes", lifetime_secs / 60)
    } else {
        format!("{lifetime_secs} seconds")
    };
    format!(
        "Your passcode to read the protected message from {sender} is:\n\n    {code}\n\n\
         Message reference: {reference}\n\n\
         Check that the portal shows the same reference before you enter the code.\n\
         The passcode is valid for {lifetime} and can be used once.\n\
         If you did not ask for it, you can ignore this mail.\n"
    )
}
