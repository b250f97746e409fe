//! The AWS-LC KEM (`hpke_native`, feature `native-p256`) against RFC 9180 and against the
//! pure-Rust KEM of the `hpke` crate:
//!
//! - the RFC 9180 base-mode vectors of DHKEM(P-256, HKDF-SHA256) (Appendix A.3–A.5, in
//!   `tests/vectors/hpke/rfc9180-dhkem-p256-base.json`): DeriveKeyPair, Encap, Decap, and the
//!   whole single-shot seal where Sealpost builds the AEAD; and Sealpost's own suite vector;
//! - a differential test: for many random keys and ephemeral keys, native encapsulation and
//!   pure-Rust encapsulation give the same `enc` and shared secret, each side's decapsulation
//!   opens the other's, and `hpke_seal` gives the bytes of a pure-Rust seal;
//! - invalid encapsulated keys (identity, off the curve, coordinates not reduced, other
//!   encodings, wrong lengths) are refused by both KEMs alike.

use std::convert::Infallible;

use hpke::aead::{AesGcm128, AesGcm256};
use hpke::kdf::{HkdfSha256, HkdfSha512};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_chacha::ChaCha20Rng;
use rand_core::{SeedableRng, TryCryptoRng, TryRng};
use sealpost_core::hpke_native::{DhP256HkdfSha256Native as Native, NativeSecretKey};
use sealpost_core::hpke_seal::{self, ENC_LEN};
use sealpost_core::{LicensePublicKey, LicenseSecretKey, OpenError};
use serde::Deserialize;

type Pure = hpke::kem::DhP256HkdfSha256;

const KEM_VECTORS: &str = include_str!("../../../tests/vectors/hpke/rfc9180-dhkem-p256-base.json");
const SUITE_VECTORS: &str =
    include_str!("../../../tests/vectors/hpke/rfc9180-p256-sha256-aes256gcm.json");

#[derive(Deserialize)]
struct KemFile {
    source: String,
    vectors: Vec<KemVector>,
}

#[derive(Deserialize)]
struct KemVector {
    suite: String,
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "pkEm")]
    pk_em: String,
    #[serde(rename = "skEm")]
    sk_em: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    enc: String,
    shared_secret: String,
    encryption0: Encryption,
}

#[derive(Deserialize)]
struct SuiteFile {
    vectors: Vec<SuiteVector>,
}

#[derive(Deserialize)]
struct SuiteVector {
    info: String,
    #[serde(rename = "ikmE")]
    ikm_e: String,
    #[serde(rename = "skRm")]
    sk_rm: String,
    #[serde(rename = "pkRm")]
    pk_rm: String,
    enc: String,
    encryptions: Vec<Encryption>,
}

#[derive(Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    pt: String,
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

/// A "random" source that hands out exactly the bytes it was given and panics past them.
struct FixedRng {
    bytes: Vec<u8>,
    pos: usize,
}

impl FixedRng {
    fn new(bytes: Vec<u8>) -> Self {
        FixedRng { bytes, pos: 0 }
    }

