//! The mail gateway's two calls, each authorized by a gateway token of the tenant
//! (`sealpost admin token create --role gateway`; admin tokens are refused here):
//!
//! - [`KeyService::authorize_reply`]: may the signed-in recipient of an original message send
//!   this encrypted reply, reply-all or forward? The key service opens both licenses and checks
//!   the session, the original's state and rights, and that the reply's sealed policy keeps
//!   the original's template, rights and lifetime, names the submitter as its sender and goes
//!   only to the addresses the kind of answer allows. Every outcome after the token check is
//!   audited under the original's message id (`reply_authorized`, `reply_refused`).
//! - [`KeyService::transport_rewrap`]: share B of a message of the tenant, sealed to the
//!   gateway's ephemeral key, so that the gateway can deliver it decrypted to one of the
//!   organization's own recipients — only when the tenant enabled transport decryption.
//!   Audited (`transport_released`, `transport_refused`); as for `/v1/rewrap`, no share leaves
//!   unless the record of its release is durable.
//!
//! What it deliberately does not do: see a payload or share A, sign the reply (the gateway
//! counter-signs it with the tenant's signing key, which the key service never holds), send
//! mail, or remember authorized replies (a gateway may ask twice about the same reply).

use std::collections::BTreeSet;
use std::net::IpAddr;

use sealpost_core::policy::{Right, is_plausible_address, normalize_address};
use sealpost_core::rewrap::{ClientPublicKey, seal_share};
use sealpost_core::{Header, License};

use super::{
    KeyService, Opened, Released, ReplyAuthorizeError, TenantSettings, TokenRole,
    TransportRewrapError,
};
use crate::store::StoreError;

/// How far a reply's expiry may be from the original's lifetime counted from now (seconds):
/// the browser's clock and the time it took to compose.
pub const REPLY_EXPIRY_SLACK_SECS: u64 = 300;

/// The most addresses a forward may go to.
pub const FORWARD_MAX_RECIPIENTS: usize = 100;

/// What kind of answer to an original message a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// To the original sender only; needs the `reply` right.
    Reply,
    /// To the original sender and recipients (not the submitter); needs `reply_all`.
    ReplyAll,
    /// To new addresses; needs `forward`.
    Forward,
}

impl ReplyKind {
    /// The name used in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Reply => "reply",
            ReplyKind::ReplyAll => "reply_all",
            ReplyKind::Forward => "forward",
        }
    }

    /// The right the original's policy must grant.
    pub fn right(self) -> Right {
        match self {
            ReplyKind::Reply => Right::Reply,
            ReplyKind::ReplyAll => Right::ReplyAll,
            ReplyKind::Forward => Right::Forward,
        }
    }
}

/// A reply to authorize: the recipient's session and both envelopes' header and license.
/// (No `Debug`: it holds a session token.)
#[derive(Clone, Copy)]
pub struct ReplyRequest<'a> {
    /// The recipient's session token (from the portal, passed on by the gateway).
    pub session: &'a str,
    /// Reply, reply-all or forward.
    pub kind: ReplyKind,
    /// The browser's address, for the audit log.
    pub client_ip: Option<IpAddr>,
    /// The original message's encoded header.
    pub original_header: &'a [u8],
    /// The original message's license.
    pub original_license: &'a [u8],
    /// The reply's encoded header.
    pub reply_header: &'a [u8],
    /// The reply's license.
    pub reply_license: &'a [u8],
}

/// An authorized reply: who sends it, to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyAuthorized {
    /// The signed-in address, the reply's sender.
    pub submitter: String,
    /// The reply's recipients (normalized, each once, in the policy's order).
    pub recipients: Vec<String>,
    /// The original message's sender.
    pub original_sender: String,
    /// The original message id (32 hex digits).
    pub original_message_id: String,
    /// The reply's message id (32 hex digits).
    pub reply_message_id: String,
    /// What kind of answer it is.
    pub kind: ReplyKind,
}

/// A message to decrypt for one internal recipient.
#[derive(Debug, Clone, Copy)]
pub struct TransportRequest<'a> {
    /// The organization's recipient the gateway delivers to.
    pub recipient: &'a str,
    /// The envelope's encoded header.
    pub header: &'a [u8],
    /// The envelope's license.
    pub license: &'a [u8],
    /// The gateway's ephemeral P-256 public key, SEC1 uncompressed.
    pub client_public_key: &'a [u8],
    /// The SMTP peer that brought the message, for the audit log.
    pub client_ip: Option<IpAddr>,
}

