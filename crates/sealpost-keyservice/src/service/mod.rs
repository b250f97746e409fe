//! The key service's logic, testable without a socket: sign-in by passcode or OpenID Connect
//! (`oidc`), sessions, rewrap, revocation, audit, tenant administration, and the mail
//! gateway's calls (reply authorization and transport decryption, [`gateway`]). Handlers
//! call one method each.
//!
//! Every decision reads time from the [`Clock`] and randomness from [`Entropy`]; every
//! release of share B is preceded by a durable audit record (audit fails closed). Audit
//! records go through one group-commit writer per service ([`audit_writer`]), which commits
//! the records of concurrent requests together and answers each only after its commit.

mod admin;
mod audit_writer;
mod error;
mod gateway;
mod key_cache;
mod oidc;
mod otp_flow;
mod rewrap;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha20Rng;
use rand_core::{Infallible, SeedableRng, TryCryptoRng, TryRng};
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::{Header, License};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use admin::{GATEWAY_TOKEN_PREFIX, TenantImport, TenantInfo, TenantKeyInfo, TokenRole};
pub use error::{
    AdminError, OtpStartError, OtpVerifyError, ReplyAuthorizeError, RewrapError,
    TransportRewrapError,
};
pub use gateway::{
    FORWARD_MAX_RECIPIENTS, REPLY_EXPIRY_SLACK_SECS, ReplyAuthorized, ReplyKind, ReplyRequest,
    TransportRequest,
};
pub use oidc::{
    FLOW_LIFETIME_SECS as OIDC_FLOW_LIFETIME_SECS, OidcFinishError, OidcProviderInfo,
    OidcProviders, OidcStartError, OidcStarted,
};
pub use otp_flow::{OtpStarted, SessionIssued};
pub use rewrap::Released;

use self::audit_writer::AuditWriter;
use self::key_cache::KeyCache;
use crate::clock::Clock;
use crate::otp::OtpLimits;
use crate::ratelimit::IpLimiter;
use crate::session::SessionLimits;
use crate::store::{NewAuditEvent, Store, StoreError};

/// Where randomness comes from: the OS CSPRNG in production, a seeded generator in tests.
pub enum Entropy {
    /// The operating system's CSPRNG (getrandom).
    Os,
    /// A deterministic generator, for tests only.
    Seeded(Box<Mutex<ChaCha20Rng>>),
}

impl Entropy {
    /// A deterministic source for tests.
    pub fn seeded(seed: u64) -> Entropy {
        Entropy::Seeded(Box::new(Mutex::new(ChaCha20Rng::seed_from_u64(seed))))
    }
    fn rng(&self) -> EntropyRng<'_> {
        EntropyRng(self)
    }
}

/// Adapts [`Entropy`] to rand_core's traits.
struct EntropyRng<'a>(&'a Entropy);

impl TryRng for EntropyRng<'_> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self.0 {
            Entropy::Os => getrandom::fill(dst).expect("the OS random number generator failed"),
            Entropy::Seeded(m) => {
                use rand_core::Rng;
                m.lock().unwrap_or_else(|p| p.into_inner()).fill_bytes(dst)
            }
        }
        Ok(())
    }
}

impl TryCryptoRng for EntropyRng<'_> {}

/// A tenant's settings as the key service keeps them (JSON in the tenants table).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// The organization's own mail domains.
    pub domains: Vec<String>,
    /// Origins allowed to call the key service from a browser (the portal's origin).
    pub allowed_origins: Vec<String>,
    /// Branding shown by the portal.
    #[serde(default)]
    pub branding: Branding,
    /// Base URL of the gateway's reply endpoint (`http://127.0.0.1:8090`); tenant info
    /// publishes it, and without it the portal offers no encrypted reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_url: Option<String>,
    /// Whether the tenant's gateway may have share B released to decrypt protected mail for
    /// the organization's own recipients (`/v1/gateway/transport/rewrap`).
    #[serde(default)]
    pub transport_decryption: bool,
}

/// How the portal presents a tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// Accent colour, CSS hex (`#0b57d0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accent_color: Option<String>,
    /// Short text shown under the organization's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tagline: Option<String>,
}

/// Tunable limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Limits {
    /// Passcode limits.
    pub otp: OtpLimits,
    /// Session timeouts.
    pub session: SessionLimits,
    /// Requests per client IP per minute on sign-in and rewrap (0: no limit).
    pub per_ip_per_minute: u32,
}

