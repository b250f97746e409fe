//! HTML bodies made safe to show: sanitized with `ammonia`, wrapped in a document with a
//! restrictive Content-Security-Policy, for an `<iframe sandbox srcdoc>` (no scripts, no
//! same-origin).
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
//! This module does not parse MIME (that is [`super::mime`]) and renders nothing itself.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

const EXTRA_TAGS: &[&str] = &["font", "center", "big"];

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

const TABLE_ATTRS: &[&str] = &[
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "bgcolor",
    "align",
    "valign",
];

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

/// Sanitizes `raw` and wraps it in the frame's document.
pub fn html_document(
    raw: &str,
    inline: &Arc<HashMap<String, String>>,
    options: RenderOptions,
) -> Sanitized {
    let (body, blocked_remote) = sanitize(raw, inline, options.allow_remote_images);
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
) -> (String, bool) {
    let blocked = Arc::new(AtomicBool::new(false));
    let mut b = ammonia::Builder::default();
    b.add_tags(EXTRA_TAGS)
        .add_generic_attributes(&["style", "dir", "align"])
        .add_tag_attributes("font", &["color", "face", "size"])
        .add_tag_attributes("img", &["border"])
        .add_tag_attributes("table", TABLE_ATTRS)
        .add_tag_attributes("td", TABLE_ATTRS)
        .add_tag_attributes("th", TABLE_ATTRS)
        .add_tag_attributes("tr", TABLE_ATTRS)
        .add_tag_attributes("div", &["width"])
        .add_url_schemes(&["cid", "data"])
        .url_relative(ammonia::UrlRelative::Deny)
        .set_tag_attribute_value("a", "target", "_blank")
        .link_rel(Some("noopener noreferrer"))
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect());
    let inline = Arc::clone(inline);
    let flag = Arc::clone(&blocked);
    b.attribute_filter(move |element, attribute, value| {
        filter_attribute(
            element,
            attribute,
            value,
            &inline,
            allow_remote_images,
            &flag,
        )
    });
    let clean = b.clean(raw).to_string();
    (clean, blocked.load(Ordering::Relaxed))
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn is_remote(url: &str) -> bool {
    starts_with_ci(url, "http:") || starts_with_ci(url, "https:") || url.starts_with("//")
}

fn filter_attribute<'u>(
    element: &str,
    attribute: &str,
    value: &'u str,
    inline: &HashMap<String, String>,
    allow_remote_images: bool,
    blocked: &AtomicBool,
) -> Option<Cow<'u, str>> {
    let v = value.trim();
    match (element, attribute) {
        ("img", "src") => {
            if starts_with_ci(v, "cid:") {
                let id = &v[4..];
                inline
                    .get(id)
                    .or_else(|| inline.get(&percent_decode(id)))
                    .map(|data| Cow::Owned(data.clone()))
            } else if is_inline_image(v) {
                Some(Cow::Borrowed(value))
            } else if is_remote(v) {
                if allow_remote_images {
                    Some(Cow::Borrowed(value))
                } else {
                    blocked.store(true, Ordering::Relaxed);
                    None
                }
            } else {
                None
            }
        }
        ("a", "href") => (starts_with_ci(v, "http:")
            || starts_with_ci(v, "https:")
            || starts_with_ci(v, "mailto:"))
        .then_some(Cow::Borrowed(value)),
        (_, "style") => Some(clean_style(value, blocked)),
        // Every other URL-valued attribute the allow-list keeps (`cite`, `longdesc`, …) is
        // never needed to read a message.
        (_, "cite" | "longdesc" | "src" | "href" | "action" | "background" | "poster") => None,
        _ => Some(Cow::Borrowed(value)),
    }
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

/// Removes every declaration that could load something (`url()`, `image-set()`, imports,
/// escapes that could spell them, legacy script hooks); marks remote ones as blocked.
fn clean_style<'u>(value: &'u str, blocked: &AtomicBool) -> Cow<'u, str> {
    let dangerous = |d: &str| {
        let l = d.to_ascii_lowercase();
        l.contains('\\')
            || l.contains("url(")
            || l.contains("image-set(")
            || l.contains("image(")
            || l.contains("expression(")
            || l.contains("@import")
            || l.contains("behavior")
            || l.contains("binding")
    };
    if !dangerous(value) {
        return Cow::Borrowed(value);
    }
    let kept: Vec<&str> = value
        .split(';')
        .filter(|d| {
            if dangerous(d) {
                let l = d.to_ascii_lowercase();
                if l.contains("http") || l.contains("//") {
                    blocked.store(true, Ordering::Relaxed);
                }
                false
            } else {
                true
            }
        })
        .collect();
    Cow::Owned(kept.join(";"))
}

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

#[cfg(test)]
#[path = "sanitize_tests.rs"]
mod tests;
