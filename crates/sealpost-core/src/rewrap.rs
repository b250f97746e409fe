//! The rewrap leg: share B on its way from the key service to one browser.
//!
//! The portal makes an ephemeral P-256 key pair ([`ClientSecretKey`]) and sends the public half
//! with the header and license. The key service opens the license, checks its policy, and
//! answers with share B sealed to that key:
//!
//! ```text
//! info   = "sealpost share b v1" || 0x00 || message id
//! aad    = SHA-256(header)
//! sealed = enc (65) || AEAD(share B (32))            (HPKE base mode, Sealpost's suite)
//! ```
//!
//! Binding the message id and header hash means a sealed share cannot be replayed into
//! another envelope's session. Deciding *whether* to release share B is not here; that is the
//! key service's policy.

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::OpenError;
use crate::header::{Header, header_hash};
use crate::hpke_seal;
use crate::keys::{LicensePublicKey, LicenseSecretKey};
use crate::license::SHARE_LEN;

/// A browser's ephemeral HPKE key for one rewrap (the same P-256 key type as a license key).
pub type ClientSecretKey = LicenseSecretKey;
/// The public half of a [`ClientSecretKey`], sent to the key service.
pub type ClientPublicKey = LicensePublicKey;

const SHARE_INFO_LABEL: &[u8] = b"sealpost share b v1\0";

fn info(encoded_header: &[u8]) -> Result<Vec<u8>, OpenError> {
    let header = Header::decode(encoded_header).map_err(|_| OpenError::CannotOpen)?;
    Ok([SHARE_INFO_LABEL, &header.message_id.0].concat())
}

/// Seals share B to the client's key (key service side).
pub fn seal_share(
    client: &ClientPublicKey,
    encoded_header: &[u8],
    share_b: &[u8; SHARE_LEN],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, OpenError> {
    let info = info(encoded_header)?;
    Ok(hpke_seal::seal(
        client,
        &info,
        &header_hash(encoded_header),
        share_b,
        rng,
    ))
}

/// Opens a sealed share B with the client's ephemeral key (portal side).
pub fn open_share(
    client: &ClientSecretKey,
    encoded_header: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<[u8; SHARE_LEN]>, OpenError> {
    let info = info(encoded_header)?;
    let plain = Zeroizing::new(hpke_seal::open(
        client,
        &info,
        &header_hash(encoded_header),
        sealed,
    )?);
    let mut share = Zeroizing::new([0u8; SHARE_LEN]);
    if plain.len() != SHARE_LEN {
        return Err(OpenError::CannotOpen);
    }
    share.copy_from_slice(&plain);
    Ok(share)
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::header::MessageId;
    use crate::keys::KeyId;

    fn header(id: u8) -> Vec<u8> {
        Header {
            message_id: MessageId([id; 16]),
            created: 1,
            license_key_id: KeyId([0; 8]),
            signing_key_id: KeyId([0; 8]),
            tenant_id: "t".into(),
            key_service_url: "https://k".into(),
            sender: "a@t".into(),
            template: "Encrypt-Only".into(),
            subject: None,
        }
        .encode()
    }

    #[test]
    fn share_round_trip_and_binding() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let client = ClientSecretKey::generate(&mut rng);
        let other = ClientSecretKey::generate(&mut rng);
        let (h1, h2) = (header(1), header(2));
        let sealed = seal_share(&client.public_key(), &h1, &[7; 32], &mut rng).unwrap();
        assert_eq!(*open_share(&client, &h1, &sealed).unwrap(), [7; 32]);
        assert_eq!(
            open_share(&other, &h1, &sealed).unwrap_err(),
            OpenError::CannotOpen
        );
        assert_eq!(
            open_share(&client, &h2, &sealed).unwrap_err(),
            OpenError::CannotOpen
        );
        assert!(seal_share(&client.public_key(), b"junk", &[7; 32], &mut rng).is_err());
    }
}
