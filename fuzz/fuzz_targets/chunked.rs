//! The payload layer on arbitrary ciphertext under a fixed key: one-shot `chunked::decrypt`,
//! the streaming `Decryptor` fed in pieces whose size the first byte chooses, and
//! `RandomAccess`. Nothing may panic, and all three must agree: the same plaintext, or the
//! same error.
//!
//! Inputs longer than one 16 KiB chunk matter here: run with `-max_len=70000` or so.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_core::chunked::{self, ChunkError, Decryptor, RandomAccess};
use sealpost_fuzz::{CHUNK_CONTEXT, CHUNK_KEY};

/// Piece size for the streaming decryptor: 1..=128 bytes, or 512..=65536 in steps of 512
/// (which includes a whole chunk, 16384, and four of them).
fn piece_size(selector: u8) -> usize {
    if selector < 128 {
        selector as usize + 1
    } else {
        (selector as usize - 127) * 512
    }
}

fn streaming(ciphertext: &[u8], piece: usize) -> Result<Vec<u8>, ChunkError> {
    let mut dec = Decryptor::new(&CHUNK_KEY, CHUNK_CONTEXT);
    let mut out = Vec::new();
    let mut first_error = None;
    for p in ciphertext.chunks(piece) {
        if let Err(e) = dec.update(p, &mut out) {
            first_error = Some(e);
            break;
        }
    }
    if let Some(e) = first_error {
        // Once failed, every later call repeats the error.
        assert_eq!(dec.update(b"x", &mut out), Err(e));
        assert_eq!(dec.finish(&mut out), Err(e));
        return Err(e);
    }
    dec.finish(&mut out)?;
    Ok(out)
}

fn random_access(ciphertext: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let ra = RandomAccess::new(&CHUNK_KEY, CHUNK_CONTEXT, ciphertext)?;
    let mut out = Vec::new();
    for i in 0..ra.chunk_count() {
        out.extend_from_slice(&ra.decrypt_chunk(i)?);
    }
    assert_eq!(out.len() as u64, ra.plaintext_len());
    assert_eq!(
        ra.chunk_ciphertext(ra.chunk_count()),
        Err(ChunkError::OutOfRange)
    );
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let _ = chunked::decrypt(&CHUNK_KEY, CHUNK_CONTEXT, data);

    let Some((&selector, ciphertext)) = data.split_first() else {
        return;
    };
    let whole = chunked::decrypt(&CHUNK_KEY, CHUNK_CONTEXT, ciphertext);
    let pieces = streaming(ciphertext, piece_size(selector));
    assert_eq!(whole, pieces, "streaming and one-shot decryption disagree");
    // Random access checks no order between chunks; it must succeed exactly when the message
    // is authentic, and then give the same bytes.
    let ra = random_access(ciphertext);
    assert_eq!(
        whole.is_ok(),
        ra.is_ok(),
        "random access and one-shot decryption disagree"
    );
    if let (Ok(w), Ok(r)) = (&whole, &ra) {
        assert_eq!(w, r);
    }
});
