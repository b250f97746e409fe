//! Bad input of every kind is a clear JSON error, never a 500; a dead database is a 503.

use axum::body::Body;
use axum::http::{Method, Request, header};
use sealpost_core::policy::Template;
use serde_json::json;

use crate::db::Db;
use crate::{app, client_key, envelope_parts};

backends!(
    bad_input_is_a_json_error_never_a_500,
    database_down_is_503_with_retry_after,
);

async fn bad_input_is_a_json_error_never_a_500(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 15);
    let (header, license) = envelope_parts(&env);

    for body in [
        "{not json",
        "",
        "null",
        "[]",
        "{\"header\": \"AAAA\"}",
        "\"just a string\"",
    ] {
        app.post_raw("/v1/otp/start", body, None)
            .await
            .refused(400, "bad_request");
    }
    let bad_values = [
        json!({ "header": "!!!", "license": license, "email": "bob@gmail.com" }),
        json!({ "header": header, "license": "AAA", "email": "bob@gmail.com" }),
        json!({ "header": header, "license": license, "email": 5 }),
        json!({ "header": 12, "license": license, "email": "bob@gmail.com" }),
        json!({ "header": header, "license": license, "email": "bob@gmail.com", "extra": true }),
    ];
    for body in bad_values {
        app.post("/v1/otp/start", body, None)
            .await
            .refused(400, "bad_request");
    }
    app.post(
        "/v1/otp/verify",
        json!({ "challenge": 1, "code": [] }),
        None,
    )
    .await
    .refused(400, "bad_request");
    let body = json!({ "header": header, "license": license, "client_public_key": "%%%" });
    app.post("/v1/rewrap", body, None)
        .await
        .refused(400, "bad_request");
    app.post("/v1/admin/revoke", json!({ "message_id": null }), None)
        .await
        .refused(400, "bad_request");
    app.post_raw("/v1/otp/start", &b"{\"email\": \"\xff\"}"[..], None)
        .await
        .refused(400, "bad_request");

    // Oversized: 413 before anything is parsed.
    let huge =
        json!({ "header": "A".repeat(2 << 20), "license": license, "email": "bob@gmail.com" });
    app.post("/v1/otp/start", huge, None)
        .await
        .refused(413, "too_large");

    // The CSRF rules: the custom header and the JSON content type.
    let good =
        json!({ "header": header, "license": license, "email": "bob@gmail.com" }).to_string();
    let without = |client: Option<&str>, content_type: Option<&str>| {
        let mut req = Request::post("/v1/otp/start");
        if let Some(v) = client {
            req = req.header("x-sealpost-client", v);
        }
        if let Some(v) = content_type {
            req = req.header(header::CONTENT_TYPE, v);
        }
        req.body(Body::from(good.clone())).unwrap()
    };
    let json_ct = Some("application/json");
    app.send(without(None, json_ct))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("0"), json_ct))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("1"), None))
        .await
        .refused(415, "unsupported_media_type");
    app.send(without(Some("1"), Some("text/plain")))
        .await
        .refused(415, "unsupported_media_type");
    app.send(without(None, Some("application/x-www-form-urlencoded")))
        .await
        .refused(400, "missing_client_header");
    app.send(without(Some("1"), Some("application/json; charset=utf-8")))
        .await
        .ok();

    // Routing.
    app.get("/v1/nothing", None).await.refused(404, "not_found");
    app.get("/v1/rewrap", None)
        .await
        .refused(405, "method_not_allowed");
    let req = Request::builder()
        .method(Method::DELETE)
        .uri("/v1/tenants/example.com")
        .body(Body::empty())
        .unwrap();
    app.send(req).await.refused(405, "method_not_allowed");
    // A malformed Authorization header is just "not signed in".
    let req = Request::post("/v1/rewrap")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-sealpost-client", "1")
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .body(Body::from(
            json!({ "header": header, "license": license, "client_public_key": client_key() })
                .to_string(),
        ))
        .unwrap();
    app.send(req).await.refused(401, "not_signed_in");
}

async fn database_down_is_503_with_retry_after(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 17);
    app.svc.store().close().await;
    app.get("/readyz", None).await.refused(503, "unavailable");
    app.start(&env, "bob@gmail.com")
        .await
        .refused(503, "unavailable");
    app.rewrap(Some("sps_x"), &env, &client_key())
        .await
        .refused(503, "unavailable");
    app.get("/v1/tenants/example.com", None)
        .await
        .refused(503, "unavailable");
    assert_eq!(app.get("/healthz", None).await.text(), "ok");
}
