//! The key service's API as the portal uses it (`docs/api.md`): request and answer bodies,
//! and what each error code means for the recipient.
//!
//! The HTTP calls themselves are in the browser glue (`net`); this module is plain data and
//! plain decisions, tested natively. Error texts are written for the recipient: they say what
//! to do next and reveal nothing about who may read a message.

use serde::{Deserialize, Serialize};

/// `GET /v1/tenants/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TenantInfo {
    /// The tenant id.
    pub tenant_id: String,
    /// The organization's name.
    pub display_name: String,
    /// Keys that verify the tenant's envelopes.
    pub signing_keys: Vec<TenantKey>,
    /// HPKE license keys; a reply is sealed to the active one.
    #[serde(default)]
    pub license_keys: Vec<TenantKey>,
    /// Base URL of the gateway's reply endpoint; without it no reply is offered.
    #[serde(default)]
    pub reply_url: Option<String>,
    /// The tenant's branding.
    #[serde(default)]
    pub branding: Branding,
    /// OpenID Connect providers offered beside the passcode.
    #[serde(default)]
    pub oidc_providers: Vec<OidcProvider>,
}

/// An OpenID Connect provider the recipient may sign in with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OidcProvider {
    /// Its id, for `/v1/oidc/start`.
    pub id: String,
    /// Shown as "Sign in with <display_name>".
    pub display_name: String,
    /// `google`, `microsoft`, `yahoo` or `generic`.
    #[serde(default)]
    pub preset: String,
}

/// `POST /v1/oidc/start`.
#[derive(Debug, Clone, Serialize)]
pub struct OidcStart<'a> {
    /// The envelope's tenant.
    pub tenant: &'a str,
    /// The provider's id.
    pub provider: &'a str,
    /// The address to suggest to the provider, if known.
    pub login_hint: Option<&'a str>,
}

/// The answer to `/v1/oidc/start`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OidcStarted {
    /// Where the sign-in window goes.
    pub authorization_url: String,
    /// Comes back with the code; checked by the portal.
    pub state: String,
}

/// `POST /v1/oidc/finish` (answered like `/v1/otp/verify`, with [`OtpVerified`]).
#[derive(Debug, Clone, Serialize)]
pub struct OidcFinish<'a> {
    /// From the redirect.
    pub state: &'a str,
    /// From the redirect.
    pub code: &'a str,
}

/// A tenant public key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TenantKey {
    /// 16 hex digits.
    pub id: String,
    /// Base64 of the SEC1 point.
    pub public_key: String,
    /// `active` or `retired`.
    pub status: String,
}

/// Optional branding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Branding {
    /// CSS colour, `#rgb` or `#rrggbb`.
    #[serde(default)]
    pub accent_color: Option<String>,
    /// A line under the organization's name.
    #[serde(default)]
    pub tagline: Option<String>,
}

impl Branding {
    /// The accent colour if it is a plain hex colour (anything else is ignored, so a tenant
    /// setting can never inject CSS).
    pub fn safe_accent(&self) -> Option<String> {
        let c = self.accent_color.as_deref()?.trim();
        let hex = c.strip_prefix('#')?;
        (matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| c.to_ascii_lowercase())
    }
}

/// `POST /v1/otp/start`.
#[derive(Debug, Clone, Serialize)]
pub struct OtpStart<'a> {
    /// The envelope header, base64.
    pub header: &'a str,
    /// The license, base64.
    pub license: &'a str,
    /// The address typed by the recipient.
    pub email: &'a str,
}

/// The answer to `/v1/otp/start`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OtpStarted {
    /// Pass to `/v1/otp/verify`.
    pub challenge: String,
    /// Seconds the code is valid.
    pub expires_in: u64,
    /// The message reference the passcode mail names.
    pub reference: String,
}

/// `POST /v1/otp/verify`.
#[derive(Debug, Clone, Serialize)]
pub struct OtpVerify<'a> {
    /// From `/v1/otp/start`.
    pub challenge: &'a str,
    /// As typed.
    pub code: &'a str,
}

/// The answer to `/v1/otp/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OtpVerified {
    /// The session token.
    pub session: String,
    /// The address the session is bound to.
    pub email: String,
    /// Absolute end of the session, Unix seconds.
    pub expires_at: u64,
    /// Seconds without use after which the session ends.
    pub idle_timeout: u64,
    /// The key service's clock when it answered (absent from services before it was added).
    #[serde(default)]
    pub server_time: Option<u64>,
}

