//! Key types: the tenant's license key (HPKE, DHKEM(P-256)) and signing key (ECDSA P-256),
//! their key ids, and their text encodings.
//!
//! Public keys travel as SEC1 uncompressed points (65 bytes), base64 in text. Private keys are
//! stored as PKCS#8 PEM, the form `openssl pkey` reads. A key id is the first 8 bytes of
//! SHA-256 over a domain label and the public key, so ids of the two kinds never collide.
//! This module does no file I/O: callers read and write the text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hpke::{Deserializable, Kem as _, Serializable};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::KeyError;

pub(crate) type Kem = hpke::kem::DhP256HkdfSha256;

/// Identifies a public key: 8 bytes, shown as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    fn of(label: &[u8], public: &[u8]) -> KeyId {
        let mut h = Sha256::new();
        h.update(label);
        h.update(public);
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Parses 16 hex digits.
    pub fn from_hex(s: &str) -> Result<KeyId, KeyError> {
        let bytes = hex::decode(s).map_err(|_| KeyError::Invalid("key id"))?;
        let id: [u8; 8] = bytes.try_into().map_err(|_| KeyError::Invalid("key id"))?;
        Ok(KeyId(id))
    }
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Serializes as the 16 hex digits.
impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

fn b64_decode(what: &'static str, s: &str) -> Result<Vec<u8>, KeyError> {
    B64.decode(s.trim()).map_err(|_| KeyError::Invalid(what))
}

/// The public half of a tenant's license key: licenses are sealed to it.
#[derive(Clone, PartialEq, Eq)]
pub struct LicensePublicKey(pub(crate) <Kem as hpke::Kem>::PublicKey);

/// The private half of a tenant's license key, held by the key service. Keeps its public
/// half too, so key ids need no scalar multiplication, and with the `native-p256` feature its
/// AWS-LC form, so opening a license needs no fixed-base one.
#[derive(Clone)]
pub struct LicenseSecretKey {
    pub(crate) sk: <Kem as hpke::Kem>::PrivateKey,
    pk: LicensePublicKey,
    /// `None` only if AWS-LC failed to read the scalar; opening then makes it each time.
    #[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
    pub(crate) native: Option<crate::hpke_native::NativeSecretKey>,
}

impl LicenseSecretKey {
    fn with_public(sk: <Kem as hpke::Kem>::PrivateKey, pk: LicensePublicKey) -> LicenseSecretKey {
        LicenseSecretKey {
            #[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
            native: crate::hpke_native::NativeSecretKey::new(&sk),
            sk,
            pk,
        }
    }
    /// Makes a new key from the given randomness.
    pub fn generate(rng: &mut impl CryptoRng) -> LicenseSecretKey {
        let (sk, pk) = Kem::gen_keypair_with_rng(rng);
        LicenseSecretKey::with_public(sk, LicensePublicKey(pk))
    }
    /// Derives a key deterministically from 32+ bytes of secret input (RFC 9180 DeriveKeyPair).
    pub fn derive(ikm: &[u8]) -> LicenseSecretKey {
        let (sk, pk) = Kem::derive_keypair(ikm);
        LicenseSecretKey::with_public(sk, LicensePublicKey(pk))
    }
    /// The matching public key.
    pub fn public_key(&self) -> LicensePublicKey {
        self.pk.clone()
    }
    /// The 32-byte scalar.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.sk.to_bytes().to_vec())
    }
    /// Reads a 32-byte scalar.
    pub fn from_bytes(b: &[u8]) -> Result<LicenseSecretKey, KeyError> {
        let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(b)
            .map_err(|_| KeyError::Invalid("license private key"))?;
        let pk = LicensePublicKey(Kem::sk_to_pk(&sk));
        Ok(LicenseSecretKey::with_public(sk, pk))
    }
    /// PKCS#8 PEM ("PRIVATE KEY"), as `openssl pkey` writes for a P-256 key.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let sk = p256::SecretKey::from_slice(&self.to_bytes()).expect("a valid scalar");
        let pem = sk
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PEM encoding of a P-256 key");
        Zeroizing::new(pem.to_string())
    }
    /// Reads PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<LicenseSecretKey, KeyError> {
        let sk = p256::SecretKey::from_pkcs8_pem(pem)
            .map_err(|_| KeyError::Invalid("license private key (PKCS#8 PEM)"))?;
        Self::from_bytes(&sk.to_bytes())
    }
}

