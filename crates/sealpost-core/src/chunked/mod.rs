//! C2SP chunked encryption, instantiated as "Cobblestone-256": AES-256-GCM with HKDF-Expand
//! over SHA-512, as specified at <https://c2sp.org/chunked-encryption>.
//!
//! ```text
//! key || base nonce || commitment = HKDF-Expand(prk = input key,
//!     info = "c2sp.org/chunked-encryption@v1+" || "AEAD_AES_256_GCM" || 0x00 || salt || context)
//! ciphertext = salt (24) || commitment (32) || AEAD(chunk 0) || AEAD(chunk 1) || ...
//! ```
//!
//! Chunks are 16 KiB of plaintext; the final chunk is always shorter (possibly empty), which is
//! how the end of the message is authenticated. Chunk `i` is sealed under
//! `base nonce XOR i` (big-endian, as wide as the nonce) with empty associated data.
//!
//! Three ways in: [`Encryptor`]/[`Decryptor`] push bytes through in both directions (the
//! decryptor releases plaintext only for chunks that authenticated, and once it has failed it
//! returns the same error on every later call); [`RandomAccess`] decrypts any single chunk;
//! [`EncryptWriter`] and [`DecryptReader`] adapt the push API to `std::io`.
//!
//! This module deliberately knows nothing about envelopes, shares or policies: it turns one
//! 32-byte input key and a context into a ciphertext and back. Its errors are detailed (for
//! tests and vectors); the envelope layer collapses them before they reach a user.

mod io;
mod random_access;
#[cfg(all(feature = "webcrypto", target_arch = "wasm32"))]
pub mod webcrypto;

pub use io::{DecryptReader, EncryptWriter};
pub use random_access::RandomAccess;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha512;
use zeroize::{Zeroize, Zeroizing};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 16 * 1024;
/// AES-GCM tag length.
pub const TAG_SIZE: usize = 16;
/// Random salt prepended to the ciphertext.
pub const SALT_SIZE: usize = 24;
/// Key commitment that follows the salt.
pub const COMMITMENT_SIZE: usize = 32;
/// Fixed prefix: salt and commitment.
pub const PREFIX_SIZE: usize = SALT_SIZE + COMMITMENT_SIZE;
/// Ciphertext bytes of one full chunk.
pub const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// The chunk counter must stay below 2^38.
pub const MAX_CHUNKS: u64 = 1 << 38;

const AEAD_NAME: &[u8] = b"AEAD_AES_256_GCM";
const INFO_PREFIX: &[u8] = b"c2sp.org/chunked-encryption@v1+";

/// What went wrong in the chunked-encryption layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The commitment does not match: wrong input key, salt or context.
    #[error("key commitment mismatch")]
    Commitment,
    /// A chunk failed to authenticate (modified, reordered or from another message).
    #[error("chunk failed to authenticate")]
    Authentication,
    /// The ciphertext ends where no message can end.
    #[error("ciphertext is truncated")]
    Truncated,
    /// The message would need 2^38 chunks or more.
    #[error("message exceeds the chunk limit")]
    TooLarge,
    /// A random-access request named a chunk past the end.
    #[error("chunk index out of range")]
    OutOfRange,
}

/// The spec's HKDF-Expand output: AEAD key, base nonce and commitment. The key is wiped when
/// this is dropped.
pub(crate) struct Expanded {
    pub(crate) key: Zeroizing<[u8; 32]>,
    pub(crate) base_nonce: [u8; 12],
    pub(crate) commitment: [u8; COMMITMENT_SIZE],
}