    fn exhausted(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl TryRng for FixedRng {
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
        let end = self.pos + dst.len();
        assert!(end <= self.bytes.len(), "the fixed RNG ran out of bytes");
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
        Ok(())
    }
}

impl TryCryptoRng for FixedRng {}

/// A whole single-shot base-mode seal and open with the native KEM, against `enc || ct`.
fn check_single_shot<A: hpke::aead::Aead, K: hpke::kdf::Kdf>(v: &KemVector) {
    let pk = <Native as Kem>::PublicKey::from_bytes(&unhex(&v.pk_rm)).unwrap();
    let sk = <Native as Kem>::PrivateKey::from_bytes(&unhex(&v.sk_rm)).unwrap();
    let (info, e) = (unhex(&v.info), &v.encryption0);
    let (aad, pt) = (unhex(&e.aad), unhex(&e.pt));
    let mut rng = FixedRng::new(unhex(&v.ikm_e));
    let (enc, ct) = hpke::single_shot_seal_with_rng::<A, K, Native>(
        &OpModeS::Base,
        &pk,
        &info,
        &pt,
        &aad,
        &mut rng,
    )
    .unwrap();
    assert!(rng.exhausted(), "{}: seal draws exactly ikmE", v.suite);
    assert_eq!(hex::encode(enc.to_bytes()), v.enc, "{}: enc", v.suite);
    assert_eq!(hex::encode(&ct), e.ct, "{}: ct", v.suite);
    let enc = <Native as Kem>::EncappedKey::from_bytes(&unhex(&v.enc)).unwrap();
    let opened =
        hpke::single_shot_open::<A, K, Native>(&OpModeR::Base, &sk, &enc, &info, &ct, &aad)
            .unwrap();
    assert_eq!(opened, pt, "{}: open", v.suite);
}

#[test]
fn rfc9180_dhkem_p256_base_vectors() {
    let file: KemFile = serde_json::from_str(KEM_VECTORS).expect("vector file parses");
    assert!(
        file.source.starts_with("RFC 9180"),
        "the file names its source"
    );
    let mut single_shots = 0;
    for v in &file.vectors {
        assert_eq!(
            (v.mode, v.kem_id),
            (0, 0x0010),
            "{}: base mode, P-256",
            v.suite
        );
        let ss = unhex(&v.shared_secret);

        // DeriveKeyPair, both key pairs of the vector.
        for (ikm, sk_m, pk_m) in [
            (&v.ikm_r, &v.sk_rm, &v.pk_rm),
            (&v.ikm_e, &v.sk_em, &v.pk_em),
        ] {
            let (sk, pk) = Native::derive_keypair(&unhex(ikm));
            assert_eq!(hex::encode(sk.to_bytes()), *sk_m, "{}: sk", v.suite);
            assert_eq!(hex::encode(pk.to_bytes()), *pk_m, "{}: pk", v.suite);
        }

        // Encap draws ikmE and gives enc = pkEm and the shared secret; Decap gives it back.
        let pk_r = <Native as Kem>::PublicKey::from_bytes(&unhex(&v.pk_rm)).unwrap();
        let sk_r = <Native as Kem>::PrivateKey::from_bytes(&unhex(&v.sk_rm)).unwrap();
        let mut rng = FixedRng::new(unhex(&v.ikm_e));
        let (shared, enc) = Native::encap_with_rng(&pk_r, None, &mut rng).unwrap();
        assert!(rng.exhausted(), "{}: encap draws exactly ikmE", v.suite);
        assert_eq!(hex::encode(enc.to_bytes()), v.enc, "{}: enc", v.suite);
        assert_eq!(shared.0.as_slice(), ss, "{}: encap shared_secret", v.suite);
        let enc = <Native as Kem>::EncappedKey::from_bytes(&unhex(&v.enc)).unwrap();
        let decapped = Native::decap(&sk_r, None, &enc).unwrap();
        assert_eq!(
            decapped.0.as_slice(),
            ss,
            "{}: decap shared_secret",
            v.suite
        );

        match (v.kdf_id, v.aead_id) {
            (0x0001, 0x0001) => check_single_shot::<AesGcm128, HkdfSha256>(v),
            (0x0003, 0x0001) => check_single_shot::<AesGcm128, HkdfSha512>(v),
            _ => continue,
        }
        single_shots += 1;
    }
    assert_eq!(file.vectors.len(), 3, "A.3, A.4 and A.5");
    assert_eq!(single_shots, 2, "A.3 and A.4 sealed whole");

    // Sealpost's own suite (AES-256-GCM): the native KEM under the hpke key schedule.
    let file: SuiteFile = serde_json::from_str(SUITE_VECTORS).expect("vector file parses");
    for v in &file.vectors {
        let e = &v.encryptions[0];
        let kv = KemVector {
            suite: "Sealpost's suite".into(),
            mode: 0,
            kem_id: 0x0010,
            kdf_id: 0x0001,
            aead_id: 0x0002,
            info: v.info.clone(),
            ikm_e: v.ikm_e.clone(),
            pk_em: v.enc.clone(),
            sk_em: String::new(),
            ikm_r: String::new(),
            pk_rm: v.pk_rm.clone(),
            sk_rm: v.sk_rm.clone(),
            enc: v.enc.clone(),
            shared_secret: String::new(),
            encryption0: Encryption {
                aad: e.aad.clone(),
                ct: e.ct.clone(),
                pt: e.pt.clone(),
            },
        };
        check_single_shot::<AesGcm256, HkdfSha256>(&kv);
    }
}

#[test]
fn native_and_pure_kems_agree_on_random_keys() {
    let mut keys = ChaCha20Rng::from_seed([0x5e; 32]);
    for round in 0..200u32 {
        let (sk, pk) = Pure::gen_keypair_with_rng(&mut keys);
        // One generator state, cloned: both KEMs draw the same ephemeral key from it.
        let eph = ChaCha20Rng::from_seed([round as u8; 32]);
        let (ss_native, enc_native) = Native::encap_with_rng(&pk, None, &mut eph.clone()).unwrap();
        let (ss_pure, enc_pure) = Pure::encap_with_rng(&pk, None, &mut eph.clone()).unwrap();
        assert_eq!(
            enc_native.to_bytes(),
            enc_pure.to_bytes(),
            "round {round}: enc"
        );
        assert_eq!(ss_native.0, ss_pure.0, "round {round}: shared secret");

        // Each side opens the other's encapsulation.
        let enc_for_pure = <Pure as Kem>::EncappedKey::from_bytes(&enc_native.to_bytes()).unwrap();
        let enc_for_native =
            <Native as Kem>::EncappedKey::from_bytes(&enc_pure.to_bytes()).unwrap();
        assert_eq!(
            Pure::decap(&sk, None, &enc_for_pure).unwrap().0,
            ss_native.0
        );
        assert_eq!(
            Native::decap(&native_key(&sk), None, &enc_for_native)
                .unwrap()
                .0,
            ss_pure.0
        );

        // Another recipient key must not give the same secret.
        let (other_sk, _) = Pure::gen_keypair_with_rng(&mut keys);
        assert_ne!(
            Native::decap(&native_key(&other_sk), None, &enc_for_native)
                .unwrap()
                .0,
            ss_pure.0
        );

        // The public key derivation agrees too (the native KEM's DeriveKeyPair).
        let ikm = [round as u8 ^ 0xa5; 32];
        let (nsk, npk) = Native::derive_keypair(&ikm);
        let (psk, ppk) = Pure::derive_keypair(&ikm);
        assert_eq!(nsk.to_bytes(), psk.to_bytes());
        assert_eq!(npk, ppk);
    }
}

#[test]
fn hpke_seal_gives_the_bytes_of_a_pure_rust_seal() {
    let mut keys = ChaCha20Rng::from_seed([0x11; 32]);
    for round in 0..50u8 {
        let sk = LicenseSecretKey::generate(&mut keys);
        let pk = sk.public_key();
        let pure_pk = <Pure as Kem>::PublicKey::from_bytes(&pk.to_bytes()).unwrap();
        let pure_sk = <Pure as Kem>::PrivateKey::from_bytes(&sk.to_bytes()).unwrap();
        let (info, aad, pt) = (b"info".as_slice(), [round; 32], vec![round; 100]);
        let eph = ChaCha20Rng::from_seed([round; 32]);

        let sealed = hpke_seal::seal(&pk, info, &aad, &pt, &mut eph.clone());
        let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, Pure>(
            &OpModeS::Base,
            &pure_pk,
            info,
            &pt,
            &aad,
            &mut eph.clone(),
        )
        .unwrap();
        assert_eq!(sealed, [&enc.to_bytes()[..], &ct].concat(), "round {round}");

        // What hpke_seal sealed, the pure-Rust KEM opens, and the reverse.
        let (enc_bytes, ct) = sealed.split_at(ENC_LEN);
        let enc = <Pure as Kem>::EncappedKey::from_bytes(enc_bytes).unwrap();
        let opened = hpke::single_shot_open::<AesGcm256, HkdfSha256, Pure>(
            &OpModeR::Base,
            &pure_sk,
            &enc,
            info,
            ct,
            &aad,
        )
        .unwrap();
        assert_eq!(opened, pt);
        assert_eq!(hpke_seal::open(&sk, info, &aad, &sealed).unwrap(), pt);
    }
}

/// The field prime p of P-256, big-endian.
const P: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";

#[test]
fn invalid_encapsulated_keys_are_refused_alike() {
    let (sk, pk) = Pure::derive_keypair(&[3; 32]);
    let point = pk.to_bytes().to_vec();
    let x = &point[1..33];
    let y = &point[33..];
    let p = unhex(P);

    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("identity (SEC1 0x00)".into(), vec![0x00]),
        ("65 zero bytes".into(), vec![0; 65]),
        ("0x04 and zeros".into(), [&[4u8][..], &[0; 64]].concat()),
        ("x = p".into(), [&[4u8][..], &p, y].concat()),
        ("y = p".into(), [&[4u8][..], x, &p].concat()),
        ("all ones".into(), [&[4u8][..], &[0xff; 64]].concat()),
        ("prefix 0x05".into(), [&[5u8][..], x, y].concat()),
        ("hybrid 0x06".into(), [&[6u8][..], x, y].concat()),
        ("hybrid 0x07".into(), [&[7u8][..], x, y].concat()),
        ("compressed".into(), [&[2 | (y[31] & 1)][..], x].concat()),
        ("x only".into(), x.to_vec()),
        ("64 bytes".into(), point[1..].to_vec()),
        ("66 bytes".into(), [&point[..], &[0]].concat()),
        ("truncated".into(), point[..64].to_vec()),
    ];
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    for i in 0..64 {
        let mut off = point.clone();
        off[1 + (i % 64)] ^= 1 << (i % 8);
        cases.push((format!("bit flip {i}"), off));
        let mut random = [0u8; 65];
        rand_core::Rng::fill_bytes(&mut rng, &mut random);
        random[0] = 4;
        cases.push((format!("random coordinates {i}"), random.to_vec()));
    }