/// `POST /v1/rewrap`.
#[derive(Debug, Clone, Serialize)]
pub struct RewrapRequest<'a> {
    /// The envelope header, base64.
    pub header: &'a str,
    /// The license, base64.
    pub license: &'a str,
    /// The ephemeral public key, base64.
    pub client_public_key: &'a str,
}

/// The answer to `/v1/rewrap`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RewrapAnswer {
    /// Share B sealed to the client key, base64.
    pub sealed_share: String,
    /// Rights from the sealed policy.
    pub rights: Vec<String>,
    /// Expiry, Unix seconds.
    #[serde(default)]
    pub expires: Option<u64>,
    /// Sender from the sealed policy.
    pub sender: String,
    /// Template name.
    pub template: String,
    /// 32 hex digits.
    pub message_id: String,
    /// The signed-in address.
    pub email: String,
    /// The key service's clock when it answered (absent from services before it was added).
    #[serde(default)]
    pub server_time: Option<u64>,
}

/// An error answer's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    #[serde(default)]
    pub error: String,
    /// Tries left, with `wrong_code`.
    #[serde(default)]
    pub remaining: Option<u32>,
}

/// A failed call: no answer at all, or an error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The network failed, or CORS refused the call.
    Network,
    /// An HTTP error answer (or an answer that is not what the API promises).
    Status {
        /// HTTP status.
        status: u16,
        /// The parsed body (empty code if it was not an API error body).
        body: ErrorBody,
        /// `Retry-After`, seconds.
        retry_after: Option<u64>,
    },
}

impl CallError {
    /// The API error code, if the service gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Status { body, .. } if !body.error.is_empty() => Some(&body.error),
            _ => None,
        }
    }
}

/// The error pages (`data-kind` of `error-page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    /// The message's lifetime is over.
    Expired,
    /// The sender's organization withdrew it.
    Revoked,
    /// The signed-in address may not read it.
    NotARecipient,
    /// Cannot be read: bad signature, broken structure, decryption failed.
    Damaged,
    /// The envelope names a key service this portal does not use.
    UnknownKeyService,
    /// The key service does not know the organization.
    UnknownTenant,
    /// The key service cannot be reached.
    Unavailable,
}

impl PageKind {
    /// The `data-kind` value.
    pub fn kind(self) -> &'static str {
        match self {
            PageKind::Expired => "expired",
            PageKind::Revoked => "revoked",
            PageKind::NotARecipient => "not-a-recipient",
            PageKind::Damaged => "damaged",
            PageKind::UnknownKeyService => "unknown-key-service",
            PageKind::UnknownTenant => "unknown-tenant",
            PageKind::Unavailable => "unavailable",
        }
    }

    /// Heading of the page.
    pub fn title(self) -> &'static str {
        match self {
            PageKind::Expired => "This message has expired",
            PageKind::Revoked => "This message was withdrawn",
            PageKind::NotARecipient => "This address cannot open the message",
            PageKind::Damaged => "This message cannot be opened",
            PageKind::UnknownKeyService => "This portal cannot open this message",
            PageKind::UnknownTenant => "The sending organization is not known here",
            PageKind::Unavailable => "The key service is not reachable",
        }
    }

    /// What happened and what to do.
    pub fn explanation(self) -> &'static str {
        match self {
            PageKind::Expired => {
                "The sender's organization set a time after which this message can no longer be opened, and that time has passed. Ask the sender to send it again if you still need it."
            }
            PageKind::Revoked => {
                "The sender's organization withdrew this message, so it can no longer be opened. Contact the sender if you think this is a mistake."
            }
            PageKind::NotARecipient => {
                "The address you signed in with is not allowed to open this message. Sign in with the address the message was sent to."
            }
            PageKind::Damaged => {
                "The message is incomplete, was changed after it was sent, or does not carry a valid signature of the sending organization. Nothing from it is shown. Ask the sender to send it again."
            }
            PageKind::UnknownKeyService => {
                "The message names a key service this portal does not work with. Open it from the message.html attachment, which leads to the right portal, or ask the sender which portal to use."
            }
            PageKind::UnknownTenant => {
                "The key service does not serve the organization that sent this message. Ask the sender to check their setup."
            }
            PageKind::Unavailable => {
                "The key service that unlocks this message did not answer. Check your connection and try again in a moment."
            }
        }
    }

    /// Whether trying again can help.
    pub fn retryable(self) -> bool {
        matches!(self, PageKind::Unavailable)
    }
}

