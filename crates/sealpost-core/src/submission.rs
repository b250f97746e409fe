//! Submissions: envelopes sealed by someone who does not hold the tenant's signing key.
//!
//! A recipient's reply is sealed in their browser to the tenant's license key (public), so it
//! cannot carry the tenant's signature. The portal makes a *submission*: an envelope in the
//! ordinary format whose 64-byte signature field is all zero ([`seal_submission`]). The
//! gateway, after the key service has confirmed that the submitter is signed in, was a
//! recipient of the original and addresses only whom the original's rights allow, signs it
//! with the tenant's signing key ([`countersign`]): the signature then states that the tenant
//! relayed this envelope for the sender named in its header.
//!
//! A submission never verifies (`r = 0` is not a valid ECDSA signature), so a reader cannot
//! mistake one for a signed envelope. This module does not decide who may submit what; that is
//! the key service's job, and the gateway's to ask.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::envelope::{Envelope, HeaderIds, SIGNATURE_LEN, Sealing, begin_unsigned};
use crate::error::{ParseError, SealError};
use crate::keys::{KeyId, LicensePublicKey, SigningKey};
use crate::policy::Policy;

/// What a portal needs to seal a submission: all of it public.
pub struct SubmissionSealer<'a> {
    /// Tenant id written to the header.
    pub tenant_id: &'a str,
    /// Key-service base URL written to the header.
    pub key_service_url: &'a str,
    /// The tenant's active license key (public).
    pub license_key: &'a LicensePublicKey,
    /// The id of the tenant signing key that will counter-sign (the active one).
    pub signing_key_id: KeyId,
}

/// Seals `plaintext` like [`seal`](crate::seal), but leaves the signature field zero.
pub fn seal_submission(
    sealer: &SubmissionSealer<'_>,
    policy: &Policy,
    subject: Option<&str>,
    now: u64,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, SealError> {
    let mut sealing = SubmissionSealing::start(sealer, policy, subject, now, plaintext.len(), rng)?;
    sealing.update(plaintext)?;
    sealing.finish()
}

/// A submission sealed a part at a time, so that a browser can yield between parts and stay
/// responsive while a large reply is encrypted: [`SubmissionSealing::start`], then
/// [`SubmissionSealing::update`] with the plaintext in parts of any size, in order, then
/// [`SubmissionSealing::finish`]. The result is byte for byte what [`seal_submission`] makes
/// from the same inputs and the same randomness.
pub struct SubmissionSealing(Sealing);

impl SubmissionSealing {
    /// Starts sealing a plaintext of `plaintext_len` bytes (used only to size the output).
    pub fn start(
        sealer: &SubmissionSealer<'_>,
        policy: &Policy,
        subject: Option<&str>,
        now: u64,
        plaintext_len: usize,
        rng: &mut impl CryptoRng,
    ) -> Result<SubmissionSealing, SealError> {
        let ids = HeaderIds {
            tenant_id: sealer.tenant_id,
            key_service_url: sealer.key_service_url,
            license_key: sealer.license_key,
            signing_key_id: sealer.signing_key_id,
        };
        begin_unsigned(&ids, policy, subject, now, plaintext_len, rng).map(SubmissionSealing)
    }

    /// Encrypts the next part of the plaintext.
    pub fn update(&mut self, part: &[u8]) -> Result<(), SealError> {
        self.0.update(part)
    }

    /// The submission: the envelope with its signature field zero.
    pub fn finish(self) -> Result<Vec<u8>, SealError> {
        let mut out = self.0.finish()?;
        out.extend_from_slice(&[0u8; SIGNATURE_LEN]);
        Ok(out)
    }
}

/// Why a submission was not counter-signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CountersignError {
    /// The bytes are not a readable envelope.
    #[error("the submission is not a readable envelope: {0}")]
    Parse(#[from] ParseError),
    /// The signature field is not all zero: the envelope is signed already.
    #[error("the envelope is already signed; only unsigned submissions are counter-signed")]
    AlreadySigned,
    /// The header names another signing key than the one offered.
    #[error("the submission names signing key {named}, not this gateway's key {offered}")]
    WrongKey {
        /// The key id in the header.
        named: KeyId,
        /// The key id of the key offered.
        offered: KeyId,
    },
}

/// Signs a submission with the tenant's signing key and returns the signed envelope.
///
/// The submission must parse, name `key` as its signing key, and have an all-zero signature.
/// Nothing else is checked here: whether the submitter may send it is decided before.
pub fn countersign(submission: &[u8], key: &SigningKey) -> Result<Vec<u8>, CountersignError> {
    let env = Envelope::parse(submission)?;
    if !env.is_submission() {
        return Err(CountersignError::AlreadySigned);
    }
    let offered = key.verifying_key().key_id();
    let named = env.header().signing_key_id;
    if named != offered {
        return Err(CountersignError::WrongKey { named, offered });
    }
    let signed = env.signed_bytes();
    let digest: [u8; 32] = Sha256::digest(signed).into();
    let mut out = Vec::with_capacity(submission.len());
    out.extend_from_slice(signed);
    out.extend_from_slice(&key.sign_digest(&digest));
    Ok(out)
}

#[cfg(test)]
#[path = "submission_tests.rs"]
mod tests;