    let license_key = LicenseSecretKey::from_bytes(&sk.to_bytes()).unwrap();
    for (name, bytes) in &cases {
        let pure = <Pure as Kem>::EncappedKey::from_bytes(bytes)
            .ok()
            .map(|enc| Pure::decap(&sk, None, &enc));
        let native = <Native as Kem>::EncappedKey::from_bytes(bytes)
            .ok()
            .map(|enc| Native::decap(&native_key(&sk), None, &enc));
        assert!(pure.is_none(), "{name}: the pure-Rust KEM refuses it");
        assert!(native.is_none(), "{name}: the native KEM refuses it");

        // Through hpke_seal (whichever KEM it was built with): cannot open.
        if bytes.len() == ENC_LEN {
            let sealed = [&bytes[..], &[0u8; 48]].concat();
            assert_eq!(
                hpke_seal::open(&license_key, b"", b"", &sealed).unwrap_err(),
                OpenError::CannotOpen,
                "{name}"
            );
        }
    }

    // And the valid point itself is accepted by both, with the same secret.
    let pure = Pure::decap(
        &sk,
        None,
        &<Pure as Kem>::EncappedKey::from_bytes(&point).unwrap(),
    );
    let native = Native::decap(
        &native_key(&sk),
        None,
        &<Native as Kem>::EncappedKey::from_bytes(&point).unwrap(),
    );
    assert_eq!(pure.unwrap().0, native.unwrap().0);
    assert!(LicensePublicKey::from_bytes(&point).is_ok());
}

/// The native KEM's form of a pure-Rust private key.
fn native_key(sk: &<Pure as Kem>::PrivateKey) -> NativeSecretKey {
    NativeSecretKey::new(sk).expect("AWS-LC reads a valid scalar")
}
