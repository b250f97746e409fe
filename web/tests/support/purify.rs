//! Loads DOMPurify into the test page, as `index.html`'s `<script>` does for the portal: the
//! same file, `web/node_modules/dompurify/dist/purify.min.js` (installed by
//! `scripts/portal.sh install`), evaluated in the page's global scope once.

use wasm_bindgen::JsValue;

const PURIFY_JS: &str = include_str!("../../node_modules/dompurify/dist/purify.min.js");

/// Makes the global `DOMPurify` exist (a no-op once it does).
pub fn load() {
    let global = js_sys::global();
    let present = js_sys::Reflect::has(&global, &JsValue::from_str("DOMPurify")).unwrap_or(false);
    if !present {
        js_sys::eval(PURIFY_JS).expect("purify.min.js runs");
    }
}
