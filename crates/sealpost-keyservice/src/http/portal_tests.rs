//! The portal's routes through `oneshot` against a bundle in a temporary directory.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const INLINE: &str = "import init, * as bindings from './sealpost-portal-0123456789abcdef.js';\nconst wasm = await init({ module_or_path: './sealpost-portal-0123456789abcdef_bg.wasm' });\nwindow.wasmBindings = bindings;\n";

fn index_html(inline: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head>\n<meta charset=\"utf-8\">\n\
         <link rel=\"stylesheet\" href=\"./style-fedcba9876543210.css\" integrity=\"sha384-x\">\n\
         <SCRIPT src=\"./other.js\" integrity=\"sha384-y\"></SCRIPT>\n\
         <script type=\"module\">{inline}</script>\n</head><body></body></html>\n"
    )
}

struct Bundle {
    root: tempfile::TempDir,
    router: Router,
}

fn bundle() -> Bundle {
    let root = tempfile::tempdir().unwrap();
    let dist = root.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), index_html(INLINE)).unwrap();
    std::fs::write(
        dist.join("sealpost-portal-0123456789abcdef.js"),
        "export default 1;",
    )
    .unwrap();
    std::fs::write(
        dist.join("sealpost-portal-0123456789abcdef_bg.wasm"),
        b"\0asm\x01\0\0\0",
    )
    .unwrap();
    std::fs::write(dist.join("style-fedcba9876543210.css"), "body{}").unwrap();
    std::fs::write(dist.join("favicon.svg"), "<svg/>").unwrap();
    std::fs::write(
        dist.join("config.json"),
        "{\"key_services\":[\"https://evil.example\"]}",
    )
    .unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside the bundle").unwrap();
    let portal = Portal::load(PortalSettings {
        dir: dist,
        key_services: vec![
            "http://127.0.0.1:8080/".into(),
            "https://keys.example.com/base".into(),
        ],
    })
    .unwrap();
    Bundle {
        router: routes(Arc::new(portal), None),
        root,
    }
}

async fn get(router: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    call(router, Method::GET, uri).await
}

