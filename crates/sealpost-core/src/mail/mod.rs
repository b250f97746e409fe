//! Mail codecs: the wrapper mail that replaces a protected message, the `message.html`
//! attachment that carries its envelope, and the reverse (getting an envelope back out of a
//! wrapper `.eml` or a `message.html`).
//!
//! Everything here is pure: no clock, no randomness, no network. MIME boundaries derive from
//! the message id, so the same inputs always give the same wrapper. Decryption and rendering
//! of the protected message itself are not here (see the envelope and the portal).

#[cfg(all(feature = "webcrypto", target_arch = "wasm32"))]
mod browser;
mod extract;
mod html;
pub mod rfc5322;
mod wrapper;

#[cfg(all(feature = "webcrypto", target_arch = "wasm32"))]
pub use browser::extract_envelope_js;
pub use extract::{ExtractError, extract_envelope};
pub use html::{ENVELOPE_SCRIPT_TYPE, message_html};
pub use wrapper::{WrapperSettings, wrap};

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
