//! Small browser services for the app: time, yielding to the event loop, `sessionStorage`,
//! focus, the URL fragment, file reading, downloads, the `postMessage` hand-off and the
//! document-wide hooks that enforce the print and copy rights.
//!
//! Nothing here decides anything: the decisions are in the plain modules
//! ([`crate::session`], [`crate::rights`], [`crate::intake`]).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::open::EnvelopeInfo;
use crate::rights::UiRights;
use crate::session::{Session, storage_key};

fn window() -> web_sys::Window {
    web_sys::window().expect("the portal runs in a window")
}

fn document() -> web_sys::Document {
    window().document().expect("a window has a document")
}

/// How far the key service's clock is ahead of the browser's, as last learned.
static CLOCK_OFFSET: AtomicI64 = AtomicI64::new(0);

/// Unix seconds now on the key service's clock (the browser's clock until the service's
/// first answer, see [`learn_server_time`]).
pub fn now() -> u64 {
    crate::session::service_now(local_now(), CLOCK_OFFSET.load(Ordering::Relaxed))
}

/// Unix seconds now on the browser's clock.
fn local_now() -> u64 {
    (js_sys::Date::now() / 1000.0) as u64
}

/// The `sessionStorage` key of the learned offset (kept for the tab, like its sessions).
const CLOCK_KEY: &str = "sealpost.clock_offset";

/// Takes the key service's clock from an answer's `server_time` (an older service sends
/// none: the browser's clock stays in use), and keeps the offset for the tab.
pub fn learn_server_time(server_time: Option<u64>) {
    if let Some(t) = server_time {
        let offset = crate::session::clock_offset(t, local_now());
        CLOCK_OFFSET.store(offset, Ordering::Relaxed);
        if let Some(s) = storage() {
            let _ = s.set_item(CLOCK_KEY, &offset.to_string());
        }
    }
}

/// After a reload: the offset learned earlier in this tab, so that stored sessions are judged
/// on the service's clock before its next answer.
pub fn restore_clock() {
    let kept = storage()
        .and_then(|s| s.get_item(CLOCK_KEY).ok().flatten())
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(offset) = kept {
        CLOCK_OFFSET.store(offset, Ordering::Relaxed);
    }
}

/// Lets the browser paint and handle input before the next slice of work.
pub async fn next_tick() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `f` after the current task (after Leptos has updated the DOM).
pub fn soon(f: impl FnOnce() + 'static) {
    let cb = Closure::once_into_js(f);
    let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(cb.unchecked_ref(), 0);
}

/// Moves keyboard focus to the first element marked `data-autofocus`, once it exists.
pub fn focus_step() {
    soon(|| {
        if let Ok(Some(el)) = document().query_selector("[data-autofocus]")
            && let Ok(el) = el.dyn_into::<web_sys::HtmlElement>()
        {
            let _ = el.focus();
        }
    });
}

fn storage() -> Option<web_sys::Storage> {
    window().session_storage().ok().flatten()
}

/// The key under which the session for this envelope's key service and tenant is kept.
fn session_key(info: &EnvelopeInfo) -> String {
    storage_key(&info.key_service_url, &info.tenant_id)
}

/// The live session stored for this envelope's key service and tenant, if any.
pub fn load_session(info: &EnvelopeInfo) -> Option<Session> {
    let raw = storage()?.get_item(&session_key(info)).ok().flatten()?;
    Session::from_json(&raw).filter(|s| s.is_live(now()))
}

/// Keeps `session` for the tab, for this envelope's key service and tenant.
pub fn save_session(info: &EnvelopeInfo, session: &Session) {
    if let Some(s) = storage() {
        let _ = s.set_item(&session_key(info), &session.to_json());
    }
}

/// Forgets the session for this envelope's key service and tenant.
pub fn clear_session(info: &EnvelopeInfo) {
    if let Some(s) = storage() {
        let _ = s.remove_item(&session_key(info));
    }
}

/// `location.hash`.
pub fn fragment() -> String {
    window().location().hash().unwrap_or_default()
}

/// Removes the fragment from the address bar (and history) without reloading.
pub fn clear_fragment() {
    let w = window();
    let path = w.location().pathname().unwrap_or_default();
    let search = w.location().search().unwrap_or_default();
    if let Ok(history) = w.history() {
        let _ =
            history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("{path}{search}")));
    }
}

