//! HTML bodies made safe to show: sanitized by DOMPurify (the browser's own HTML parser, driven
//! by cure53's sanitizer, which `index.html` loads as `purify.min.js` before the portal),
//! wrapped in a document with a restrictive Content-Security-Policy, for an
//! `<iframe sandbox srcdoc>` (no scripts, no same-origin).
//!
//! Three layers, each enough on its own for scripts: the allow-list below removes every
//! script, event handler, `javascript:` URL, form, `meta`, `base`, `link`, `style` element,
//! SVG and MathML; the frame's CSP (`default-src 'none'`) forbids what might slip through; and
//! the sandbox runs no script at all. For privacy, remote content (an `img` with an `http(s)`
//! source, a CSS `url()`) is removed unless the recipient chose to load remote images, and
//! [`Sanitized::blocked_remote`] says whether anything was removed so the UI can offer that
//! choice. CSS `url()` stays removed even then; only images are ever loaded. `cid:` images
//! become the `data:` URLs of the message's own parts. Links keep `http`, `https` and `mailto`
//! targets and open in a new tab without a referrer.
//!
//! DOMPurify parses with the browser's `DOMParser` (an inert document: nothing loads, nothing
//! runs) and serializes the cleaned tree, so what the frame parses is what was checked. The
//! rules that are ours (which attribute each tag may keep, the URL rules, the `style` filter)
//! run in Rust, in DOMPurify's `uponSanitizeAttribute` and `afterSanitizeAttributes` hooks of
//! an instance made for each call. If DOMPurify did not load, or says the browser cannot run
//! it, nothing of the HTML is shown ([`SanitizeError`]): it never falls back to the raw HTML.
//!
//! This module does not parse MIME (that is [`super::mime`]) and renders nothing itself. It
//! exists only on `wasm32` (it needs the browser); its tests are `web/tests/sanitize.rs`.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Array, Function, Object, Reflect, RegExp};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// A DOMPurify instance.
    type Purifier;

    /// `DOMPurify(window)`: a new instance, with its own configuration and hooks.
    #[wasm_bindgen(catch, js_name = DOMPurify)]
    fn new_purifier(root: &web_sys::Window) -> Result<Purifier, JsValue>;

    /// Whether DOMPurify can work in this browser (if not, its `sanitize` returns its input).
    #[wasm_bindgen(method, getter, js_name = isSupported)]
    fn is_supported(this: &Purifier) -> JsValue;

    #[wasm_bindgen(method, js_name = addHook)]
    fn add_hook(this: &Purifier, entry_point: &str, hook: &Function);

    #[wasm_bindgen(method, catch, js_name = sanitize)]
    fn sanitize_with(this: &Purifier, dirty: &str, config: &Object) -> Result<JsValue, JsValue>;
}

/// The recipient's choices that change the rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Load `http(s)` images.
    pub allow_remote_images: bool,
    /// Text may be selected and copied (the `copy` right).
    pub allow_copy: bool,
}

/// A sanitized HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitized {
    /// The whole document for `srcdoc`.
    pub document: String,
    /// Whether remote content was removed.
    pub blocked_remote: bool,
}

/// Why an HTML body could not be sanitized (it is then not shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanitizeError {
    /// `purify.min.js` did not load (no global `DOMPurify`).
    #[error("the portal's HTML sanitizer did not load")]
    Missing,
    /// DOMPurify says this browser lacks what it needs.
    #[error("this browser cannot run the portal's HTML sanitizer")]
    Unsupported,
    /// DOMPurify threw, or returned something other than a string.
    #[error("the portal's HTML sanitizer failed on this message")]
    Failed,
}

/// Elements kept (ammonia's default list, which the portal used before, plus `font` and
/// `big`). Everything else is removed; its text stays, except for the elements DOMPurify
/// removes with their content (`script`, `style`, `svg`, `math`, `template`, `noscript`,
/// `iframe`, `title`, …).
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "area",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "map",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Never kept, whatever [`TAGS`] says (stated twice on purpose).
const FORBIDDEN_TAGS: &[&str] = &[
    "script", "style", "link", "meta", "base", "form", "input", "button", "select", "textarea",
    "iframe", "frame", "object", "embed", "svg", "math", "template", "noscript",
];

