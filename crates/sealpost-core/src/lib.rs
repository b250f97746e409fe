//! # sealpost-core
//!
//! The one implementation of the Sealpost protected-message format, shared by the servers,
//! the CLI and the browser portal (it compiles to `wasm32-unknown-unknown`). It does no I/O
//! and runs no async runtime: bytes in, bytes out; time and randomness are parameters.
//!
//! Which type for which job:
//! - Sealing a message: build a [`Policy`] from a [`Template`], then [`seal`] with a
//!   [`Sealer`] (the tenant's [`LicensePublicKey`] and [`SigningKey`]).
//! - Reading an envelope: [`Envelope::parse`] (no key needed) → [`Envelope::verify`] →
//!   share B from the key service (or [`Envelope::open_license`] with the tenant key) →
//!   [`Envelope::decrypt`], [`Envelope::decryptor`] or [`Envelope::random_access`]; in a
//!   browser, with the `webcrypto` feature (wasm32 only), `Envelope::decrypt_webcrypto` has
//!   SubtleCrypto open the chunks after the same checks (the one async function here; it
//!   awaits the browser's promises and brings no runtime).
//! - A reply sealed in a browser, which has no signing key: [`seal_submission`] with a
//!   [`SubmissionSealer`] (public keys only) makes an unsigned *submission*; the gateway
//!   [`countersign`]s it once the key service has authorized it.
//! - Mail: [`mail::wrap`] turns a message and its envelope into the wrapper mail;
//!   [`mail::extract_envelope`] gets an envelope back out of a wrapper `.eml` or a
//!   `message.html`.
//! - The payload layer alone: [`chunked`] (C2SP chunked encryption, Cobblestone-256).
//! - Speed for servers: the `native-p256` feature (native targets only) has HPKE's P-256 done
//!   by AWS-LC (module `hpke_native`), with the same bytes; the key service turns it on.
//!
//! The byte-level specification is `docs/format.md`. Only this crate touches key material
//! and the format; other crates hold keys only as opaque values of the types here.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chunked;
pub mod envelope;
pub mod error;
pub mod header;
#[cfg(all(feature = "native-p256", not(target_arch = "wasm32")))]
pub mod hpke_native;
pub mod hpke_seal;
pub mod keys;
pub mod license;
pub mod mail;
pub mod policy;
pub mod rewrap;
pub mod submission;
mod wire;

pub use envelope::{Envelope, Opened, Sealer, open_with_tenant_keys, seal};
pub use error::{KeyError, OpenError, ParseError, SealError};
pub use header::{Header, MessageId};
pub use keys::{KeyId, LicensePublicKey, LicenseSecretKey, SigningKey, VerifyingKey};
pub use license::License;
pub use policy::{Policy, Right, Rights, Template};
pub use submission::{
    CountersignError, SubmissionSealer, SubmissionSealing, countersign, seal_submission,
};
