//! Unit tests for the chunked-encryption layer: round trips at the sizes around chunk
//! boundaries, streaming equals one-shot, and the ways a ciphertext can be cut, extended,
//! reordered or misaddressed.
//!
//! Random access, the raw per-chunk keys and nonces, and the `Read`/`Write` adapters are
//! tested in the `random_access_io` submodule, with the helpers defined here.

use super::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

#[path = "chunked_random_access_io_tests.rs"]
mod random_access_io;

const KEY: [u8; 32] = [0x42; 32];
const CTX: &[u8] = b"sealpost chunked tests";
const SALT: [u8; SALT_SIZE] = [7; SALT_SIZE];

const SIZES: &[usize] = &[
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    3 * CHUNK_SIZE,
    100_000,
];

fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn message(len: usize, seed: u8) -> Vec<u8> {
    let mut m = vec![0u8; len];
    rng(seed).fill_bytes(&mut m);
    m
}

/// One-shot encryption under the fixed salt, so results are comparable.
fn seal_fixed(plaintext: &[u8]) -> Vec<u8> {
    let mut enc = Encryptor::with_salt(&KEY, SALT, CTX);
    let mut out = Vec::new();
    enc.update(plaintext, &mut out).unwrap();
    enc.finish(&mut out).unwrap();
    out
}

/// Random split points: pieces of 0 to 40 000 bytes, with zero-length pieces included.
fn split_points(len: usize, rng: &mut ChaCha20Rng) -> Vec<usize> {
    let mut points = vec![0];
    let mut at = 0;
    while at < len {
        let step = match rng.next_u32() % 4 {
            0 => 0,
            1 => (rng.next_u32() % 64) as usize,
            2 => (rng.next_u32() % (CHUNK_SIZE as u32 + 64)) as usize,
            _ => (rng.next_u32() % 40_000) as usize,
        };
        at = (at + step).min(len);
        points.push(at);
    }
    points
}

fn decrypt_streaming(ct: &[u8], points: &[usize]) -> Result<Vec<u8>, ChunkError> {
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    for w in points.windows(2) {
        dec.update(&ct[w[0]..w[1]], &mut out)?;
    }
    dec.finish(&mut out)?;
    Ok(out)
}

fn number_of_chunks(plaintext_len: usize) -> usize {
    plaintext_len / CHUNK_SIZE + 1
}

/// Byte range of chunk `i` (tag included) inside the ciphertext.
fn chunk_range(ct_len: usize, i: usize) -> std::ops::Range<usize> {
    let start = PREFIX_SIZE + i * ENCRYPTED_CHUNK_SIZE;
    start..(start + ENCRYPTED_CHUNK_SIZE).min(ct_len)
}

#[test]
fn round_trip_at_boundary_sizes() {
    let mut r = rng(1);
    for &len in SIZES {
        let pt = message(len, len as u8);
        let ct = encrypt(&KEY, CTX, &pt, &mut r).unwrap();
        assert_eq!(
            ct.len() as u64,
            Encryptor::ciphertext_len(len as u64),
            "len {len}"
        );
        assert_eq!(
            ct.len(),
            PREFIX_SIZE + len + number_of_chunks(len) * TAG_SIZE,
            "len {len}"
        );
        assert_eq!(decrypt(&KEY, CTX, &ct).unwrap(), pt, "len {len}");
        // The plaintext does not appear in the ciphertext (not a no-op cipher).
        if len >= 16 {
            assert_ne!(&ct[PREFIX_SIZE..PREFIX_SIZE + 16], &pt[..16]);
        }
    }
}

#[test]
fn fresh_salts_differ() {
    let mut r = rng(2);
    let a = encrypt(&KEY, CTX, b"same", &mut r).unwrap();
    let b = encrypt(&KEY, CTX, b"same", &mut r).unwrap();
    assert_ne!(a[..SALT_SIZE], b[..SALT_SIZE]);
    assert_ne!(a, b);
}

