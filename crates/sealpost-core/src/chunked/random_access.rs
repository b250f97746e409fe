//! Random access: decrypt any one chunk of a complete ciphertext held in memory.

use zeroize::Zeroize;

use super::{
    ChunkError, ChunkKeys, ENCRYPTED_CHUNK_SIZE, MAX_CHUNKS, PREFIX_SIZE, SALT_SIZE, TAG_SIZE,
};

/// Random access to the chunks of a complete ciphertext held in memory.
pub struct RandomAccess<'a> {
    keys: ChunkKeys,
    body: &'a [u8],
    chunks: u64,
}

impl<'a> RandomAccess<'a> {
    /// Checks the commitment and that the length is one a message can have.
    pub fn new(
        input_key: &[u8; 32],
        context: &[u8],
        ciphertext: &'a [u8],
    ) -> Result<Self, ChunkError> {
        if ciphertext.len() < PREFIX_SIZE + TAG_SIZE {
            return Err(ChunkError::Truncated);
        }
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&ciphertext[..SALT_SIZE]);
        let keys = ChunkKeys::derive(input_key, &salt, context);
        Self::with_keys(keys, ciphertext)
    }

    /// The checks of [`new`](Self::new) with keys already derived from this ciphertext's salt
    /// (the WebCrypto path derives once and needs the raw AEAD key as well).
    pub(crate) fn with_keys(keys: ChunkKeys, ciphertext: &'a [u8]) -> Result<Self, ChunkError> {
        if ciphertext.len() < PREFIX_SIZE + TAG_SIZE {
            return Err(ChunkError::Truncated);
        }
        keys.check_commitment(&ciphertext[SALT_SIZE..PREFIX_SIZE])?;
        let body = &ciphertext[PREFIX_SIZE..];
        let full = (body.len() / ENCRYPTED_CHUNK_SIZE) as u64;
        let last = body.len() % ENCRYPTED_CHUNK_SIZE;
        if last < TAG_SIZE {
            return Err(ChunkError::Truncated);
        }
        let chunks = full + 1;
        if chunks > MAX_CHUNKS {
            return Err(ChunkError::TooLarge);
        }
        Ok(RandomAccess { keys, body, chunks })
    }

    /// Number of chunks, the short final one included.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Plaintext length implied by the ciphertext length (authenticated only once the last
    /// chunk has been decrypted).
    pub fn plaintext_len(&self) -> u64 {
        self.body.len() as u64 - self.chunks * TAG_SIZE as u64
    }

    /// The ciphertext of chunk `index`, tag included.
    pub fn chunk_ciphertext(&self, index: u64) -> Result<&'a [u8], ChunkError> {
        if index >= self.chunks {
            return Err(ChunkError::OutOfRange);
        }
        let start = index as usize * ENCRYPTED_CHUNK_SIZE;
        let end = (start + ENCRYPTED_CHUNK_SIZE).min(self.body.len());
        Ok(&self.body[start..end])
    }

    /// The AEAD nonce of chunk `index` (for decrypting it elsewhere, e.g. WebCrypto).
    pub fn chunk_nonce(&self, index: u64) -> [u8; 12] {
        self.keys.nonce(index)
    }

    /// Decrypts chunk `index`. Decrypting the last chunk authenticates the message length.
    pub fn decrypt_chunk(&self, index: u64) -> Result<Vec<u8>, ChunkError> {
        let ct = self.chunk_ciphertext(index)?;
        let body = ct.len() - TAG_SIZE;
        let mut out = ct[..body].to_vec();
        self.keys
            .open(index, &mut out, &ct[body..])
            .inspect_err(|_| out.zeroize())?;
        Ok(out)
    }
}