async fn call(
    router: &Router,
    method: Method,
    uri: &str,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let res = router
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn hash_of(script: &str) -> String {
    format!("'sha256-{}'", B64.encode(Sha256::digest(script.as_bytes())))
}

fn assert_security_headers(h: &axum::http::HeaderMap) {
    let csp = header(h, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self' http://127.0.0.1:8080 https://keys.example.com;",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-eval'") || csp.contains("'wasm-unsafe-eval'"));
    assert!(!csp.contains(" 'unsafe-eval'"), "{csp}");
    assert_eq!(header(h, "referrer-policy"), "no-referrer");
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert!(h.get("cross-origin-opener-policy").is_none());
}

#[tokio::test]
async fn index_has_the_hash_of_its_inline_script() {
    let b = bundle();
    for uri in ["/", "/index.html"] {
        let (status, h, body) = get(&b.router, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(body, index_html(INLINE).as_bytes());
        assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
        assert_eq!(header(&h, "cache-control"), "no-cache");
        assert_security_headers(&h);
        let csp = header(&h, "content-security-policy");
        assert!(csp.contains(&hash_of(INLINE)), "{csp}");
        // The external script adds no hash: exactly one.
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
    }
}

#[tokio::test]
async fn a_rebuilt_index_is_served_with_its_new_hash() {
    let b = bundle();
    let changed = "console.log('rebuilt');";
    std::fs::write(b.root.path().join("dist/index.html"), index_html(changed)).unwrap();
    let (_, h, _) = get(&b.router, "/").await;
    let csp = header(&h, "content-security-policy");
    assert!(csp.contains(&hash_of(changed)), "{csp}");
    assert!(!csp.contains(&hash_of(INLINE)), "{csp}");
}

#[tokio::test]
async fn config_json_names_the_key_services() {
    let b = bundle();
    let (status, h, body) = get(&b.router, "/config.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert_security_headers(&h);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"key_services": ["http://127.0.0.1:8080", "https://keys.example.com/base"]})
    );
}

#[tokio::test]
async fn assets_are_served_with_cache_headers_by_name() {
    let b = bundle();
    let (status, h, body) = get(&b.router, "/sealpost-portal-0123456789abcdef_bg.wasm").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"\0asm\x01\0\0\0");
    assert_eq!(header(&h, "content-type"), "application/wasm");
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_security_headers(&h);
    let (_, h, _) = get(&b.router, "/sealpost-portal-0123456789abcdef.js").await;
    assert!(
        header(&h, "content-type").starts_with("text/javascript"),
        "{h:?}"
    );
    assert_eq!(
        header(&h, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let (status, h, _) = get(&b.router, "/favicon.svg").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert_security_headers(&h);
}

#[tokio::test]
async fn missing_files_are_404_with_the_headers() {
    let b = bundle();
    for uri in ["/nothing.js", "/sub/dir/x.wasm", "/v1x"] {
        let (status, h, _) = get(&b.router, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_security_headers(&h);
        assert_eq!(header(&h, "cache-control"), "no-cache");
    }
    // Unknown API paths keep the API's JSON error.
    let (status, h, body) = get(&b.router, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert!(String::from_utf8_lossy(&body).contains("not_found"));
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let b = bundle();
    for uri in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/sub/../../secret.txt",
        "//secret.txt",
    ] {
        let (status, _, body) = get(&b.router, uri).await;
        assert_ne!(status, StatusCode::OK, "{uri}");
        assert!(
            !String::from_utf8_lossy(&body).contains("outside the bundle"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_bundles_own_config_json_is_never_served_and_writes_are_refused() {
    let b = bundle();
    let (_, _, body) = get(&b.router, "/config.json").await;
    assert!(!String::from_utf8_lossy(&body).contains("evil"));
    for (method, uri) in [
        (Method::POST, "/config.json"),
        (Method::PUT, "/favicon.svg"),
        (Method::DELETE, "/"),
    ] {
        let (status, _, _) = call(&b.router, method, uri).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
    }
}

#[test]
fn load_refuses_a_missing_bundle_and_bad_urls() {
    let dir = tempfile::tempdir().unwrap();
    let settings = |urls: &[&str]| PortalSettings {
        dir: dir.path().to_path_buf(),
        key_services: urls.iter().map(|s| s.to_string()).collect(),
    };
    assert!(matches!(
        Portal::load(settings(&["http://127.0.0.1:8080"])),
        Err(PortalError::NoIndex { .. })
    ));
    std::fs::write(dir.path().join("index.html"), "<html></html>").unwrap();
    assert!(matches!(
        Portal::load(settings(&[])),
        Err(PortalError::NoKeyService)
    ));
    for bad in [
        "keys.example.com",
        "ftp://keys.example.com",
        "https://u:p@keys.example.com",
        "https://k.example/?q",
    ] {
        assert!(
            matches!(
                Portal::load(settings(&[bad])),
                Err(PortalError::BadKeyService(_))
            ),
            "{bad}"
        );
    }
    let p = Portal::load(settings(&[
        "https://keys.example.com",
        "https://keys.example.com/",
    ]))
    .unwrap();
    assert_eq!(
        p.config_json(),
        r#"{"key_services":["https://keys.example.com"]}"#
    );
}

#[test]
fn inline_elements_and_hashed_names() {
    let html = b"<script>a()</script><scripts>x</scripts><script src=x.js></script>\
        <script data-src=\"y\">b()</script><script type=module\n>c()</Script><style>s{}</style>";
    let found: Vec<&[u8]> = inline_elements(html, b"script");
    assert_eq!(found, vec![b"a()".as_slice(), b"b()", b"c()"]);
    assert_eq!(inline_elements(html, b"style"), vec![b"s{}".as_slice()]);
    assert!(inline_elements(b"<script>never closed", b"script").is_empty());
    assert!(is_hashed("sealpost-portal-0123456789abcdef_bg.wasm"));
    assert!(is_hashed("style-fedcba9876543210.css"));
    assert!(!is_hashed("sealpost-portal.js"));
    assert!(!is_hashed("favicon.svg"));
    assert!(!is_hashed("0123456789abcdef0.css"));
    assert_eq!(
        default_public_url("0.0.0.0:9000".parse().unwrap()),
        "http://127.0.0.1:9000"
    );
    assert_eq!(
        default_public_url("[::]:80".parse().unwrap()),
        "http://[::1]:80"
    );
    assert_eq!(
        default_public_url("192.0.2.1:8080".parse().unwrap()),
        "http://192.0.2.1:8080"
    );
}

/// A key service on SQLite in `dir` whose tenants have these `reply_url`s.
async fn service_with_reply_urls(dir: &Path, reply_urls: &[Option<&str>]) -> Arc<KeyService> {
    use rand_core::SeedableRng;
    let store = crate::store::Store::sqlite_in_dir(dir, 2).await.unwrap();
    let kek = sealpost_core::keys::KeyEncryptionKey::generate(
        &mut rand_chacha::ChaCha20Rng::from_seed([5; 32]),
    );
    let svc = KeyService::new(
        store,
        Arc::new(crate::clock::ManualClock::new(1_800_000_000)),
        crate::service::Entropy::seeded(1),
        kek,
        crate::service::Limits::default(),
    )
    .await
    .unwrap();
    for (i, url) in reply_urls.iter().enumerate() {
        let settings = TenantSettings {
            reply_url: url.map(String::from),
            ..serde_json::from_str("{\"domains\":[],\"allowed_origins\":[]}").unwrap()
        };
        svc.store()
            .upsert_tenant(&crate::store::TenantRow {
                tenant_id: format!("t{i}.example"),
                display_name: format!("T{i}"),
                settings_json: serde_json::to_string(&settings).unwrap(),
                created: 1_800_000_000,
            })
            .await
            .unwrap();
    }
    Arc::new(svc)
}

#[tokio::test]
async fn the_page_may_connect_to_every_tenants_reply_endpoint() {
    let b = bundle();
    let data = tempfile::tempdir().unwrap();
    let svc = service_with_reply_urls(
        data.path(),
        &[
            Some("http://127.0.0.1:8090/"),
            Some("https://Replies.Example.com/gw"),
            Some("https://replies.example.com"),
            Some("not a url"),
            None,
        ],
    )
    .await;
    let dist = b.root.path().join("dist");
    let portal = Portal::load(PortalSettings {
        dir: dist,
        key_services: vec!["http://127.0.0.1:8080".into()],
    })
    .unwrap();
    let router = routes(
        Arc::new(portal),
        Some(Arc::new(ReplyOrigins::new(svc.clone()))),
    );
    let (status, h, _) = get(&router, "/").await;
    assert_eq!(status, StatusCode::OK);
    let csp = header(&h, "content-security-policy");
    assert!(
        csp.contains(
            "connect-src 'self' http://127.0.0.1:8080 http://127.0.0.1:8090 https://replies.example.com;"
        ),
        "{csp}"
    );
    assert!(!csp.contains("not a url"), "{csp}");
    // Only the page makes requests: the other files keep the key services alone.
    let (_, h, _) = get(&router, "/config.json").await;
    assert!(
        header(&h, "content-security-policy").contains("connect-src 'self' http://127.0.0.1:8080;")
    );
    // Without tenants to read (tests, or no reply endpoints), the key services alone.
    let (_, h, _) = get(&b.router, "/").await;
    assert!(!header(&h, "content-security-policy").contains("8090"));
}

#[test]
fn reply_origins_are_origins_of_http_urls() {
    assert_eq!(
        reply_origin("https://Mail.Example.com:8443/gw/").as_deref(),
        Some("https://mail.example.com:8443")
    );
    assert_eq!(
        reply_origin("http://127.0.0.1:8090").as_deref(),
        Some("http://127.0.0.1:8090")
    );
    for bad in [
        "",
        "mail.example.com",
        "ftp://x.example",
        "https://u:p@x.example",
        "https://x.example/?q",
    ] {
        assert_eq!(reply_origin(bad), None, "{bad}");
    }
}
