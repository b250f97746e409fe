//! Every refusal reason of rewrap through the logic layer, with time moved through the
//! session timeout, the message's expiry, a revocation and a retired key.

use sealpost_core::Envelope;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_keyservice::service::{AdminError, RewrapError, TenantImport, TenantSettings};

use crate::db::Db;
use crate::fixture::{Fixture, T0, client, fixture, loose_limits};
use crate::sign_in;

backends!(
    rewrap_refusals,
    a_session_opens_only_its_own_tenants_messages,
);

async fn rewrap_refusals(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let week = Template::custom("Week", Rights::of(&[Right::View]), Some(7 * 86400)).unwrap();
    let env = f.seal(&week, &["bob@gmail.com", "carol@yahoo.com"], 5);
    let other = f.seal(&Template::encrypt_only(), &["dave@example.org"], 6);
    let e = Envelope::parse(&env).unwrap();
    let key = client().public_key().to_bytes();
    let rewrap = |s: Option<String>, h: Vec<u8>, l: Vec<u8>, k: Vec<u8>| {
        let svc = &f.svc;
        async move { svc.rewrap(s.as_deref(), &h, &l, &k, None).await }
    };
    let (h, l) = (e.header_bytes().to_vec(), e.license().to_vec());

    assert_eq!(
        rewrap(None, h.clone(), l.clone(), key.clone()).await.err(),
        Some(RewrapError::NotSignedIn)
    );
    assert_eq!(
        rewrap(
            Some("sps_nonsense".into()),
            h.clone(),
            l.clone(),
            key.clone()
        )
        .await
        .err(),
        Some(RewrapError::NotSignedIn)
    );

    let dave = sign_in(&f, &other, "dave@example.org").await;
    assert_eq!(
        rewrap(Some(dave), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::NotARecipient)
    );

    let bob = sign_in(&f, &env, "bob@gmail.com").await;
    assert_eq!(
        rewrap(Some(bob.clone()), h.clone(), l.clone(), vec![4; 65])
            .await
            .err(),
        Some(RewrapError::BadClientKey)
    );
    let mut bad_license = l.clone();
    bad_license[70] ^= 1;
    assert_eq!(
        rewrap(Some(bob.clone()), h.clone(), bad_license, key.clone())
            .await
            .err(),
        Some(RewrapError::MalformedLicense)
    );
    assert_eq!(
        rewrap(Some(bob.clone()), b"junk".to_vec(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::MalformedLicense)
    );
    assert!(
        rewrap(Some(bob.clone()), h.clone(), l.clone(), key.clone())
            .await
            .is_ok()
    );

    // Idle timeout: 30 minutes without use ends the session.
    f.clock.advance(1801);
    assert_eq!(
        rewrap(Some(bob), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::NotSignedIn)
    );

    // Expiry: the template's 7 days.
    let carol = sign_in(&f, &env, "carol@yahoo.com").await;
    f.clock.set(T0 + 7 * 86400);
    let carol2 = sign_in(&f, &env, "carol@yahoo.com").await;
    assert_eq!(
        rewrap(Some(carol2.clone()), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::Expired)
    );
    let _ = carol;

    // Revocation, effective at once.
    f.clock.set(T0 + 86400);
    let carol3 = sign_in(&f, &env, "carol@yahoo.com").await;
    assert!(
        rewrap(Some(carol3.clone()), h.clone(), l.clone(), key.clone())
            .await
            .is_ok()
    );
    let admin = f.svc.create_admin_token("example.com", "t").await.unwrap();
    assert!(
        f.svc
            .revoke(Some(&admin), &e.header().message_id.to_hex(), None)
            .await
            .unwrap()
    );
    assert!(
        !f.svc
            .revoke(Some(&admin), &e.header().message_id.to_hex(), None)
            .await
            .unwrap(),
        "idempotent"
    );
    assert_eq!(
        rewrap(Some(carol3.clone()), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::Revoked)
    );
    assert_eq!(
        f.svc.revoke(Some("spa_wrong"), "00", None).await.err(),
        Some(AdminError::Unauthorized)
    );
    assert_eq!(
        f.svc.revoke(Some(&admin), "xyz", None).await.err(),
        Some(AdminError::BadMessageId)
    );

    // A retired key: refused with its own reason.
    let other_env = Envelope::parse(&other).unwrap();
    f.svc
        .import_tenant(TenantImport {
            tenant_id: "example.com".into(),
            display_name: "Example Corp".into(),
            settings: TenantSettings::default(),
            license_keys: vec![(f.license.clone(), "retired".into())],
            signing_keys: vec![(f.signing.verifying_key(), "active".into())],
        })
        .await
        .unwrap();
    assert_eq!(
        rewrap(
            Some(carol3),
            other_env.header_bytes().to_vec(),
            other_env.license().to_vec(),
            key.clone()
        )
        .await
        .err(),
        Some(RewrapError::UnknownKey)
    );

    let audit = f
        .svc
        .message_audit(Some(&admin), &e.header().message_id.to_hex())
        .await
        .unwrap();
    let refusals: Vec<&str> = audit
        .iter()
        .filter(|a| a.event == "rewrap_refused")
        .map(|a| a.detail.as_str())
        .collect();
    assert!(
        refusals.contains(&"expired") && refusals.contains(&"revoked"),
        "{refusals:?}"
    );
}

/// Rewraps `env` with `session`; the released share's address.
async fn open(f: &Fixture, session: &str, env: &[u8]) -> Result<String, RewrapError> {
    let e = Envelope::parse(env).unwrap();
    let key = client().public_key().to_bytes();
    let released = f
        .svc
        .rewrap(Some(session), e.header_bytes(), e.license(), &key, None)
        .await?;
    Ok(released.email)
}

/// A session is bound to the tenant it was opened for: another tenant's message to the same
/// address on the same key service is `not_signed_in` until the recipient signs in for that
/// tenant too, and signing in there does not end the first session.
async fn a_session_opens_only_its_own_tenants_messages(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let other_key = f.other_tenant().await;
    let ours = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 50);
    let theirs = f.seal_as(
        "other.example",
        &other_key,
        &Template::encrypt_only(),
        &["bob@gmail.com"],
        51,
    );

    let for_ours = sign_in(&f, &ours, "bob@gmail.com").await;
    assert_eq!(open(&f, &for_ours, &ours).await.unwrap(), "bob@gmail.com");
    assert_eq!(
        open(&f, &for_ours, &theirs).await.err(),
        Some(RewrapError::NotSignedIn)
    );

    let for_theirs = sign_in(&f, &theirs, "bob@gmail.com").await;
    assert_eq!(
        open(&f, &for_theirs, &theirs).await.unwrap(),
        "bob@gmail.com"
    );
    assert_eq!(
        open(&f, &for_theirs, &ours).await.err(),
        Some(RewrapError::NotSignedIn)
    );
    assert!(open(&f, &for_ours, &ours).await.is_ok(), "still signed in");
}