impl LicensePublicKey {
    /// The key id under which envelopes name this key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(b"sealpost license key\0", &self.to_bytes())
    }
    /// SEC1 uncompressed point, 65 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_bytes().to_vec()
    }
    /// Reads a SEC1 uncompressed point; rejects points not on the curve.
    pub fn from_bytes(b: &[u8]) -> Result<LicensePublicKey, KeyError> {
        <Kem as hpke::Kem>::PublicKey::from_bytes(b)
            .map(LicensePublicKey)
            .map_err(|_| KeyError::Invalid("license public key"))
    }
    /// Base64 of the SEC1 point.
    pub fn to_base64(&self) -> String {
        B64.encode(self.to_bytes())
    }
    /// Reads base64 of the SEC1 point.
    pub fn from_base64(s: &str) -> Result<LicensePublicKey, KeyError> {
        Self::from_bytes(&b64_decode("license public key", s)?)
    }
}

impl std::fmt::Debug for LicensePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LicensePublicKey({})", self.key_id())
    }
}

impl std::fmt::Debug for LicenseSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LicenseSecretKey({}, ..)", self.public_key().key_id())
    }
}

/// The sending organization's signing key.
#[derive(Clone)]
pub struct SigningKey(pub(crate) p256::ecdsa::SigningKey);

/// The public key that verifies an organization's envelopes.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey(pub(crate) p256::ecdsa::VerifyingKey);

impl SigningKey {
    /// Makes a new key from the given randomness.
    pub fn generate(rng: &mut impl CryptoRng) -> SigningKey {
        // Rejection sampling: a random 32-byte string is a valid scalar except with
        // probability about 2^-32.
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut bytes[..]);
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&bytes[..]) {
                return SigningKey(k);
            }
        }
    }
    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(*self.0.verifying_key())
    }
    /// Reads a 32-byte scalar.
    pub fn from_bytes(b: &[u8]) -> Result<SigningKey, KeyError> {
        p256::ecdsa::SigningKey::from_slice(b)
            .map(SigningKey)
            .map_err(|_| KeyError::Invalid("signing private key"))
    }
    /// PKCS#8 PEM.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let pem = self
            .0
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PEM encoding of a P-256 key");
        Zeroizing::new(pem.to_string())
    }
    /// Reads PKCS#8 PEM.
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(SigningKey)
            .map_err(|_| KeyError::Invalid("signing private key (PKCS#8 PEM)"))
    }
    /// ECDSA P-256 / SHA-256 over a message whose SHA-256 is `digest` (deterministic, RFC 6979);
    /// returns r || s, 64 bytes.
    pub(crate) fn sign_digest(&self, digest: &[u8; 32]) -> [u8; 64] {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let sig: p256::ecdsa::Signature = self
            .0
            .sign_prehash(digest)
            .expect("signing a 32-byte digest");
        sig.to_bytes().into()
    }
}

impl VerifyingKey {
    /// The key id under which envelopes name this key.
    pub fn key_id(&self) -> KeyId {
        KeyId::of(b"sealpost signing key\0", &self.to_bytes())
    }
    /// SEC1 uncompressed point, 65 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_sec1_point(false).as_bytes().to_vec()
    }
    /// Reads a SEC1 point (compressed or not); rejects points not on the curve.
    pub fn from_bytes(b: &[u8]) -> Result<VerifyingKey, KeyError> {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(b)
            .map(VerifyingKey)
            .map_err(|_| KeyError::Invalid("signing public key"))
    }
    /// Base64 of the SEC1 point.
    pub fn to_base64(&self) -> String {
        B64.encode(self.to_bytes())
    }
    /// Reads base64 of the SEC1 point.
    pub fn from_base64(s: &str) -> Result<VerifyingKey, KeyError> {
        Self::from_bytes(&b64_decode("signing public key", s)?)
    }
    /// Verifies an r || s signature over a message whose SHA-256 is `digest`.
    pub(crate) fn verify_digest(&self, digest: &[u8; 32], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let Ok(sig) = p256::ecdsa::Signature::from_slice(sig) else {
            return false;
        };
        self.0.verify_prehash(digest, &sig).is_ok()
    }
    /// Verifies an r || s ECDSA P-256 / SHA-256 signature over `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        self.verify_digest(&Sha256::digest(message).into(), sig)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.key_id())
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ..)", self.verifying_key().key_id())
    }
}

