//! Wycheproof test vectors run through Sealpost's own wrappers (not through the primitives
//! underneath them): the chunked-encryption layer, AES-256-GCM through the chunk layer's raw
//! mode, ECDSA verification through `VerifyingKey`, and point validation through
//! `LicensePublicKey`.
//!
//! Every test set asserts that it actually ran tests, so a filter that silently matches
//! nothing (say, after a crate upgrade renames a field) fails instead of passing.

use sealpost_core::chunked::{
    self, COMMITMENT_SIZE, ChunkError, ChunkKeys, Decryptor, ENCRYPTED_CHUNK_SIZE, Encryptor,
    PREFIX_SIZE, RandomAccess, SALT_SIZE, TAG_SIZE,
};
use sealpost_core::{LicensePublicKey, LicenseSecretKey, VerifyingKey};
use sha2::{Digest, Sha512};
use wycheproof::TestResult;

// ---------------------------------------------------------------------------------------------
// Chunked encryption (C2SP, Cobblestone-256)
// ---------------------------------------------------------------------------------------------

use wycheproof::chunked_encryption::{
    TestFlag as ChunkFlag, TestName as ChunkName, TestSet as ChunkSet,
};

/// Piece sizes for the streaming path: odd, mixed small and large, none a multiple of the
/// chunk or prefix size, so pieces straddle every kind of boundary.
const PIECES: &[usize] = &[1, 7, 55, 2, 16_399, 13, 16_401, 333, 40_000, 17];

/// Feeds `ct` to a `Decryptor` in odd-sized pieces. Returns the plaintext it released and its
/// verdict; after an error checks that the error is sticky.
fn stream_decrypt(key: &[u8; 32], ctx: &[u8], ct: &[u8]) -> (Vec<u8>, Result<(), ChunkError>) {
    let mut dec = Decryptor::new(key, ctx);
    let mut out = Vec::new();
    let mut rest = ct;
    let mut sizes = PIECES.iter().cycle();
    let mut result = Ok(());
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if let Err(e) = dec.update(piece, &mut out) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = dec.finish(&mut out);
    }
    if let Err(e) = result {
        let released = out.len();
        assert_eq!(
            dec.update(b"more", &mut out),
            Err(e),
            "update after an error repeats it"
        );
        assert_eq!(
            dec.update(&[], &mut out),
            Err(e),
            "update after an error repeats it"
        );
        assert_eq!(
            dec.finish(&mut out),
            Err(e),
            "finish after an error repeats it"
        );
        assert_eq!(out.len(), released, "nothing is released after an error");
    }
    (out, result)
}

/// What opening each chunk of a message gave.
type ChunkResults = Vec<Result<Vec<u8>, ChunkError>>;

/// Opens every chunk through `RandomAccess`. `Err` if the ciphertext is refused up front;
/// otherwise the per-chunk results and the implied plaintext length.
fn random_access_decrypt(
    key: &[u8; 32],
    ctx: &[u8],
    ct: &[u8],
) -> Result<(ChunkResults, u64), ChunkError> {
    let ra = RandomAccess::new(key, ctx, ct)?;
    let chunks = (0..ra.chunk_count()).map(|i| ra.decrypt_chunk(i)).collect();
    assert_eq!(
        ra.decrypt_chunk(ra.chunk_count()),
        Err(ChunkError::OutOfRange)
    );
    Ok((chunks, ra.plaintext_len()))
}

/// C2SP "raw mode": the chunk body (after salt and commitment) opened with the AEAD key and
/// base nonce given by the vector, via `ChunkKeys::from_raw` and `open_chunk`. The framing
/// (full chunks, then one shorter final chunk) is re-implemented here on purpose: it checks
/// our raw-mode entry points independently of the streaming decryptor.
fn raw_mode_decrypt(
    aead_key: &[u8; 32],
    base_nonce: [u8; 12],
    body: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    let keys = ChunkKeys::from_raw(aead_key, base_nonce);
    let mut out = Vec::new();
    let mut rest = body;
    let mut index = 0u64;
    loop {
        let last = rest.len() < ENCRYPTED_CHUNK_SIZE;
        let chunk_len = if last {
            rest.len()
        } else {
            ENCRYPTED_CHUNK_SIZE
        };
        if chunk_len < TAG_SIZE {
            return Err(ChunkError::Truncated);
        }
        let (chunk, tail) = rest.split_at(chunk_len);
        let mut buf = chunk[..chunk_len - TAG_SIZE].to_vec();
        keys.open_chunk(index, &mut buf, &chunk[chunk_len - TAG_SIZE..])?;
        out.extend_from_slice(&buf);
        if last {
            return Ok(out);
        }
        rest = tail;
        index += 1;
    }
}

