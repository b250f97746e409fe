//! One-time passcodes: generation, keyed hashing, constant-time checking, and the limits.
//!
//! A passcode is [`CODE_DIGITS`] decimal digits drawn uniformly from the CSPRNG. Only
//! HMAC-SHA256(server secret, challenge id || 0x00 || code) is stored, and a guess is
//! compared in constant time. The numbers in [`OtpLimits::default`] are the documented limits
//! (docs/api.md); this module holds no state and reads no clock.

use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Digits in a passcode (Office 365 Message Encryption also uses 8).
pub const CODE_DIGITS: usize = 8;

/// The limits on passcodes, per the key-service specification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OtpLimits {
    /// How long a code is valid, in seconds (at most 600).
    pub lifetime_secs: i64,
    /// Wrong guesses that kill a code.
    pub max_attempts: i64,
    /// Codes mailed to one address per rolling hour.
    pub max_codes_per_hour: i64,
    /// Consecutive failures after which an address is locked out.
    pub lockout_after_failures: i64,
    /// A lockout ends this many seconds after the last failure (failures further apart
    /// than this are not consecutive).
    pub lockout_secs: i64,
}

impl Default for OtpLimits {
    fn default() -> Self {
        OtpLimits {
            lifetime_secs: 600,
            max_attempts: 5,
            max_codes_per_hour: 10,
            lockout_after_failures: 100,
            lockout_secs: 24 * 3600,
        }
    }
}

/// A fresh passcode.
pub fn generate_code(rng: &mut impl CryptoRng) -> Zeroizing<String> {
    // Rejection sampling keeps every code equally likely.
    let modulus = 10u64.pow(CODE_DIGITS as u32);
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let v = rng.next_u64();
        if v < limit {
            return Zeroizing::new(format!("{:0width$}", v % modulus, width = CODE_DIGITS));
        }
    }
}

/// A fresh challenge id: 16 random bytes, base64url.
pub fn new_challenge_id(rng: &mut impl CryptoRng) -> String {
    use base64::Engine;
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Accepts what people type: digits with optional spaces or dashes. `None` if it cannot be
/// a passcode at all.
pub fn normalize_code(input: &str) -> Option<Zeroizing<String>> {
    let digits: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '\t'))
        .collect();
    let digits = Zeroizing::new(digits);
    (digits.len() == CODE_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The stored form of a code.
pub fn hash_code(secret: &[u8], challenge_id: &str, code: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"sealpost otp v1\0");
    mac.update(challenge_id.as_bytes());
    mac.update(&[0]);
    mac.update(code.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether `code` matches `stored`, in constant time.
pub fn check_code(secret: &[u8], challenge_id: &str, code: &str, stored: &[u8]) -> bool {
    hash_code(secret, challenge_id, code).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn codes_are_eight_digits_and_vary() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let codes: Vec<_> = (0..200).map(|_| generate_code(&mut rng)).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.to_string()).collect();
        assert!(distinct.len() > 190);
        // Leading zeros occur: every digit position takes the value 0 somewhere.
        assert!((0..8).all(|i| codes.iter().any(|c| c.as_bytes()[i] == b'0')));
    }

    #[test]
    fn hashing_binds_challenge_and_secret() {
        let h = hash_code(b"secret", "c1", "12345678");
        assert!(check_code(b"secret", "c1", "12345678", &h));
        assert!(!check_code(b"secret", "c2", "12345678", &h));
        assert!(!check_code(b"other", "c1", "12345678", &h));
        assert!(!check_code(b"secret", "c1", "12345679", &h));
        assert!(!check_code(b"secret", "c1", "12345678", &h[..31]));
    }

    #[test]
    fn normalization() {
        assert_eq!(
            normalize_code(" 1234-5678 ").as_deref().map(String::as_str),
            Some("12345678")
        );
        assert!(normalize_code("1234567").is_none());
        assert!(normalize_code("12345678a").is_none());
        assert!(normalize_code("１２３４５６７８").is_none());
    }
}