/// The page for a failed `GET /v1/tenants/{id}`.
pub fn tenant_failure(e: &CallError) -> PageKind {
    match e.code() {
        Some("unknown_tenant") => PageKind::UnknownTenant,
        Some("bad_request") => PageKind::Damaged,
        _ => PageKind::Unavailable,
    }
}

/// What to do after a failed `/v1/rewrap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewrapFailure {
    /// Show an error page.
    Page(PageKind),
    /// The session ended: sign in again, with this explanation.
    SignInAgain(String),
    /// Temporary: stay on the page and explain.
    Retry(String),
}

/// Classifies a failed `/v1/rewrap`.
pub fn rewrap_failure(e: &CallError) -> RewrapFailure {
    let page = RewrapFailure::Page;
    match e.code() {
        Some("revoked") => page(PageKind::Revoked),
        Some("expired") => page(PageKind::Expired),
        Some("not_a_recipient") => page(PageKind::NotARecipient),
        Some("unknown_tenant") => page(PageKind::UnknownTenant),
        Some("unknown_key" | "malformed_license" | "bad_client_key" | "bad_request") => {
            page(PageKind::Damaged)
        }
        Some("not_signed_in") => RewrapFailure::SignInAgain(
            "Your sign-in has ended. Sign in again to open the message.".into(),
        ),
        Some("rate_limited") => RewrapFailure::Retry(rate_limited(e)),
        _ => page(PageKind::Unavailable),
    }
}

/// Where a sign-in step went wrong, in words for the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInProblem {
    /// The text shown in `signin-error`.
    pub text: String,
    /// Whether the current code is dead, so the recipient must ask for a new one.
    pub need_new_code: bool,
    /// The error page to show instead, if the message itself cannot be opened.
    pub page: Option<PageKind>,
}

fn problem(text: impl Into<String>, need_new_code: bool) -> SignInProblem {
    SignInProblem {
        text: text.into(),
        need_new_code,
        page: None,
    }
}

fn rate_limited(e: &CallError) -> String {
    let wait = match e {
        CallError::Status {
            retry_after: Some(s),
            ..
        } if *s > 1 => format!("{s} seconds"),
        _ => "a minute".into(),
    };
    format!("Too many requests came from your network. Wait {wait} and try again.")
}

const UNAVAILABLE: &str =
    "The key service did not answer. Check your connection and try again in a moment.";
const LOCKED: &str =
    "Sign-in for this address is paused after too many wrong codes. Try again in 24 hours.";

/// Explains a failed `/v1/otp/start`.
pub fn start_problem(e: &CallError) -> SignInProblem {
    match e.code() {
        Some("bad_address") => problem(
            "That does not look like an e-mail address. Enter the address this message was sent to.",
            false,
        ),
        Some("locked") => problem(LOCKED, false),
        Some("too_many_codes") => problem(
            "Too many codes were requested for this address. Wait an hour, then request a new code.",
            false,
        ),
        Some("rate_limited") => problem(rate_limited(e), false),
        Some("unknown_tenant") => SignInProblem {
            page: Some(PageKind::UnknownTenant),
            ..problem(PageKind::UnknownTenant.title(), false)
        },
        Some("malformed" | "unknown_key") => SignInProblem {
            page: Some(PageKind::Damaged),
            ..problem(PageKind::Damaged.title(), false)
        },
        _ => problem(UNAVAILABLE, false),
    }
}

/// Explains a failed `/v1/otp/verify`.
pub fn verify_problem(e: &CallError) -> SignInProblem {
    match e.code() {
        Some("wrong_code") => match e {
            CallError::Status {
                body:
                    ErrorBody {
                        remaining: Some(n @ 1..),
                        ..
                    },
                ..
            } => problem(
                format!(
                    "That code is not correct. Check the latest sign-in e-mail and try again ({n} {} left).",
                    if *n == 1 { "try" } else { "tries" }
                ),
                false,
            ),
            _ => problem(
                "That code is not correct or was already used. Request a new code.",
                true,
            ),
        },
        Some("too_many_attempts") => problem(
            "Too many wrong tries: this code no longer works. Request a new code.",
            true,
        ),
        Some("code_expired") => problem("This code has expired. Request a new code.", true),
        Some("locked") => problem(LOCKED, true),
        Some("rate_limited") => problem(rate_limited(e), false),
        _ => problem(UNAVAILABLE, false),
    }
}

