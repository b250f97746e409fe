//! The envelope header: what anyone holding the file may read, and what the signature and
//! the license bind to.
//!
//! Encoding (all fields in this order, see `docs/format.md`): message id (16), created (u64),
//! license key id (8), signing key id (8), tenant id (str), key-service URL (str), sender
//! (str), template (str), subject flag (u8: 0 absent, 1 present) and, when present, the
//! subject (str). The header hash is SHA-256 over exactly these bytes.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ParseError, SealError};
use crate::keys::KeyId;
use crate::wire::{Reader, Writer, check_str};

/// A message's 128-bit random identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// A new random id.
    pub fn random(rng: &mut impl rand_core::CryptoRng) -> MessageId {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        MessageId(id)
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(s: &str) -> Option<MessageId> {
        hex::decode(s.trim()).ok()?.try_into().ok().map(MessageId)
    }

    /// The short reference a person can compare between the portal and the passcode mail:
    /// the first 6 bytes as three groups of 4 uppercase hex digits, e.g. `1A2B-3C4D-5E6F`.
    pub fn reference(&self) -> String {
        let h = hex::encode_upper(&self.0[..6]);
        format!("{}-{}-{}", &h[0..4], &h[4..8], &h[8..12])
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MessageId({self})")
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// The signed, readable header of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Random id of this message.
    pub message_id: MessageId,
    /// When it was sealed, Unix seconds.
    pub created: u64,
    /// Which tenant license key the license is sealed to.
    pub license_key_id: KeyId,
    /// Which tenant signing key signed the envelope.
    pub signing_key_id: KeyId,
    /// The tenant (organization) id.
    pub tenant_id: String,
    /// Base URL of the key service that can release share B.
    pub key_service_url: String,
    /// The sender's address.
    pub sender: String,
    /// The template the policy came from.
    pub template: String,
    /// The subject, only when the tenant chose to show it outside the encryption.
    pub subject: Option<String>,
}

impl Header {
    pub(crate) fn check(&self) -> Result<(), SealError> {
        check_str("tenant id", &self.tenant_id)?;
        check_str("key-service URL", &self.key_service_url)?;
        check_str("sender", &self.sender)?;
        check_str("template name", &self.template)?;
        if let Some(s) = &self.subject {
            check_str("subject", s)?;
        }
        Ok(())
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(&self.message_id.0);
        w.u64(self.created);
        w.bytes(&self.license_key_id.0);
        w.bytes(&self.signing_key_id.0);
        w.str(&self.tenant_id);
        w.str(&self.key_service_url);
        w.str(&self.sender);
        w.str(&self.template);
        match &self.subject {
            None => w.u8(0),
            Some(s) => {
                w.u8(1);
                w.str(s);
            }
        }
        w.buf
    }

    /// Decodes exactly one header; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Header, ParseError> {
        let mut r = Reader::new(bytes, "header");
        let header = Header {
            message_id: MessageId(r.array()?),
            created: r.u64()?,
            license_key_id: KeyId(r.array()?),
            signing_key_id: KeyId(r.array()?),
            tenant_id: r.str()?,
            key_service_url: r.str()?,
            sender: r.str()?,
            template: r.str()?,
            subject: match r.u8()? {
                0 => None,
                1 => Some(r.str()?),
                _ => return Err(ParseError::InvalidField("subject flag")),
            },
        };
        r.finish()?;
        Ok(header)
    }
}

/// SHA-256 of an encoded header: the context of the payload encryption and the AAD of the
/// license.
pub fn header_hash(encoded: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(subject: Option<&str>) -> Header {
        Header {
            message_id: MessageId([0xab; 16]),
            created: 1_790_000_000,
            license_key_id: KeyId([1; 8]),
            signing_key_id: KeyId([2; 8]),
            tenant_id: "example.com".into(),
            key_service_url: "https://keys.example.com".into(),
            sender: "alice@example.com".into(),
            template: "Encrypt-Only".into(),
            subject: subject.map(String::from),
        }
    }

    #[test]
    fn round_trip() {
        for h in [sample(None), sample(Some("Quarterly ☂ numbers"))] {
            assert_eq!(Header::decode(&h.encode()).unwrap(), h);
        }
    }

    #[test]
    fn strict_decoding() {
        let mut bytes = sample(None).encode();
        bytes.push(0);
        assert_eq!(
            Header::decode(&bytes),
            Err(ParseError::TrailingBytes("header"))
        );
        let mut bytes = sample(None).encode();
        *bytes.last_mut().unwrap() = 2;
        assert_eq!(
            Header::decode(&bytes),
            Err(ParseError::InvalidField("subject flag"))
        );
        let bytes = sample(Some("x")).encode();
        assert_eq!(
            Header::decode(&bytes[..bytes.len() - 1]),
            Err(ParseError::Truncated("header"))
        );
    }

    #[test]
    fn reference_format() {
        let id = MessageId([
            0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        assert_eq!(id.reference(), "1A2B-3C4D-5E6F");
        assert_eq!(MessageId::from_hex(&id.to_hex()), Some(id));
    }
}
