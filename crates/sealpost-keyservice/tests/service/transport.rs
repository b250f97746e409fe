//! Transport rewrap through the logic layer: off unless the tenant enables it, every check in
//! its order with its audit record, another tenant's message, expiry and revocation, and no
//! release without a durable audit record.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::policy::{Rights, Template};
use sealpost_core::rewrap::open_share;
use sealpost_core::{Envelope, LicenseSecretKey};
use sealpost_keyservice::service::{
    ReplyAuthorizeError as R, ReplyKind, TransportRewrapError as T,
};

use crate::db::Db;
use crate::fixture::{T0, client, fixture, loose_limits, message_id};
use crate::gateway::{Parts, SMTP_PEER, audit, authorize, transport};
use crate::reply::parts;
use crate::sign_in;

backends!(
    transport_rewrap_releases_and_refuses,
    transport_rewrap_fails_closed_without_audit,
);

async fn transport_rewrap_releases_and_refuses(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let gw = f.gateway_token().await;
    let week = Template::custom("Week", Rights::ALL, Some(7 * 86400)).unwrap();
    let env = f.seal(&week, &["dave@example.com", "bob@gmail.com"], 80);
    let msg = parts(&env);
    let key = client().public_key().to_bytes();
    let ask = |recipient: &'static str, env: Parts, key: Vec<u8>| {
        let (f, gw) = (&f, gw.clone());
        async move { transport(f, Some(&gw), recipient, &env, &key).await }
    };

    // Off unless the tenant turns it on.
    let got = ask("dave@example.com", msg.clone(), key.clone()).await;
    assert_eq!(got.err(), Some(T::Disabled));
    f.set_settings(None, true).await;

    let released = ask("Dave@Example.com", msg.clone(), key.clone())
        .await
        .unwrap();
    assert_eq!(released.email, "dave@example.com");
    assert_eq!(released.message_id, message_id(&env));
    assert_eq!(released.template, "Week");
    assert_eq!(released.sender, "alice@example.com");
    assert_eq!(released.rights, Rights::ALL);
    assert_eq!(released.expires, Some((T0 + 7 * 86400) as u64));
    let e = Envelope::parse(&env).unwrap();
    let share = open_share(&client(), e.header_bytes(), &released.sealed_share).unwrap();
    let lic = sealpost_core::license::open(&f.license, e.header_bytes(), e.license()).unwrap();
    assert_eq!(*share, *lic.share_b);

    let mut flipped = msg.clone();
    flipped.1[70] ^= 1;
    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([12; 32]));
    let unknown = f.seal_as("example.com", &stranger, &week, &["dave@example.com"], 81);
    let other_key = f.other_tenant().await;
    let foreign = f.seal_as(
        "other.example",
        &other_key,
        &week,
        &["dave@example.com"],
        82,
    );
    for (recipient, env, key, e) in [
        ("bob@gmail.com", msg.clone(), key.clone(), T::NotInternal),
        ("not an address", msg.clone(), key.clone(), T::NotInternal),
        (
            "dave@sub.example.com",
            msg.clone(),
            key.clone(),
            T::NotInternal,
        ),
        (
            "erin@example.com",
            msg.clone(),
            key.clone(),
            T::NotARecipient,
        ),
        (
            "dave@example.com",
            msg.clone(),
            vec![4; 65],
            T::BadClientKey,
        ),
        (
            "dave@example.com",
            flipped,
            key.clone(),
            T::MalformedLicense,
        ),
        (
            "dave@example.com",
            parts(&unknown),
            key.clone(),
            T::UnknownKey,
        ),
        // Another tenant's message is never released to this tenant's gateway.
        (
            "dave@example.com",
            parts(&foreign),
            key.clone(),
            T::UnknownKey,
        ),
    ] {
        let got = ask(recipient, env, key).await;
        assert_eq!(got.err(), Some(e), "{recipient}");
    }

    // Expiry and revocation.
    f.clock.set(T0 + 7 * 86400);
    let got = ask("dave@example.com", msg.clone(), key.clone()).await;
    assert_eq!(got.err(), Some(T::Expired));
    f.clock.set(T0 + 86400);
    let admin = f.admin_token().await;
    f.svc
        .revoke(Some(&admin), &message_id(&env), None)
        .await
        .unwrap();
    let got = ask("dave@example.com", msg.clone(), key.clone()).await;
    assert_eq!(got.err(), Some(T::Revoked));

    // Turned off again: refused at once.
    f.set_settings(None, false).await;
    let got = ask("dave@example.com", msg.clone(), key.clone()).await;
    assert_eq!(got.err(), Some(T::Disabled));

    let records = audit(&f, &env, "transport_").await;
    let summary: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|a| {
            (
                a.event.as_str(),
                a.email.as_deref().unwrap(),
                a.detail.as_str(),
            )
        })
        .collect();
    let want = vec![
        (
            "transport_refused",
            "dave@example.com",
            "transport_decryption_disabled",
        ),
        ("transport_released", "dave@example.com", "template Week"),
        ("transport_refused", "bob@gmail.com", "not_internal"),
        ("transport_refused", "not an address", "not_internal"),
        ("transport_refused", "dave@sub.example.com", "not_internal"),
        ("transport_refused", "erin@example.com", "not_a_recipient"),
        ("transport_refused", "dave@example.com", "bad_client_key"),
        ("transport_refused", "dave@example.com", "malformed_license"),
        ("transport_refused", "dave@example.com", "revoked"),
        (
            "transport_refused",
            "dave@example.com",
            "transport_decryption_disabled",
        ),
        // Recorded at its own, later time: the trail is in time order.
        ("transport_refused", "dave@example.com", "expired"),
    ];
    assert_eq!(summary, want);
    assert!(
        records
            .iter()
            .all(|a| a.client_ip.as_deref() == Some(SMTP_PEER))
    );
    // The other messages' refusals are in their own trails (this tenant's, for the foreign one).
    assert_eq!(
        audit(&f, &unknown, "transport_refused").await[0].detail,
        "unknown_key"
    );
    assert_eq!(
        audit(&f, &foreign, "transport_refused").await[0].detail,
        "unknown_key"
    );
}

async fn transport_rewrap_fails_closed_without_audit(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let gw = f.gateway_token().await;
    f.set_settings(None, true).await;
    let env = f.seal(&Template::encrypt_only(), &["dave@example.com"], 90);
    let key = client().public_key().to_bytes();
    let dave = sign_in(&f, &env, "dave@example.com").await;
    f.svc.store().close().await;
    let got = transport(&f, Some(&gw), "dave@example.com", &parts(&env), &key).await;
    assert_eq!(got.err(), Some(T::Unavailable));
    let policy = f.reply_policy(&env, "dave@example.com", &["alice@example.com"]);
    let reply = parts(&f.seal_reply(&policy, None, 91));
    let got = authorize(&f, Some(&gw), &dave, ReplyKind::Reply, &parts(&env), &reply).await;
    assert_eq!(got.err(), Some(R::Unavailable));
}
