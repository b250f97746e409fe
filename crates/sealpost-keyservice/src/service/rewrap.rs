//! Rewrap: release share B, sealed to the browser's ephemeral key, to a signed-in recipient
//! of a message that is neither revoked nor expired — after the audit record is durable.

use std::net::IpAddr;

use sealpost_core::policy::Rights;
use sealpost_core::rewrap::{ClientPublicKey, seal_share};
use serde::Serialize;

use sealpost_core::Header;

use super::{KeyService, Opened, RewrapError};
use crate::session;
use crate::store::SessionRow;

/// What a recipient gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Released {
    /// Share B sealed to the client key (HPKE; see sealpost_core::rewrap).
    pub sealed_share: Vec<u8>,
    /// Rights from the sealed policy.
    pub rights: Rights,
    /// Expiry from the sealed policy, Unix seconds.
    pub expires: Option<u64>,
    /// The sender from the sealed policy.
    pub sender: String,
    /// The template name.
    pub template: String,
    /// The message id (32 hex digits).
    pub message_id: String,
    /// The signed-in address.
    pub email: String,
    /// The service's clock when it released the share, Unix seconds.
    pub server_time: i64,
}

impl KeyService {
    /// Audits a refusal, then returns it.
    async fn refuse(
        &self,
        tenant: &str,
        email: &str,
        message_id: &str,
        ip: Option<IpAddr>,
        reason: &str,
        err: RewrapError,
    ) -> Result<Released, RewrapError> {
        self.audit(
            tenant,
            "rewrap_refused",
            Some(email),
            Some(message_id.to_string()),
            ip,
            reason,
        )
        .await?;
        Err(err)
    }

    /// The address a live session token of `tenant` is bound to (and marks it used now).
    pub async fn session_email(
        &self,
        token: &str,
        tenant: &str,
    ) -> Result<Option<String>, crate::store::StoreError> {
        let hash = session::hash_token(token);
        let row = self.store.session(&hash).await?;
        self.live_session(&hash, row, Some(tenant)).await
    }

    /// The address of `row` (the session stored under `hash`) if it is live and was opened
    /// for `tenant` (any tenant when `None`: the request names none that can be read), marking
    /// it used now; an expired session is deleted. Another tenant's session is not ended: it
    /// is simply not a session here.
    async fn live_session(
        &self,
        hash: &[u8],
        row: Option<SessionRow>,
        tenant: Option<&str>,
    ) -> Result<Option<String>, crate::store::StoreError> {
        let Some(row) = row else {
            return Ok(None);
        };
        if tenant.is_some_and(|t| t != row.tenant_id) {
            return Ok(None);
        }
        let now = self.now();
        if !session::is_live(&self.limits.session, row.last_seen, row.expires, now) {
            self.store.delete_session(hash).await?;
            return Ok(None);
        }
        // Recording use costs a durable write: do it at most once a minute per session (the
        // idle timeout is counted in minutes, so this shortens it by under a minute).
        if now - row.last_seen >= 60 {
            self.store.touch_session(hash, now).await?;
        }
        Ok(Some(row.email))
    }

    /// Releases share B for `header` + `license` to the session's address, sealed to `client_key`.
    pub async fn rewrap(
        &self,
        token: Option<&str>,
        header_bytes: &[u8],
        license: &[u8],
        client_key: &[u8],
        ip: Option<IpAddr>,
    ) -> Result<Released, RewrapError> {
        self.limit_ip(ip).map_err(RewrapError::RateLimited)?;
        let Some(token) = token else {
            return Err(RewrapError::NotSignedIn);
        };
        let hash = session::hash_token(token);
        // A readable header lets the session, the license key and the revocation be read in
        // one round trip; the checks below still run in their documented order.
        let (session_row, read) = match Header::decode(header_bytes) {
            Ok(h) => {
                let l = self
                    .store
                    .rewrap_lookup(
                        &hash,
                        &h.tenant_id,
                        &h.license_key_id.to_string(),
                        &h.message_id.to_hex(),
                    )
                    .await?;
                (l.session, Some((h, l.license_key, l.revoked)))
            }
            Err(_) => (self.store.session(&hash).await?, None),
        };
        let tenant = read.as_ref().map(|(h, _, _)| h.tenant_id.as_str());
        let Some(email) = self.live_session(&hash, session_row, tenant).await? else {
            return Err(RewrapError::NotSignedIn);
        };
        let Ok(client) = ClientPublicKey::from_bytes(client_key) else {
            return Err(RewrapError::BadClientKey);
        };
        let Some((header, wrapped, revoked)) = read else {
            return Err(RewrapError::MalformedLicense);
        };
        let (header, lic) = match self
            .open_license_with(header, header_bytes, license, wrapped.as_deref())
            .await?
        {
            Opened::Ok(b) => *b,
            Opened::Malformed => return Err(RewrapError::MalformedLicense),
            Opened::UnknownTenant => return Err(RewrapError::UnknownTenant),
            Opened::UnknownKey => {
                if let Ok(h) = sealpost_core::Header::decode(header_bytes) {
                    let id = Some(h.message_id.to_hex());
                    self.audit(
                        &h.tenant_id,
                        "rewrap_refused",
                        Some(&email),
                        id,
                        ip,
                        "unknown or retired key",
                    )
                    .await?;
                }
                return Err(RewrapError::UnknownKey);
            }
        };
        let tenant = header.tenant_id.as_str();
        let message_id = header.message_id.to_hex();
        if !lic.policy.is_recipient(&email) {
            return self
                .refuse(
                    tenant,
                    &email,
                    &message_id,
                    ip,
                    "not a recipient",
                    RewrapError::NotARecipient,
                )
                .await;
        }
        if revoked {
            return self
                .refuse(
                    tenant,
                    &email,
                    &message_id,
                    ip,
                    "revoked",
                    RewrapError::Revoked,
                )
                .await;
        }
        if lic.policy.is_expired(self.now().max(0) as u64) {
            return self
                .refuse(
                    tenant,
                    &email,
                    &message_id,
                    ip,
                    "expired",
                    RewrapError::Expired,
                )
                .await;
        }
        // Audit fails closed: no share leaves unless this record is durable.
        self.audit(
            tenant,
            "share_released",
            Some(&email),
            Some(message_id.clone()),
            ip,
            format!("template {}", lic.policy.template),
        )
        .await?;
        let sealed_share = seal_share(&client, header_bytes, &lic.share_b, &mut self.entropy.rng())
            .map_err(|_| RewrapError::MalformedLicense)?;
        Ok(Released {
            sealed_share,
            rights: lic.policy.rights,
            expires: lic.policy.expires,
            sender: lic.policy.sender.clone(),
            template: lic.policy.template.clone(),
            message_id,
            email,
            server_time: self.now(),
        })
    }
}
