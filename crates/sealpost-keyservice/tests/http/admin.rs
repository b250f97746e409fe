//! Tenant public info, revocation and the audit trail through the admin endpoints.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sealpost_core::policy::Template;
use serde_json::json;

use crate::app;
use crate::db::Db;
use crate::fixture::{PORTAL, message_id};

backends!(tenant_info, admin_revoke_and_audit,);

async fn tenant_info(db: Db) {
    let app = app(db).await;
    let info = app.get("/v1/tenants/example.com", None).await.ok();
    assert_eq!(info["tenant_id"], "example.com");
    assert_eq!(info["display_name"], "Example Corp");
    assert_eq!(info["allowed_origins"], json!([PORTAL]));
    assert_eq!(info["branding"], json!({ "accent_color": "#0b57d0" }));
    let signing = &info["signing_keys"][0];
    assert_eq!(
        signing["id"],
        app.signing.verifying_key().key_id().to_string()
    );
    assert_eq!(signing["status"], "active");
    let license = &info["license_keys"][0];
    assert_eq!(license["id"], app.license.public_key().key_id().to_string());
    assert_eq!(
        B64.decode(license["public_key"].as_str().unwrap()).unwrap(),
        app.license.public_key().to_bytes()
    );

    app.get("/v1/tenants/nope.example", None)
        .await
        .refused(404, "unknown_tenant");
    app.get("/v1/tenants/%FF", None)
        .await
        .refused(400, "bad_request");
}

async fn admin_revoke_and_audit(db: Db) {
    let app = app(db).await;
    let env = app.seal(&Template::encrypt_only(), &["bob@gmail.com"], 3);
    let id = message_id(&env);
    let admin = app.admin_token().await;
    let revoke = |token: Option<String>, id: String| {
        let app = &app;
        async move {
            app.post(
                "/v1/admin/revoke",
                json!({ "message_id": id }),
                token.as_deref(),
            )
            .await
        }
    };
    assert_eq!(
        revoke(Some(admin.clone()), id.clone()).await.ok(),
        json!({ "revoked": true })
    );
    assert_eq!(
        revoke(Some(admin.clone()), id.to_uppercase()).await.ok(),
        json!({ "revoked": false })
    );

    revoke(None, id.clone()).await.refused(401, "unauthorized");
    let r = revoke(Some("spa_wrong".into()), id.clone()).await;
    r.refused(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    revoke(Some(admin.clone()), "xyz".into())
        .await
        .refused(400, "bad_message_id");

    let path = format!("/v1/admin/messages/{id}/audit");
    let audit = app.get(&path, Some(&admin)).await.ok();
    let details: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details, ["revoked", "already revoked"]);
    app.get(&path, None).await.refused(401, "unauthorized");
    app.get(&path, Some("spa_wrong"))
        .await
        .refused(401, "unauthorized");
    app.get("/v1/admin/messages/nothex/audit", Some(&admin))
        .await
        .refused(400, "bad_message_id");
}