/// A license opened with a key of one tenant.
enum Scoped {
    Ok(Box<(Header, License)>),
    Malformed,
    /// Another tenant's message, or a key the tenant does not have or has retired.
    UnknownKey,
}

impl KeyService {
    /// Authorizes an encrypted reply for the gateway whose token is `gateway_token`.
    pub async fn authorize_reply(
        &self,
        gateway_token: Option<&str>,
        req: &ReplyRequest<'_>,
    ) -> Result<ReplyAuthorized, ReplyAuthorizeError> {
        let Some(tenant) = self.token_tenant(gateway_token, TokenRole::Gateway).await? else {
            return Err(ReplyAuthorizeError::Unauthorized);
        };
        let original_id = Header::decode(req.original_header)
            .ok()
            .map(|h| h.message_id.to_hex());
        let mut submitter = String::new();
        let outcome = self.check_reply(&tenant, req, &mut submitter).await;
        let kind = req.kind.as_str();
        let (event, detail) = match &outcome {
            Ok(ok) => (
                "reply_authorized",
                format!(
                    "kind={kind} reply={} recipients={}",
                    ok.reply_message_id,
                    ok.recipients.join(",")
                ),
            ),
            // The database failed: the record would most likely fail too.
            Err(ReplyAuthorizeError::Unavailable) => return outcome,
            Err(e) => ("reply_refused", format!("kind={kind} error={}", e.code())),
        };
        self.audit(
            &tenant,
            event,
            Some(&submitter),
            original_id,
            req.client_ip,
            detail,
        )
        .await?;
        outcome
    }

    /// The checks of [`KeyService::authorize_reply`] in the documented order; `submitter` is
    /// set as soon as the session is known.
    async fn check_reply(
        &self,
        tenant: &str,
        req: &ReplyRequest<'_>,
        submitter: &mut String,
    ) -> Result<ReplyAuthorized, ReplyAuthorizeError> {
        use ReplyAuthorizeError as E;
        let Some(email) = self.session_email(req.session, tenant).await? else {
            return Err(E::NotSignedIn);
        };
        let email = normalize_address(&email);
        submitter.clone_from(&email);
        let (oh, ol) = match self
            .open_for_tenant(tenant, req.original_header, req.original_license)
            .await?
        {
            Scoped::Ok(b) => *b,
            Scoped::Malformed => return Err(E::MalformedLicense),
            Scoped::UnknownKey => return Err(E::UnknownKey),
        };
        let original_id = oh.message_id.to_hex();
        if self.store.is_revoked(tenant, &original_id).await? {
            return Err(E::Revoked);
        }
        let now = self.now().max(0) as u64;
        if ol.policy.is_expired(now) {
            return Err(E::Expired);
        }
        if !ol.policy.is_recipient(&email) {
            return Err(E::NotARecipient);
        }
        let right = req.kind.right();
        if !ol.policy.rights.contains(right) {
            return Err(E::RightNotGranted(right.name()));
        }
        // Only with the token's tenant's keys: another tenant's license is never opened for
        // this token, so its answer cannot tell whether one is valid.
        let (rh, rl) = match self
            .open_for_tenant(tenant, req.reply_header, req.reply_license)
            .await?
        {
            Scoped::Ok(b) => *b,
            Scoped::UnknownKey
                if Header::decode(req.reply_header).is_ok_and(|h| h.tenant_id != tenant) =>
            {
                return Err(E::ReplyPolicyInvalid("it is not sealed for this tenant"));
            }
            Scoped::Malformed | Scoped::UnknownKey => return Err(E::MalformedLicense),
        };
        check_reply_policy(tenant, (&oh, &ol), (&rh, &rl), now)?;
        if normalize_address(&rh.sender) != email || normalize_address(&rl.policy.sender) != email {
            return Err(E::SenderMismatch);
        }
        let settings = self.tenant_settings(tenant).await?.unwrap_or_default();
        let recipients = check_recipients(req.kind, &ol, &email, &rl, &settings)?;
        Ok(ReplyAuthorized {
            submitter: email,
            recipients,
            original_sender: normalize_address(&ol.policy.sender),
            original_message_id: original_id,
            reply_message_id: rh.message_id.to_hex(),
            kind: req.kind,
        })
    }