/// The key-encryption key that protects tenant private keys at rest in the key service.
///
/// Wrapped key = nonce (12) || AES-256-GCM(scalar (32)) with
/// AAD = "sealpost kek v1" || 0x00 || tenant id || 0x00 || key id (8).
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

const KEK_LABEL: &[u8] = b"sealpost kek v1\0";

impl KeyEncryptionKey {
    /// A new random key-encryption key.
    pub fn generate(rng: &mut impl CryptoRng) -> KeyEncryptionKey {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut k[..]);
        KeyEncryptionKey(k)
    }
    /// Reads 32 bytes given as base64 (surrounding white space ignored).
    pub fn from_base64(s: &str) -> Result<KeyEncryptionKey, KeyError> {
        let bytes = Zeroizing::new(b64_decode("key-encryption key", s)?);
        let k: [u8; 32] = bytes[..]
            .try_into()
            .map_err(|_| KeyError::Invalid("key-encryption key (32 bytes, base64)"))?;
        Ok(KeyEncryptionKey(Zeroizing::new(k)))
    }
    /// Base64 of the 32 bytes.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(&self.0[..]))
    }

    fn aad(tenant_id: &str, key_id: &KeyId) -> Vec<u8> {
        [KEK_LABEL, tenant_id.as_bytes(), &[0], &key_id.0].concat()
    }

    /// Encrypts a tenant's license private key for storage.
    pub fn wrap(
        &self,
        tenant_id: &str,
        key: &LicenseSecretKey,
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&self.0[..]).expect("32-byte key");
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let aad = Self::aad(tenant_id, &key.public_key().key_id());
        let ct = cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: &key.to_bytes(),
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of 32 bytes");
        [&nonce[..], &ct].concat()
    }

    /// Decrypts a stored license private key and checks it is the key `key_id` names.
    pub fn unwrap(
        &self,
        tenant_id: &str,
        key_id: &KeyId,
        wrapped: &[u8],
    ) -> Result<LicenseSecretKey, KeyError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let bad = KeyError::Invalid("wrapped key (wrong key-encryption key, or damaged)");
        if wrapped.len() < 12 {
            return Err(bad);
        }
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&self.0[..]).expect("32-byte key");
        let (nonce, ct) = wrapped.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &nonce.into(),
                    Payload {
                        msg: ct,
                        aad: &Self::aad(tenant_id, key_id),
                    },
                )
                .map_err(|_| bad.clone())?,
        );
        let key = LicenseSecretKey::from_bytes(&plain)?;
        if key.public_key().key_id() != *key_id {
            return Err(bad);
        }
        Ok(key)
    }
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn kek_wraps_and_binds_tenant_and_key() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let kek = KeyEncryptionKey::generate(&mut rng);
        let other = KeyEncryptionKey::generate(&mut rng);
        let sk = LicenseSecretKey::generate(&mut rng);
        let id = sk.public_key().key_id();
        let w = kek.wrap("t1", &sk, &mut rng);
        assert_eq!(
            kek.unwrap("t1", &id, &w).unwrap().public_key(),
            sk.public_key()
        );
        assert!(kek.unwrap("t2", &id, &w).is_err());
        assert!(other.unwrap("t1", &id, &w).is_err());
        assert!(kek.unwrap("t1", &KeyId([0; 8]), &w).is_err());
        assert!(kek.unwrap("t1", &id, &w[..20]).is_err());
        let again = KeyEncryptionKey::from_base64(&kek.to_base64()).unwrap();
        assert!(again.unwrap("t1", &id, &w).is_ok());
    }

    #[test]
    fn pem_round_trips() {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let sk = LicenseSecretKey::generate(&mut rng);
        assert_eq!(
            LicenseSecretKey::from_pem(&sk.to_pem())
                .unwrap()
                .public_key(),
            sk.public_key()
        );
        let sig = SigningKey::generate(&mut rng);
        assert_eq!(
            SigningKey::from_pem(&sig.to_pem()).unwrap().verifying_key(),
            sig.verifying_key()
        );
        assert!(
            LicenseSecretKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            )
            .is_err()
        );
    }
}