fn check_prefix_hash(
    what: &str,
    tc: usize,
    plaintext: &[u8],
    len: Option<usize>,
    sha: Option<&[u8]>,
) {
    let len = len.unwrap_or_else(|| panic!("tc {tc}: {what} without msgLength"));
    let sha = sha.unwrap_or_else(|| panic!("tc {tc}: {what} without msgSha512"));
    assert!(
        !sha.is_empty() && sha.len() <= 64,
        "tc {tc}: msgSha512 has {} bytes",
        sha.len()
    );
    assert_eq!(plaintext.len(), len, "tc {tc}: {what} length");
    assert!(
        Sha512::digest(plaintext).starts_with(sha),
        "tc {tc}: {what} SHA-512"
    );
}

#[test]
fn wycheproof_chunked_cobblestone256() {
    let set = ChunkSet::load(ChunkName::Cobblestone256).expect("Cobblestone-256 vectors load");
    let (mut ran, mut valid, mut invalid, mut raw_mode) = (0, 0, 0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let tc = t.tc_id;
            let ct = miniz_oxide::inflate::decompress_to_vec_zlib(&t.ct)
                .expect("zlib-compressed ct inflates");
            let ctx: &[u8] = &t.ctx;
            ran += 1;

            // Our API takes exactly 32-byte keys; a key of another size cannot even be passed,
            // which is the rejection the InvalidKeySize vectors ask for.
            let Ok(key) = <[u8; 32]>::try_from(&t.key[..]) else {
                assert_eq!(
                    t.result,
                    TestResult::Invalid,
                    "tc {tc}: a non-32-byte key in a non-invalid test"
                );
                assert!(t.flags.contains(&ChunkFlag::InvalidKeySize), "tc {tc}");
                invalid += 1;
                continue;
            };

            let one_shot = chunked::decrypt(&key, ctx, &ct);
            let (streamed, stream_result) = stream_decrypt(&key, ctx, &ct);
            let random = random_access_decrypt(&key, ctx, &ct);

            // Key schedule: the derived base nonce and AEAD key are the vector's, and raw mode
            // on the chunk body gives the same verdict as the full construction.
            if let (Some(aead_key), Some(base_nonce)) = (&t.aead_key, &t.base_nonce) {
                let aead_key: [u8; 32] = aead_key[..].try_into().expect("aeadKey is 32 bytes");
                let base_nonce: [u8; 12] =
                    base_nonce[..].try_into().expect("baseNonce is 12 bytes");
                let salt: [u8; SALT_SIZE] = ct[..SALT_SIZE].try_into().unwrap();
                let derived = ChunkKeys::derive(&key, &salt, ctx);
                let raw = ChunkKeys::from_raw(&aead_key, base_nonce);
                assert_eq!(derived.nonce(0), base_nonce, "tc {tc}: base nonce");
                assert_eq!(
                    &derived.commitment()[..],
                    &ct[SALT_SIZE..PREFIX_SIZE],
                    "tc {tc}: commitment"
                );
                assert_eq!(
                    raw.commitment(),
                    &[0u8; COMMITMENT_SIZE],
                    "tc {tc}: raw mode has no commitment"
                );
                let probe = *b"same key, same nonce => same tag";
                let (mut a, mut b) = (probe, probe);
                assert_eq!(
                    derived.seal_chunk(3, &mut a),
                    raw.seal_chunk(3, &mut b),
                    "tc {tc}: AEAD key"
                );
                assert_eq!(a, b, "tc {tc}: AEAD key");
                let raw_result = raw_mode_decrypt(&aead_key, base_nonce, &ct[PREFIX_SIZE..]);
                match t.result {
                    TestResult::Valid => {
                        assert_eq!(
                            raw_result.as_ref().ok(),
                            one_shot.as_ref().ok(),
                            "tc {tc}: raw mode"
                        )
                    }
                    _ => assert!(
                        raw_result.is_err(),
                        "tc {tc}: raw mode accepted an invalid body"
                    ),
                }
                raw_mode += 1;
            }

            match t.result {
                TestResult::Valid => {
                    valid += 1;
                    let pt = one_shot
                        .unwrap_or_else(|e| panic!("tc {tc}: one-shot decrypt failed: {e}"));
                    check_prefix_hash(
                        "plaintext",
                        tc,
                        &pt,
                        t.msg_length,
                        t.msg_sha512.as_deref().map(|v| &v[..]),
                    );
                    stream_result
                        .unwrap_or_else(|e| panic!("tc {tc}: streaming decrypt failed: {e}"));
                    assert!(streamed == pt, "tc {tc}: streaming plaintext differs");
                    let (chunks, len) =
                        random.unwrap_or_else(|e| panic!("tc {tc}: random access refused: {e}"));
                    assert_eq!(
                        len,
                        pt.len() as u64,
                        "tc {tc}: random-access plaintext length"
                    );
                    let mut joined = Vec::with_capacity(pt.len());
                    for (i, c) in chunks.into_iter().enumerate() {
                        joined
                            .extend(c.unwrap_or_else(|e| panic!("tc {tc}: chunk {i} failed: {e}")));
                    }
                    assert!(joined == pt, "tc {tc}: random-access plaintext differs");

                    // Re-encryption with the same salt reproduces the ciphertext exactly.
                    assert_eq!(
                        Encryptor::ciphertext_len(pt.len() as u64),
                        ct.len() as u64,
                        "tc {tc}: ciphertext_len"
                    );
                    let salt: [u8; SALT_SIZE] = ct[..SALT_SIZE].try_into().unwrap();
                    let mut enc = Encryptor::with_salt(&key, salt, ctx);
                    let mut again = Vec::with_capacity(ct.len());
                    enc.update(&pt, &mut again).unwrap();
                    enc.finish(&mut again).unwrap();
                    assert!(again == ct, "tc {tc}: re-encryption differs");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        one_shot.is_err(),
                        "tc {tc} ({}): one-shot decrypt accepted",
                        t.comment
                    );
                    assert!(
                        stream_result.is_err(),
                        "tc {tc} ({}): streaming decrypt accepted",
                        t.comment
                    );
                    // A streaming decryptor may release the authenticated prefix, nothing more.
                    if t.flags.contains(&ChunkFlag::PartialPlaintext) {
                        if streamed.len() == t.msg_length.unwrap_or(0) {
                            check_prefix_hash(
                                "released prefix",
                                tc,
                                &streamed,
                                t.msg_length,
                                t.msg_sha512.as_deref().map(|v| &v[..]),
                            );
                        } else {
                            assert!(
                                streamed.len() < t.msg_length.unwrap_or(0),
                                "tc {tc}: released more than the valid prefix"
                            );
                        }
                    } else {
                        assert!(
                            streamed.is_empty(),
                            "tc {tc}: released plaintext from an invalid message"
                        );
                    }
                    if let Ok((chunks, _)) = &random {
                        assert!(
                            chunks.iter().any(Result::is_err),
                            "tc {tc} ({}): random access opened every chunk",
                            t.comment
                        );
                        // Only vectors flagged ValidFinalChunk may authenticate their last chunk.
                        if !t.flags.contains(&ChunkFlag::ValidFinalChunk) {
                            assert!(
                                chunks.last().unwrap().is_err(),
                                "tc {tc} ({}): random access authenticated the final chunk",
                                t.comment
                            );
                        }
                    }
                    // Header failures must be caught before any chunk is looked at.
                    if t.flags.contains(&ChunkFlag::HeaderFailure) {
                        assert!(
                            random.is_err(),
                            "tc {tc}: random access got past the header"
                        );
                        assert!(
                            matches!(
                                one_shot,
                                Err(ChunkError::Commitment | ChunkError::Truncated)
                            ),
                            "tc {tc}: expected a header error, got {one_shot:?}"
                        );
                    }
                }
                TestResult::Acceptable => {
                    panic!("tc {tc}: no acceptable chunked-encryption vectors expected")
                }
            }
        }
    }
    assert!(
        ran > 0 && valid > 0 && invalid > 0,
        "no chunked-encryption vectors ran"
    );
    assert_eq!(ran, set.number_of_tests);
    assert!(
        raw_mode > 0,
        "no chunked-encryption vector exercised raw mode"
    );
    eprintln!(
        "Cobblestone-256: {ran} tests ({valid} valid, {invalid} invalid, {raw_mode} also in raw mode)"
    );
}

