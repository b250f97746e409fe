//! # sealpost-portal
//!
//! The recipient's portal: a Leptos single-page app, compiled to WebAssembly and served as
//! static files, that takes the envelope from `message.html` (or a dropped file, or a link),
//! verifies the organization's signature, signs the recipient in (one-time passcode or an
//! OpenID Connect provider), gets share B from the key service for an ephemeral key, decrypts
//! in the browser and shows the message safely, with the sender's rights applied.
//! `docs/portal.md` describes it.
//!
//! The logic is plain Rust, built and tested natively as well:
//! - [`config`]: `config.json`, the allowed key services;
//! - [`intake`]: fragment, `postMessage` hand-off, files, links → envelope bytes;
//! - [`open`]: the crypto glue, each step a call into `sealpost-core`;
//! - [`api`]: the key service's API types and what each error means for the recipient;
//! - [`session`]: the per-tab session record;
//! - [`oidc`]: sign-in with an OpenID Connect provider in a popup (the redirect's parsing and
//!   texts; the popup and `postMessage` glue on `wasm32`);
//! - [`render`]: the decrypted message read with `mail-parser` (HTML bodies are sanitized by
//!   DOMPurify through `render::sanitize`, which exists only on `wasm32`);
//! - [`rights`]: the sealed policy's rights as the UI applies them;
//! - [`compose`]: Reply, Reply all and Forward — recipients, subject, formatting, the RFC 5322
//!   message (`mail-builder`), the reply's policy, the sealed submission and the gateway's
//!   reply endpoint.
//!
//! The browser side exists only on `wasm32`: `net` (fetch), `browser` (storage, events,
//! downloads), `app` (the state machine and mounting) and `components` (the pages). Only the
//! core touches key material and the format; this crate holds keys only as the core's types.

#![forbid(unsafe_code)]

pub mod api;
pub mod compose;
pub mod config;
pub mod intake;
pub mod oidc;
pub mod open;
pub mod render;
pub mod rights;
pub mod session;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod net;

#[cfg(target_arch = "wasm32")]
pub use app::mount;