/// A URL relative to the portal's own page (for `config.json`).
pub fn relative_url(path: &str) -> String {
    web_sys::Url::new_with_base(path, &window().location().href().unwrap_or_default())
        .map(|u| u.href())
        .unwrap_or_else(|_| path.to_string())
}

/// Reads a picked or dropped file into a JavaScript buffer (not into WebAssembly memory: the
/// intake takes only the envelope from it).
pub async fn read_file(file: &web_sys::File) -> Option<js_sys::Uint8Array> {
    let buffer = JsFuture::from(file.array_buffer()).await.ok()?;
    Some(js_sys::Uint8Array::new(&buffer))
}

/// Offers `bytes` as a download named `name`.
pub fn download(name: &str, content_type: &str, bytes: &[u8]) {
    let parts = js_sys::Array::new();
    parts.push(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(content_type);
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else {
        return;
    };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    if let Ok(a) = document().create_element("a") {
        let a: web_sys::HtmlAnchorElement = a.unchecked_into();
        a.set_href(&url);
        a.set_download(name);
        a.set_rel("noopener");
        if let Some(body) = document().body() {
            let _ = body.append_child(&a);
            a.click();
            let _ = body.remove_child(&a);
        }
    }
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    let _ = window()
        .set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
}

/// The window that opened the portal (`message.html`), if any.
pub fn opener() -> Option<JsValue> {
    window()
        .opener()
        .ok()
        .filter(|o| !o.is_null() && !o.is_undefined())
}

/// Tells the opener the portal is ready (`{type: "sealpost-ready"}`; the message carries
/// nothing, so any target origin is fine).
pub fn post_ready(opener: &JsValue) {
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(
        &message,
        &"type".into(),
        &crate::intake::READY_MESSAGE_TYPE.into(),
    );
    let target: &web_sys::Window = opener.unchecked_ref();
    let _ = target.post_message(&message, "*");
}

/// The fields of a hand-off message: `type`, `version`, `envelope`.
pub fn handoff_fields(data: &JsValue) -> (Option<String>, Option<f64>, Option<String>) {
    let get = |k: &str| js_sys::Reflect::get(data, &k.into()).ok();
    (
        get("type").and_then(|v| v.as_string()),
        get("version").and_then(|v| v.as_f64()),
        get("envelope").and_then(|v| v.as_string()),
    )
}

/// Marks the document as mounted for tests (`window.__sealpostReady`).
pub fn mark_ready() {
    let _ = js_sys::Reflect::set(&window(), &"__sealpostReady".into(), &JsValue::TRUE);
}

/// Applies the tenant's accent colour (already checked to be a hex colour) via the CSSOM.
pub fn set_accent(color: Option<&str>) {
    if let Some(root) = document()
        .document_element()
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let style = root.style();
        let _ = match color {
            Some(c) => style.set_property("--accent", c),
            None => style.remove_property("--accent").map(|_| ()),
        };
    }
}

static HOOKS: AtomicBool = AtomicBool::new(false);

/// Applies the message's print and copy rights to the whole document: classes the style
/// sheet acts on, and (once) listeners that cancel copy and cut and explain printing.
/// `announce` puts a sentence in the status region.
pub fn apply_rights(rights: Option<&UiRights>, announce: impl Fn(&str) + Clone + 'static) {
    let Some(root) = document().document_element() else {
        return;
    };
    let classes = root.class_list();
    let no_print = rights.is_some_and(|r| !r.print);
    let no_copy = rights.is_some_and(|r| !r.copy);
    let _ = classes.toggle_with_force("no-print", no_print);
    let _ = classes.toggle_with_force("no-copy", no_copy);
    if HOOKS.swap(true, Ordering::Relaxed) {
        return;
    }
    for kind in ["copy", "cut"] {
        let announce = announce.clone();
        let cb = Closure::<dyn Fn(web_sys::Event)>::new(move |e: web_sys::Event| {
            if is_marked("no-copy") {
                e.prevent_default();
                announce("Copying is turned off for this message.");
            }
        });
        let _ = document().add_event_listener_with_callback(kind, cb.as_ref().unchecked_ref());
        cb.forget();
    }
    let cb = Closure::<dyn Fn(web_sys::Event)>::new(move |_e: web_sys::Event| {
        if is_marked("no-print") {
            announce("Printing is turned off for this message.");
        }
    });
    let _ = window().add_event_listener_with_callback("beforeprint", cb.as_ref().unchecked_ref());
    cb.forget();
}

fn is_marked(class: &str) -> bool {
    document()
        .document_element()
        .is_some_and(|e| e.class_list().contains(class))
}