#[test]
fn ciphertext_len_matches() {
    for len in [
        0u64, 1, 15, 16, 17, 16_383, 16_384, 16_385, 32_768, 49_152, 100_000,
    ] {
        let ct = seal_fixed(&vec![0u8; len as usize]);
        assert_eq!(Encryptor::ciphertext_len(len), ct.len() as u64, "len {len}");
    }
    assert_eq!(
        Encryptor::ciphertext_len(0),
        (PREFIX_SIZE + TAG_SIZE) as u64
    );
    assert_eq!(
        Encryptor::ciphertext_len(CHUNK_SIZE as u64),
        (PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE + TAG_SIZE) as u64
    );
}

#[test]
fn streaming_with_random_splits_equals_one_shot() {
    let mut r = rng(3);
    for &len in SIZES {
        let pt = message(len, 3);
        let expected = seal_fixed(&pt);
        for _ in 0..8 {
            let points = split_points(len, &mut r);
            let mut enc = Encryptor::with_salt(&KEY, SALT, CTX);
            let mut ct = Vec::new();
            for w in points.windows(2) {
                enc.update(&pt[w[0]..w[1]], &mut ct).unwrap();
            }
            enc.finish(&mut ct).unwrap();
            assert!(
                ct == expected,
                "len {len}, splits {points:?}: streaming encryption differs"
            );

            let points = split_points(ct.len(), &mut r);
            let out = decrypt_streaming(&ct, &points).unwrap();
            assert!(
                out == pt,
                "len {len}, splits {points:?}: streaming decryption differs"
            );
        }
    }
}

#[test]
fn streaming_at_exact_chunk_boundaries() {
    // Pieces that end exactly on chunk boundaries, and empty pieces, in both directions.
    let pt = message(3 * CHUNK_SIZE, 4);
    let expected = seal_fixed(&pt);
    let mut enc = Encryptor::with_salt(&KEY, SALT, CTX);
    let mut ct = Vec::new();
    for piece in pt.chunks(CHUNK_SIZE) {
        enc.update(piece, &mut ct).unwrap();
        enc.update(&[], &mut ct).unwrap();
    }
    enc.finish(&mut ct).unwrap();
    assert!(ct == expected);

    let mut points = vec![0, PREFIX_SIZE, PREFIX_SIZE];
    points.extend((1..=3).map(|i| PREFIX_SIZE + i * ENCRYPTED_CHUNK_SIZE));
    points.push(ct.len());
    assert_eq!(decrypt_streaming(&ct, &points).unwrap(), pt);
}

#[test]
fn decryptor_releases_full_chunks_early_and_the_last_only_at_finish() {
    let pt = message(2 * CHUNK_SIZE + 10, 5);
    let ct = seal_fixed(&pt);
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    dec.update(&ct, &mut out).unwrap();
    assert_eq!(
        out,
        pt[..2 * CHUNK_SIZE],
        "full chunks are released by update"
    );
    dec.finish(&mut out).unwrap();
    assert_eq!(out, pt);
}

#[test]
fn truncation_is_rejected() {
    for &len in SIZES {
        let ct = seal_fixed(&message(len, 6));
        let chunks = number_of_chunks(len);
        // Cut at every chunk boundary: the prefix alone, and after each full chunk (which
        // removes the final chunk and everything after it).
        for i in 0..chunks {
            let cut = PREFIX_SIZE + i * ENCRYPTED_CHUNK_SIZE;
            assert!(
                decrypt(&KEY, CTX, &ct[..cut]).is_err(),
                "len {len}: cut at chunk {i}"
            );
            assert!(
                RandomAccess::new(&KEY, CTX, &ct[..cut]).is_err(),
                "len {len}: cut at chunk {i}"
            );
        }
        // Cut inside the final chunk, inside the prefix, and one byte short.
        for cut in [
            0,
            1,
            SALT_SIZE,
            PREFIX_SIZE - 1,
            ct.len() - TAG_SIZE,
            ct.len() - 1,
        ] {
            assert!(
                decrypt(&KEY, CTX, &ct[..cut]).is_err(),
                "len {len}: cut at {cut}"
            );
        }
    }
}