    /// Releases share B of a message of the token's tenant to its gateway, sealed to the
    /// gateway's key, for one of the organization's own recipients.
    pub async fn transport_rewrap(
        &self,
        gateway_token: Option<&str>,
        req: &TransportRequest<'_>,
    ) -> Result<Released, TransportRewrapError> {
        let Some(tenant) = self.token_tenant(gateway_token, TokenRole::Gateway).await? else {
            return Err(TransportRewrapError::Unauthorized);
        };
        let recipient = normalize_address(req.recipient);
        let message_id = Header::decode(req.header)
            .ok()
            .map(|h| h.message_id.to_hex());
        let checked = self.check_transport(&tenant, &recipient, req).await;
        let (client, header, lic) = match checked {
            Ok(ok) => ok,
            Err(TransportRewrapError::Unavailable) => {
                return Err(TransportRewrapError::Unavailable);
            }
            Err(e) => {
                let (id, ip) = (message_id, req.client_ip);
                self.audit(
                    &tenant,
                    "transport_refused",
                    Some(&recipient),
                    id,
                    ip,
                    e.code(),
                )
                .await?;
                return Err(e);
            }
        };
        // Audit fails closed: no share leaves unless this record is durable.
        self.audit(
            &tenant,
            "transport_released",
            Some(&recipient),
            message_id,
            req.client_ip,
            format!("template {}", lic.policy.template),
        )
        .await?;
        let sealed_share = seal_share(&client, req.header, &lic.share_b, &mut self.entropy.rng())
            .map_err(|_| TransportRewrapError::MalformedLicense)?;
        Ok(Released {
            sealed_share,
            rights: lic.policy.rights,
            expires: lic.policy.expires,
            sender: lic.policy.sender.clone(),
            template: lic.policy.template.clone(),
            message_id: header.message_id.to_hex(),
            email: recipient,
            server_time: self.now(),
        })
    }

    /// The checks of [`KeyService::transport_rewrap`] in the documented order.
    async fn check_transport(
        &self,
        tenant: &str,
        recipient: &str,
        req: &TransportRequest<'_>,
    ) -> Result<(ClientPublicKey, Header, License), TransportRewrapError> {
        use TransportRewrapError as E;
        let settings = self.tenant_settings(tenant).await?.unwrap_or_default();
        if !settings.transport_decryption {
            return Err(E::Disabled);
        }
        let Ok(client) = ClientPublicKey::from_bytes(req.client_public_key) else {
            return Err(E::BadClientKey);
        };
        let (header, lic) = match self
            .open_for_tenant(tenant, req.header, req.license)
            .await?
        {
            Scoped::Ok(b) => *b,
            Scoped::Malformed => return Err(E::MalformedLicense),
            Scoped::UnknownKey => return Err(E::UnknownKey),
        };
        if !is_internal(&settings, recipient) {
            return Err(E::NotInternal);
        }
        if !lic.policy.is_recipient(recipient) {
            return Err(E::NotARecipient);
        }
        if self
            .store
            .is_revoked(tenant, &header.message_id.to_hex())
            .await?
        {
            return Err(E::Revoked);
        }
        if lic.policy.is_expired(self.now().max(0) as u64) {
            return Err(E::Expired);
        }
        Ok((client, header, lic))
    }

    /// Opens a license only if its header names `tenant`: another tenant's message is, for
    /// this tenant, sealed to a key it does not have.
    async fn open_for_tenant(
        &self,
        tenant: &str,
        header: &[u8],
        license: &[u8],
    ) -> Result<Scoped, StoreError> {
        match Header::decode(header) {
            Err(_) => return Ok(Scoped::Malformed),
            Ok(h) if h.tenant_id != tenant => return Ok(Scoped::UnknownKey),
            Ok(_) => {}
        }
        Ok(match self.open_license(header, license).await? {
            Opened::Ok(b) => Scoped::Ok(b),
            Opened::Malformed => Scoped::Malformed,
            Opened::UnknownTenant | Opened::UnknownKey => Scoped::UnknownKey,
        })
    }