/// Attributes any kept element may have.
const GENERIC_ATTRS: &[&str] = &["lang", "title", "style", "dir", "align"];

const TABLE_ATTRS: &[&str] = &[
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "bgcolor",
    "align",
    "valign",
    "char",
    "charoff",
];

/// Attributes of particular elements. URL-valued attributes other than `img src` and `a href`
/// (`cite`, `longdesc`, `background`, …) are never needed to read a message and not listed.
const TAG_ATTRS: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang"]),
    ("bdo", &["dir"]),
    ("col", &["char", "charoff", "span"]),
    ("colgroup", &["char", "charoff", "span"]),
    ("del", &["datetime"]),
    ("ins", &["datetime"]),
    ("hr", &["size", "width"]),
    ("img", &["alt", "height", "src", "width", "border"]),
    ("ol", &["start"]),
    ("table", TABLE_ATTRS),
    ("table", &["summary"]),
    ("tbody", &["char", "charoff"]),
    ("thead", &["char", "charoff"]),
    ("tfoot", &["char", "charoff"]),
    ("tr", TABLE_ATTRS),
    ("td", TABLE_ATTRS),
    ("td", &["colspan", "headers", "rowspan"]),
    ("th", TABLE_ATTRS),
    ("th", &["colspan", "headers", "rowspan", "scope"]),
    ("font", &["color", "face", "size"]),
    ("div", &["width"]),
];

/// CSS properties a `style` attribute may set.
const STYLE_PROPERTIES: &[&str] = &[
    "background",
    "background-color",
    "border",
    "border-bottom",
    "border-bottom-color",
    "border-bottom-style",
    "border-bottom-width",
    "border-collapse",
    "border-color",
    "border-left",
    "border-left-color",
    "border-left-style",
    "border-left-width",
    "border-radius",
    "border-right",
    "border-right-color",
    "border-right-style",
    "border-right-width",
    "border-spacing",
    "border-style",
    "border-top",
    "border-top-color",
    "border-top-style",
    "border-top-width",
    "border-width",
    "clear",
    "color",
    "direction",
    "display",
    "float",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-variant",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "list-style-type",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-height",
    "max-width",
    "min-height",
    "min-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "table-layout",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
    "word-spacing",
    "overflow-wrap",
];

/// DOMPurify's check of every attribute value that is not URI-safe: `http(s):` and `mailto:`
/// URLs, or values that are not `scheme:…` at all. Our hook decides `href` and `src` first.
const URI_PATTERN: &str = r"^(?:(?:https?|mailto):|[^a-z]|[a-z+.\-]+(?:[^a-z+.\-:]|$))";

const BASE_CSS: &str = "html{color-scheme:light}body{margin:0;padding:12px;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1f24;background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}table{max-width:100%}pre{white-space:pre-wrap}a{color:#0b57d0}";

const NO_SELECT_CSS: &str =
    "html,body,*{-webkit-user-select:none!important;user-select:none!important}";

/// The frame's Content-Security-Policy.
pub fn frame_csp(allow_remote_images: bool) -> &'static str {
    if allow_remote_images {
        "default-src 'none'; img-src data: http: https:; style-src 'unsafe-inline'; form-action 'none'"
    } else {
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'"
    }
}

/// Sanitizes `raw` and wraps it in the frame's document. If it cannot be sanitized, the
/// document says so instead of showing it.
pub fn html_document(
    raw: &str,
    inline: &Arc<HashMap<String, String>>,
    options: RenderOptions,
) -> Sanitized {
    let (body, blocked_remote) = match sanitize(raw, inline, options.allow_remote_images) {
        Ok(clean) => clean,
        Err(e) => (
            format!(
                "<p><strong>This part of the message cannot be shown:</strong> {e}. Reload the page; if this stays, the portal's files are incomplete.</p>"
            ),
            false,
        ),
    };
    let no_select = if options.allow_copy {
        ""
    } else {
        NO_SELECT_CSS
    };
    let document = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\"><meta name=\"referrer\" content=\"no-referrer\"><style>{BASE_CSS}{no_select}</style></head><body>{body}</body></html>",
        csp = frame_csp(options.allow_remote_images),
    );
    Sanitized {
        document,
        blocked_remote,
    }
}