/// The key service.
pub struct KeyService {
    store: Store,
    clock: Arc<dyn Clock>,
    entropy: Entropy,
    kek: KeyEncryptionKey,
    otp_secret: Zeroizing<Vec<u8>>,
    limits: Limits,
    ip_limiter: IpLimiter,
    audit_writer: AuditWriter,
    key_cache: KeyCache,
    oidc: OidcProviders,
}

impl KeyService {
    /// Builds the service. The passcode-hash secret is created once per database and shared
    /// by every instance that uses it.
    pub async fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        entropy: Entropy,
        kek: KeyEncryptionKey,
        limits: Limits,
    ) -> Result<KeyService, StoreError> {
        let mut candidate = Zeroizing::new([0u8; 32]);
        rand_core::Rng::fill_bytes(&mut entropy.rng(), &mut candidate[..]);
        let otp_secret = Zeroizing::new(
            store
                .get_or_insert_secret("otp-hmac-key", &candidate[..])
                .await?,
        );
        Ok(KeyService {
            audit_writer: AuditWriter::spawn(store.clone(), audit_writer::BATCH_CAP),
            key_cache: KeyCache::default(),
            store,
            clock,
            entropy,
            kek,
            otp_secret,
            limits,
            ip_limiter: IpLimiter::new(limits.per_ip_per_minute),
            oidc: OidcProviders::none(),
        })
    }

    /// Sets the OpenID Connect providers (none until called).
    pub fn set_oidc(&mut self, providers: OidcProviders) {
        self.oidc = providers;
    }

    /// The store (for readiness checks and the CLI).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn limit_ip(&self, ip: Option<IpAddr>) -> Result<(), i64> {
        self.ip_limiter.check(ip, self.now())
    }

    /// Writes an audit record through the group-commit writer and returns once it is durable;
    /// the caller decides whether a failure stops the operation.
    async fn audit(
        &self,
        tenant_id: &str,
        event: &str,
        email: Option<&str>,
        message_id: Option<String>,
        ip: Option<IpAddr>,
        detail: impl Into<String>,
    ) -> Result<i64, StoreError> {
        self.audit_writer
            .append(NewAuditEvent {
                time: self.now(),
                tenant_id: tenant_id.to_string(),
                event: event.to_string(),
                email: email.map(str::to_string),
                message_id,
                client_ip: ip.map(|i| i.to_string()),
                detail: detail.into(),
            })
            .await
    }
}

/// Outcome of looking up the key for and opening a license.
enum Opened {
    Ok(Box<(Header, License)>),
    Malformed,
    UnknownTenant,
    UnknownKey,
}

impl KeyService {
    /// Parses the header, finds the tenant's active license key it names, and opens the
    /// license with it.
    async fn open_license(
        &self,
        header_bytes: &[u8],
        license: &[u8],
    ) -> Result<Opened, StoreError> {
        let Ok(header) = Header::decode(header_bytes) else {
            return Ok(Opened::Malformed);
        };
        let wanted = header.license_key_id.to_string();
        let keys = self.store.keys(&header.tenant_id).await?;
        let wrapped = keys
            .into_iter()
            .find(|k| k.kind == "license" && k.key_id == wanted && k.status == "active")
            .and_then(|k| k.wrapped_private);
        self.open_license_with(header, header_bytes, license, wrapped.as_deref())
            .await
    }

    /// Opens the license of `header` with the wrapped private half of the tenant's active
    /// license key it names, as the caller read it from the store (`None`: no such active
    /// key). The row is read on every request; only its decryption is cached ([`KeyCache`]).
    async fn open_license_with(
        &self,
        header: Header,
        header_bytes: &[u8],
        license: &[u8],
        wrapped: Option<&[u8]>,
    ) -> Result<Opened, StoreError> {
        let tenant_id = header.tenant_id.as_str();
        // A key row implies its tenant (foreign key), so the tenant is read only on a miss.
        let Some(wrapped) = wrapped else {
            if self.store.tenant(tenant_id).await?.is_none() {
                return Ok(Opened::UnknownTenant);
            }
            return Ok(Opened::UnknownKey);
        };
        let id = &header.license_key_id;
        let key = self
            .key_cache
            .unwrap(&self.kek, tenant_id, id, wrapped)
            .map_err(|_| StoreError::Corrupt(format!("license key {id} of tenant {tenant_id} does not decrypt with this key-encryption key")))?;
        match sealpost_core::license::open(&key, header_bytes, license) {
            Ok(lic) => Ok(Opened::Ok(Box::new((header, lic)))),
            Err(_) => Ok(Opened::Malformed),
        }
    }
}