impl Expanded {
    /// Runs the spec's HKDF-Expand. The PRK is the 32-byte input key, shorter than SHA-512's
    /// output, which RFC 5869 discourages but this spec uses; so the two Expand blocks are
    /// computed with HMAC directly.
    pub(crate) fn new(input_key: &[u8; 32], salt: &[u8; SALT_SIZE], context: &[u8]) -> Self {
        let mut okm = Zeroizing::new([0u8; 128]);
        let mut previous: Option<[u8; 64]> = None;
        for (i, block) in okm.chunks_mut(64).enumerate() {
            let mut mac = <Hmac<Sha512>>::new_from_slice(input_key).expect("HMAC takes any key");
            if let Some(prev) = &previous {
                mac.update(prev);
            }
            mac.update(INFO_PREFIX);
            mac.update(AEAD_NAME);
            mac.update(&[0]);
            mac.update(salt);
            mac.update(context);
            mac.update(&[i as u8 + 1]);
            let out: [u8; 64] = mac.finalize().into_bytes().into();
            block.copy_from_slice(&out);
            previous = Some(out);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut base_nonce = [0u8; 12];
        base_nonce.copy_from_slice(&okm[32..44]);
        let mut commitment = [0u8; COMMITMENT_SIZE];
        commitment.copy_from_slice(&okm[44..76]);
        if let Some(mut p) = previous {
            p.zeroize();
        }
        Expanded {
            key,
            base_nonce,
            commitment,
        }
    }
}

/// The per-message key, base nonce and commitment derived from the input key.
pub struct ChunkKeys {
    aead: Aes256Gcm,
    base_nonce: [u8; 12],
    commitment: [u8; COMMITMENT_SIZE],
}

impl ChunkKeys {
    /// Derives the keys from the input key, salt and context (the spec's HKDF-Expand, see
    /// `Expanded::new`).
    pub fn derive(input_key: &[u8; 32], salt: &[u8; SALT_SIZE], context: &[u8]) -> Self {
        Self::from_expanded(&Expanded::new(input_key, salt, context))
    }

    /// Keys from an HKDF output already computed (the WebCrypto path needs the raw AEAD key
    /// too, and must not run a second derivation of its own).
    pub(crate) fn from_expanded(expanded: &Expanded) -> Self {
        ChunkKeys {
            aead: Aes256Gcm::new_from_slice(&expanded.key[..]).expect("32-byte key"),
            base_nonce: expanded.base_nonce,
            commitment: expanded.commitment,
        }
    }

    /// Checks, in constant time, that `stored` (the bytes after the salt) is this message's
    /// commitment.
    pub(crate) fn check_commitment(&self, stored: &[u8]) -> Result<(), ChunkError> {
        let ok: bool = subtle::ConstantTimeEq::ct_eq(&self.commitment[..], stored).into();
        if ok {
            Ok(())
        } else {
            Err(ChunkError::Commitment)
        }
    }

    /// Keys for the spec's "raw mode" appendix: the AEAD key and base nonce are given directly,
    /// for protocols that derive them themselves, and no input key, salt or context is
    /// involved. The commitment is all zeros (there is none in raw mode); use
    /// [`seal_chunk`](Self::seal_chunk) and [`open_chunk`](Self::open_chunk) on the chunks.
    pub fn from_raw(key: &[u8; 32], base_nonce: [u8; 12]) -> ChunkKeys {
        ChunkKeys {
            aead: Aes256Gcm::new_from_slice(key).expect("32-byte key"),
            base_nonce,
            commitment: [0u8; COMMITMENT_SIZE],
        }
    }

    /// Seals `buf` in place as chunk `index` (empty associated data) and returns the tag.
    pub fn seal_chunk(&self, index: u64, buf: &mut [u8]) -> [u8; TAG_SIZE] {
        self.seal(index, buf)
    }

    /// Opens chunk `index` in place; `buf` is the ciphertext without the tag. On failure the
    /// contents of `buf` are unspecified and must not be used.
    pub fn open_chunk(&self, index: u64, buf: &mut [u8], tag: &[u8]) -> Result<(), ChunkError> {
        self.open(index, buf, tag)
    }

