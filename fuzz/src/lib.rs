//! Fixed keys shared by the fuzz targets and by `examples/seeds.rs`, which writes seed inputs
//! made with these same keys (so that mutated seeds reach signature checking, license opening
//! and payload decryption instead of stopping at a key-id mismatch).
//!
//! These keys protect nothing: they exist only so that fuzzing is deterministic.

use std::sync::LazyLock;

use sealpost_core::{LicenseSecretKey, SigningKey, VerifyingKey};

/// Input key of the `chunked` target.
pub const CHUNK_KEY: [u8; 32] = [0x5e; 32];
/// Context of the `chunked` target.
pub const CHUNK_CONTEXT: &[u8] = b"sealpost fuzz context";

/// The tenant's fixed signing key.
pub static SIGNING_KEY: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::from_bytes(&[0x11; 32]).expect("a valid P-256 scalar"));

/// Its verifying key, which the `envelope` target verifies with.
pub static VERIFYING_KEY: LazyLock<VerifyingKey> = LazyLock::new(|| SIGNING_KEY.verifying_key());

/// The tenant's fixed license key, which the `envelope` target opens licenses with.
pub static LICENSE_KEY: LazyLock<LicenseSecretKey> =
    LazyLock::new(|| LicenseSecretKey::derive(b"sealpost fuzz license key, not a secret"));