// ---------------------------------------------------------------------------------------------
// AES-256-GCM through the chunk layer's raw mode
// ---------------------------------------------------------------------------------------------

#[test]
fn wycheproof_aes_gcm_raw_mode() {
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).expect("AES-GCM vectors load");
    let (mut ran, mut valid, mut invalid) = (0, 0, 0);
    for group in &set.test_groups {
        if (group.key_size, group.nonce_size, group.tag_size) != (256, 96, 128) {
            continue;
        }
        for t in group.tests.iter().filter(|t| t.aad.is_empty()) {
            let tc = t.tc_id;
            let key: [u8; 32] = t.key[..].try_into().expect("keySize 256");
            let iv: [u8; 12] = t.nonce[..].try_into().expect("ivSize 96");
            // Chunk 0 uses base nonce XOR 0 = the IV and empty associated data: plain AES-GCM.
            let keys = ChunkKeys::from_raw(&key, iv);
            assert_eq!(keys.nonce(0), iv);
            ran += 1;
            match t.result {
                TestResult::Valid => {
                    valid += 1;
                    let mut buf = t.pt.to_vec();
                    let tag = keys.seal_chunk(0, &mut buf);
                    assert_eq!(buf, t.ct[..], "tc {tc}: ciphertext");
                    assert_eq!(tag[..], t.tag[..], "tc {tc}: tag");
                    let mut buf = t.ct.to_vec();
                    keys.open_chunk(0, &mut buf, &t.tag)
                        .unwrap_or_else(|e| panic!("tc {tc}: open failed: {e}"));
                    assert_eq!(buf, t.pt[..], "tc {tc}: plaintext");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    let mut buf = t.ct.to_vec();
                    assert!(
                        keys.open_chunk(0, &mut buf, &t.tag).is_err(),
                        "tc {tc} ({}): invalid vector opened",
                        t.comment
                    );
                }
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        ran > 0 && valid > 0 && invalid > 0,
        "no AES-GCM vectors ran"
    );
    eprintln!(
        "AES-256-GCM (96-bit IV, 128-bit tag, empty AAD): {ran} tests ({valid} valid, {invalid} invalid)"
    );
}

// ---------------------------------------------------------------------------------------------
// ECDSA P-256 / SHA-256, r || s
// ---------------------------------------------------------------------------------------------

#[test]
fn wycheproof_ecdsa_p256_sha256_p1363() {
    use wycheproof::ecdsa::{TestName, TestSet};
    use wycheproof::{EllipticCurve, HashFunction};
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).expect("ECDSA vectors load");
    let (mut ran, mut valid, mut invalid, mut acceptable) = (0, 0, 0, 0);
    for group in &set.test_groups {
        assert_eq!(group.key.curve, EllipticCurve::Secp256r1);
        assert_eq!(group.hash, HashFunction::Sha2_256);
        let key = VerifyingKey::from_bytes(&group.key.key);
        if let Ok(k) = &key {
            assert_eq!(k.to_bytes(), group.key.key[..], "public key round trip");
        }
        for t in &group.tests {
            let tc = t.tc_id;
            let verdict = key.as_ref().map(|k| k.verify(&t.msg, &t.sig));
            ran += 1;
            match t.result {
                TestResult::Valid => {
                    valid += 1;
                    assert_eq!(
                        verdict,
                        Ok(true),
                        "tc {tc} ({}): valid signature rejected",
                        t.comment
                    );
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        verdict != Ok(true),
                        "tc {tc} ({}): invalid signature accepted",
                        t.comment
                    );
                }
                TestResult::Acceptable => acceptable += 1,
            }
        }
    }
    assert!(ran > 0 && valid > 0 && invalid > 0, "no ECDSA vectors ran");
    assert_eq!(ran, set.number_of_tests);
    eprintln!(
        "ECDSA P-256/SHA-256 P1363: {ran} tests ({valid} valid, {invalid} invalid, {acceptable} acceptable)"
    );
}

