//! Recipient sessions: 256-bit random bearer tokens, stored only as their SHA-256, bound to
//! one address, with an idle and an absolute timeout. Pure rules; the store keeps the rows.

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Prefix that makes a leaked token recognisable (e.g. to secret scanners).
pub const TOKEN_PREFIX: &str = "sps_";

/// Session lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused this long (seconds) is over.
    pub idle_secs: i64,
    /// No session lasts longer than this (seconds) after sign-in.
    pub absolute_secs: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
        }
    }
}

/// A new token and the hash to store.
pub fn new_token(rng: &mut impl CryptoRng) -> (Zeroizing<String>, [u8; 32]) {
    use base64::Engine;
    let mut raw = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(&mut raw[..]);
    let token = Zeroizing::new(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..])
    ));
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a session created at `created`, last used at `last_seen`, with absolute end
/// `expires`, is still good at `now`.
pub fn is_live(limits: &SessionLimits, last_seen: i64, expires: i64, now: i64) -> bool {
    now < expires && now < last_seen.saturating_add(limits.idle_secs)
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn tokens() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let (t1, h1) = new_token(&mut rng);
        let (t2, _) = new_token(&mut rng);
        assert!(t1.starts_with(TOKEN_PREFIX) && t1.len() == 4 + 43);
        assert_ne!(*t1, *t2);
        assert_eq!(hash_token(&t1), h1);
    }

    #[test]
    fn timeouts() {
        let l = SessionLimits {
            idle_secs: 100,
            absolute_secs: 1000,
        };
        assert!(is_live(&l, 0, 1000, 99));
        assert!(!is_live(&l, 0, 1000, 100), "idle");
        assert!(is_live(&l, 950, 1000, 999));
        assert!(!is_live(&l, 950, 1000, 1000), "absolute");
    }
}