/// Rights from the rewrap answer, as the core names them.
pub fn rights_of(answer: &RewrapAnswer) -> sealpost_core::Rights {
    let list: Vec<sealpost_core::Right> = answer
        .rights
        .iter()
        .filter_map(|r| sealpost_core::Right::parse(r))
        .collect();
    sealpost_core::Rights::of(&list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str, remaining: Option<u32>, retry_after: Option<u64>) -> CallError {
        CallError::Status {
            status: 400,
            body: ErrorBody {
                error: code.into(),
                remaining,
            },
            retry_after,
        }
    }

    #[test]
    fn pages_for_rewrap_errors() {
        for (code, kind) in [
            ("revoked", "revoked"),
            ("expired", "expired"),
            ("not_a_recipient", "not-a-recipient"),
            ("unknown_key", "damaged"),
            ("malformed_license", "damaged"),
            ("unknown_tenant", "unknown-tenant"),
            ("unavailable", "unavailable"),
            ("overloaded", "unavailable"),
        ] {
            assert_eq!(
                rewrap_failure(&status(code, None, None)),
                RewrapFailure::Page(match kind {
                    "revoked" => PageKind::Revoked,
                    "expired" => PageKind::Expired,
                    "not-a-recipient" => PageKind::NotARecipient,
                    "damaged" => PageKind::Damaged,
                    "unknown-tenant" => PageKind::UnknownTenant,
                    _ => PageKind::Unavailable,
                }),
                "{code}"
            );
        }
        assert_eq!(
            rewrap_failure(&CallError::Network),
            RewrapFailure::Page(PageKind::Unavailable)
        );
        assert!(matches!(
            rewrap_failure(&status("not_signed_in", None, None)),
            RewrapFailure::SignInAgain(_)
        ));
        assert_eq!(
            rewrap_failure(&status("rate_limited", None, Some(30))),
            RewrapFailure::Retry(
                "Too many requests came from your network. Wait 30 seconds and try again.".into()
            )
        );
        assert_eq!(
            tenant_failure(&status("unknown_tenant", None, None)),
            PageKind::UnknownTenant
        );
        assert_eq!(tenant_failure(&CallError::Network), PageKind::Unavailable);
    }

    #[test]
    fn sign_in_errors_are_explained() {
        let p = verify_problem(&status("wrong_code", Some(3), None));
        assert!(
            p.text.contains("3 tries left") && !p.need_new_code,
            "{}",
            p.text
        );
        let p = verify_problem(&status("wrong_code", Some(1), None));
        assert!(p.text.contains("1 try left"), "{}", p.text);
        assert!(verify_problem(&status("wrong_code", Some(0), None)).need_new_code);
        assert!(verify_problem(&status("too_many_attempts", None, None)).need_new_code);
        assert!(
            verify_problem(&status("code_expired", None, None))
                .text
                .contains("expired")
        );
        assert!(
            verify_problem(&status("locked", None, None))
                .text
                .contains("paused")
        );
        assert!(
            verify_problem(&CallError::Network)
                .text
                .contains("did not answer")
        );
        assert!(
            start_problem(&status("too_many_codes", None, None))
                .text
                .contains("hour")
        );
        assert!(
            start_problem(&status("bad_address", None, None))
                .text
                .contains("address")
        );
        assert_eq!(
            start_problem(&status("malformed", None, None)).page,
            Some(PageKind::Damaged)
        );
        assert!(
            start_problem(&status("rate_limited", None, None))
                .text
                .contains("a minute")
        );
    }

    #[test]
    fn accent_colours_are_checked() {
        let b = |c: &str| Branding {
            accent_color: Some(c.into()),
            tagline: None,
        };
        assert_eq!(b("#0B57D0").safe_accent().as_deref(), Some("#0b57d0"));
        assert_eq!(b("#abc").safe_accent().as_deref(), Some("#abc"));
        for bad in ["red", "#12345", "#0b57d0;background:url(x)", "url(x)", ""] {
            assert_eq!(b(bad).safe_accent(), None, "{bad}");
        }
    }

    #[test]
    fn tenant_info_parses() {
        let t: TenantInfo = serde_json::from_str(
            r##"{"tenant_id":"e.com","display_name":"E","license_keys":[],"signing_keys":[{"id":"00","public_key":"AA==","status":"active"}],"allowed_origins":[],"branding":{"accent_color":"#fff"}}"##,
        )
        .unwrap();
        assert_eq!(t.branding.safe_accent().as_deref(), Some("#fff"));
        let t: TenantInfo = serde_json::from_str(
            r#"{"tenant_id":"e.com","display_name":"E","license_keys":[],"signing_keys":[],"allowed_origins":[]}"#,
        )
        .unwrap();
        assert_eq!(t.branding, Branding::default());
    }
}
