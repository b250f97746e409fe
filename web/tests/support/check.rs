//! What every sanitizer test checks (`sanitize.rs`, `sanitize_hostile.rs`): the output of
//! `render::sanitize` parsed again by the browser as the message frame would, and a second
//! sanitizing that must change nothing.

use std::collections::HashMap;
use std::sync::Arc;

use sealpost_portal::render::sanitize::sanitize;

use super::purify;

pub const LOGO: &str = "data:image/png;base64,iVBORw0KGgo=";

pub fn inline() -> Arc<HashMap<String, String>> {
    let mut inline = HashMap::new();
    inline.insert("logo@x".to_string(), LOGO.to_string());
    inline.insert(
        "a@b%zz%4".to_string(),
        "data:image/gif;base64,R0lG".to_string(),
    );
    inline.insert("éA".to_string(), "data:image/jpeg;base64,/9j/".to_string());
    Arc::new(inline)
}

/// Sanitizes, then checks what the frame would parse from the result ([`assert_safe`]) and
/// that sanitizing it again changes nothing (a serialization that re-parses differently,
/// the root of mutation XSS, would show here).
pub fn clean(raw: &str, remote: bool) -> (String, bool) {
    purify::load();
    let (out, blocked) = sanitize(raw, &inline(), remote).expect("DOMPurify is loaded");
    assert_safe(&out, remote);
    let (again, _) = sanitize(&out, &inline(), remote).unwrap();
    assert_eq!(again, out, "not a fixed point for {raw}");
    (out, blocked)
}

const KEPT_TAGS: &[&str] = &[
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

/// Parses `out` as the frame would (an HTML body) and checks every element and attribute:
/// only allowed elements, no event handler, links only `http(s)`/`mailto` opening in a new
/// tab without referrer, images only `data:image/…` (or `http(s)` when `remote`), no style
/// that can load anything.
pub fn assert_safe(out: &str, remote: bool) {
    let parser = web_sys::DomParser::new().unwrap();
    let doc = parser
        .parse_from_string(
            &format!("<!DOCTYPE html><html><head></head><body>{out}</body></html>"),
            web_sys::SupportedType::TextHtml,
        )
        .unwrap();
    let head = doc.head().unwrap();
    assert_eq!(head.child_element_count(), 0, "{out} puts elements in head");
    let all = doc.body().unwrap().query_selector_all("*").unwrap();
    for i in 0..all.length() {
        let el: web_sys::Element = wasm_bindgen::JsCast::unchecked_into(all.item(i).unwrap());
        let tag = el.tag_name().to_ascii_lowercase();
        assert!(KEPT_TAGS.contains(&tag.as_str()), "<{tag}> in {out}");
        assert_eq!(
            el.namespace_uri().as_deref(),
            Some("http://www.w3.org/1999/xhtml"),
            "{out}"
        );
        for name in el.get_attribute_names().iter() {
            let name = name.as_string().unwrap();
            let value = el.get_attribute(&name).unwrap();
            let v = value.to_ascii_lowercase();
            assert!(!name.starts_with("on"), "{name} in {out}");
            match name.as_str() {
                "href" => assert!(
                    tag == "a"
                        && (v.starts_with("http:")
                            || v.starts_with("https:")
                            || v.starts_with("mailto:")),
                    "href {value} in {out}"
                ),
                "src" => assert!(
                    tag == "img"
                        && (v.starts_with("data:image/png")
                            || v.starts_with("data:image/gif")
                            || v.starts_with("data:image/jpeg")
                            || v.starts_with("data:image/webp")
                            || v.starts_with("data:image/bmp")
                            || (remote && (v.starts_with("http:") || v.starts_with("https:")))),
                    "src {value} in {out}"
                ),
                "style" => {
                    for bad in ["url(", "\\", "expression", "image", "import", "src("] {
                        assert!(!v.contains(bad), "style {value} in {out}");
                    }
                }
                "target" => assert_eq!(value, "_blank"),
                "rel" => assert_eq!(value, "noopener noreferrer"),
                "lang" | "title" | "dir" | "align" | "hreflang" | "char" | "charoff" | "span"
                | "datetime" | "size" | "width" | "alt" | "height" | "border" | "start"
                | "summary" | "cellpadding" | "cellspacing" | "bgcolor" | "valign" | "colspan"
                | "headers" | "rowspan" | "scope" | "color" | "face" => {}
                other => panic!("attribute {other} in {out}"),
            }
        }
        if tag == "a" {
            assert_eq!(
                el.get_attribute("target").as_deref(),
                Some("_blank"),
                "{out}"
            );
            assert_eq!(
                el.get_attribute("rel").as_deref(),
                Some("noopener noreferrer"),
                "{out}"
            );
        }
    }
}

pub fn assert_absent(out: &str, words: &[&str]) {
    let lower = out.to_ascii_lowercase();
    for w in words {
        assert!(!lower.contains(w), "{w} survived in {out}");
    }
}
