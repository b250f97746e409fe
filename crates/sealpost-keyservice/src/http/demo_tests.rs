//! The development mailbox through the whole router (`oneshot`), on SQLite in a temporary
//! directory, and its absence without demo mode.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use http_body_util::BodyExt;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use tower::ServiceExt;

use super::message_html_csp;
use crate::clock::ManualClock;
use crate::http::portal::sha256_source;
use crate::http::{HttpConfig, Portal, PortalSettings, router};
use crate::service::{Entropy, KeyService, Limits};
use crate::store::{OutboxRow, Store};

const SCRIPT: &str = "document.title = 'x';";
const STYLE: &str = "body{color:red}";

fn message_html() -> String {
    format!(
        "<!DOCTYPE html><html><head><style>{STYLE}</style></head><body><p>Open it</p>\
         <script type=\"application/x-sealpost-envelope\" id=\"sealpost-envelope\">QUJD</script>\
         <script>{SCRIPT}</script></body></html>"
    )
}

/// A wrapper mail like `sealpost encrypt` writes: a text part and `message.html`.
fn wrapper(subject: &str) -> String {
    let attachment = B64.encode(message_html());
    format!(
        "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Date: Sat, 28 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nOpen the attachment.\r\n--b\r\n\
         Content-Type: text/html; charset=utf-8; name=\"message.html\"\r\n\
         Content-Disposition: attachment; filename=\"message.html\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--b--\r\n"
    )
}

struct Demo {
    data: tempfile::TempDir,
    svc: Arc<KeyService>,
}

async fn demo() -> Demo {
    let data = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(data.path(), 2).await.unwrap();
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let kek = KeyEncryptionKey::generate(&mut rng);
    let svc = KeyService::new(
        store,
        Arc::new(ManualClock::new(1_800_000_000)),
        Entropy::seeded(2),
        kek,
        Limits::default(),
    )
    .await
    .unwrap();
    let mailbox = data.path().join(super::MAILBOX_DIR);
    std::fs::create_dir(&mailbox).unwrap();
    std::fs::write(
        mailbox.join("b-newsletter.eml"),
        wrapper("News <b>&</b> more"),
    )
    .unwrap();
    std::fs::write(mailbox.join("a-report.eml"), wrapper("Lab report")).unwrap();
    std::fs::write(mailbox.join("notes.txt"), "not a mail").unwrap();
    std::fs::write(data.path().join("outside.eml"), wrapper("outside")).unwrap();
    for (i, code) in ["11111111", "22222222"].iter().enumerate() {
        svc.store()
            .push_outbox(&OutboxRow {
                id: 0,
                created: 1_800_000_000 + i as i64,
                to_addr: "bob@example.org".into(),
                subject: format!("Your Sealpost passcode (message {i})"),
                body: format!("Your passcode is:\n\n    {code}\n\n<script>alert(1)</script>\n"),
            })
            .await
            .unwrap();
    }
    Demo {
        svc: Arc::new(svc),
        data,
    }
}

