//! Tenant administration: importing a tenant and its keys, public tenant info, admin and
//! gateway tokens, revocation and the audit trail of a message.

use std::net::IpAddr;

use sealpost_core::{LicenseSecretKey, MessageId, VerifyingKey};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{AdminError, Branding, KeyService, TenantSettings};
use crate::session;
use crate::store::{AdminTokenRow, AuditRow, KeyRow, TenantRow};

/// A tenant to load into the key service (from a `sealpost tenant init` directory).
pub struct TenantImport {
    /// Tenant id (the primary domain).
    pub tenant_id: String,
    /// Display name.
    pub display_name: String,
    /// Domains, origins, branding.
    pub settings: TenantSettings,
    /// License private keys with their status (`active` or `retired`).
    pub license_keys: Vec<(LicenseSecretKey, String)>,
    /// Signing public keys with their status.
    pub signing_keys: Vec<(VerifyingKey, String)>,
}

/// One public key as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantKeyInfo {
    /// Key id (16 hex digits).
    pub id: String,
    /// SEC1 uncompressed point, base64.
    pub public_key: String,
    /// `active` or `retired`.
    pub status: String,
}

/// What anyone may know about a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantInfo {
    /// Tenant id.
    pub tenant_id: String,
    /// Display name.
    pub display_name: String,
    /// HPKE license keys.
    pub license_keys: Vec<TenantKeyInfo>,
    /// ECDSA signing keys that verify the tenant's envelopes.
    pub signing_keys: Vec<TenantKeyInfo>,
    /// Portal origins allowed to call the key service.
    pub allowed_origins: Vec<String>,
    /// Branding for the portal.
    pub branding: Branding,
    /// Base URL of the gateway's reply endpoint, if the tenant accepts encrypted replies.
    pub reply_url: Option<String>,
}

/// Prefix of admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "spa_";
/// Prefix of gateway tokens.
pub const GATEWAY_TOKEN_PREFIX: &str = "spg_";

/// What a tenant token may call; each role is accepted only by its own endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRole {
    /// Revocation and audit (`/v1/admin/*`).
    Admin,
    /// The mail gateway: reply authorization and transport decryption (`/v1/gateway/*`).
    Gateway,
}

impl TokenRole {
    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRole::Admin => "admin",
            TokenRole::Gateway => "gateway",
        }
    }

    /// The role called `name`, if any.
    pub fn parse(name: &str) -> Option<TokenRole> {
        match name {
            "admin" => Some(TokenRole::Admin),
            "gateway" => Some(TokenRole::Gateway),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenRole::Admin => ADMIN_TOKEN_PREFIX,
            TokenRole::Gateway => GATEWAY_TOKEN_PREFIX,
        }
    }
}

fn status_ok(s: &str) -> Result<(), AdminError> {
    match s {
        "active" | "retired" => Ok(()),
        other => Err(AdminError::Invalid(format!(
            "key status {other:?} (use active or retired)"
        ))),
    }
}

impl KeyService {
    /// Loads or updates a tenant; keys already present are kept as they are.
    pub async fn import_tenant(&self, t: TenantImport) -> Result<(), AdminError> {
        if t.tenant_id.is_empty() || t.license_keys.is_empty() || t.signing_keys.is_empty() {
            return Err(AdminError::Invalid(
                "a tenant needs an id, a license key and a signing key".into(),
            ));
        }
        let now = self.now();
        let settings_json =
            serde_json::to_string(&t.settings).map_err(|e| AdminError::Invalid(e.to_string()))?;
        self.store
            .upsert_tenant(&TenantRow {
                tenant_id: t.tenant_id.clone(),
                display_name: t.display_name.clone(),
                settings_json,
                created: now,
            })
            .await?;
        let existing: Vec<String> = self
            .store
            .keys(&t.tenant_id)
            .await?
            .into_iter()
            .map(|k| k.key_id)
            .collect();
        for (sk, status) in &t.license_keys {
            status_ok(status)?;
            let pk = sk.public_key();
            let id = pk.key_id().to_string();
            if existing.contains(&id) {
                self.store.set_key_status(&t.tenant_id, &id, status).await?;
                continue;
            }
            let wrapped = self.kek.wrap(&t.tenant_id, sk, &mut self.entropy.rng());
            self.store
                .add_key(&KeyRow {
                    tenant_id: t.tenant_id.clone(),
                    key_id: id,
                    kind: "license".into(),
                    public_key: pk.to_bytes(),
                    wrapped_private: Some(wrapped),
                    status: status.clone(),
                    created: now,
                })
                .await?;
        }
        for (vk, status) in &t.signing_keys {
            status_ok(status)?;
            let id = vk.key_id().to_string();
            if existing.contains(&id) {
                self.store.set_key_status(&t.tenant_id, &id, status).await?;
                continue;
            }
            self.store
                .add_key(&KeyRow {
                    tenant_id: t.tenant_id.clone(),
                    key_id: id,
                    kind: "signing".into(),
                    public_key: vk.to_bytes(),
                    wrapped_private: None,
                    status: status.clone(),
                    created: now,
                })
                .await?;
        }
        Ok(())
    }

