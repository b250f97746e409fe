//! Rendering the decrypted message: [`mime`] reads it into a view model, [`sanitize`] makes
//! HTML bodies safe for a sandboxed frame. Both are plain functions, tested natively; the
//! Leptos components that show the result are in `components::message`.

pub mod mime;
pub mod sanitize;

pub use mime::{Attachment, Body, MessageView, read_message};
pub use sanitize::{RenderOptions, Sanitized, html_document};