#[test]
fn removing_the_final_empty_chunk_is_rejected() {
    // A multiple of the chunk size ends with an empty chunk; without it the ciphertext is
    // whole full chunks, which cannot be a complete message.
    let pt = message(2 * CHUNK_SIZE, 7);
    let ct = seal_fixed(&pt);
    let cut = &ct[..ct.len() - TAG_SIZE];
    assert_eq!(decrypt(&KEY, CTX, cut), Err(ChunkError::Truncated));
    assert_eq!(
        RandomAccess::new(&KEY, CTX, cut).err(),
        Some(ChunkError::Truncated)
    );
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    dec.update(cut, &mut out).unwrap();
    assert_eq!(dec.finish(&mut out), Err(ChunkError::Truncated));
}

#[test]
fn appended_bytes_are_rejected() {
    for &len in SIZES {
        let pt = message(len, 8);
        let ct = seal_fixed(&pt);
        for extra in [1usize, TAG_SIZE, 100, ENCRYPTED_CHUNK_SIZE] {
            let mut longer = ct.clone();
            longer.extend(std::iter::repeat_n(0xa5, extra));
            assert!(decrypt(&KEY, CTX, &longer).is_err(), "len {len} + {extra}");
        }
        // A validly encrypted chunk for the next index after the final one.
        let keys = ChunkKeys::derive(&KEY, &SALT, CTX);
        let mut extra = b"one more".to_vec();
        let tag = keys.seal(number_of_chunks(len) as u64, &mut extra);
        let mut longer = ct.clone();
        longer.extend_from_slice(&extra);
        longer.extend_from_slice(&tag);
        assert!(
            decrypt(&KEY, CTX, &longer).is_err(),
            "len {len} + an encrypted chunk"
        );
    }
}

#[test]
fn reordered_chunks_are_rejected() {
    let pt = message(3 * CHUNK_SIZE + 5, 9);
    let ct = seal_fixed(&pt);
    let (a, b) = (chunk_range(ct.len(), 0), chunk_range(ct.len(), 1));
    let mut swapped = ct.clone();
    swapped[a.clone()].copy_from_slice(&ct[b.clone()]);
    swapped[b.clone()].copy_from_slice(&ct[a.clone()]);
    assert_eq!(
        decrypt(&KEY, CTX, &swapped),
        Err(ChunkError::Authentication)
    );
    let ra = RandomAccess::new(&KEY, CTX, &swapped).unwrap();
    assert!(ra.decrypt_chunk(0).is_err() && ra.decrypt_chunk(1).is_err());
    assert!(ra.decrypt_chunk(2).is_ok(), "untouched chunks still open");

    // Duplicating chunk 0 in place of chunk 1.
    let mut duplicated = ct.clone();
    duplicated[b].copy_from_slice(&ct[a]);
    assert_eq!(
        decrypt(&KEY, CTX, &duplicated),
        Err(ChunkError::Authentication)
    );
}

#[test]
fn modified_bytes_are_rejected() {
    let pt = message(CHUNK_SIZE + 100, 10);
    let ct = seal_fixed(&pt);
    // Salt, commitment, first chunk body and tag, final chunk body and tag.
    for at in [
        0,
        SALT_SIZE,
        PREFIX_SIZE,
        PREFIX_SIZE + CHUNK_SIZE,
        ct.len() - TAG_SIZE - 1,
        ct.len() - 1,
    ] {
        let mut bad = ct.clone();
        bad[at] ^= 0x01;
        let expected = if at < PREFIX_SIZE {
            ChunkError::Commitment
        } else {
            ChunkError::Authentication
        };
        assert_eq!(decrypt(&KEY, CTX, &bad), Err(expected), "byte {at}");
    }
}

#[test]
fn wrong_key_or_context_is_a_commitment_error() {
    let ct = seal_fixed(&message(CHUNK_SIZE + 1, 11));
    let mut other_key = KEY;
    other_key[31] ^= 1;
    for (key, ctx) in [
        (&other_key, CTX),
        (&KEY, &b"another context"[..]),
        (&KEY, &[][..]),
    ] {
        assert_eq!(decrypt(key, ctx, &ct), Err(ChunkError::Commitment));
        assert_eq!(
            RandomAccess::new(key, ctx, &ct).err(),
            Some(ChunkError::Commitment)
        );
        // The streaming decryptor fails as soon as it has the prefix, before any chunk.
        let mut dec = Decryptor::new(key, ctx);
        let mut out = Vec::new();
        assert_eq!(
            dec.update(&ct[..PREFIX_SIZE], &mut out),
            Err(ChunkError::Commitment)
        );
        assert!(out.is_empty());
    }
}

