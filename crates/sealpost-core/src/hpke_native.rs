//! DHKEM(P-256, HKDF-SHA256) with AWS-LC's P-256 arithmetic: the KEM of Sealpost's HPKE suite,
//! for native builds that need speed (feature `native-p256`, never on wasm32).
//!
//! [`DhP256HkdfSha256Native`] implements `hpke::Kem` with KEM id 0x0010, so `hpke_seal` runs
//! the `hpke` crate's key schedule and AEAD over it exactly as over the crate's own
//! `DhP256HkdfSha256`; only the two Diffie-Hellman operations (and the ephemeral public key)
//! are done by `aws-lc-rs`, whose P-256 is constant-time hand-written assembly (on x86-64,
//! s2n-bignum's variable-base and `nistz256`'s fixed-base multiplication), several times
//! faster than RustCrypto's `p256`. Everything else is RFC 9180 §4.1 and §7.1.3 as written:
//!
//! ```text
//! suite_id  = "KEM" || I2OSP(0x0010, 2)
//! Encap(pkR):      skE = DeriveKeyPair(random(32)).sk;  dh = DH(skE, pkR);  enc = pk(skE)
//! Decap(enc, skR): dh = DH(skR, enc)
//! kem_context   = enc || pkR                       (both SEC1 uncompressed, 65 bytes)
//! shared_secret = LabeledExpand(LabeledExtract("", "eae_prk", dh),
//!                               "shared_secret", kem_context, 32)
//! DeriveKeyPair(ikm): dkp_prk = LabeledExtract("", "dkp_prk", ikm); the first of
//!     LabeledExpand(dkp_prk, "candidate", I2OSP(counter, 1), 32), counter = 0, 1, …,
//!     that is a scalar in [1, n)
//! ```
//!
//! The public key type is the `hpke` crate's P-256 type; the private key type is
//! [`NativeSecretKey`]: the `hpke` crate's scalar together with its AWS-LC form and its public
//! point, made once per key (a [`LicenseSecretKey`](crate::keys::LicenseSecretKey) keeps one), so
//! opening a license costs one variable-base multiplication and no fixed-base one. The
//! ephemeral key is drawn from the caller's generator exactly as the pure-Rust KEM draws it (32
//! bytes, then DeriveKeyPair), so for the same generator both KEMs produce the same bytes. An
//! encapsulated key is accepted only as a 65-byte uncompressed point that AWS-LC validates (on
//! the curve, coordinates below p), which refuses what the pure-Rust KEM refuses; it is parsed
//! once and kept parsed for the Diffie-Hellman operation.
//!
//! Deliberately not here: the authenticated modes (a sender key given to `encap` or `decap`
//! is refused with an error), other curves, and key generation or public-key derivation for
//! stored keys (`sk_to_pk` is the pure-Rust one; it is not on the rewrap path). The
//! secret scalars and the Diffie-Hellman output this module handles are zeroized after use;
//! AWS-LC clears its own copies when it frees them.

use std::sync::Arc;

use aws_lc_rs::agreement::{self, ECDH_P256, ParsedPublicKey, UnparsedPublicKey};
use hkdf::{Hkdf, HkdfExtract};
use hpke::hybrid_array::typenum::{U32, U65};
use hpke::kem::SharedSecret;
use hpke::{Deserializable, HpkeError, Kem, Serializable};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// The pure-Rust KEM whose key types this one shares.
type PureKem = hpke::kem::DhP256HkdfSha256;
type PublicKey = <PureKem as Kem>::PublicKey;
type PrivateKey = <PureKem as Kem>::PrivateKey;

/// `suite_id` of the KEM's own key derivations: "KEM" || I2OSP(kem_id, 2).
const SUITE_ID: &[u8; 5] = b"KEM\x00\x10";
/// RFC 9180's version label, prefixed to every labeled input.
const VERSION_LABEL: &[u8] = b"HPKE-v1";
/// Length of a SEC1 uncompressed P-256 point (Npk, Nenc).
const POINT_LEN: usize = 65;
/// Length of a P-256 scalar (Nsk) and of the x-coordinate Diffie-Hellman output (Ndh).
const SCALAR_LEN: usize = 32;

/// DHKEM(P-256, HKDF-SHA256), KEM id 0x0010, computed with AWS-LC. Base mode only.
pub struct DhP256HkdfSha256Native;

/// An encapsulated key: the sender's ephemeral public key, a SEC1 uncompressed P-256 point,
/// with its AWS-LC form once parsed (`None` for one this side made).
#[derive(Clone)]
pub struct EncappedKey([u8; POINT_LEN], Option<ParsedPublicKey>);

