//! The envelope: one protected message, as bytes.
//!
//! ```text
//! envelope  = magic "SEALPOST" (8) || version 0x01 (1)
//!          || header length (u32) || header
//!          || share A (32)
//!          || license length (u32) || license
//!          || payload (Cobblestone-256 ciphertext, to 64 bytes before the end)
//!          || signature (64: ECDSA P-256 / SHA-256 r || s over every byte before it)
//! content key = HKDF-SHA256(ikm = share A || share B, salt = message id,
//!                           info = "sealpost content key v1"), 32 bytes
//! payload     = chunked encryption of the original message under the content key,
//!               with context = SHA-256(header)
//! ```
//!
//! [`seal`] makes an envelope; [`Envelope::parse`] reads one without any key;
//! [`Envelope::verify`], [`Envelope::open_license`] and [`Envelope::decrypt`] check and open
//! it. Readers must verify the signature before releasing any plaintext. This module does not
//! decide *who* gets share B; that is the key service's job.

use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::chunked::{self, Decryptor, Encryptor, RandomAccess};
use crate::error::{OpenError, ParseError, SealError};
use crate::header::{Header, MessageId, header_hash};
use crate::keys::{KeyId, LicensePublicKey, LicenseSecretKey, SigningKey, VerifyingKey};
use crate::license::{self, License, SHARE_LEN};
use crate::policy::Policy;
use crate::wire::Reader;

/// The first eight bytes of every envelope.
pub const MAGIC: &[u8; 8] = b"SEALPOST";
/// The format version this library writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Length of the trailing signature.
pub const SIGNATURE_LEN: usize = 64;

const CONTENT_KEY_INFO: &[u8] = b"sealpost content key v1";

/// The sending organization's keys and identity, as needed to seal.
pub struct Sealer<'a> {
    /// Tenant id written to the header.
    pub tenant_id: &'a str,
    /// Key-service base URL written to the header.
    pub key_service_url: &'a str,
    /// The tenant's license key (public half).
    pub license_key: &'a LicensePublicKey,
    /// The tenant's signing key.
    pub signing_key: &'a SigningKey,
}

/// Derives the content key from the two shares.
pub fn content_key(
    share_a: &[u8; SHARE_LEN],
    share_b: &[u8; SHARE_LEN],
    message_id: &MessageId,
) -> Zeroizing<[u8; 32]> {
    let mut ikm = Zeroizing::new([0u8; 2 * SHARE_LEN]);
    ikm[..SHARE_LEN].copy_from_slice(share_a);
    ikm[SHARE_LEN..].copy_from_slice(share_b);
    let hk = Hkdf::<Sha256>::new(Some(&message_id.0), &ikm[..]);
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(CONTENT_KEY_INFO, &mut key[..])
        .expect("32 bytes is a valid HKDF-SHA256 length");
    key
}

/// Seals `plaintext` (an RFC 5322 message, byte for byte) under `policy`.
///
/// `subject` goes into the readable header only when the tenant shows subjects; `now` is the
/// creation time (Unix seconds); all randomness comes from `rng`.
pub fn seal(
    sealer: &Sealer<'_>,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SealError> {
    let ids = HeaderIds {
        tenant_id: sealer.tenant_id,
        key_service_url: sealer.key_service_url,
        license_key: sealer.license_key,
        signing_key_id: sealer.signing_key.verifying_key().key_id(),
    };
    let mut out = seal_unsigned(&ids, policy, subject, now, plaintext, rng)?;
    let digest: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sealer.signing_key.sign_digest(&digest));
    Ok(out)
}

/// What the header names besides the policy: shared by [`seal`] and
/// [`seal_submission`](crate::submission::seal_submission).
pub(crate) struct HeaderIds<'a> {
    pub tenant_id: &'a str,
    pub key_service_url: &'a str,
    pub license_key: &'a LicensePublicKey,
    pub signing_key_id: KeyId,
}

