//! Overload shedding, health, readiness, metrics, the OpenAPI document and docs/api.md,
//! and one real socket with graceful shutdown.

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use sealpost_core::policy::{Right, Template};
use sealpost_keyservice::http::{ERROR_CODES, HttpConfig, serve};
use sealpost_keyservice::service::Limits;
use serde_json::json;
use tower::ServiceExt;

use crate::db::Db;
use crate::{app, app_with, client_key, envelope_parts};

backends!(
    overload_answers_503_at_once,
    health_readiness_metrics,
    openapi_document_lists_every_path_and_code,
    real_socket_with_graceful_shutdown,
);

async fn raw_http(addr: SocketAddr, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

async fn overload_answers_503_at_once(db: Db) {
    let config = HttpConfig {
        max_in_flight: 1,
        ..HttpConfig::default()
    };
    let app = app_with(db, Limits::default(), config).await;
    // A request whose body never finishes holds the only slot.
    let (sender, body) =
        http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
    let req = Request::post("/v1/otp/verify")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-sealpost-client", "1")
        .body(Body::new(body))
        .unwrap();
    let held = tokio::spawn(app.router.clone().oneshot(req));
    let mut shed = None;
    for _ in 0..200 {
        // Let the held request run until it waits for its body (on either worker thread).
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!held.is_finished(), "the held request was answered early");
        let r = app.get("/v1/tenants/example.com", None).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            shed = Some(r);
            break;
        }
    }
    shed.expect("a second request is shed")
        .refused(503, "overloaded");
    assert_eq!(
        app.get("/healthz", None).await.text(),
        "ok",
        "probes are outside the limit"
    );
    drop(sender);
    let first = held.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::BAD_REQUEST);
    app.get("/v1/tenants/example.com", None).await.ok();
}

async fn health_readiness_metrics(db: Db) {
    let app = app(db).await;
    assert_eq!(app.get("/healthz", None).await.text(), "ok");
    assert_eq!(app.get("/readyz", None).await.text(), "ok");

    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 16);
    let session = app.sign_in(&env, "bob@gmail.com").await;
    app.rewrap(Some(&session), &env, &client_key()).await.ok();
    app.rewrap(None, &env, &client_key())
        .await
        .refused(401, "not_signed_in");
    app.verify("nope", "00000000")
        .await
        .refused(401, "wrong_code");
    app.get("/nowhere", None).await.refused(404, "not_found");

    let r = app.get("/metrics", None).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    for line in [
        "sealpost_http_requests_total{route=\"/v1/otp/start\",status=\"2xx\"} 1",
        "sealpost_http_requests_total{route=\"/v1/rewrap\",status=\"2xx\"} 1",
        "sealpost_http_requests_total{route=\"/v1/rewrap\",status=\"4xx\"} 1",
        "sealpost_http_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
        "sealpost_rewraps_released_total 1",
        "sealpost_rewraps_refused_total{reason=\"not_signed_in\"} 1",
        "sealpost_rewraps_refused_total{reason=\"revoked\"} 0",
        "sealpost_otp_total{event=\"started\"} 1",
        "sealpost_otp_total{event=\"verified\"} 1",
        "sealpost_otp_total{event=\"failed\"} 1",
        "sealpost_http_requests_in_flight 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("# TYPE sealpost_http_requests_total counter"));
}

async fn openapi_document_lists_every_path_and_code(db: Db) {
    let app = app(db).await;
    let r = app.get("/v1/openapi.json", None).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let doc = r.ok();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/tenants/{tenant_id}", "get"),
        ("/v1/otp/start", "post"),
        ("/v1/otp/verify", "post"),
        ("/v1/rewrap", "post"),
        ("/v1/oidc/start", "post"),
        ("/v1/oidc/finish", "post"),
        ("/v1/admin/revoke", "post"),
        ("/v1/admin/messages/{message_id}/audit", "get"),
        ("/v1/gateway/replies/authorize", "post"),
        ("/v1/gateway/transport/rewrap", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert_eq!(paths.len(), expected.len());
    let text = r.text();
    for c in ERROR_CODES {
        if !["not_found", "method_not_allowed", "conflict", "invalid"].contains(&c.code) {
            assert!(
                text.contains(&format!("`{}`", c.code)),
                "{} is not documented",
                c.code
            );
        }
    }
    let rights = &doc["components"]["schemas"]["RightName"]["enum"];
    let names: Vec<&str> = Right::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(rights, &json!(names), "the schema's rights are the core's");
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert_eq!(
        doc["components"]["schemas"]["ClientMarker"]["enum"],
        json!(["1"])
    );
    // Every reference resolves.
    for reference in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling reference to {name}"
        );
    }
    let rewrap_401 = &paths["/v1/rewrap"]["post"]["responses"]["401"]["description"];
    assert!(rewrap_401.as_str().unwrap().contains("not_signed_in"));
}

async fn real_socket_with_graceful_shutdown(db: Db) {
    let app = app(db).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app.router.clone(), async {
        let _ = stopped.await;
    }));

    let health = raw_http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: keys\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(
        health.starts_with("HTTP/1.1 200 OK\r\n") && health.ends_with("\r\n\r\nok"),
        "{health}"
    );

    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 18);
    let (header, license) = envelope_parts(&env);
    let body =
        json!({ "header": header, "license": license, "email": "bob@gmail.com" }).to_string();
    let request = format!(
        "POST /v1/otp/start HTTP/1.1\r\nHost: keys\r\nConnection: close\r\nContent-Type: application/json\r\n\
         X-Sealpost-Client: 1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_http(addr, request).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\"challenge\""), "{answer}");

    // The client address came from the socket.
    assert_eq!(app.audit_events(&env).await[0]["client_ip"], "127.0.0.1");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn api_doc_names_every_code_and_path() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md")).unwrap();
    for c in ERROR_CODES {
        assert!(
            doc.contains(&format!("`{}`", c.code)),
            "docs/api.md lacks `{}`",
            c.code
        );
        assert!(
            doc.contains(&format!("| {} |", c.status)),
            "docs/api.md lacks status {}",
            c.status
        );
    }
    for path in [
        "/v1/tenants/{tenant_id}",
        "/v1/otp/start",
        "/v1/otp/verify",
        "/v1/rewrap",
        "/v1/oidc/start",
        "/v1/oidc/finish",
        "/v1/admin/revoke",
        "/v1/gateway/replies/authorize",
        "/v1/gateway/transport/rewrap",
    ] {
        assert!(doc.contains(path), "docs/api.md lacks {path}");
    }
    for path in [
        "/v1/admin/messages/{message_id}/audit",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/openapi.json",
    ] {
        assert!(doc.contains(path), "docs/api.md lacks {path}");
    }
}