fn app(d: &Demo, demo_mode: bool, with_portal: bool) -> axum::Router {
    let portal = with_portal.then(|| {
        let dist = d.data.path().join("dist");
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(
            dist.join("index.html"),
            "<html><script>init()</script></html>",
        )
        .unwrap();
        Arc::new(
            Portal::load(PortalSettings {
                dir: dist,
                key_services: vec!["http://127.0.0.1:8080".into()],
            })
            .unwrap(),
        )
    });
    let config = HttpConfig {
        portal,
        demo_mailbox: demo_mode.then(|| d.data.path().join(super::MAILBOX_DIR)),
        ..HttpConfig::default()
    };
    router(d.svc.clone(), config)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, HeaderMap, String) {
    let res = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn the_page_lists_mails_and_passcodes_escaped() {
    let d = demo().await;
    let r = app(&d, true, true);
    let (status, h, body) = get(&r, "/dev/mailbox").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert_eq!(header(&h, "referrer-policy"), "no-referrer");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    let csp = header(&h, "content-security-policy");
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(body.contains("Development mailbox — demo mode only"));
    // Mails sorted by file name, only *.eml of the directory.
    let a = body.find("data-file=\"a-report.eml\"").unwrap();
    let b = body.find("data-file=\"b-newsletter.eml\"").unwrap();
    assert!(a < b);
    assert!(!body.contains("notes.txt") && !body.contains("outside"));
    assert!(body.contains("href=\"/dev/mailbox/a-report.eml/message.html\""));
    assert!(body.contains("href=\"/dev/mailbox/a-report.eml\" download"));
    assert!(body.contains("News &lt;b&gt;&amp;&lt;/b&gt; more"));
    assert!(body.contains("Alice &lt;alice@example.com&gt;"));
    // Passcodes newest first, the code visible, the body escaped.
    let newer = body.find("data-testid=\"passcode\">22222222<").unwrap();
    let older = body.find("data-testid=\"passcode\">11111111<").unwrap();
    assert!(newer < older);
    assert!(!body.contains("<script"));
    assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The style block is the one the CSP allows.
    let style_start = body.find("<style>").unwrap() + 7;
    let style_end = body.find("</style>").unwrap();
    assert!(csp.contains(&sha256_source(&body.as_bytes()[style_start..style_end])));
}

#[tokio::test]
async fn message_html_is_served_with_its_hashes_in_a_sandbox() {
    let d = demo().await;
    let r = app(&d, true, true);
    let (status, h, body) = get(&r, "/dev/mailbox/a-report.eml/message.html").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, message_html());
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    let csp = header(&h, "content-security-policy");
    assert!(csp.contains(&sha256_source(SCRIPT.as_bytes())), "{csp}");
    assert!(
        csp.contains(&format!("style-src {}", sha256_source(STYLE.as_bytes()))),
        "{csp}"
    );
    assert!(csp.contains("sandbox allow-scripts allow-popups allow-popups-to-escape-sandbox"));
    assert!(!csp.contains("allow-same-origin"));
    assert!(!csp.contains("'self'"), "{csp}");
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert!(message_html_csp(b"<p>no script</p>").contains("script-src 'none'; style-src 'none';"));
}

#[tokio::test]
async fn the_eml_downloads_and_unknown_names_are_404() {
    let d = demo().await;
    let r = app(&d, true, false);
    let (status, h, body) = get(&r, "/dev/mailbox/b-newsletter.eml").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, wrapper("News <b>&</b> more"));
    assert_eq!(header(&h, "content-type"), "message/rfc822");
    assert_eq!(
        header(&h, "content-disposition"),
        "attachment; filename=\"b-newsletter.eml\""
    );
    for uri in [
        "/dev/mailbox/notes.txt",
        "/dev/mailbox/nothing.eml",
        "/dev/mailbox/..%2Foutside.eml",
        "/dev/mailbox/%2E%2E%2Foutside.eml/message.html",
        "/dev/mailbox/../outside.eml",
    ] {
        let (status, _, body) = get(&r, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!body.contains("outside"), "{uri}");
    }
}

#[tokio::test]
async fn without_demo_mode_there_is_no_mailbox() {
    let d = demo().await;
    for with_portal in [false, true] {
        let r = app(&d, false, with_portal);
        for uri in [
            "/dev/mailbox",
            "/dev/mailbox/a-report.eml",
            "/dev/mailbox/a-report.eml/message.html",
        ] {
            let (status, _, body) = get(&r, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(!body.contains("2222"), "{uri}");
        }
    }
    // The API is unchanged beside the portal and the mailbox.
    let r = app(&d, true, true);
    let (status, h, body) = get(&r, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert!(h.get("content-security-policy").is_none());
    let (status, h, _) = get(&r, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&h, "content-security-policy").contains("'wasm-unsafe-eval'"));
    let (status, h, body) = get(&r, "/v1/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&h, "content-type"), "application/json");
    assert!(body.contains("not_found"));
}