impl Serializable for EncappedKey {
    type OutputSize = U65;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

/// A P-256 private key ready for Diffie-Hellman with AWS-LC: the scalar (as the `hpke` crate's
/// type, for serialization and comparison), its AWS-LC key and its public point, all made
/// once. Cheap to clone (the AWS-LC key is shared).
#[derive(Clone)]
pub struct NativeSecretKey {
    sk: PrivateKey,
    pk: PublicKey,
    pk_bytes: [u8; POINT_LEN],
    lc: Arc<agreement::PrivateKey>,
}

impl NativeSecretKey {
    /// The AWS-LC form of `sk`; `None` only if AWS-LC fails internally (the scalar is in
    /// range by the type's invariant).
    pub fn new(sk: &PrivateKey) -> Option<NativeSecretKey> {
        let lc = aws_lc_private_key(sk)?;
        let pk_bytes: [u8; POINT_LEN] = lc.compute_public_key().ok()?.as_ref().try_into().ok()?;
        let pk = PublicKey::from_bytes(&pk_bytes).ok()?;
        Some(NativeSecretKey {
            sk: sk.clone(),
            pk,
            pk_bytes,
            lc: Arc::new(lc),
        })
    }
}

impl subtle::ConstantTimeEq for NativeSecretKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.sk.ct_eq(&other.sk)
    }
}

impl PartialEq for NativeSecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.sk == other.sk
    }
}

impl Eq for NativeSecretKey {}

impl Serializable for NativeSecretKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        self.sk.write_exact(buf);
    }
}

impl Deserializable for NativeSecretKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let sk = PrivateKey::from_bytes(encoded)?;
        NativeSecretKey::new(&sk).ok_or(HpkeError::ValidationError)
    }
}

impl Deserializable for EncappedKey {
    /// Accepts exactly a 65-byte uncompressed point on P-256 (not the compressed, hybrid or
    /// X.509 forms AWS-LC would also read).
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes: [u8; POINT_LEN] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(POINT_LEN, encoded.len()))?;
        if bytes[0] != 0x04 {
            return Err(HpkeError::ValidationError);
        }
        let parsed = ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, &bytes[..]))
            .map_err(|_| HpkeError::ValidationError)?;
        Ok(EncappedKey(bytes, Some(parsed)))
    }
}

impl Kem for DhP256HkdfSha256Native {
    type PublicKey = PublicKey;
    type PrivateKey = NativeSecretKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;

    const KEM_ID: u16 = 0x0010;

    fn sk_to_pk(sk: &NativeSecretKey) -> PublicKey {
        sk.pk.clone()
    }

    fn derive_keypair(ikm: &[u8]) -> (NativeSecretKey, PublicKey) {
        // Fails only if 256 candidates in a row are not scalars, each with probability < 2^-32,
        // or if AWS-LC fails internally.
        let sk = derive_secret_key(ikm).expect("DeriveKeyPair finds a P-256 scalar");
        let sk = NativeSecretKey::new(&sk).expect("AWS-LC reads a P-256 scalar");
        let pk = sk.pk.clone();
        (sk, pk)
    }

    fn encap_with_rng(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&NativeSecretKey, &PublicKey)>,
        csprng: &mut impl CryptoRng,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        // As the trait's gen_keypair_with_rng: 32 bytes from the generator, then DeriveKeyPair.
        let mut ikm = Zeroizing::new([0u8; SCALAR_LEN]);
        csprng.fill_bytes(&mut ikm[..]);
        let sk_eph = derive_secret_key(&ikm[..]).ok_or(HpkeError::EncapError)?;
        let sk_eph = aws_lc_private_key(&sk_eph).ok_or(HpkeError::EncapError)?;
        let pk_eph = sk_eph
            .compute_public_key()
            .map_err(|_| HpkeError::EncapError)?;
        let enc: [u8; POINT_LEN] = pk_eph
            .as_ref()
            .try_into()
            .map_err(|_| HpkeError::EncapError)?;
        let pk_recip = pk_recip.to_bytes();
        let shared = agreement::agree(
            &sk_eph,
            UnparsedPublicKey::new(&ECDH_P256, &pk_recip[..]),
            HpkeError::EncapError,
            |dh| Ok(extract_and_expand(dh, &enc, &pk_recip)),
        )?;
        Ok((shared, EncappedKey(enc, None)))
    }

    fn decap(
        sk_recip: &NativeSecretKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let dh = |dh: &[u8]| Ok(extract_and_expand(dh, &encapped_key.0, &sk_recip.pk_bytes));
        match &encapped_key.1 {
            Some(parsed) => {
                agreement::agree(&sk_recip.lc, parsed.clone(), HpkeError::DecapError, dh)
            }
            None => agreement::agree(
                &sk_recip.lc,
                UnparsedPublicKey::new(&ECDH_P256, &encapped_key.0[..]),
                HpkeError::DecapError,
                dh,
            ),
        }
    }
}

