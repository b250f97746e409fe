//! Encrypted replies as the portal seals them (`sealpost_core::seal_submission`), a gateway
//! token, and tenant settings changed in place, over the [`Fixture`]. Shared by the `service`
//! and `http` test targets (each includes this file with `#[path]`); it does no HTTP.

// Each test target that includes this file uses a part of it.
#![allow(dead_code)]

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::policy::normalize_address;
use sealpost_core::{
    Envelope, LicensePublicKey, LicenseSecretKey, Policy, SubmissionSealer, seal_submission,
};
use sealpost_keyservice::clock::Clock;
use sealpost_keyservice::service::{TenantImport, TenantSettings, TokenRole};

use crate::fixture::{Fixture, PORTAL};

/// The body of every reply.
pub const REPLY_BODY: &[u8] = b"Subject: Re: hi\r\n\r\nreply body\r\n";

/// The reply's header and license, the parts the gateway sends to the key service.
pub fn parts(env: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let e = Envelope::parse(env).unwrap();
    (e.header_bytes().to_vec(), e.license().to_vec())
}

impl Fixture {
    /// A fresh gateway token for the tenant.
    pub async fn gateway_token(&self) -> String {
        self.svc
            .create_token("example.com", "gateway", TokenRole::Gateway)
            .await
            .unwrap()
            .to_string()
    }

    /// The sealed policy of one of this tenant's messages.
    pub fn policy_of(&self, env: &[u8]) -> Policy {
        let e = Envelope::parse(env).unwrap();
        sealpost_core::license::open(&self.license, e.header_bytes(), e.license())
            .unwrap()
            .policy
    }

    /// The policy the portal seals a reply to `original` under, from `submitter` to `to`,
    /// now: the original's template and rights, its lifetime counted from now.
    pub fn reply_policy(&self, original: &[u8], submitter: &str, to: &[&str]) -> Policy {
        let created = Envelope::parse(original).unwrap().header().created;
        let p = self.policy_of(original);
        let now = self.clock.now() as u64;
        Policy {
            template: p.template,
            rights: p.rights,
            expires: p.expires.map(|e| now + (e - created)),
            sender: normalize_address(submitter),
            recipients: to.iter().map(|r| normalize_address(r)).collect(),
        }
    }

    /// A reply submission under `policy`, sealed to this tenant's license key.
    pub fn seal_reply(&self, policy: &Policy, subject: Option<&str>, seed: u8) -> Vec<u8> {
        let key = self.license.public_key();
        self.seal_reply_as("example.com", &key, policy, subject, seed)
    }

    /// A reply submission in the name of `tenant`, sealed to `key`.
    pub fn seal_reply_as(
        &self,
        tenant: &str,
        key: &LicensePublicKey,
        policy: &Policy,
        subject: Option<&str>,
        seed: u8,
    ) -> Vec<u8> {
        let sealer = SubmissionSealer {
            tenant_id: tenant,
            key_service_url: "https://keys.example.com",
            license_key: key,
            signing_key_id: self.signing.verifying_key().key_id(),
        };
        let now = self.clock.now() as u64;
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        seal_submission(&sealer, policy, subject, now, REPLY_BODY, &mut rng).unwrap()
    }

    /// Stores new settings for `example.com` (keys unchanged).
    pub async fn set_settings(&self, reply_url: Option<&str>, transport_decryption: bool) {
        self.svc
            .import_tenant(TenantImport {
                tenant_id: "example.com".into(),
                display_name: "Example Corp".into(),
                settings: TenantSettings {
                    domains: vec!["example.com".into()],
                    allowed_origins: vec![PORTAL.into()],
                    reply_url: reply_url.map(String::from),
                    transport_decryption,
                    ..TenantSettings::default()
                },
                license_keys: vec![(self.license.clone(), "active".into())],
                signing_keys: vec![(self.signing.verifying_key(), "active".into())],
            })
            .await
            .unwrap();
    }

    /// A second tenant, `other.example`, on the same key service; its license key.
    pub async fn other_tenant(&self) -> LicenseSecretKey {
        let key = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([31; 32]));
        self.svc
            .import_tenant(TenantImport {
                tenant_id: "other.example".into(),
                display_name: "Other".into(),
                settings: TenantSettings {
                    domains: vec!["other.example".into()],
                    transport_decryption: true,
                    ..TenantSettings::default()
                },
                license_keys: vec![(key.clone(), "active".into())],
                signing_keys: vec![(self.signing.verifying_key(), "active".into())],
            })
            .await
            .unwrap();
        key
    }
}
