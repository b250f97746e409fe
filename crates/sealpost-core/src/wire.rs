//! Byte-level reading and writing of the envelope's building blocks.
//!
//! Every multi-byte integer is big-endian; a `str` is a `u16` length followed by that many
//! bytes of UTF-8. This module knows nothing about what the fields mean; it only refuses
//! input that ends early, that is not UTF-8, or that has bytes left over.

use crate::error::ParseError;

/// Appends encoded fields to a byte vector.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    /// Writes a length-prefixed string. Callers check the 65 535-byte limit first
    /// (see [`check_str`]); a longer string here is a programming error and is cut.
    pub(crate) fn str(&mut self, s: &str) {
        let len = s.len().min(u16::MAX as usize);
        self.u16(len as u16);
        self.bytes(&s.as_bytes()[..len]);
    }
}

/// Checks that a string fits a `str` field.
pub(crate) fn check_str(field: &'static str, s: &str) -> Result<(), crate::error::SealError> {
    if s.len() > u16::MAX as usize {
        return Err(crate::error::SealError::FieldTooLong(field));
    }
    Ok(())
}

/// Reads fields from a byte slice, front to back.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure being read, for error messages.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        if self.buf.len() < n {
            return Err(ParseError::Truncated(self.what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub(crate) fn str(&mut self) -> Result<String, ParseError> {
        let len = self.u16()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ParseError::NotUtf8(self.what))
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    /// Fails if anything is left: every structure has exactly one encoding.
    pub(crate) fn finish(self) -> Result<(), ParseError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ParseError::TrailingBytes(self.what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_strictness() {
        let mut w = Writer::default();
        w.u8(7);
        w.u16(300);
        w.u64(1 << 40);
        w.str("héllo");
        let mut r = Reader::new(&w.buf, "test");
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 300);
        assert_eq!(r.u64().unwrap(), 1 << 40);
        assert_eq!(r.str().unwrap(), "héllo");
        r.finish().unwrap();

        let mut r = Reader::new(&w.buf[..3], "test");
        r.u8().unwrap();
        assert!(matches!(r.u64(), Err(ParseError::Truncated("test"))));
        let r = Reader::new(&[1], "test");
        assert!(matches!(r.finish(), Err(ParseError::TrailingBytes("test"))));
        let mut r = Reader::new(&[0, 1, 0xff], "test");
        assert!(matches!(r.str(), Err(ParseError::NotUtf8("test"))));
    }
}