    /// Public information about a tenant.
    pub async fn tenant_info(&self, tenant_id: &str) -> Result<TenantInfo, AdminError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let Some(row) = self.store.tenant(tenant_id).await? else {
            return Err(AdminError::UnknownTenant);
        };
        let settings: TenantSettings = serde_json::from_str(&row.settings_json).unwrap_or_default();
        let keys = self.store.keys(tenant_id).await?;
        let pick = |kind: &str| {
            keys.iter()
                .filter(|k| k.kind == kind)
                .map(|k| TenantKeyInfo {
                    id: k.key_id.clone(),
                    public_key: b64.encode(&k.public_key),
                    status: k.status.clone(),
                })
                .collect()
        };
        Ok(TenantInfo {
            tenant_id: row.tenant_id,
            display_name: row.display_name,
            license_keys: pick("license"),
            signing_keys: pick("signing"),
            allowed_origins: settings.allowed_origins,
            branding: settings.branding,
            reply_url: settings.reply_url,
        })
    }

    /// Makes an admin token for a tenant; only its hash is stored.
    pub async fn create_admin_token(
        &self,
        tenant_id: &str,
        label: &str,
    ) -> Result<Zeroizing<String>, AdminError> {
        self.create_token(tenant_id, label, TokenRole::Admin).await
    }

    /// Makes a token of `role` for a tenant; only its hash is stored.
    pub async fn create_token(
        &self,
        tenant_id: &str,
        label: &str,
        role: TokenRole,
    ) -> Result<Zeroizing<String>, AdminError> {
        if self.store.tenant(tenant_id).await?.is_none() {
            return Err(AdminError::UnknownTenant);
        }
        // Same strength as a session token, with a prefix per role so none is ever confused.
        let (session_like, _) = session::new_token(&mut self.entropy.rng());
        let token = Zeroizing::new(session_like.replacen(session::TOKEN_PREFIX, role.prefix(), 1));
        let hash = session::hash_token(&token);
        self.store
            .insert_admin_token(&AdminTokenRow {
                token_hash: hash.to_vec(),
                tenant_id: tenant_id.to_string(),
                label: label.to_string(),
                created: self.now(),
                role: role.as_str().to_string(),
            })
            .await?;
        Ok(token)
    }

    /// The tenant of a token of `role`; `None` for a missing or unknown token or one of
    /// another role.
    pub(super) async fn token_tenant(
        &self,
        token: Option<&str>,
        role: TokenRole,
    ) -> Result<Option<String>, crate::store::StoreError> {
        let Some(token) = token else {
            return Ok(None);
        };
        let row = self.store.admin_token(&session::hash_token(token)).await?;
        Ok(row.filter(|r| r.role == role.as_str()).map(|r| r.tenant_id))
    }

    async fn admin_tenant(&self, token: Option<&str>) -> Result<String, AdminError> {
        self.token_tenant(token, TokenRole::Admin)
            .await?
            .ok_or(AdminError::Unauthorized)
    }

    /// Revokes a message of the token's tenant; `true` if it was not revoked before.
    pub async fn revoke(
        &self,
        admin_token: Option<&str>,
        message_id: &str,
        ip: Option<IpAddr>,
    ) -> Result<bool, AdminError> {
        let tenant = self.admin_tenant(admin_token).await?;
        let id = MessageId::from_hex(message_id)
            .ok_or(AdminError::BadMessageId)?
            .to_hex();
        let now = self.now();
        let newly = self.store.revoke(&tenant, &id, now, "admin token").await?;
        self.audit(
            &tenant,
            "revoked",
            None,
            Some(id),
            ip,
            if newly { "revoked" } else { "already revoked" },
        )
        .await?;
        Ok(newly)
    }

    /// The audit trail of one message of the token's tenant, oldest first.
    pub async fn message_audit(
        &self,
        admin_token: Option<&str>,
        message_id: &str,
    ) -> Result<Vec<AuditRow>, AdminError> {
        let tenant = self.admin_tenant(admin_token).await?;
        let id = MessageId::from_hex(message_id)
            .ok_or(AdminError::BadMessageId)?
            .to_hex();
        Ok(self.store.audit_for_message(&tenant, &id, 10_000).await?)
    }
}
