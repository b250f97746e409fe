//! `std::io` adapters over the push API: [`EncryptWriter`] and [`DecryptReader`].

use zeroize::Zeroize;

use super::{ChunkError, Decryptor, ENCRYPTED_CHUNK_SIZE, Encryptor};

/// `std::io::Write` adapter: everything written is encrypted into `inner`;
/// [`finish`](Self::finish) writes the final chunk and returns `inner`.
///
/// If a write to `inner` fails, the writer refuses every later call: the data already given
/// to the encryptor cannot be given again without corrupting the ciphertext.
pub struct EncryptWriter<W: std::io::Write> {
    inner: W,
    enc: Encryptor,
    buf: Vec<u8>,
    failed: bool,
}

impl<W: std::io::Write> EncryptWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, enc: Encryptor) -> Self {
        EncryptWriter {
            inner,
            enc,
            buf: Vec::with_capacity(ENCRYPTED_CHUNK_SIZE * 4),
            failed: false,
        }
    }

    /// Writes the final chunk, flushes and returns the inner writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.failed {
            return Err(std::io::Error::other(
                "an earlier write failed; the ciphertext is incomplete",
            ));
        }
        self.buf.clear();
        self.enc
            .finish(&mut self.buf)
            .map_err(std::io::Error::other)?;
        self.inner.write_all(&self.buf)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: std::io::Write> std::io::Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other(
                "an earlier write failed; the ciphertext is incomplete",
            ));
        }
        self.buf.clear();
        let result = self
            .enc
            .update(data, &mut self.buf)
            .map_err(std::io::Error::other)
            .and_then(|()| self.inner.write_all(&self.buf));
        self.failed = result.is_err();
        result.map(|()| data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `std::io::Read` adapter: reads ciphertext from `inner`, yields authenticated plaintext.
/// Errors surface as `io::ErrorKind::InvalidData` and repeat on every later read.
pub struct DecryptReader<R: std::io::Read> {
    inner: R,
    dec: Decryptor,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: std::io::Read> Drop for DecryptReader<R> {
    fn drop(&mut self) {
        self.out.zeroize();
    }
}

impl<R: std::io::Read> DecryptReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, dec: Decryptor) -> Self {
        DecryptReader {
            inner,
            dec,
            out: Vec::new(),
            pos: 0,
            eof: false,
        }
    }
}

impl<R: std::io::Read> std::io::Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let invalid = |e: ChunkError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        while self.pos == self.out.len() {
            if self.eof {
                return Ok(0);
            }
            self.out.zeroize();
            self.out.clear();
            self.pos = 0;
            let mut input = [0u8; ENCRYPTED_CHUNK_SIZE];
            let n = self.inner.read(&mut input)?;
            if n == 0 {
                self.dec.finish(&mut self.out).map_err(invalid)?;
                self.eof = true;
            } else {
                self.dec
                    .update(&input[..n], &mut self.out)
                    .map_err(invalid)?;
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