/// The scalar of `sk` as an AWS-LC ECDH key (which also computes its public point); `None`
/// only if AWS-LC fails internally, as the scalar is in range by the type's invariant.
fn aws_lc_private_key(sk: &PrivateKey) -> Option<agreement::PrivateKey> {
    let mut scalar = Zeroizing::new([0u8; SCALAR_LEN]);
    sk.write_exact(&mut scalar[..]);
    agreement::PrivateKey::from_private_key(&ECDH_P256, &scalar[..]).ok()
}

/// ExtractAndExpand(dh, kem_context) with kem_context = enc || pkRm (RFC 9180 §4.1).
fn extract_and_expand(
    dh: &[u8],
    enc: &[u8],
    pk_recip: &[u8],
) -> SharedSecret<DhP256HkdfSha256Native> {
    let eae_prk = labeled_extract(b"eae_prk", dh);
    let mut shared = SharedSecret::<DhP256HkdfSha256Native>::default();
    labeled_expand(&eae_prk, b"shared_secret", &[enc, pk_recip], &mut shared.0);
    shared
}

/// DeriveKeyPair's secret key (RFC 9180 §7.1.3, bitmask 0xFF for P-256); `None` if no
/// candidate among 256 is a scalar in [1, n).
fn derive_secret_key(ikm: &[u8]) -> Option<PrivateKey> {
    let dkp_prk = labeled_extract(b"dkp_prk", ikm);
    let mut candidate = Zeroizing::new([0u8; SCALAR_LEN]);
    for counter in 0..=u8::MAX {
        labeled_expand(&dkp_prk, b"candidate", &[&[counter]], &mut candidate[..]);
        // `from_bytes` refuses zero and values not below the group order n.
        if let Ok(sk) = PrivateKey::from_bytes(&candidate[..]) {
            return Some(sk);
        }
    }
    None
}

/// LabeledExtract("", label, ikm) = HKDF-Extract(salt = "", "HPKE-v1" || suite_id || label || ikm),
/// returned ready to expand.
fn labeled_extract(label: &[u8], ikm: &[u8]) -> Hkdf<Sha256> {
    let mut extract = HkdfExtract::<Sha256>::new(Some(&[]));
    for part in [VERSION_LABEL, SUITE_ID, label, ikm] {
        extract.input_ikm(part);
    }
    let (mut prk, hkdf) = extract.finalize();
    prk.as_mut_slice().zeroize();
    hkdf
}

/// LabeledExpand(prk, label, info, L) = HKDF-Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id
/// || label || info, L) with L = `out.len()`; `info` is given in parts.
fn labeled_expand(prk: &Hkdf<Sha256>, label: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let len = u16::try_from(out.len())
        .expect("a KEM output is 32 bytes")
        .to_be_bytes();
    let mut labeled_info: Vec<&[u8]> = vec![&len, VERSION_LABEL, SUITE_ID, label];
    labeled_info.extend_from_slice(info);
    prk.expand_multi_info(&labeled_info, out)
        .expect("HKDF-SHA256 expands to 32 bytes");
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn encapped_key_accepts_only_uncompressed_points_on_the_curve() {
        let (_, pk) = DhP256HkdfSha256Native::derive_keypair(&[9; 32]);
        let point = pk.to_bytes();
        assert!(EncappedKey::from_bytes(&point).is_ok());
        assert_eq!(EncappedKey::from_bytes(&point).unwrap().to_bytes(), point);
        // The compressed form of the same point: AWS-LC would read it, the format does not.
        let mut compressed = vec![0x02 | (point[64] & 1)];
        compressed.extend_from_slice(&point[1..33]);
        assert!(EncappedKey::from_bytes(&compressed).is_err());
        // The hybrid form (0x06/0x07 with both coordinates), 65 bytes like the real one.
        let mut hybrid = point.to_vec();
        hybrid[0] = 0x06 | (point[64] & 1);
        assert!(EncappedKey::from_bytes(&hybrid).is_err());
        let mut off_curve = point.to_vec();
        off_curve[64] ^= 1;
        assert!(EncappedKey::from_bytes(&off_curve).is_err());
        assert!(EncappedKey::from_bytes(&[0]).is_err());
    }

    #[test]
    fn auth_mode_is_refused() {
        let (sk, pk) = DhP256HkdfSha256Native::derive_keypair(&[1; 32]);
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([2; 32]);
        assert!(DhP256HkdfSha256Native::encap_with_rng(&pk, Some((&sk, &pk)), &mut rng).is_err());
        let (_, enc) = DhP256HkdfSha256Native::encap_with_rng(&pk, None, &mut rng).unwrap();
        assert!(DhP256HkdfSha256Native::decap(&sk, Some(&pk), &enc).is_err());
        assert!(DhP256HkdfSha256Native::decap(&sk, None, &enc).is_ok());
    }
}
