//! Rendering the decrypted message: [`mime`] reads it into a view model (plain Rust, tested
//! natively), `sanitize` makes HTML bodies safe for a sandboxed frame (with DOMPurify, so only
//! on `wasm32`, tested in the browser). The Leptos components that show the result are in
//! `components::message`.

pub mod mime;
#[cfg(target_arch = "wasm32")]
pub mod sanitize;

pub use mime::{Attachment, Body, MessageView, read_message};
#[cfg(target_arch = "wasm32")]
pub use sanitize::{RenderOptions, SanitizeError, Sanitized, html_document};