// ---------------------------------------------------------------------------------------------
// ECDH P-256, public keys as SEC1 points
// ---------------------------------------------------------------------------------------------

/// Wycheproof private keys are minimal big-endian integers, sometimes with a leading zero
/// byte (33 bytes) or shorter than 32 bytes; make them 32 bytes.
fn scalar_bytes(private: &[u8]) -> [u8; 32] {
    let first = private
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(private.len());
    let digits = &private[first..];
    assert!(digits.len() <= 32, "private key longer than 32 bytes");
    let mut out = [0u8; 32];
    out[32 - digits.len()..].copy_from_slice(digits);
    out
}

#[test]
fn wycheproof_ecdh_p256_ecpoint() {
    use wycheproof::EllipticCurve;
    use wycheproof::ecdh::{TestFlag, TestName, TestSet};
    let set = TestSet::load(TestName::EcdhSecp256r1Ecpoint).expect("ECDH vectors load");
    let (mut ran, mut valid, mut invalid, mut acceptable, mut compressed_rejected) =
        (0, 0, 0, 0, 0);
    for group in &set.test_groups {
        assert_eq!(group.curve, EllipticCurve::Secp256r1);
        for t in &group.tests {
            let tc = t.tc_id;
            let parsed = LicensePublicKey::from_bytes(&t.public_key);
            let compressed = t.flags.contains(&TestFlag::CompressedPoint);
            ran += 1;
            match t.result {
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        parsed.is_err(),
                        "tc {tc} ({}): invalid public point accepted",
                        t.comment
                    );
                    continue;
                }
                TestResult::Acceptable => acceptable += 1,
                TestResult::Valid => valid += 1,
            }
            // Our keys are uncompressed points only; rejecting a compressed one is allowed.
            let pk = match parsed {
                Ok(pk) => pk,
                Err(_) if compressed => {
                    compressed_rejected += 1;
                    continue;
                }
                Err(e) => panic!("tc {tc} ({}): valid public point rejected: {e}", t.comment),
            };
            let pk_bytes = pk.to_bytes();
            if !compressed {
                assert_eq!(pk_bytes, t.public_key[..], "tc {tc}: public key round trip");
            }
            let sk = LicenseSecretKey::from_bytes(&scalar_bytes(&t.private_key))
                .unwrap_or_else(|e| panic!("tc {tc}: private key rejected: {e}"));
            // The shared secret itself is p256's arithmetic; what is ours is the parsing on
            // both sides, so the DH runs on the bytes our types hand back.
            let point =
                p256::PublicKey::from_sec1_bytes(&pk_bytes).expect("our parser accepted it");
            let scalar =
                p256::SecretKey::from_slice(&sk.to_bytes()).expect("our parser accepted it");
            let shared = p256::ecdh::diffie_hellman(scalar.to_nonzero_scalar(), point.as_affine());
            assert_eq!(
                shared.raw_secret_bytes()[..],
                t.shared_secret[..],
                "tc {tc} ({}): shared secret",
                t.comment
            );
        }
    }
    assert!(ran > 0 && valid > 0 && invalid > 0, "no ECDH vectors ran");
    assert_eq!(ran, set.number_of_tests);
    eprintln!(
        "ECDH P-256 ecpoint: {ran} tests ({valid} valid, {invalid} invalid, {acceptable} acceptable; \
         {compressed_rejected} compressed points rejected)"
    );
}
