//! CORS: the tenants' portal origins (and configured extras) only.

use axum::body::Body;
use axum::http::{Method, Request, header};
use sealpost_keyservice::http::HttpConfig;
use sealpost_keyservice::service::Limits;

use crate::app_with;
use crate::db::Db;
use crate::fixture::PORTAL;

backends!(cors_allows_tenant_origins_only,);

fn preflight(origin: &str) -> Request<Body> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/rewrap")
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, content-type, x-sealpost-client",
        )
        .body(Body::empty())
        .unwrap()
}

async fn cors_allows_tenant_origins_only(db: Db) {
    let config = HttpConfig {
        extra_allowed_origins: vec!["https://extra.example".into()],
        ..HttpConfig::default()
    };
    let app = app_with(db, Limits::default(), config).await;
    for origin in [PORTAL, "https://extra.example"] {
        let r = app.send(preflight(origin)).await;
        assert!(r.status.is_success());
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            ["authorization", "content-type", "x-sealpost-client"]
                .iter()
                .all(|h| allowed.contains(h)),
            "{allowed}"
        );
        assert!(
            r.header("access-control-allow-methods")
                .unwrap()
                .contains("POST")
        );
    }
    let r = app.send(preflight("https://evil.example")).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "another origin is refused"
    );

    let get = |origin: &str| {
        Request::get("/v1/tenants/example.com")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let r = app.send(get(PORTAL)).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(PORTAL));
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .to_ascii_lowercase()
            .contains("retry-after")
    );
    assert_eq!(
        app.send(get("https://evil.example"))
            .await
            .header("access-control-allow-origin"),
        None
    );
}