/// Sanitizes an HTML body: the clean fragment, and whether remote content was removed.
pub fn sanitize(
    raw: &str,
    inline: &Arc<HashMap<String, String>>,
    allow_remote_images: bool,
) -> Result<(String, bool), SanitizeError> {
    let window = web_sys::window().ok_or(SanitizeError::Missing)?;
    let purifier = new_purifier(&window).map_err(|_| SanitizeError::Missing)?;
    if purifier.is_supported().as_bool() != Some(true) {
        return Err(SanitizeError::Unsupported);
    }
    let blocked = Rc::new(Cell::new(false));
    let upon_attribute = {
        let inline = Arc::clone(inline);
        let blocked = Rc::clone(&blocked);
        Closure::<dyn FnMut(JsValue, JsValue)>::new(move |node: JsValue, event: JsValue| {
            let tag = node
                .dyn_ref::<web_sys::Element>()
                .map(|e| e.tag_name().to_ascii_lowercase())
                .unwrap_or_default();
            let field = |name: &str| {
                Reflect::get(&event, &JsValue::from_str(name))
                    .ok()
                    .and_then(|v| v.as_string())
                    .unwrap_or_default()
            };
            let (name, value) = (field("attrName"), field("attrValue"));
            let verdict =
                attribute_value(&tag, &name, &value, &inline, allow_remote_images, &blocked);
            // Setting a field of DOMPurify's plain event object cannot fail.
            let _ = match verdict {
                Some(v) if v == value => Ok(true),
                Some(v) => Reflect::set(&event, &"attrValue".into(), &v.into()),
                None => Reflect::set(&event, &"keepAttr".into(), &JsValue::FALSE),
            };
        })
    };
    let after_attributes = Closure::<dyn FnMut(JsValue)>::new(|node: JsValue| {
        if let Some(a) = node.dyn_ref::<web_sys::Element>()
            && a.tag_name().eq_ignore_ascii_case("a")
        {
            // Attributes of an element of DOMPurify's own inert document: cannot fail.
            let _ = a.set_attribute("target", "_blank");
            let _ = a.set_attribute("rel", "noopener noreferrer");
        }
    });
    purifier.add_hook(
        "uponSanitizeAttribute",
        upon_attribute.as_ref().unchecked_ref(),
    );
    purifier.add_hook(
        "afterSanitizeAttributes",
        after_attributes.as_ref().unchecked_ref(),
    );
    let clean = purifier
        .sanitize_with(raw, &config())
        .map_err(|_| SanitizeError::Failed)?
        .as_string()
        .ok_or(SanitizeError::Failed)?;
    Ok((clean, blocked.get()))
}

/// DOMPurify's configuration: explicit allow-lists, our URL pattern, no templates mode, a
/// string result.
fn config() -> Object {
    let mut all_attrs: Vec<&str> = GENERIC_ATTRS.to_vec();
    all_attrs.extend(TAG_ATTRS.iter().flat_map(|(_, a)| a.iter().copied()));
    all_attrs.sort_unstable();
    all_attrs.dedup();
    // Values that are not URLs are not checked against the URL pattern (as before).
    let uri_safe: Vec<&str> = all_attrs
        .iter()
        .copied()
        .filter(|a| !matches!(*a, "href" | "src"))
        .collect();
    let fields: [(&str, JsValue); 14] = [
        ("ALLOWED_TAGS", strings(TAGS)),
        ("FORBID_TAGS", strings(FORBIDDEN_TAGS)),
        ("ALLOWED_ATTR", strings(&all_attrs)),
        ("ADD_URI_SAFE_ATTR", strings(&uri_safe)),
        ("ALLOWED_URI_REGEXP", RegExp::new(URI_PATTERN, "i").into()),
        ("ALLOW_DATA_ATTR", JsValue::FALSE),
        ("ALLOW_ARIA_ATTR", JsValue::FALSE),
        ("ALLOW_UNKNOWN_PROTOCOLS", JsValue::FALSE),
        ("SAFE_FOR_TEMPLATES", JsValue::FALSE),
        ("WHOLE_DOCUMENT", JsValue::FALSE),
        ("RETURN_DOM", JsValue::FALSE),
        ("RETURN_DOM_FRAGMENT", JsValue::FALSE),
        ("RETURN_TRUSTED_TYPE", JsValue::FALSE),
        ("KEEP_CONTENT", JsValue::TRUE),
    ];
    let config = Object::new();
    for (name, value) in fields {
        // A plain new object: setting a field cannot fail.
        let _ = Reflect::set(&config, &name.into(), &value);
    }
    config
}

