//! A key service with one tenant (`example.com`) on a fresh database of either backend, with a
//! manual clock and seeded entropy, and the helpers that seal messages for it and read the
//! passcodes it mails. Shared by the `service` and `http` test targets (each includes this
//! file with `#[path]`); it deliberately does no HTTP.

// Each test target that includes this file uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::policy::Template;
use sealpost_core::rewrap::ClientSecretKey;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey};
use sealpost_keyservice::clock::{Clock, ManualClock};
use sealpost_keyservice::service::{
    Branding, Entropy, KeyService, Limits, TenantImport, TenantSettings,
};

use crate::db::Db;

/// The manual clock's start.
pub const T0: i64 = 1_800_000_000;
/// The tenant's allowed portal origin.
pub const PORTAL: &str = "https://portal.example.com";
/// The body every sealed test message carries.
pub const BODY: &[u8] = b"Subject: hi\r\n\r\nsecret body\r\n";

pub struct Fixture {
    pub svc: Arc<KeyService>,
    pub clock: ManualClock,
    pub license: LicenseSecretKey,
    pub signing: SigningKey,
    /// Last, so the database outlives the service's pool.
    pub db: Db,
}

/// A service on `db` with the tenant `example.com` loaded and these limits.
pub async fn fixture(db: Db, limits: Limits) -> Fixture {
    let store = db.open().await;
    let clock = ManualClock::new(T0);
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let license = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let kek = KeyEncryptionKey::generate(&mut rng);
    let svc = KeyService::new(
        store,
        Arc::new(clock.clone()),
        Entropy::seeded(1),
        kek,
        limits,
    )
    .await
    .unwrap();
    svc.import_tenant(TenantImport {
        tenant_id: "example.com".into(),
        display_name: "Example Corp".into(),
        settings: TenantSettings {
            domains: vec!["example.com".into()],
            allowed_origins: vec![PORTAL.into()],
            branding: Branding {
                accent_color: Some("#0b57d0".into()),
                tagline: None,
            },
            ..TenantSettings::default()
        },
        license_keys: vec![(license.clone(), "active".into())],
        signing_keys: vec![(signing.verifying_key(), "active".into())],
    })
    .await
    .unwrap();
    Fixture {
        svc: Arc::new(svc),
        clock,
        license,
        signing,
        db,
    }
}

/// Limits loose enough that the per-IP window never interferes.
pub fn loose_limits() -> Limits {
    Limits {
        per_ip_per_minute: 10_000,
        ..Limits::default()
    }
}

impl Fixture {
    /// A message from alice@example.com to `recipients`, sealed for this tenant.
    pub fn seal(&self, template: &Template, recipients: &[&str], seed: u8) -> Vec<u8> {
        self.seal_as("example.com", &self.license, template, recipients, seed)
    }

    /// A message sealed in the name of `tenant` to `key` (which may be unknown to the service).
    pub fn seal_as(
        &self,
        tenant: &str,
        key: &LicenseSecretKey,
        template: &Template,
        to: &[&str],
        seed: u8,
    ) -> Vec<u8> {
        let pk = key.public_key();
        let sealer = Sealer {
            tenant_id: tenant,
            key_service_url: "https://keys.example.com",
            license_key: &pk,
            signing_key: &self.signing,
        };
        let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
        let now = self.clock.now() as u64;
        let policy = template.policy("alice@example.com", &to, now);
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        sealpost_core::seal(&sealer, &policy, None, now, BODY, &mut rng).unwrap()
    }

    /// The newest passcode mailed to `to`, from the local outbox.
    pub async fn mailed_code(&self, to: &str) -> Option<String> {
        let mails = self.svc.store().outbox(1000).await.unwrap();
        let to = to.to_ascii_lowercase();
        let mail = mails.into_iter().find(|m| m.to_addr == to)?;
        mail.body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(String::from)
    }

    /// A fresh admin token for the tenant.
    pub async fn admin_token(&self) -> String {
        self.svc
            .create_admin_token("example.com", "test")
            .await
            .unwrap()
            .to_string()
    }
}

/// The portal's ephemeral key, fixed so tests are repeatable.
pub fn client() -> ClientSecretKey {
    ClientSecretKey::generate(&mut ChaCha20Rng::from_seed([77; 32]))
}

/// The message id of an envelope, as hex.
pub fn message_id(env: &[u8]) -> String {
    Envelope::parse(env).unwrap().header().message_id.to_hex()
}