/// Everything of an envelope but its signature (the caller appends 64 bytes).
pub(crate) fn seal_unsigned(
    ids: &HeaderIds<'_>,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SealError> {
    let mut sealing = begin_unsigned(ids, policy, subject, now, plaintext.len(), rng)?;
    sealing.update(plaintext)?;
    sealing.finish()
}

/// An envelope being sealed: everything before the payload written, the payload encrypted as
/// its plaintext is handed over ([`Sealing::update`]), the signature left to the caller.
pub(crate) struct Sealing {
    out: Vec<u8>,
    enc: Encryptor,
}

impl Sealing {
    /// Encrypts the next part of the plaintext.
    pub(crate) fn update(&mut self, part: &[u8]) -> Result<(), SealError> {
        self.enc
            .update(part, &mut self.out)
            .map_err(|_| SealError::TooLarge)
    }

    /// The envelope without its signature (the caller appends 64 bytes).
    pub(crate) fn finish(self) -> Result<Vec<u8>, SealError> {
        let Sealing { mut out, enc } = self;
        enc.finish(&mut out).map_err(|_| SealError::TooLarge)?;
        Ok(out)
    }
}

/// Starts sealing an envelope whose plaintext is `plaintext_len` bytes (the length sizes the
/// output buffer only; the payload's encoding does not depend on it).
pub(crate) fn begin_unsigned(
    ids: &HeaderIds<'_>,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    plaintext_len: usize,
    rng: &mut impl CryptoRng,
) -> Result<Sealing, SealError> {
    policy.check()?;
    let header = Header {
        message_id: MessageId::random(rng),
        created: now,
        license_key_id: ids.license_key.key_id(),
        signing_key_id: ids.signing_key_id,
        tenant_id: ids.tenant_id.to_string(),
        key_service_url: ids.key_service_url.to_string(),
        sender: policy.sender.clone(),
        template: policy.template.clone(),
        subject: subject.map(String::from),
    };
    header.check()?;
    let encoded_header = header.encode();
    let hash = header_hash(&encoded_header);

    let mut share_a = Zeroizing::new([0u8; SHARE_LEN]);
    let mut share_b = Zeroizing::new([0u8; SHARE_LEN]);
    rng.fill_bytes(&mut share_a[..]);
    rng.fill_bytes(&mut share_b[..]);
    let license = license::seal(
        ids.license_key,
        &header,
        &encoded_header,
        &share_b,
        policy,
        rng,
    );
    let key = content_key(&share_a, &share_b, &header.message_id);

    let payload_len = Encryptor::ciphertext_len(plaintext_len as u64) as usize;
    let mut out = Vec::with_capacity(
        MAGIC.len()
            + 1
            + 4
            + encoded_header.len()
            + SHARE_LEN
            + 4
            + license.len()
            + payload_len
            + SIGNATURE_LEN,
    );
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&(encoded_header.len() as u32).to_be_bytes());
    out.extend_from_slice(&encoded_header);
    out.extend_from_slice(&share_a[..]);
    out.extend_from_slice(&(license.len() as u32).to_be_bytes());
    out.extend_from_slice(&license);
    let enc = Encryptor::new(&key, &hash, rng);
    Ok(Sealing { out, enc })
}

/// A parsed envelope, borrowing the bytes it was read from.
#[derive(Clone)]
pub struct Envelope<'a> {
    header: Header,
    header_bytes: &'a [u8],
    share_a: [u8; SHARE_LEN],
    license: &'a [u8],
    payload: &'a [u8],
    signed: &'a [u8],
    signature: &'a [u8],
}

