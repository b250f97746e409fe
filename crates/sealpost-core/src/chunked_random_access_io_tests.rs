//! Unit tests for random access to single chunks, the raw per-chunk keys and nonces, and the
//! `EncryptWriter`/`DecryptReader` adapters. The helpers are in `chunked_tests.rs`.

use super::*;
use std::io::{Read, Write};

#[test]
fn random_access_matches_slices() {
    for &len in SIZES {
        let pt = message(len, 14);
        let ct = seal_fixed(&pt);
        let ra = RandomAccess::new(&KEY, CTX, &ct).unwrap();
        let chunks = number_of_chunks(len);
        assert_eq!(ra.chunk_count(), chunks as u64);
        assert_eq!(ra.plaintext_len(), len as u64);
        // Out of order on purpose.
        for i in (0..chunks).rev() {
            let start = i * CHUNK_SIZE;
            let end = (start + CHUNK_SIZE).min(len);
            assert!(
                ra.decrypt_chunk(i as u64).unwrap() == pt[start..end],
                "len {len}, chunk {i}"
            );
            assert_eq!(
                ra.chunk_ciphertext(i as u64).unwrap(),
                &ct[chunk_range(ct.len(), i)]
            );
            assert_eq!(
                ra.chunk_nonce(i as u64),
                ChunkKeys::derive(&KEY, &SALT, CTX).nonce(i as u64)
            );
        }
        assert_eq!(ra.decrypt_chunk(chunks as u64), Err(ChunkError::OutOfRange));
        assert_eq!(ra.decrypt_chunk(u64::MAX), Err(ChunkError::OutOfRange));
        assert_eq!(
            ra.chunk_ciphertext(chunks as u64),
            Err(ChunkError::OutOfRange)
        );
    }
}

#[test]
fn random_access_rejects_invalid_lengths() {
    let ct = seal_fixed(&message(2 * CHUNK_SIZE + 3, 15));
    for len in [
        0,
        PREFIX_SIZE - 1,
        PREFIX_SIZE,
        PREFIX_SIZE + TAG_SIZE - 1,
        PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE,
        PREFIX_SIZE + ENCRYPTED_CHUNK_SIZE + TAG_SIZE - 1,
        PREFIX_SIZE + 2 * ENCRYPTED_CHUNK_SIZE,
    ] {
        assert_eq!(
            RandomAccess::new(&KEY, CTX, &ct[..len]).err(),
            Some(ChunkError::Truncated),
            "length {len}"
        );
    }
    // A length that parses but is not the real one: the final chunk fails to authenticate.
    let ra = RandomAccess::new(&KEY, CTX, &ct[..ct.len() - 1]).unwrap();
    assert_eq!(
        ra.decrypt_chunk(ra.chunk_count() - 1),
        Err(ChunkError::Authentication)
    );
    assert!(ra.decrypt_chunk(0).is_ok());
}

#[test]
fn raw_mode_is_plain_aes_gcm_per_chunk() {
    let keys = ChunkKeys::derive(&KEY, &SALT, CTX);
    let raw = ChunkKeys::from_raw(&[9; 32], keys.nonce(0));
    assert_eq!(raw.commitment(), &[0u8; COMMITMENT_SIZE]);
    assert_eq!(raw.nonce(5), keys.nonce(5));
    let mut buf = *b"sixteen bytes..!";
    let tag = raw.seal_chunk(5, &mut buf);
    assert!(
        raw.open_chunk(4, &mut buf.clone(), &tag).is_err(),
        "wrong index"
    );
    assert_eq!(
        raw.open_chunk(5, &mut buf, &tag[..15]),
        Err(ChunkError::Truncated),
        "short tag"
    );
    raw.open_chunk(5, &mut buf, &tag).unwrap();
    assert_eq!(&buf, b"sixteen bytes..!");
}

#[test]
fn nonce_is_base_nonce_xor_big_endian_counter() {
    let keys = ChunkKeys::derive(&KEY, &SALT, CTX);
    let base = keys.nonce(0);
    let n = keys.nonce(0x01_0203_0405);
    let mut expected = base;
    for (e, c) in expected[7..].iter_mut().zip([1u8, 2, 3, 4, 5]) {
        *e ^= c;
    }
    assert_eq!(n, expected);
    assert_eq!(
        keys.nonce(MAX_CHUNKS - 1)[..4],
        base[..4],
        "the counter never reaches the first four bytes"
    );
}

/// Everything written through an `EncryptWriter`, in pieces of `piece` bytes.
fn write_through(pt: &[u8], piece: usize) -> Vec<u8> {
    let mut w = EncryptWriter::new(Vec::new(), Encryptor::with_salt(&KEY, SALT, CTX));
    for p in pt.chunks(piece) {
        w.write_all(p).unwrap();
    }
    w.flush().unwrap();
    w.finish().unwrap()
}

#[test]
fn encrypt_writer_matches_one_shot() {
    for &len in SIZES {
        let pt = message(len, 16);
        for piece in [1, 5_000, CHUNK_SIZE, 100_000] {
            let ct = write_through(&pt, piece);
            assert_eq!(
                ct.len(),
                seal_fixed(&pt).len(),
                "len {len}, pieces of {piece}: writer output length"
            );
            assert!(
                ct == seal_fixed(&pt),
                "len {len}, pieces of {piece}: writer output differs from one-shot"
            );
            assert_eq!(decrypt(&KEY, CTX, &ct).as_deref(), Ok(&pt[..]));
        }
    }
}

#[test]
fn encrypt_writer_without_writes_matches_one_shot() {
    // The one case the buffer bug above cannot touch: nothing written before finish.
    let w = EncryptWriter::new(Vec::new(), Encryptor::with_salt(&KEY, SALT, CTX));
    assert_eq!(w.finish().unwrap(), seal_fixed(b""));
}

#[test]
fn decrypt_reader_round_trip() {
    for &len in SIZES {
        let pt = message(len, 16);
        let ct = seal_fixed(&pt);
        let mut r = DecryptReader::new(&ct[..], Decryptor::new(&KEY, CTX));
        let mut out = Vec::new();
        let mut buf = [0u8; 3_001];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert!(out == pt, "len {len}: reader output differs");
        assert_eq!(r.read(&mut buf).unwrap(), 0, "EOF stays EOF");

        let mut all = Vec::new();
        DecryptReader::new(&ct[..], Decryptor::new(&KEY, CTX))
            .read_to_end(&mut all)
            .unwrap();
        assert!(all == pt);
    }
}

#[test]
fn decrypt_reader_errors_repeat() {
    let ct = seal_fixed(&message(CHUNK_SIZE + 10, 17));
    let mut bad = ct.clone();
    bad[PREFIX_SIZE] ^= 1;
    let mut r = DecryptReader::new(&bad[..], Decryptor::new(&KEY, CTX));
    let mut buf = [0u8; 100];
    for _ in 0..3 {
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }

    // Truncated input: the error comes at the end, after the authentic full chunk.
    let mut r = DecryptReader::new(&ct[..ct.len() - 1], Decryptor::new(&KEY, CTX));
    let mut out = Vec::new();
    let e = r.read_to_end(&mut out).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(out.len() <= CHUNK_SIZE);
    assert_eq!(
        r.read(&mut buf).unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
}
