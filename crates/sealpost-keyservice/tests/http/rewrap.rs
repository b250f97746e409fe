//! Every refusal reason of rewrap, with time moved through the session timeouts, the
//! message's expiry, and a revocation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::LicenseSecretKey;
use sealpost_core::policy::{Right, Rights, Template};
use serde_json::json;

use crate::db::Db;
use crate::fixture::{T0, message_id};
use crate::{app, client_key, envelope_parts};

backends!(rewrap_refusals,);

async fn rewrap_refusals(db: Db) {
    let app = app(db).await;
    let week = Template::custom("Week", Rights::of(&[Right::View]), Some(7 * 86400)).unwrap();
    let env = app.seal(&week, &["bob@gmail.com", "carol@yahoo.com"], 9);
    let other = app.seal(&Template::encrypt_only(), &["dave@example.org"], 10);
    let key = client_key();

    app.rewrap(None, &env, &key)
        .await
        .refused(401, "not_signed_in");
    let r = app.rewrap(Some("sps_nonsense"), &env, &key).await;
    r.refused(401, "not_signed_in");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    let dave = app.sign_in(&other, "dave@example.org").await;
    app.rewrap(Some(&dave), &env, &key)
        .await
        .refused(403, "not_a_recipient");

    let bob = app.sign_in(&env, "bob@gmail.com").await;
    app.rewrap(Some(&bob), &env, &B64.encode([4u8; 65]))
        .await
        .refused(400, "bad_client_key");
    app.rewrap(Some(&bob), &env, &B64.encode([1u8; 3]))
        .await
        .refused(400, "bad_client_key");
    let (header, license) = envelope_parts(&env);
    let mut bad = B64.decode(&license).unwrap();
    bad[70] ^= 1;
    let body = json!({ "header": header, "license": B64.encode(&bad), "client_public_key": key });
    app.post("/v1/rewrap", body, Some(&bob))
        .await
        .refused(400, "malformed_license");
    let body =
        json!({ "header": B64.encode(b"junk"), "license": license, "client_public_key": key });
    app.post("/v1/rewrap", body, Some(&bob))
        .await
        .refused(400, "malformed_license");

    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([11; 32]));
    // A session belongs to its tenant: for another tenant's message, known or not, it is no
    // session (the portal learns of an unknown tenant earlier, from /v1/tenants/{id}).
    let foreign = app.seal_as("other.example", &stranger, &week, &["bob@gmail.com"], 12);
    app.rewrap(Some(&bob), &foreign, &key)
        .await
        .refused(401, "not_signed_in");
    let unknown_key = app.seal_as("example.com", &stranger, &week, &["bob@gmail.com"], 13);
    app.rewrap(Some(&bob), &unknown_key, &key)
        .await
        .refused(422, "unknown_key");
    assert_eq!(
        app.rewrap(Some(&bob), &env, &key).await.ok()["expires"],
        T0 + 7 * 86400
    );

    // Idle timeout: 30 minutes without use end a session.
    app.clock.advance(1801);
    app.rewrap(Some(&bob), &env, &key)
        .await
        .refused(401, "not_signed_in");

    // Absolute timeout: 12 hours, however busy.
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    for _ in 0..24 {
        app.clock.advance(1740);
        app.rewrap(Some(&carol), &env, &key).await.ok();
    }
    app.clock.advance(1740);
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(401, "not_signed_in");

    // Message expiry: the template's 7 days.
    app.clock.set(T0 + 7 * 86400);
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(410, "expired");

    // Revocation, effective at once.
    app.clock.set(T0 + 86400);
    let carol = app.sign_in(&env, "carol@yahoo.com").await;
    app.rewrap(Some(&carol), &env, &key).await.ok();
    let admin = app.admin_token().await;
    app.post(
        "/v1/admin/revoke",
        json!({ "message_id": message_id(&env) }),
        Some(&admin),
    )
    .await
    .ok();
    app.rewrap(Some(&carol), &env, &key)
        .await
        .refused(410, "revoked");
}