impl std::fmt::Debug for Envelope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Envelope")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'a> Envelope<'a> {
    /// Reads the structure; checks no signature and needs no key.
    pub fn parse(bytes: &'a [u8]) -> Result<Envelope<'a>, ParseError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ParseError::NotAnEnvelope);
        }
        let mut r = Reader::new(&bytes[MAGIC.len()..], "envelope");
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(ParseError::UnsupportedVersion(version));
        }
        let header_len = r.u32()? as usize;
        let header_bytes = r.take(header_len)?;
        let header = Header::decode(header_bytes)?;
        let share_a = r.array()?;
        let license_len = r.u32()? as usize;
        let license = r.take(license_len)?;
        if license.len() < crate::hpke_seal::OVERHEAD {
            return Err(ParseError::InvalidField("license"));
        }
        let min_payload = chunked::PREFIX_SIZE + chunked::TAG_SIZE;
        if r.remaining() < min_payload + SIGNATURE_LEN {
            return Err(ParseError::Truncated("payload"));
        }
        let rest = r.rest();
        let (payload, signature) = rest.split_at(rest.len() - SIGNATURE_LEN);
        Ok(Envelope {
            header,
            header_bytes,
            share_a,
            license,
            payload,
            signed: &bytes[..bytes.len() - SIGNATURE_LEN],
            signature,
        })
    }

    /// The readable header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The header's exact bytes (sent to the key service with the license).
    pub fn header_bytes(&self) -> &'a [u8] {
        self.header_bytes
    }
    /// SHA-256 of the header.
    pub fn header_hash(&self) -> [u8; 32] {
        header_hash(self.header_bytes)
    }
    /// The sealed license (sent to the key service).
    pub fn license(&self) -> &'a [u8] {
        self.license
    }
    /// Length of the encrypted payload in bytes.
    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }
    /// The encrypted payload (salt, commitment and chunks).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Whether this is an unsigned *submission* (its signature field is 64 zero bytes), as a
    /// portal makes for a reply before the gateway counter-signs it. A submission never
    /// verifies: `r = 0` is not a valid ECDSA signature.
    pub fn is_submission(&self) -> bool {
        self.signature.iter().all(|&b| b == 0)
    }

    /// Every byte before the signature: what the signature covers.
    pub fn signed_bytes(&self) -> &'a [u8] {
        self.signed
    }

    /// Checks the organization's signature over the whole envelope.
    ///
    /// [`OpenError::CannotOpen`] if `key` is not the key the header names;
    /// [`OpenError::Damaged`] if the signature does not verify.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), OpenError> {
        if key.key_id() != self.header.signing_key_id {
            return Err(OpenError::CannotOpen);
        }
        let digest: [u8; 32] = Sha256::digest(self.signed).into();
        self.check_signature(key, &digest)
    }

    /// The signature check proper, given SHA-256 of the signed bytes.
    fn check_signature(&self, key: &VerifyingKey, digest: &[u8; 32]) -> Result<(), OpenError> {
        if key.verify_digest(digest, self.signature) {
            Ok(())
        } else {
            Err(OpenError::Damaged)
        }
    }

    /// The one of `keys` the header names.
    fn named_key<'k>(&self, keys: &'k [VerifyingKey]) -> Result<&'k VerifyingKey, OpenError> {
        keys.iter()
            .find(|k| k.key_id() == self.header.signing_key_id)
            .ok_or(OpenError::CannotOpen)
    }

    /// Verifies with whichever of `keys` the header names.
    pub fn verify_any(&self, keys: &[VerifyingKey]) -> Result<(), OpenError> {
        self.verify(self.named_key(keys)?)
    }

    /// [`verify_any`](Self::verify_any) with SHA-256 over the envelope computed by the
    /// browser's WebCrypto when it offers it (the same digest, many times faster than `sha2`
    /// in WebAssembly), else by `sha2`; the ECDSA check is this crate's either way.
    #[cfg(all(feature = "webcrypto", target_arch = "wasm32"))]
    pub async fn verify_any_webcrypto(&self, keys: &[VerifyingKey]) -> Result<(), OpenError> {
        let key = self.named_key(keys)?;
        let digest = match chunked::webcrypto::sha256(self.signed).await {
            Ok(digest) => digest,
            Err(chunked::webcrypto::Unavailable) => Sha256::digest(self.signed).into(),
        };
        self.check_signature(key, &digest)
    }

    /// Opens the license with a tenant license key (the key service, or recovery).
    pub fn open_license(&self, key: &LicenseSecretKey) -> Result<License, OpenError> {
        license::open(key, self.header_bytes, self.license)
    }

    fn key(&self, share_b: &[u8; SHARE_LEN]) -> Zeroizing<[u8; 32]> {
        content_key(&self.share_a, share_b, &self.header.message_id)
    }

    /// Decrypts the whole payload with share B. Call [`verify`](Self::verify) first.
    pub fn decrypt(&self, share_b: &[u8; SHARE_LEN]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.payload.len()));
        let mut dec = self.decryptor(share_b);
        dec.update(self.payload, &mut out)?;
        dec.finish(&mut out)?;
        Ok(out)
    }

    /// [`decrypt`](Self::decrypt) with the chunks opened by the browser's WebCrypto: the same
    /// plaintext or the same error, checked by the same code (see [`chunked::webcrypto`]).
    /// `progress(done, total)` counts payload bytes. The outer error means WebCrypto is not
    /// available here (insecure context, key refused): use [`decrypt`](Self::decrypt) or
    /// [`decryptor`](Self::decryptor) instead. Call [`verify`](Self::verify) first.
    #[cfg(all(feature = "webcrypto", target_arch = "wasm32"))]
    pub async fn decrypt_webcrypto(
        &self,
        share_b: &[u8; SHARE_LEN],
        progress: impl FnMut(usize, usize),
    ) -> Result<Result<Zeroizing<Vec<u8>>, OpenError>, chunked::webcrypto::Unavailable> {
        let key = self.key(share_b);
        let opened =
            chunked::webcrypto::decrypt(&key, &self.header_hash(), self.payload, progress).await?;
        Ok(opened.map_err(OpenError::from))
    }

    /// A streaming decryptor for the payload, for callers that feed it in pieces.
    pub fn decryptor(&self, share_b: &[u8; SHARE_LEN]) -> Decryptor {
        Decryptor::new(&self.key(share_b), &self.header_hash())
    }

    /// Random access to the payload's chunks (checks the key commitment first).
    pub fn random_access(&self, share_b: &[u8; SHARE_LEN]) -> Result<RandomAccess<'a>, OpenError> {
        Ok(RandomAccess::new(
            &self.key(share_b),
            &self.header_hash(),
            self.payload,
        )?)
    }
}

