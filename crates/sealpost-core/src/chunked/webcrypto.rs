//! Chunk decryption by the browser's WebCrypto (SubtleCrypto AES-GCM) instead of the `aes-gcm`
//! crate compiled to WebAssembly, which is several times slower there. Built only for wasm32
//! with the `webcrypto` feature.
//!
//! [`decrypt`] takes the same inputs as [`super::decrypt`] and gives the same result: the same
//! plaintext, or the same [`ChunkError`]. Everything that decides whether a ciphertext is valid
//! stays in this crate's one implementation of the format: the key, base nonce and commitment
//! come from one HKDF derivation (`Expanded`, the same one [`ChunkKeys::derive`] runs); the
//! commitment, the length rules (truncation, the short final chunk that authenticates the end,
//! no bytes after it) and the chunk limit are checked by [`RandomAccess`]; the per-chunk nonces
//! are [`RandomAccess::chunk_nonce`]. Only the AES-GCM open of each chunk (empty associated
//! data, the 16-byte tag after the ciphertext, as WebCrypto expects it) runs in SubtleCrypto,
//! under a key imported once, non-extractable, for `decrypt` only. Several chunks are handed to
//! WebCrypto before the first answer is awaited, so its work overlaps.
//!
//! The plaintext is returned only after every chunk, the final one included, authenticated; on
//! any failure what was decrypted is wiped. Plaintext copies WebCrypto made in JavaScript
//! buffers are zeroed once copied out (the garbage collector owns them after that).
//!
//! [`sha256`] has SubtleCrypto hash a large input (the envelope's signed bytes) for the same
//! reason; the caller keeps `sha2` as the fallback.
//!
//! When SubtleCrypto is missing (an insecure context: `file://`, plain http on a host other
//! than localhost) or refuses the key, the answer is [`Unavailable`], and the caller uses the
//! pure-Rust path, which is always correct. Deliberately not here: encryption (the browser
//! never seals), streaming input (the payload is in memory already), and the choice of path.

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, CryptoKey, SubtleCrypto};
use zeroize::{Zeroize, Zeroizing};

use super::{ChunkError, ChunkKeys, Expanded, PREFIX_SIZE, RandomAccess, SALT_SIZE, TAG_SIZE};

/// Chunks handed to WebCrypto at once (1 MiB of plaintext); progress is reported per batch.
pub const BATCH_CHUNKS: u64 = 64;

/// WebCrypto cannot be used here; decrypt with the pure-Rust path instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("WebCrypto (SubtleCrypto AES-GCM) is not available in this context")]
pub struct Unavailable;

/// Whether this context offers SubtleCrypto at all (it does not in insecure contexts).
pub fn available() -> bool {
    subtle().is_some()
}

fn subtle() -> Option<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).ok()?;
    if crypto.is_undefined() || crypto.is_null() {
        return None;
    }
    let subtle = Reflect::get(&crypto, &JsValue::from_str("subtle")).ok()?;
    subtle.dyn_into::<SubtleCrypto>().ok()
}

/// Imports the AEAD key: raw, AES-GCM, not extractable, `decrypt` only. The JavaScript copy of
/// the key bytes is zeroed once the import has finished.
async fn import_key(subtle: &SubtleCrypto, key: &[u8; 32]) -> Result<CryptoKey, Unavailable> {
    let raw = Uint8Array::from(&key[..]);
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"AES-GCM".into()).map_err(|_| Unavailable)?;
    let usages = Array::of1(&"decrypt".into());
    let result = match subtle.import_key_with_object("raw", &raw, &algorithm, false, &usages) {
        Ok(promise) => JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    raw.fill(0, 0, raw.length());
    result
        .map_err(|_| Unavailable)?
        .dyn_into::<CryptoKey>()
        .map_err(|_| Unavailable)
}

/// SHA-256 of `data` by the browser (`crypto.subtle.digest`), which is many times faster than
/// the `sha2` crate compiled to WebAssembly on large inputs; the digest is the same function,
/// so callers fall back to `sha2` on [`Unavailable`] and get the same bytes.
pub async fn sha256(data: &[u8]) -> Result<[u8; 32], Unavailable> {
    let subtle = subtle().ok_or(Unavailable)?;
    let promise = subtle
        .digest_with_str_and_u8_array("SHA-256", data)
        .map_err(|_| Unavailable)?;
    let buffer = JsFuture::from(promise).await.map_err(|_| Unavailable)?;
    let digest = Uint8Array::new(&buffer);
    let mut out = [0u8; 32];
    if digest.length() as usize != out.len() {
        return Err(Unavailable);
    }
    digest.copy_to(&mut out);
    Ok(out)
}

