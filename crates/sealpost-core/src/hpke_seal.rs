//! HPKE (RFC 9180) in base mode with Sealpost's one suite: DHKEM(P-256, HKDF-SHA256),
//! HKDF-SHA256, AES-256-GCM (ids 0x0010, 0x0001, 0x0002).
//!
//! A sealed box is `enc` (the 65-byte ephemeral public key) followed by the AEAD ciphertext.
//! Used for licenses (sealed to a tenant) and, by the key service, for share B on its way to
//! a browser's ephemeral key. No other mode, suite or export is offered.
//!
//! The KEM's P-256 arithmetic is RustCrypto's `p256` (`keys::Kem`), or with the
//! `native-p256` feature on a native target AWS-LC's (`hpke_native`); the bytes are the same.

use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRng;

use crate::error::OpenError;
#[cfg(not(all(feature = "native-p256", not(target_arch = "wasm32"))))]
use crate::keys::Kem;
use crate::keys::{LicensePublicKey, LicenseSecretKey};

/// The KEM that seals and opens: same key types and bytes either way.
#[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
type Kem = crate::hpke_native::DhP256HkdfSha256Native;

type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

/// Length of `enc`, the encapsulated key at the front of a sealed box.
pub const ENC_LEN: usize = 65;
/// Bytes a sealed box adds to its plaintext.
pub const OVERHEAD: usize = ENC_LEN + 16;

/// Seals `plaintext` to `recipient` with the given `info` and `aad`.
pub fn seal(
    recipient: &LicensePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Vec<u8> {
    let (enc, ct) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &recipient.0,
        info,
        plaintext,
        aad,
        rng,
    )
    .expect("HPKE seal to a validated P-256 key cannot fail");
    let mut out = Vec::with_capacity(ENC_LEN + ct.len());
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    out
}

/// Opens a sealed box; any failure is [`OpenError::CannotOpen`].
pub fn open(
    recipient: &LicenseSecretKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < OVERHEAD {
        return Err(OpenError::CannotOpen);
    }
    let (enc, ct) = sealed.split_at(ENC_LEN);
    let enc =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| OpenError::CannotOpen)?;
    #[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
    let made;
    #[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
    let sk = match &recipient.native {
        Some(k) => k,
        None => {
            made = crate::hpke_native::NativeSecretKey::new(&recipient.sk)
                .ok_or(OpenError::CannotOpen)?;
            &made
        }
    };
    #[cfg(not(all(feature = "native-p256", not(target_arch = "wasm32"))))]
    let sk = &recipient.sk;
    hpke::single_shot_open::<Aead, Kdf, Kem>(&OpModeR::Base, sk, &enc, info, ct, aad)
        .map_err(|_| OpenError::CannotOpen)
}