/// What the tenant's own recovery path gets from an envelope.
pub struct Opened {
    /// The readable header.
    pub header: Header,
    /// The sealed policy.
    pub policy: Policy,
    /// The original message, byte for byte.
    pub plaintext: Zeroizing<Vec<u8>>,
}

/// Verifies and opens an envelope with the tenant's own keys (compliance / eDiscovery).
///
/// Any parse failure of a well-framed envelope, a bad signature or a payload that fails to
/// authenticate is [`OpenError::Damaged`]; an envelope for another tenant or a key this
/// tenant does not hold is [`OpenError::CannotOpen`].
pub fn open_with_tenant_keys(
    envelope: &Envelope<'_>,
    verifying_keys: &[VerifyingKey],
    license_keys: &[LicenseSecretKey],
) -> Result<Opened, OpenError> {
    envelope.verify_any(verifying_keys)?;
    let key = license_keys
        .iter()
        .find(|k| k.public_key().key_id() == envelope.header.license_key_id)
        .ok_or(OpenError::CannotOpen)?;
    // The signature already covered the license: failing to open it now means damage.
    let license = envelope.open_license(key).map_err(|_| OpenError::Damaged)?;
    let plaintext = envelope.decrypt(&license.share_b)?;
    Ok(Opened {
        header: envelope.header.clone(),
        policy: license.policy,
        plaintext,
    })
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("header", &self.header)
            .field("policy", &self.policy)
            .field("plaintext_len", &self.plaintext.len())
            .finish()
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