/// Decrypts a whole Cobblestone-256 ciphertext with WebCrypto.
///
/// The inner result is exactly what [`super::decrypt`] returns for the same input (the
/// plaintext, or the same error); `progress(done, total)` is called with ciphertext bytes
/// after each batch of chunks. [`Unavailable`] means nothing was decrypted and the pure-Rust
/// path should be used.
pub async fn decrypt(
    input_key: &[u8; 32],
    context: &[u8],
    ciphertext: &[u8],
    mut progress: impl FnMut(usize, usize),
) -> Result<Result<Zeroizing<Vec<u8>>, ChunkError>, Unavailable> {
    let subtle = subtle().ok_or(Unavailable)?;
    if ciphertext.len() < PREFIX_SIZE + TAG_SIZE {
        return Ok(Err(ChunkError::Truncated));
    }
    let mut salt = [0u8; SALT_SIZE];
    salt.copy_from_slice(&ciphertext[..SALT_SIZE]);
    let expanded = Expanded::new(input_key, &salt, context);
    let chunks = match RandomAccess::with_keys(ChunkKeys::from_expanded(&expanded), ciphertext) {
        Ok(chunks) => chunks,
        Err(e) => return Ok(Err(e)),
    };
    let key = import_key(&subtle, &expanded.key).await?;
    drop(expanded);
    Ok(open_all(&subtle, &key, &chunks, ciphertext.len(), &mut progress).await)
}

/// Opens every chunk in order into one buffer; the first failure wins, the rest of its batch
/// is still awaited so that no JavaScript plaintext buffer is left unzeroed.
async fn open_all(
    subtle: &SubtleCrypto,
    key: &CryptoKey,
    chunks: &RandomAccess<'_>,
    total: usize,
    progress: &mut impl FnMut(usize, usize),
) -> Result<Zeroizing<Vec<u8>>, ChunkError> {
    let mut out = Zeroizing::new(vec![0u8; chunks.plaintext_len() as usize]);
    let mut written = 0usize;
    let mut done = PREFIX_SIZE;
    let mut failed = None;
    let count = chunks.chunk_count();
    let mut index = 0u64;
    progress(done, total);
    while index < count && failed.is_none() {
        let end = index.saturating_add(BATCH_CHUNKS).min(count);
        let mut batch = Vec::with_capacity((end - index) as usize);
        for i in index..end {
            let Ok(ct) = chunks.chunk_ciphertext(i) else {
                failed = Some(ChunkError::OutOfRange);
                break;
            };
            let iv = Uint8Array::from(&chunks.chunk_nonce(i)[..]);
            let params = AesGcmParams::new("AES-GCM", &iv);
            params.set_tag_length((TAG_SIZE * 8) as u8);
            // A view of the ciphertext in WebAssembly memory: WebCrypto copies its input when
            // called, before anything here can change that memory.
            match subtle.decrypt_with_object_and_u8_array(&params, key, ct) {
                Ok(promise) => batch.push((JsFuture::from(promise), ct.len())),
                Err(_) => {
                    failed = Some(ChunkError::Authentication);
                    break;
                }
            }
        }
        for (future, ct_len) in batch {
            let opened = future.await;
            let Ok(buffer) = opened else {
                failed.get_or_insert(ChunkError::Authentication);
                continue;
            };
            let plain = Uint8Array::new(&buffer);
            let len = plain.length() as usize;
            if failed.is_none() && len + TAG_SIZE == ct_len && written + len <= out.len() {
                plain.copy_to(&mut out[written..written + len]);
                written += len;
                done += ct_len;
            } else {
                failed.get_or_insert(ChunkError::Authentication);
            }
            plain.fill(0, 0, plain.length());
        }
        index = end;
        if failed.is_none() {
            progress(done, total);
        }
    }
    if let Some(e) = failed {
        out.zeroize();
        return Err(e);
    }
    if written != out.len() {
        out.zeroize();
        return Err(ChunkError::Authentication);
    }
    Ok(out)
}
