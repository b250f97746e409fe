//! Finding the envelope in a picked or dropped file with the browser's own text search and
//! base64 decoder (`TextDecoder`, `String.prototype.indexOf`, `Uint8Array.fromBase64`), so that
//! a large `message.html` is neither copied whole into WebAssembly memory nor scanned and
//! decoded byte by byte there. Built only for wasm32 with the `webcrypto` feature.
//!
//! [`extract_envelope_js`] returns exactly what [`extract_envelope`] returns for the same bytes.
//! It does two of its cases itself, with the same rules: a raw envelope (the file starts with
//! the magic), and a `message.html`: the first `type="application/x-sealpost-envelope"`, the
//! first `>` after it, the first `</script>` after that, and the text between decoded as
//! standard base64 with padding and zero trailing bits, ASCII white space skipped
//! (`lastChunkHandling: "strict"` is that rule). The text is decoded as UTF-8 first, which keeps
//! every ASCII byte as itself and never turns other bytes into ASCII, so the positions found are
//! the same and a byte that is not base64 fails in both. Everything else — a wrapper `.eml`, a
//! file without the marker, a browser without `Uint8Array.fromBase64` — goes to
//! [`extract_envelope`] on a copy of the file.

use js_sys::{Array, Function, JsString, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};

use super::extract::{ExtractError, extract_envelope};
use super::html::ENVELOPE_SCRIPT_TYPE;
use crate::envelope::MAGIC;

/// [`extract_envelope`] of the bytes in `file`, reading them in place where it can.
pub fn extract_envelope_js(file: &Uint8Array) -> Result<Vec<u8>, ExtractError> {
    let magic_len = MAGIC.len() as u32;
    if file.length() >= magic_len && file.subarray(0, magic_len).to_vec() == MAGIC[..] {
        return Ok(file.to_vec());
    }
    if let Some(found) = read_message_html(file) {
        return found;
    }
    extract_envelope(&file.to_vec())
}

/// The envelope block of a `message.html`, decoded by the browser; `None` when the file has no
/// complete block or the browser lacks what is needed (the caller then does it all in Rust).
fn read_message_html(file: &Uint8Array) -> Option<Result<Vec<u8>, ExtractError>> {
    let global = js_sys::global();
    let uint8array = Reflect::get(&global, &JsValue::from_str("Uint8Array")).ok()?;
    let from_base64: Function = Reflect::get(&uint8array, &JsValue::from_str("fromBase64"))
        .ok()?
        .dyn_into()
        .ok()?;
    let decoder_class: Function = Reflect::get(&global, &JsValue::from_str("TextDecoder"))
        .ok()?
        .dyn_into()
        .ok()?;
    let decoder = Reflect::construct(&decoder_class, &Array::new()).ok()?;
    let decode: Function = Reflect::get(&decoder, &JsValue::from_str("decode"))
        .ok()?
        .dyn_into()
        .ok()?;
    // Too large for one JavaScript string throws: then Rust does it.
    let text: JsString = decode.call1(&decoder, file).ok()?.dyn_into().ok()?;

    let marker = format!("type=\"{ENVELOPE_SCRIPT_TYPE}\"");
    let at = text.index_of(&marker, 0);
    if at < 0 {
        return None;
    }
    let open_end = text.index_of(">", at);
    if open_end < 0 {
        return None;
    }
    let open_end = open_end + 1;
    let close = text.index_of("</script>", open_end);
    if close < 0 {
        return None;
    }
    let block = text.substring(open_end as u32, close as u32);
    let options = Object::new();
    Reflect::set(
        &options,
        &JsValue::from_str("lastChunkHandling"),
        &JsValue::from_str("strict"),
    )
    .ok()?;
    Some(
        match from_base64
            .call2(&uint8array, &block, &options)
            .map(JsCast::dyn_into::<Uint8Array>)
        {
            Ok(Ok(bytes)) => Ok(bytes.to_vec()),
            _ => Err(ExtractError::BadEncoding),
        },
    )
}
