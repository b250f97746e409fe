//! The crypto glue: every step from envelope bytes to the original message, each a call into
//! `sealpost-core`.
//!
//! 1. [`read_envelope`]: parse (no key) and show what the header claims;
//! 2. [`verify`]: check the organization's signature with the signing key the header names,
//!    from the tenant's public information — before anything from the envelope is shown;
//! 3. [`RewrapKey`]: an ephemeral P-256 key for one rewrap; its public half goes to the key
//!    service with the header and license ([`RewrapKey::request_fields`]);
//! 4. [`RewrapKey::open_share`]: share B, sealed to that key, opened;
//! 5. the payload decrypted: by the browser's WebCrypto when this context offers it
//!    ([`decrypt_webcrypto`], wasm32 only, several times faster), else by the pure-Rust
//!    [`PayloadDecryptor`] chunk by chunk, so the UI can yield to the browser and show progress.
//!    Both give the same bytes and fail on the same inputs ([`DecryptPath`] says which ran).
//!
//! This module never reads a byte of the format itself and holds key material only as the
//! core's types. Every failure after parsing is [`OpenFailure::Damaged`]: a person can do
//! nothing more with a finer reason, and an attacker should learn nothing from it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_core::CryptoRng;
use sealpost_core::rewrap::{self, ClientSecretKey};
use sealpost_core::{Envelope, VerifyingKey};
use zeroize::Zeroizing;

use crate::api::TenantKey;

/// Why an envelope cannot be opened in the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenFailure {
    /// Not readable, not signed by the organization's key, or fails to decrypt.
    #[error("the message is damaged or was changed after it was sent")]
    Damaged,
}

/// What the envelope's readable header says, for display (verified by [`verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// The organization's tenant id.
    pub tenant_id: String,
    /// The key service that releases share B.
    pub key_service_url: String,
    /// The sender's address.
    pub sender: String,
    /// The template name (`Encrypt-Only`, `Do-Not-Forward`, …).
    pub template: String,
    /// The subject, when the organization shows it outside the encryption.
    pub subject: Option<String>,
    /// The short reference the passcode mail also shows.
    pub reference: String,
    /// When it was sealed, Unix seconds.
    pub created: u64,
}

/// Reads the envelope's header; checks no signature.
pub fn read_envelope(bytes: &[u8]) -> Result<EnvelopeInfo, OpenFailure> {
    let envelope = Envelope::parse(bytes).map_err(|_| OpenFailure::Damaged)?;
    let h = envelope.header();
    Ok(EnvelopeInfo {
        tenant_id: h.tenant_id.clone(),
        key_service_url: h.key_service_url.clone(),
        sender: h.sender.clone(),
        template: h.template.clone(),
        subject: h.subject.clone(),
        reference: h.message_id.reference(),
        created: h.created,
    })
}

/// Verifies the envelope's signature with whichever of the tenant's signing keys the header
/// names (active or retired). A missing key is as bad as a wrong signature.
pub fn verify(bytes: &[u8], signing_keys: &[TenantKey]) -> Result<(), OpenFailure> {
    let envelope = Envelope::parse(bytes).map_err(|_| OpenFailure::Damaged)?;
    let keys: Vec<VerifyingKey> = signing_keys
        .iter()
        .filter_map(|k| VerifyingKey::from_base64(&k.public_key).ok())
        .collect();
    envelope.verify_any(&keys).map_err(|_| OpenFailure::Damaged)
}

/// [`verify`] with SHA-256 over the envelope done by the browser's WebCrypto when it offers
/// it (the same digest, many times faster than in WebAssembly), else in Rust.
#[cfg(target_arch = "wasm32")]
pub async fn verify_webcrypto(bytes: &[u8], signing_keys: &[TenantKey]) -> Result<(), OpenFailure> {
    let envelope = Envelope::parse(bytes).map_err(|_| OpenFailure::Damaged)?;
    let keys: Vec<VerifyingKey> = signing_keys
        .iter()
        .filter_map(|k| VerifyingKey::from_base64(&k.public_key).ok())
        .collect();
    envelope
        .verify_any_webcrypto(&keys)
        .await
        .map_err(|_| OpenFailure::Damaged)
}

/// The header and license, base64, as the key service's POST bodies carry them.
pub fn license_fields(bytes: &[u8]) -> Result<(String, String), OpenFailure> {
    let envelope = Envelope::parse(bytes).map_err(|_| OpenFailure::Damaged)?;
    Ok((
        B64.encode(envelope.header_bytes()),
        B64.encode(envelope.license()),
    ))
}

/// An ephemeral key for one rewrap. Made fresh for every attempt and dropped after it.
pub struct RewrapKey(ClientSecretKey);

impl RewrapKey {
    /// A new key from `rng` (the browser's CSPRNG in the app).
    pub fn generate(rng: &mut impl CryptoRng) -> RewrapKey {
        RewrapKey(ClientSecretKey::generate(rng))
    }

