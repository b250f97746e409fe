//! Browser tests (wasm-bindgen-test in headless Chromium) of the HTML sanitizer
//! (`render::sanitize`: DOMPurify with the portal's rules, in its hooks): the cases of the
//! former native tests (scripts and handlers, remote images and the recipient's choice, `cid:`
//! images, links, the frame's document), attributes per element, and a missing or unsupported
//! DOMPurify. Hostile input has its own file, `sanitize_hostile.rs`. Every output is also
//! parsed again by the browser and checked element by element (`support/check.rs`).
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test sanitize` (after `scripts/portal.sh install`, which installs
//! the DOMPurify these tests load).

#![cfg(target_arch = "wasm32")]

#[path = "support/check.rs"]
mod check;
#[path = "support/purify.rs"]
mod purify;

use std::collections::HashMap;
use std::sync::Arc;

use check::{LOGO, assert_absent, clean, inline};
use sealpost_portal::render::sanitize::{
    RenderOptions, SanitizeError, frame_csp, html_document, sanitize,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn scripts_and_handlers_are_removed() {
    let hostile = r#"<p onclick="alert(1)" onmouseover=alert(2)>hi</p>
<script>alert(3)</script><img src=x onerror=alert(4)>
<a href="javascript:alert(5)">j</a><a href=" JaVaScRiPt:alert(6)">k</a>
<a href="vbscript:x">v</a><a href="data:text/html,<script>alert(7)</script>">d</a>
<form action="https://evil.example/steal"><input name=p><button>go</button></form>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/"><link rel=stylesheet href="https://evil.example/x.css">
<svg onload="alert(8)"><script>alert(9)</script><a xlink:href="javascript:alert(10)">s</a></svg>
<math><mtext><script>alert(11)</script></mtext></math>
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object><embed src="x">
<style>body{background:url(https://evil.example/s.png)}</style>
<div style="background-image:url('https://evil.example/t.png');color:red">t</div>
<div style="width:expression(alert(12))">e</div>
<div style="background:u\72l(https://evil.example/u.png)">u</div>"#;
    let (out, blocked) = clean(hostile, false);
    assert_absent(
        &out,
        &[
            "script",
            "onclick",
            "onmouseover",
            "onerror",
            "onload",
            "javascript",
            "vbscript",
            "data:text",
            "<form",
            "<input",
            "<button",
            "<meta",
            "refresh",
            "<base",
            "<link",
            "<svg",
            "<math",
            "<iframe",
            "<object",
            "<embed",
            "<style",
            "url(",
            "expression",
            "evil.example",
            "alert",
        ],
    );
    assert!(out.contains("color:red"), "{out}");
    assert!(out.contains(">hi</p>"), "{out}");
    // Links without an allowed target lose it but keep their text.
    assert!(out.contains(">j</a>") && out.contains(">k</a>"), "{out}");
    assert!(blocked, "remote CSS was blocked");
}

#[wasm_bindgen_test]
fn remote_images_wait_for_the_recipients_choice() {
    let raw = r#"<img src="https://tracker.example/p.gif" alt="pixel"><img src="http://x.example/a.png">"#;
    let (out, blocked) = clean(raw, false);
    assert!(blocked);
    assert!(
        !out.contains("tracker.example") && !out.contains("x.example"),
        "{out}"
    );
    assert!(out.contains("alt=\"pixel\""), "{out}");
    let (out, blocked) = clean(raw, true);
    assert!(!blocked);
    assert!(
        out.contains("https://tracker.example/p.gif") && out.contains("http://x.example/a.png"),
        "{out}"
    );
    // Protocol-relative and relative sources never load.
    let (out, _) = clean(r#"<img src="//x.example/a.png"><img src="a.png">"#, true);
    assert!(!out.contains("a.png"), "{out}");
    let (out, blocked) = clean(r#"<img src="//x.example/a.png">"#, false);
    assert!(blocked && !out.contains("x.example"), "{out}");
    // Nothing remote: nothing to offer.
    assert_eq!(
        clean("<p>plain</p>", false),
        ("<p>plain</p>".to_string(), false)
    );
}

#[wasm_bindgen_test]
fn cid_images_become_data_urls() {
    let (out, blocked) = clean(
        r#"<img src="cid:logo@x"><img src="CID:logo%40x"><img src="cid:none">"#,
        false,
    );
    assert_eq!(out.matches(LOGO).count(), 2, "{out}");
    assert!(!out.contains("cid:"), "{out}");
    assert!(!blocked);
    // Percent escapes are decoded only where they are valid.
    let (out, _) = clean(r#"<img src="cid:a%40b%zz%4"><img src="cid:é%41">"#, false);
    assert_eq!(
        out,
        r#"<img src="data:image/gif;base64,R0lG"><img src="data:image/jpeg;base64,/9j/">"#
    );
    let (out, _) = clean(
        r#"<img src="data:image/png;base64,AAAA"><img src="data:image/svg+xml,<svg/>">"#,
        false,
    );
    assert!(
        out.contains("data:image/png;base64,AAAA") && !out.contains("svg"),
        "{out}"
    );
}

#[wasm_bindgen_test]
fn links_open_elsewhere_without_referrer() {
    let (out, _) = clean(
        r#"<a href="https://example.com/x">x</a><a href="mailto:a@b.c">m</a><a href="ftp://f">f</a>"#,
        false,
    );
    assert!(out.contains(r#"href="https://example.com/x""#), "{out}");
    assert!(
        out.contains("noopener noreferrer") && out.contains(r#"target="_blank""#),
        "{out}"
    );
    assert!(
        out.contains("mailto:a@b.c") && !out.contains("ftp:"),
        "{out}"
    );
    // The mail's own target and rel are replaced; relative links are dropped.
    let (out, _) = clean(
        r##"<a href="http://e.example/" target="_self" rel="opener">o</a><a href="x.html">r</a><a href="/x">s</a><a href="#top">t</a>"##,
        false,
    );
    assert_eq!(
        out,
        r#"<a href="http://e.example/" target="_blank" rel="noopener noreferrer">o</a><a target="_blank" rel="noopener noreferrer">r</a><a target="_blank" rel="noopener noreferrer">s</a><a target="_blank" rel="noopener noreferrer">t</a>"#
    );
}

#[wasm_bindgen_test]
fn the_document_carries_the_csp_and_copy_rules() {
    purify::load();
    let inline = Arc::new(HashMap::new());
    let d = html_document("<p>x</p>", &inline, RenderOptions::default());
    assert!(d.document.contains("default-src 'none'; img-src data:;"));
    assert!(d.document.contains("user-select:none"));
    assert!(
        d.document.contains("<body><p>x</p></body>"),
        "{}",
        d.document
    );
    assert!(
        d.document
            .contains(r#"<meta name="referrer" content="no-referrer">"#)
    );
    let d = html_document(
        "<p>x</p>",
        &inline,
        RenderOptions {
            allow_remote_images: true,
            allow_copy: true,
        },
    );
    assert!(d.document.contains("img-src data: http: https:"));
    assert!(d.document.contains(frame_csp(true)));
    assert!(!d.document.contains("user-select:none"));
    let d = html_document(
        r#"<img src="https://t.example/p.gif">"#,
        &inline,
        RenderOptions::default(),
    );
    assert!(d.blocked_remote && !d.document.contains("t.example"));
}

#[wasm_bindgen_test]
fn attributes_are_kept_per_element() {
    let (out, _) = clean(
        r##"<p width="1" class="c" id="i" data-x="1" aria-label="l" lang="en" title="t:x" dir="rtl" align="center">p</p>
<table width="600" cellpadding="2" bgcolor="#fff" summary="s"><tr valign="top"><td colspan="2" width="50%">t</td></tr></table>
<font color="red" face="Arial" size="+1">f</font><big>b</big><center>c</center>
<div width="10" height="20">d</div><ol start="3" type="a"><li value="4">l</li></ol>"##,
        false,
    );
    assert!(
        out.contains(r#"<p lang="en" title="t:x" dir="rtl" align="center">p</p>"#),
        "{out}"
    );
    assert!(
        out.contains(r##"<table width="600" cellpadding="2" bgcolor="#fff" summary="s">"##),
        "{out}"
    );
    assert!(
        out.contains(r#"<tr valign="top"><td colspan="2" width="50%">t</td></tr>"#),
        "{out}"
    );
    assert!(
        out.contains(
            r#"<font color="red" face="Arial" size="+1">f</font><big>b</big><center>c</center>"#
        ),
        "{out}"
    );
    assert!(out.contains(r#"<div width="10">d</div>"#), "{out}");
    assert!(out.contains(r#"<ol start="3"><li>l</li></ol>"#), "{out}");
}

#[wasm_bindgen_test]
fn without_dompurify_nothing_is_shown() {
    purify::load();
    let global = js_sys::global();
    let name = JsValue::from_str("DOMPurify");
    let real = js_sys::Reflect::get(&global, &name).unwrap();
    let raw = "<p>secret <b>text</b></p>";

    js_sys::Reflect::delete_property(&global, &name).unwrap();
    let missing = sanitize(raw, &inline(), false);
    let doc = html_document(raw, &inline(), RenderOptions::default());

    // A DOMPurify that says it cannot work here would return its input: refused too.
    let fake = js_sys::Function::new_no_args(
        "return { isSupported: false, addHook() {}, sanitize(x) { return x; } };",
    );
    js_sys::Reflect::set(&global, &name, &fake).unwrap();
    let unsupported = sanitize(raw, &inline(), false);

    js_sys::Reflect::set(&global, &name, &real).unwrap();
    assert_eq!(missing, Err(SanitizeError::Missing));
    assert_eq!(unsupported, Err(SanitizeError::Unsupported));
    assert!(!doc.blocked_remote);
    assert!(!doc.document.contains("secret"), "{}", doc.document);
    assert!(doc.document.contains("cannot be shown"), "{}", doc.document);
    assert!(sanitize(raw, &inline(), false).is_ok());
}