fn strings(items: &[&str]) -> JsValue {
    items
        .iter()
        .map(|s| JsValue::from_str(s))
        .collect::<Array>()
        .into()
}

/// The value `attribute` of `element` keeps, or `None` to remove it.
fn attribute_value(
    element: &str,
    attribute: &str,
    value: &str,
    inline: &HashMap<String, String>,
    allow_remote_images: bool,
    blocked: &Cell<bool>,
) -> Option<String> {
    let allowed = GENERIC_ATTRS.contains(&attribute)
        || TAG_ATTRS
            .iter()
            .any(|(tag, attrs)| *tag == element && attrs.contains(&attribute));
    if !allowed {
        return None;
    }
    let v = value.trim();
    match (element, attribute) {
        ("img", "src") => {
            if starts_with_ci(v, "cid:") {
                let id = &v[4..];
                inline
                    .get(id)
                    .or_else(|| inline.get(&percent_decode(id)))
                    .cloned()
            } else if is_inline_image(v) {
                Some(v.to_string())
            } else if is_remote(v) {
                if !allow_remote_images {
                    blocked.set(true);
                    None
                } else {
                    // Protocol-relative sources are relative: never loaded.
                    is_http(v).then(|| v.to_string())
                }
            } else {
                None
            }
        }
        ("a", "href") => (is_http(v) || starts_with_ci(v, "mailto:")).then(|| v.to_string()),
        (_, "style") => Some(clean_style(value, blocked)).filter(|s| !s.is_empty()),
        _ => Some(value.to_string()),
    }
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn is_http(url: &str) -> bool {
    starts_with_ci(url, "http:") || starts_with_ci(url, "https:")
}

fn is_remote(url: &str) -> bool {
    is_http(url) || url.starts_with("//")
}

fn is_inline_image(v: &str) -> bool {
    [
        "data:image/png",
        "data:image/gif",
        "data:image/jpeg",
        "data:image/webp",
        "data:image/bmp",
    ]
    .iter()
    .any(|p| starts_with_ci(v, p))
}

/// Keeps the declarations of allowed properties that cannot load anything: any with `url()`,
/// `src()`, `image-set()`, `image()`, `expression()`, an import, a legacy script hook or an
/// escape (which could spell them) is removed, and marks `blocked` when it named a remote
/// resource. None of these words contains `;`, so joining kept declarations cannot make one.
fn clean_style(value: &str, blocked: &Cell<bool>) -> String {
    let dangerous = |l: &str| {
        [
            "\\",
            "url(",
            "src(",
            "image-set(",
            "image(",
            "expression(",
            "@import",
            "behavior",
            "binding",
        ]
        .iter()
        .any(|w| l.contains(w))
    };
    let mut kept: Vec<String> = Vec::new();
    for declaration in value.split(';') {
        let l = declaration.to_ascii_lowercase();
        if dangerous(&l) {
            if l.contains("http") || l.contains("//") {
                blocked.set(true);
            }
            continue;
        }
        let Some((name, v)) = declaration.split_once(':') else {
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let v = v.trim();
        if !v.is_empty() && STYLE_PROPERTIES.contains(&name.as_str()) {
            kept.push(format!("{name}:{v}"));
        }
    }
    kept.join(";")
}

/// `%XX` escapes of a `cid:` URL decoded (RFC 2392); anything else kept as it is.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
