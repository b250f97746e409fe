//! # sealpost-keyservice
//!
//! The key service: the only party that can turn a license into share B. It keeps tenants
//! and their keys (license private keys encrypted at rest), signs recipients in with
//! one-time passcodes or an OpenID Connect provider, issues sessions, and releases share B — sealed to the browser's
//! ephemeral key — only to a signed-in recipient of a message that is neither revoked nor
//! expired, after the audit record of that release is durable. It never receives a payload
//! or share A.
//!
//! Layers: [`store`] (SQLite or PostgreSQL), pure rules ([`otp`], [`session`], [`oidc`]), the
//! logic that ties them together, and [`delivery`] of passcode mail over SMTP. Time comes
//! from a [`clock::Clock`] and randomness from a caller-supplied RNG, so tests control both.

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod http;
pub mod oidc;
pub mod otp;
pub mod ratelimit;
pub mod service;
pub mod session;
pub mod store;
