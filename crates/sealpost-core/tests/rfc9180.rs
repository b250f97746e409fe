//! RFC 9180 (HPKE) test vectors for Sealpost's one suite, run through `keys` and `hpke_seal`:
//! base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
//!
//! The vectors are the matching entries of the official `test-vectors.json` of
//! cfrg/draft-irtf-cfrg-hpke, kept in `tests/vectors/hpke/` at the top of the repository
//! (its `source` field names the exact file).

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};
use sealpost_core::hpke_seal::{self, ENC_LEN};
use sealpost_core::{LicensePublicKey, LicenseSecretKey};
use serde::Deserialize;

const VECTORS: &str =
    include_str!("../../../tests/vectors/hpke/rfc9180-p256-sha256-aes256gcm.json");

#[derive(Deserialize)]
struct File {
    source: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    #[serde(rename = "ikmR")]
    ikm_r: String,
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

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        self.copy(&mut out);
        out
    }

    fn copy(&mut self, dst: &mut [u8]) {
        let end = self.pos + dst.len();
        assert!(
            end <= self.bytes.len(),
            "the fixed RNG was asked for more than the {} bytes it holds",
            self.bytes.len()
        );
        dst.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
    }

    fn exhausted(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl TryRng for FixedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes(self.take()))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.take()))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.copy(dst);
        Ok(())
    }
}

impl TryCryptoRng for FixedRng {}

#[test]
fn rfc9180_base_p256_sha256_aes256gcm() {
    let file: File = serde_json::from_str(VECTORS).expect("vector file parses");
    assert!(
        file.source.contains("cfrg/draft-irtf-cfrg-hpke"),
        "the vector file names its source"
    );
    let mut ran = 0;
    for v in &file.vectors {
        assert_eq!(
            (v.mode, v.kem_id, v.kdf_id, v.aead_id),
            (0, 0x0010, 0x0001, 0x0002),
            "only our suite, base mode"
        );
        let info = unhex(&v.info);

        // Recipient key: DeriveKeyPair(ikmR) gives skRm and pkRm.
        let sk = LicenseSecretKey::derive(&unhex(&v.ikm_r));
        assert_eq!(&sk.to_bytes()[..], &unhex(&v.sk_rm)[..], "skRm");
        let pk = sk.public_key();
        assert_eq!(pk.to_bytes(), unhex(&v.pk_rm), "pkRm");
        let parsed_pk = LicensePublicKey::from_bytes(&unhex(&v.pk_rm)).expect("pkRm parses");
        assert_eq!(parsed_pk, pk);
        let parsed_sk = LicenseSecretKey::from_bytes(&unhex(&v.sk_rm)).expect("skRm parses");
        assert_eq!(parsed_sk.public_key(), pk);

        // The first encryption (sequence number 0) is what a single-shot seal produces.
        let e = v.encryptions.first().expect("at least one encryption");
        let (aad, pt) = (unhex(&e.aad), unhex(&e.pt));
        let mut expected = unhex(&v.enc);
        assert_eq!(expected.len(), ENC_LEN);
        expected.extend_from_slice(&unhex(&e.ct));

        let mut rng = FixedRng::new(unhex(&v.ikm_e));
        let sealed = hpke_seal::seal(&parsed_pk, &info, &aad, &pt, &mut rng);
        assert!(rng.exhausted(), "seal must draw exactly ikmE from the RNG");
        assert_eq!(hex::encode(&sealed), hex::encode(&expected), "enc || ct");

        assert_eq!(
            hpke_seal::open(&sk, &info, &aad, &expected).expect("open"),
            pt
        );
        assert_eq!(
            hpke_seal::open(&parsed_sk, &info, &aad, &expected).expect("open"),
            pt
        );

        // And the usual negatives, so a vacuous `open` cannot pass.
        let mut bad = expected.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            hpke_seal::open(&sk, &info, &aad, &bad).is_err(),
            "modified tag"
        );
        let mut bad = expected.clone();
        bad[ENC_LEN - 1] ^= 1;
        assert!(
            hpke_seal::open(&sk, &info, &aad, &bad).is_err(),
            "modified enc"
        );
        assert!(
            hpke_seal::open(&sk, b"other info", &aad, &expected).is_err(),
            "wrong info"
        );
        assert!(
            hpke_seal::open(&sk, &info, b"other aad", &expected).is_err(),
            "wrong aad"
        );
        ran += 1;
    }
    assert!(ran > 0, "no RFC 9180 vector ran");
    eprintln!("RFC 9180 base-mode vectors run: {ran}");
}