    /// The public key, base64 of the SEC1 uncompressed point (`client_public_key`).
    pub fn public_key_base64(&self) -> String {
        self.0.public_key().to_base64()
    }

    /// Opens the key service's `sealed_share` (base64) for this envelope.
    pub fn open_share(&self, bytes: &[u8], sealed_b64: &str) -> Result<ShareB, OpenFailure> {
        let envelope = Envelope::parse(bytes).map_err(|_| OpenFailure::Damaged)?;
        let sealed = B64
            .decode(sealed_b64.trim())
            .map_err(|_| OpenFailure::Damaged)?;
        rewrap::open_share(&self.0, envelope.header_bytes(), &sealed)
            .map(ShareB)
            .map_err(|_| OpenFailure::Damaged)
    }
}

/// Share B of one message, as the core returns it (wiped when dropped).
pub struct ShareB(Zeroizing<[u8; 32]>);

/// How far decryption has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Ciphertext bytes processed.
    pub done: usize,
    /// Ciphertext bytes in all.
    pub total: usize,
}

impl Progress {
    /// Whole per cent, 0 to 100.
    pub fn percent(&self) -> u32 {
        if self.total == 0 {
            return 100;
        }
        ((self.done as u128 * 100) / self.total as u128) as u32
    }
}

/// Which implementation decrypted the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptPath {
    /// SubtleCrypto AES-GCM, through `sealpost-core`'s `webcrypto` feature.
    WebCrypto,
    /// The `aes-gcm` crate compiled to WebAssembly ([`PayloadDecryptor`]).
    Rust,
}

impl DecryptPath {
    /// The name recorded on the message view (`data-decrypt-path`).
    pub fn as_str(self) -> &'static str {
        match self {
            DecryptPath::WebCrypto => "webcrypto",
            DecryptPath::Rust => "rust",
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use sealpost_core::chunked::webcrypto::Unavailable;

/// Decrypts `bytes` (already verified with [`verify`]) with share B through WebCrypto, calling
/// `progress` after each batch of chunks. The outer error means WebCrypto is not available in
/// this context and nothing was decrypted: use [`PayloadDecryptor`] instead.
#[cfg(target_arch = "wasm32")]
pub async fn decrypt_webcrypto(
    bytes: &[u8],
    share_b: &ShareB,
    mut progress: impl FnMut(Progress),
) -> Result<Result<Zeroizing<Vec<u8>>, OpenFailure>, Unavailable> {
    let Ok(envelope) = Envelope::parse(bytes) else {
        return Ok(Err(OpenFailure::Damaged));
    };
    let opened = envelope
        .decrypt_webcrypto(&share_b.0, |done, total| progress(Progress { done, total }))
        .await?;
    Ok(opened.map_err(|_| OpenFailure::Damaged))
}

/// Decrypts an envelope's payload a slice at a time with the core's streaming `Decryptor`:
/// plaintext is released only for chunks that authenticated, and the message only once its
/// end authenticated.
pub struct PayloadDecryptor {
    bytes: Arc<[u8]>,
    decryptor: sealpost_core::chunked::Decryptor,
    offset: usize,
    total: usize,
    out: Zeroizing<Vec<u8>>,
}

impl PayloadDecryptor {
    /// Prepares to decrypt `bytes` (already verified with [`verify`]) with share B.
    pub fn new(bytes: Arc<[u8]>, share_b: &ShareB) -> Result<PayloadDecryptor, OpenFailure> {
        let envelope = Envelope::parse(&bytes).map_err(|_| OpenFailure::Damaged)?;
        let decryptor = envelope.decryptor(&share_b.0);
        let total = envelope.payload_len();
        Ok(PayloadDecryptor {
            decryptor,
            offset: 0,
            total,
            out: Zeroizing::new(Vec::with_capacity(total)),
            bytes,
        })
    }

    /// Feeds up to `max` more bytes of ciphertext.
    pub fn step(&mut self, max: usize) -> Result<Progress, OpenFailure> {
        let envelope = Envelope::parse(&self.bytes).map_err(|_| OpenFailure::Damaged)?;
        let payload = envelope.payload();
        let end = self.offset.saturating_add(max.max(1)).min(payload.len());
        self.decryptor
            .update(&payload[self.offset..end], &mut self.out)
            .map_err(|_| OpenFailure::Damaged)?;
        self.offset = end;
        Ok(self.progress())
    }

    /// How far it has come.
    pub fn progress(&self) -> Progress {
        Progress {
            done: self.offset,
            total: self.total,
        }
    }

    /// Whether every byte has been fed.
    pub fn is_fed(&self) -> bool {
        self.offset >= self.total
    }

    /// Ends decryption: the original message, once its end authenticated.
    pub fn finish(mut self) -> Result<Zeroizing<Vec<u8>>, OpenFailure> {
        if !self.is_fed() {
            return Err(OpenFailure::Damaged);
        }
        self.decryptor
            .finish(&mut self.out)
            .map_err(|_| OpenFailure::Damaged)?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[path = "open_tests.rs"]
mod tests;