    /// The nonce for chunk `index`: the base nonce XOR the big-endian counter.
    pub fn nonce(&self, index: u64) -> [u8; 12] {
        let mut nonce = self.base_nonce;
        for (n, c) in nonce[4..].iter_mut().zip(index.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// The commitment that must follow the salt.
    pub fn commitment(&self) -> &[u8; COMMITMENT_SIZE] {
        &self.commitment
    }

    /// Seals `buf` in place as chunk `index` and returns the tag.
    fn seal(&self, index: u64, buf: &mut [u8]) -> [u8; TAG_SIZE] {
        let nonce = self.nonce(index);
        let tag = self
            .aead
            .encrypt_inout_detached(&Nonce::from(nonce), &[], buf.into())
            .expect("a chunk is far below AES-GCM's length limit");
        tag.into()
    }

    /// Opens chunk `index` in place; `buf` is ciphertext without the tag.
    fn open(&self, index: u64, buf: &mut [u8], tag: &[u8]) -> Result<(), ChunkError> {
        let nonce = self.nonce(index);
        let tag = Tag::try_from(tag).map_err(|_| ChunkError::Truncated)?;
        self.aead
            .decrypt_inout_detached(&Nonce::from(nonce), &[], buf.into(), &tag)
            .map_err(|_| ChunkError::Authentication)
    }
}

/// Streaming encryption: feed plaintext with [`update`](Self::update), end with
/// [`finish`](Self::finish). Only one partial chunk is ever buffered.
pub struct Encryptor {
    keys: ChunkKeys,
    salt: [u8; SALT_SIZE],
    started: bool,
    counter: u64,
    pending: Vec<u8>,
}

impl Drop for Encryptor {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

impl Encryptor {
    /// Starts a message with a fresh random salt.
    pub fn new(input_key: &[u8; 32], context: &[u8], rng: &mut impl CryptoRng) -> Self {
        let mut salt = [0u8; SALT_SIZE];
        rng.fill_bytes(&mut salt);
        Self::with_salt(input_key, salt, context)
    }

    /// Starts a message with a caller-chosen salt, which must never repeat for a key.
    pub fn with_salt(input_key: &[u8; 32], salt: [u8; SALT_SIZE], context: &[u8]) -> Self {
        Encryptor {
            keys: ChunkKeys::derive(input_key, &salt, context),
            salt,
            started: false,
            counter: 0,
            pending: Vec::with_capacity(CHUNK_SIZE),
        }
    }

    /// Exact ciphertext length for a plaintext of `len` bytes.
    pub fn ciphertext_len(len: u64) -> u64 {
        PREFIX_SIZE as u64 + len + (len / CHUNK_SIZE as u64 + 1) * TAG_SIZE as u64
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&self.salt);
            out.extend_from_slice(self.keys.commitment());
            self.started = true;
        }
    }

    fn next_counter(&mut self) -> Result<u64, ChunkError> {
        if self.counter >= MAX_CHUNKS {
            return Err(ChunkError::TooLarge);
        }
        let c = self.counter;
        self.counter += 1;
        Ok(c)
    }

    /// Encrypts and appends every full chunk that `input` completes.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        self.start(out);
        if !self.pending.is_empty() {
            let take = (CHUNK_SIZE - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < CHUNK_SIZE || input.is_empty() {
                // A full pending chunk waits until more input proves it is not the last.
                return Ok(());
            }
            let index = self.next_counter()?;
            let start = out.len();
            out.extend_from_slice(&self.pending);
            let tag = self.keys.seal(index, &mut out[start..]);
            out.extend_from_slice(&tag);
            self.pending.zeroize();
        }
        // Full chunks straight from the input, encrypted in place in `out`. A chunk is only
        // written once at least one more byte follows it; otherwise it stays pending.
        while input.len() > CHUNK_SIZE {
            let index = self.next_counter()?;
            let start = out.len();
            out.extend_from_slice(&input[..CHUNK_SIZE]);
            let tag = self.keys.seal(index, &mut out[start..]);
            out.extend_from_slice(&tag);
            input = &input[CHUNK_SIZE..];
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    /// Encrypts what is pending and the always-short final chunk.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), ChunkError> {
        // (`self.pending` is wiped by `Drop`.)
        self.start(out);
        if self.pending.len() == CHUNK_SIZE {
            let index = self.next_counter()?;
            let start = out.len();
            out.extend_from_slice(&self.pending);
            let tag = self.keys.seal(index, &mut out[start..]);
            out.extend_from_slice(&tag);
            self.pending.zeroize();
        }
        let index = self.next_counter()?;
        let start = out.len();
        out.extend_from_slice(&self.pending);
        let tag = self.keys.seal(index, &mut out[start..]);
        out.extend_from_slice(&tag);
        Ok(())
    }
}

/// Encrypts a whole message in one call.
pub fn encrypt(
    input_key: &[u8; 32],
    context: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::with_capacity(Encryptor::ciphertext_len(plaintext.len() as u64) as usize);
    let mut enc = Encryptor::new(input_key, context, rng);
    enc.update(plaintext, &mut out)?;
    enc.finish(&mut out)?;
    Ok(out)
}

/// Decrypts a whole message in one call.
pub fn decrypt(
    input_key: &[u8; 32],
    context: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, ChunkError> {
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut dec = Decryptor::new(input_key, context);
    dec.update(ciphertext, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

enum DecState {
    Prefix,
    Chunks(Box<ChunkKeys>),
    Failed(ChunkError),
    Done,
}

/// Streaming decryption. Plaintext is appended to the output only after its chunk
/// authenticated; the final chunk's plaintext only at [`finish`](Self::finish), once the
/// message length itself is authenticated. After an error every call returns that error.
pub struct Decryptor {
    input_key: [u8; 32],
    context: Vec<u8>,
    state: DecState,
    counter: u64,
    pending: Vec<u8>,
}

impl Drop for Decryptor {
    fn drop(&mut self) {
        self.input_key.zeroize();
        self.pending.zeroize();
    }
}

impl Decryptor {
    /// Prepares to decrypt a message sealed under `input_key` and `context`.
    pub fn new(input_key: &[u8; 32], context: &[u8]) -> Self {
        Decryptor {
            input_key: *input_key,
            context: context.to_vec(),
            state: DecState::Prefix,
            counter: 0,
            pending: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE),
        }
    }

    fn fail(&mut self, e: ChunkError) -> ChunkError {
        self.state = DecState::Failed(e);
        self.pending.zeroize();
        e
    }

    /// Feeds ciphertext; appends the plaintext of every chunk that is now complete and
    /// authentic. A full-size chunk is never the last one, so it can be released at once.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        match &self.state {
            DecState::Failed(e) => return Err(*e),
            DecState::Done => return Err(ChunkError::Authentication),
            _ => {}
        }
        if let DecState::Prefix = self.state {
            let take = (PREFIX_SIZE - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < PREFIX_SIZE {
                return Ok(());
            }
            let mut salt = [0u8; SALT_SIZE];
            salt.copy_from_slice(&self.pending[..SALT_SIZE]);
            let keys = ChunkKeys::derive(&self.input_key, &salt, &self.context);
            let checked = keys.check_commitment(&self.pending[SALT_SIZE..]);
            self.pending.clear();
            if let Err(e) = checked {
                return Err(self.fail(e));
            }
            self.state = DecState::Chunks(Box::new(keys));
        }
        loop {
            if !self.pending.is_empty() {
                let take = (ENCRYPTED_CHUNK_SIZE - self.pending.len()).min(input.len());
                self.pending.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.pending.len() < ENCRYPTED_CHUNK_SIZE {
                    return Ok(());
                }
                let chunk = std::mem::take(&mut self.pending);
                let r = self.open_full(&chunk, out);
                self.pending = chunk;
                self.pending.clear();
                r?;
                continue;
            }
            if input.len() >= ENCRYPTED_CHUNK_SIZE {
                let (chunk, rest) = input.split_at(ENCRYPTED_CHUNK_SIZE);
                self.open_full(chunk, out)?;
                input = rest;
                continue;
            }
            self.pending.extend_from_slice(input);
            return Ok(());
        }
    }

    /// Opens one full-size chunk into `out`; on failure `out` is left as it was.
    fn open_full(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        if self.counter >= MAX_CHUNKS - 1 {
            return Err(self.fail(ChunkError::TooLarge));
        }
        let DecState::Chunks(keys) = &self.state else {
            return Err(ChunkError::Authentication);
        };
        let start = out.len();
        out.extend_from_slice(&chunk[..CHUNK_SIZE]);
        if let Err(e) = keys.open(self.counter, &mut out[start..], &chunk[CHUNK_SIZE..]) {
            out[start..].zeroize();
            out.truncate(start);
            return Err(self.fail(e));
        }
        self.counter += 1;
        Ok(())
    }

    /// Ends the message: the buffered final chunk must be shorter than a full chunk and
    /// authenticate as the chunk at the current counter.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ChunkError> {
        match &self.state {
            DecState::Failed(e) => return Err(*e),
            DecState::Done => return Ok(()),
            DecState::Prefix => return Err(self.fail(ChunkError::Truncated)),
            DecState::Chunks(_) => {}
        }
        if self.pending.len() < TAG_SIZE {
            return Err(self.fail(ChunkError::Truncated));
        }
        let DecState::Chunks(keys) = &self.state else {
            return Err(self.fail(ChunkError::Truncated));
        };
        let body = self.pending.len() - TAG_SIZE;
        let start = out.len();
        out.extend_from_slice(&self.pending[..body]);
        if let Err(e) = keys.open(self.counter, &mut out[start..], &self.pending[body..]) {
            out[start..].zeroize();
            out.truncate(start);
            return Err(self.fail(e));
        }
        self.pending.clear();
        self.state = DecState::Done;
        Ok(())
    }
}

#[cfg(test)]
#[path = "../chunked_tests.rs"]
mod tests;
