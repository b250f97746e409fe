//! Decrypted tenant license keys, kept in memory so that rewraps of a tenant's messages do
//! not decrypt (and re-derive the public half of) the same key every time.
//!
//! The cache never decides whether a key may be used. The caller reads the key's row from
//! the store on every call and passes its wrapped bytes; an entry is used only if they are
//! exactly the bytes it was decrypted from. So a key that was retired, removed or replaced —
//! by this instance, another instance on the same database, or `sealpost tenant add` — is
//! refused or re-read at once, as without the cache.
//!
//! What it deliberately does not do: cache rows or tenants for a while (that would delay a
//! retirement), or grow without bound (at [`MAX_ENTRIES`] it starts over).

use std::collections::HashMap;
use std::sync::Mutex;

use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::{KeyError, KeyId, LicenseSecretKey};

/// Most keys kept; one more empties the cache first.
pub(crate) const MAX_ENTRIES: usize = 1024;

/// Decrypted license keys by (tenant id, key id).
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

struct Entry {
    /// The wrapped bytes the key was decrypted from.
    wrapped: Vec<u8>,
    key: LicenseSecretKey,
}

impl KeyCache {
    /// The key that `wrapped` (the row's `wrapped_private`) decrypts to under `kek`: from the
    /// cache if these very bytes were decrypted before, else decrypted now and kept.
    pub(crate) fn unwrap(
        &self,
        kek: &KeyEncryptionKey,
        tenant_id: &str,
        id: &KeyId,
        wrapped: &[u8],
    ) -> Result<LicenseSecretKey, KeyError> {
        let name = (tenant_id.to_string(), id.to_string());
        if let Some(e) = self.lock().get(&name)
            && e.wrapped == wrapped
        {
            return Ok(e.key.clone());
        }
        let key = kek.unwrap(tenant_id, id, wrapped)?;
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&name) {
            entries.clear();
        }
        entries.insert(
            name,
            Entry {
                wrapped: wrapped.to_vec(),
                key: key.clone(),
            },
        );
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        // The map is valid after any panic (inserts and clears are single calls).
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    fn setup() -> (KeyEncryptionKey, LicenseSecretKey, KeyId, ChaCha20Rng) {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let kek = KeyEncryptionKey::generate(&mut rng);
        let key = LicenseSecretKey::generate(&mut rng);
        let id = key.public_key().key_id();
        (kek, key, id, rng)
    }

    #[test]
    fn decrypts_once_and_serves_the_same_bytes_from_memory() {
        let (kek, key, id, mut rng) = setup();
        let wrapped = kek.wrap("example.com", &key, &mut rng);
        let cache = KeyCache::default();
        let first = cache.unwrap(&kek, "example.com", &id, &wrapped).unwrap();
        assert_eq!(first.public_key().to_bytes(), key.public_key().to_bytes());
        // Served from memory: even another key-encryption key gets the cached key for the
        // same bytes (the bytes were proven to decrypt under the service's key).
        let other = KeyEncryptionKey::generate(&mut rng);
        let again = cache.unwrap(&other, "example.com", &id, &wrapped).unwrap();
        assert_eq!(again.public_key().to_bytes(), key.public_key().to_bytes());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn changed_bytes_are_decrypted_again_and_bad_ones_refused() {
        let (kek, key, id, mut rng) = setup();
        let cache = KeyCache::default();
        let wrapped = kek.wrap("example.com", &key, &mut rng);
        cache.unwrap(&kek, "example.com", &id, &wrapped).unwrap();
        let mut damaged = wrapped.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(cache.unwrap(&kek, "example.com", &id, &damaged).is_err());
        let rewrapped = kek.wrap("example.com", &key, &mut rng);
        assert_ne!(rewrapped, wrapped);
        let k = cache.unwrap(&kek, "example.com", &id, &rewrapped).unwrap();
        assert_eq!(k.public_key().to_bytes(), key.public_key().to_bytes());
        // The same bytes under another tenant id are another key (and do not decrypt).
        assert!(cache.unwrap(&kek, "other.com", &id, &rewrapped).is_err());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stays_bounded() {
        let (kek, key, id, mut rng) = setup();
        let wrapped: Vec<(String, Vec<u8>)> = (0..=MAX_ENTRIES)
            .map(|i| {
                let t = format!("t{i}.example");
                let w = kek.wrap(&t, &key, &mut rng);
                (t, w)
            })
            .collect();
        let cache = KeyCache::default();
        for (t, w) in &wrapped {
            cache.unwrap(&kek, t, &id, w).unwrap();
            assert!(cache.len() <= MAX_ENTRIES);
        }
        assert_eq!(cache.len(), 1, "the key after the cap started a new cache");
    }
}