    /// A tenant's stored settings; `None` if there is no such tenant.
    async fn tenant_settings(&self, tenant: &str) -> Result<Option<TenantSettings>, StoreError> {
        let Some(row) = self.store.tenant(tenant).await? else {
            return Ok(None);
        };
        serde_json::from_str(&row.settings_json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("settings of tenant {tenant}: {e}")))
    }
}

/// Whether `addr` (normalized) is an address in one of the tenant's own domains.
fn is_internal(settings: &TenantSettings, addr: &str) -> bool {
    let Some((_, domain)) = addr.rsplit_once('@') else {
        return false;
    };
    is_plausible_address(addr)
        && settings
            .domains
            .iter()
            .any(|d| d.trim_end_matches('.').eq_ignore_ascii_case(domain))
}

/// The reply's tenant, key service, message id, template, rights, expiry and subject against
/// the original.
fn check_reply_policy(
    tenant: &str,
    (oh, ol): (&Header, &License),
    (rh, rl): (&Header, &License),
    now: u64,
) -> Result<(), ReplyAuthorizeError> {
    let invalid = |why| Err(ReplyAuthorizeError::ReplyPolicyInvalid(why));
    if rh.tenant_id != tenant {
        return invalid("it is not sealed for this tenant");
    }
    if rh.key_service_url != oh.key_service_url {
        // Counter-signed, it would send its readers to a key service of the replier's choice.
        return invalid("it names another key service than the original");
    }
    if rh.message_id == oh.message_id {
        return invalid("it has the original's message id");
    }
    if rl.policy.template != ol.policy.template || rh.template != ol.policy.template {
        return invalid("its template is not the original's");
    }
    if rl.policy.rights != ol.policy.rights {
        return invalid("its rights are not the original's");
    }
    if oh.subject.is_none() && rh.subject.is_some() {
        return invalid("it shows a subject where the original shows none");
    }
    match (ol.policy.expires, rl.policy.expires) {
        (None, None) => Ok(()),
        (Some(original), Some(reply)) => {
            let lifetime = original.saturating_sub(oh.created);
            let wanted = now.saturating_add(lifetime);
            if reply.abs_diff(wanted) > REPLY_EXPIRY_SLACK_SECS {
                return invalid("its expiry is not the original's lifetime counted from now");
            }
            Ok(())
        }
        (None, Some(_)) => invalid("it expires but the original does not"),
        (Some(_), None) => invalid("it does not expire but the original does"),
    }
}

/// The reply's recipients (each once, in order) if `kind` allows them.
///
/// A reply to all may also name addresses of the tenant's own domains that are not in this
/// copy's policy: the gateway seals one copy per group of recipients, so the organization's
/// own recipients of the original (who got it unencrypted) are not in an outside recipient's
/// policy. Writing to the organization's own addresses takes nothing out of it.
fn check_recipients(
    kind: ReplyKind,
    original: &License,
    submitter: &str,
    reply: &License,
    settings: &TenantSettings,
) -> Result<Vec<String>, ReplyAuthorizeError> {
    let not_allowed = |why| Err(ReplyAuthorizeError::RecipientsNotAllowed(why));
    let mut seen = BTreeSet::new();
    let recipients: Vec<String> = reply
        .policy
        .recipients
        .iter()
        .map(|r| normalize_address(r))
        .filter(|r| seen.insert(r.clone()))
        .collect();
    let sender = normalize_address(&original.policy.sender);
    match kind {
        ReplyKind::Reply => {
            if recipients != [sender] {
                return not_allowed("a reply goes to the original sender only");
            }
        }
        ReplyKind::ReplyAll => {
            let allowed = |r: &String| {
                r != submitter
                    && (*r == sender || original.policy.is_recipient(r) || is_internal(settings, r))
            };
            if recipients.is_empty() || !recipients.iter().all(allowed) {
                return not_allowed(
                    "a reply to all goes only to the original sender and recipients (and the organization's own addresses), other than yourself",
                );
            }
        }
        ReplyKind::Forward => {
            if recipients.is_empty() || recipients.len() > FORWARD_MAX_RECIPIENTS {
                return not_allowed("a forward goes to 1 to 100 addresses");
            }
            if !recipients.iter().all(|r| is_plausible_address(r)) {
                return not_allowed("a forward recipient is not an e-mail address");
            }
        }
    }
    Ok(recipients)
}
