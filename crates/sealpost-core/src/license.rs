//! The license: share B, the message id, the header hash and the policy, sealed with HPKE to
//! the tenant's license key.
//!
//! ```text
//! info      = "sealpost license v1" || 0x00 || message id
//! aad       = SHA-256(header)
//! plaintext = share B (32) || message id (16) || header hash (32) || policy
//! license   = enc (65) || AEAD ciphertext
//! ```
//!
//! Only the key service (and the tenant's own recovery path) holds the key that opens it.
//! Opening checks that the license belongs to the header it is presented with: a license
//! moved to another envelope fails as [`OpenError::CannotOpen`].

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{OpenError, ParseError};
use crate::header::{Header, MessageId, header_hash};
use crate::hpke_seal;
use crate::keys::{LicensePublicKey, LicenseSecretKey};
use crate::policy::Policy;
use crate::wire::{Reader, Writer};

/// Length of a key share.
pub const SHARE_LEN: usize = 32;

const INFO_LABEL: &[u8] = b"sealpost license v1\0";

/// An opened license.
#[derive(Clone)]
pub struct License {
    /// The key service's half of the content key.
    pub share_b: Zeroizing<[u8; SHARE_LEN]>,
    /// The message this license belongs to.
    pub message_id: MessageId,
    /// SHA-256 of the header it was sealed with.
    pub header_hash: [u8; 32],
    /// Who may do what, until when.
    pub policy: Policy,
}

impl std::fmt::Debug for License {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("License")
            .field("message_id", &self.message_id)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

fn info(message_id: &MessageId) -> Vec<u8> {
    [INFO_LABEL, &message_id.0].concat()
}

/// Seals a license for `header` (already encoded) to the tenant's key.
pub(crate) fn seal(
    to: &LicensePublicKey,
    header: &Header,
    encoded_header: &[u8],
    share_b: &[u8; SHARE_LEN],
    policy: &Policy,
    rng: &mut impl CryptoRng,
) -> Vec<u8> {
    let hash = header_hash(encoded_header);
    let mut w = Writer::default();
    w.bytes(share_b);
    w.bytes(&header.message_id.0);
    w.bytes(&hash);
    policy.encode(&mut w);
    let plaintext = Zeroizing::new(w.buf);
    hpke_seal::seal(to, &info(&header.message_id), &hash, &plaintext, rng)
}

/// Opens `license` with the tenant's key, for the header it came with.
///
/// Fails with [`OpenError::CannotOpen`] if the license is not sealed to this key, was moved
/// from another envelope, or was altered.
pub fn open(
    key: &LicenseSecretKey,
    encoded_header: &[u8],
    license: &[u8],
) -> Result<License, OpenError> {
    let header = Header::decode(encoded_header).map_err(|_| OpenError::CannotOpen)?;
    if header.license_key_id != key.public_key().key_id() {
        return Err(OpenError::CannotOpen);
    }
    let hash = header_hash(encoded_header);
    let plaintext = Zeroizing::new(hpke_seal::open(
        key,
        &info(&header.message_id),
        &hash,
        license,
    )?);
    let lic = decode(&plaintext).map_err(|_| OpenError::CannotOpen)?;
    if lic.message_id != header.message_id || lic.header_hash != hash {
        return Err(OpenError::CannotOpen);
    }
    Ok(lic)
}

fn decode(plaintext: &[u8]) -> Result<License, ParseError> {
    let mut r = Reader::new(plaintext, "license");
    let share_b = Zeroizing::new(r.array::<SHARE_LEN>()?);
    let message_id = MessageId(r.array()?);
    let header_hash = r.array()?;
    let policy = Policy::decode(&mut r)?;
    r.finish()?;
    Ok(License {
        share_b,
        message_id,
        header_hash,
        policy,
    })
}
