//! `message.html`: the attachment that carries an envelope to the recipient's browser.
//!
//! The file is self-contained and inert until the recipient acts: it shows who sent the
//! message and its reference, and a button that opens the portal. Its script hands the
//! envelope over either in the URL fragment (small envelopes; a fragment is never sent to a
//! server) or by `postMessage` to the portal's origin once the portal window says
//! `sealpost-ready`. With scripts off, the file says how to open it by hand (drop it onto the
//! portal). The envelope sits in a `<script type="application/x-sealpost-envelope">` block as
//! base64, which no browser executes. Nothing in this file is secret beyond what the
//! envelope's readable header already shows.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::escape_html;
use super::wrapper::WrapperSettings;
use crate::header::Header;

/// The `type` of the script element that holds the base64 envelope.
pub const ENVELOPE_SCRIPT_TYPE: &str = "application/x-sealpost-envelope";

/// Envelopes up to this many base64url characters travel in the URL fragment.
pub const FRAGMENT_LIMIT: usize = 48_000;

const SCRIPT: &str = include_str!("message_html.js");

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1b1f24}\
main{max-width:36rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:1.4rem;margin-top:0}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}\
#sp-open{display:inline-block;margin:1rem 0;padding:.75rem 1.25rem;background:#0b57d0;color:#fff;border-radius:6px;text-decoration:none;font-weight:600}\
#sp-open:focus{outline:3px solid #f9ab00;outline-offset:2px}.small{font-size:.9rem;color:#4a5360}";

/// Builds `message.html` for an envelope whose readable header is `header`.
pub fn message_html(envelope: &[u8], header: &Header, settings: &WrapperSettings) -> String {
    let org = escape_html(&settings.organization);
    let portal = escape_html(&settings.portal_url);
    let sender = escape_html(&header.sender);
    let reference = header.message_id.reference();
    let encoded = B64.encode(envelope);
    let mut body = String::with_capacity(encoded.len() + encoded.len() / 76 + 6000);
    body.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    body.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    body.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    body.push_str(&format!(
        "<meta name=\"sealpost-portal\" content=\"{portal}\">\n"
    ));
    body.push_str(&format!("<title>Protected message from {org}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"));
    body.push_str(&format!("<h1>Protected message from {org}</h1>\n"));
    body.push_str(&format!(
        "<dl>\n<dt>From</dt><dd>{sender}</dd>\n<dt>Reference</dt><dd>{reference}</dd>\n</dl>\n"
    ));
    body.push_str(
        "<p>This message is encrypted. To read it, open it in the secure portal and sign in with the e-mail address it was sent to.</p>\n",
    );
    body.push_str(&format!(
        "<p><a id=\"sp-open\" href=\"{portal}\" target=\"_blank\" rel=\"noopener noreferrer\">Open the message</a></p>\n"
    ));
    body.push_str("<p id=\"sp-status\" class=\"small\" role=\"status\">If nothing happens when you select the button, open the portal and drop this file onto the page.</p>\n");
    body.push_str(&format!(
        "<noscript><p>Scripts are turned off, so this file cannot open the message by itself. Go to <a href=\"{portal}\">{portal}</a>, then drop this file (message.html) onto the page or choose it with the file picker.</p></noscript>\n"
    ));
    body.push_str(&format!(
        "<p class=\"small\">The reference {reference} also appears in the sign-in e-mail, so you can check that the code you receive belongs to this message.</p>\n</main>\n"
    ));
    body.push_str(&format!(
        "<script type=\"{ENVELOPE_SCRIPT_TYPE}\" id=\"sealpost-envelope\" data-format=\"1\">\n"
    ));
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        body.push('\n');
    }
    body.push_str("</script>\n<script>\n");
    body.push_str(&SCRIPT.replace("FRAGMENT_LIMIT", &FRAGMENT_LIMIT.to_string()));
    body.push_str("\n</script>\n</body>\n</html>\n");
    body
}

/// Finds the envelope block in a `message.html` and decodes it.
pub(crate) fn read(html: &[u8]) -> Option<Result<Vec<u8>, base64::DecodeError>> {
    let marker = format!("type=\"{ENVELOPE_SCRIPT_TYPE}\"");
    let at = find(html, marker.as_bytes())?;
    let open_end = at + find(&html[at..], b">")? + 1;
    let close = open_end + find(&html[open_end..], b"</script>")?;
    let text: Vec<u8> = html[open_end..close]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    Some(B64.decode(text))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