#[test]
fn errors_are_sticky() {
    let pt = message(3 * CHUNK_SIZE + 5, 12);
    let ct = seal_fixed(&pt);
    let valid_rest = &ct[chunk_range(ct.len(), 1).start..];

    // Authentication failure in chunk 1.
    let mut bad = ct.clone();
    bad[chunk_range(ct.len(), 1).start + 3] ^= 0x80;
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    assert_eq!(dec.update(&bad, &mut out), Err(ChunkError::Authentication));
    for _ in 0..2 {
        assert_eq!(
            dec.update(valid_rest, &mut out),
            Err(ChunkError::Authentication)
        );
        assert_eq!(dec.update(&[], &mut out), Err(ChunkError::Authentication));
        assert_eq!(dec.finish(&mut out), Err(ChunkError::Authentication));
    }

    // Commitment failure.
    let mut dec = Decryptor::new(&KEY, b"wrong");
    let mut out = Vec::new();
    assert_eq!(dec.update(&ct, &mut out), Err(ChunkError::Commitment));
    for _ in 0..2 {
        assert_eq!(
            dec.update(valid_rest, &mut out),
            Err(ChunkError::Commitment)
        );
        assert_eq!(dec.finish(&mut out), Err(ChunkError::Commitment));
    }
    assert!(out.is_empty());

    // Truncation detected at finish.
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    dec.update(&ct[..PREFIX_SIZE + 5], &mut out).unwrap();
    assert_eq!(dec.finish(&mut out), Err(ChunkError::Truncated));
    assert_eq!(dec.update(valid_rest, &mut out), Err(ChunkError::Truncated));
    assert_eq!(dec.finish(&mut out), Err(ChunkError::Truncated));

    // A prefix that never completes.
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    dec.update(&ct[..10], &mut out).unwrap();
    assert_eq!(dec.finish(&mut out), Err(ChunkError::Truncated));
    assert_eq!(dec.update(&ct[10..], &mut out), Err(ChunkError::Truncated));
    assert!(out.is_empty());
}

#[test]
fn update_after_a_successful_finish_fails() {
    let ct = seal_fixed(b"done");
    let mut dec = Decryptor::new(&KEY, CTX);
    let mut out = Vec::new();
    dec.update(&ct, &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    assert_eq!(out, b"done");
    assert!(dec.update(b"x", &mut out).is_err());
    assert_eq!(out, b"done");
}

#[test]
fn no_plaintext_from_a_failing_chunk() {
    let pt = message(3 * CHUNK_SIZE + 5, 13);
    let ct = seal_fixed(&pt);
    for bad_chunk in 0..number_of_chunks(pt.len()) {
        let mut bad = ct.clone();
        bad[chunk_range(ct.len(), bad_chunk).start] ^= 0x01;
        // Whole buffer at once, and byte-sized pieces.
        for piece in [bad.len(), 997] {
            let mut dec = Decryptor::new(&KEY, CTX);
            let mut out = b"existing".to_vec();
            let mut result = Ok(());
            for p in bad.chunks(piece) {
                result = dec.update(p, &mut out);
                if result.is_err() {
                    break;
                }
            }
            if result.is_ok() {
                result = dec.finish(&mut out);
            }
            assert_eq!(result, Err(ChunkError::Authentication), "chunk {bad_chunk}");
            assert_eq!(
                out.len(),
                8 + bad_chunk * CHUNK_SIZE,
                "chunk {bad_chunk}: released bytes"
            );
            assert_eq!(&out[..8], b"existing");
            assert!(
                out[8..] == pt[..bad_chunk * CHUNK_SIZE],
                "chunk {bad_chunk}: released bytes"
            );
        }
    }
}
