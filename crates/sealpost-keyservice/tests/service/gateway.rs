//! The gateway's calls through the logic layer: token roles, and every check of reply
//! authorization in its order with its audit record, with time moved through sessions,
//! lifetimes and expiry. Replies are sealed as the portal seals them (`support/reply.rs`).
//! Transport rewrap is in `transport.rs`.

use std::net::IpAddr;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::LicenseSecretKey;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_keyservice::service::{
    AdminError, ReplyAuthorizeError as R, ReplyAuthorized, ReplyKind, ReplyRequest, TokenRole,
    TransportRequest, TransportRewrapError as T,
};
use sealpost_keyservice::store::AuditRow;

use crate::db::Db;
use crate::fixture::{Fixture, T0, client, fixture, loose_limits, message_id};
use crate::reply::parts;
use crate::sign_in;

backends!(
    tokens_have_roles,
    reply_kinds_are_authorized_and_audited,
    reply_refusals_in_order_and_audited,
    reply_expiry_sessions_and_moved_time,
    a_session_of_another_tenant_authorizes_no_reply,
);

pub(crate) const BROWSER: &str = "203.0.113.9";
pub(crate) const SMTP_PEER: &str = "192.0.2.25";

pub(crate) type Parts = (Vec<u8>, Vec<u8>);

/// Asks the key service to authorize `reply` (header, license) to `original`.
pub(crate) async fn authorize(
    f: &Fixture,
    token: Option<&str>,
    session: &str,
    kind: ReplyKind,
    original: &Parts,
    reply: &Parts,
) -> Result<ReplyAuthorized, R> {
    let req = ReplyRequest {
        session,
        kind,
        client_ip: Some(BROWSER.parse::<IpAddr>().unwrap()),
        original_header: &original.0,
        original_license: &original.1,
        reply_header: &reply.0,
        reply_license: &reply.1,
    };
    f.svc.authorize_reply(token, &req).await
}

/// Asks for share B of `env` (header, license) for `recipient`, sealed to the test client key.
pub(crate) async fn transport(
    f: &Fixture,
    token: Option<&str>,
    recipient: &str,
    env: &Parts,
    key: &[u8],
) -> Result<sealpost_keyservice::service::Released, T> {
    let req = TransportRequest {
        recipient,
        header: &env.0,
        license: &env.1,
        client_public_key: key,
        client_ip: Some(SMTP_PEER.parse::<IpAddr>().unwrap()),
    };
    f.svc.transport_rewrap(token, &req).await
}

/// The audit records of one message whose event starts with `prefix`.
pub(crate) async fn audit(f: &Fixture, env: &[u8], prefix: &str) -> Vec<AuditRow> {
    let admin = f.admin_token().await;
    f.svc
        .message_audit(Some(&admin), &message_id(env))
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.event.starts_with(prefix))
        .collect()
}

async fn tokens_have_roles(db: Db) {
    let f = fixture(db, loose_limits()).await;
    f.set_settings(None, true).await;
    let env = f.seal(
        &Template::encrypt_only(),
        &["bob@gmail.com", "dave@example.com"],
        1,
    );
    let bob = sign_in(&f, &env, "bob@gmail.com").await;
    let policy = f.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    let reply = parts(&f.seal_reply(&policy, None, 2));
    let original = parts(&env);
    let key = client().public_key().to_bytes();

    let gateway = f.gateway_token().await;
    let admin = f.admin_token().await;
    assert!(gateway.starts_with("spg_") && admin.starts_with("spa_"));
    // No token, an unknown one, and an admin token: refused, and nothing is audited.
    for token in [None, Some("spg_nonsense"), Some(admin.as_str())] {
        let r = authorize(&f, token, &bob, ReplyKind::Reply, &original, &reply).await;
        assert_eq!(r.err(), Some(R::Unauthorized));
        let t = transport(&f, token, "dave@example.com", &original, &key).await;
        assert_eq!(t.err(), Some(T::Unauthorized));
    }
    assert!(audit(&f, &env, "reply_").await.is_empty());
    assert!(audit(&f, &env, "transport_").await.is_empty());

    // The gateway token works on the gateway's calls only.
    let r = authorize(
        &f,
        Some(&gateway),
        &bob,
        ReplyKind::Reply,
        &original,
        &reply,
    )
    .await;
    assert!(r.is_ok(), "{r:?}");
    let t = transport(&f, Some(&gateway), "dave@example.com", &original, &key).await;
    assert!(t.is_ok(), "{t:?}");
    let id = message_id(&env);
    assert_eq!(
        f.svc.revoke(Some(&gateway), &id, None).await.err(),
        Some(AdminError::Unauthorized)
    );
    assert_eq!(
        f.svc.message_audit(Some(&gateway), &id).await.err(),
        Some(AdminError::Unauthorized)
    );
    assert!(!f.svc.store().is_revoked("example.com", &id).await.unwrap());
    assert_eq!(
        f.svc
            .create_token("nope.example", "gw", TokenRole::Gateway)
            .await
            .err(),
        Some(AdminError::UnknownTenant)
    );
    assert_eq!(TokenRole::parse("gateway"), Some(TokenRole::Gateway));
    assert_eq!(TokenRole::parse("admin"), Some(TokenRole::Admin));
    assert_eq!(TokenRole::parse("root"), None);
}

async fn reply_kinds_are_authorized_and_audited(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(
        &Template::encrypt_only(),
        &["bob@gmail.com", "carol@yahoo.com"],
        3,
    );
    let original = parts(&env);
    let gw = f.gateway_token().await;
    let bob = sign_in(&f, &env, "Bob@Gmail.com").await;

    let cases: [(ReplyKind, &[&str]); 6] = [
        (ReplyKind::Reply, &["alice@example.com"]),
        // The organization's own people on the original got it unencrypted, so they are not
        // in an outside recipient's policy; a reply to all may still include them.
        (
            ReplyKind::ReplyAll,
            &["alice@example.com", "dave@example.com"],
        ),
        (
            ReplyKind::ReplyAll,
            &["alice@example.com", "carol@yahoo.com"],
        ),
        (ReplyKind::ReplyAll, &["carol@yahoo.com"]),
        (
            ReplyKind::Forward,
            &["dave@example.org", "erin@example.net"],
        ),
        (ReplyKind::Forward, &["alice@example.com"]),
    ];
    let mut details = Vec::new();
    for (i, (kind, to)) in cases.into_iter().enumerate() {
        let policy = f.reply_policy(&env, "bob@gmail.com", to);
        let sealed = f.seal_reply(&policy, None, 10 + i as u8);
        let ok = authorize(&f, Some(&gw), &bob, kind, &original, &parts(&sealed))
            .await
            .unwrap();
        assert_eq!(
            ok,
            ReplyAuthorized {
                submitter: "bob@gmail.com".into(),
                recipients: to.iter().map(|s| s.to_string()).collect(),
                original_sender: "alice@example.com".into(),
                original_message_id: message_id(&env),
                reply_message_id: message_id(&sealed),
                kind,
            }
        );
        details.push(format!(
            "kind={} reply={} recipients={}",
            kind.as_str(),
            message_id(&sealed),
            to.join(",")
        ));
    }
    // The same address twice counts once.
    let policy = f.reply_policy(
        &env,
        "bob@gmail.com",
        &["alice@example.com", "alice@example.com"],
    );
    let twice = f.seal_reply(&policy, None, 20);
    let ok = authorize(
        &f,
        Some(&gw),
        &bob,
        ReplyKind::Reply,
        &original,
        &parts(&twice),
    )
    .await
    .unwrap();
    assert_eq!(ok.recipients, ["alice@example.com"]);

    let records = audit(&f, &env, "reply_").await;
    assert_eq!(records.len(), 7);
    for (record, detail) in records.iter().zip(&details) {
        assert_eq!(record.event, "reply_authorized");
        assert_eq!(record.email.as_deref(), Some("bob@gmail.com"));
        assert_eq!(record.client_ip.as_deref(), Some(BROWSER));
        assert_eq!(&record.detail, detail);
    }
}

async fn reply_refusals_in_order_and_audited(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let gw = f.gateway_token().await;
    let env = f.seal(
        &Template::encrypt_only(),
        &["bob@gmail.com", "carol@yahoo.com"],
        40,
    );
    let original = parts(&env);
    let bob = sign_in(&f, &env, "bob@gmail.com").await;
    let to_alice = f.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    let good = parts(&f.seal_reply(&to_alice, None, 41));
    // The refusals audited under the original's id, in order.
    let mut trail: Vec<String> = Vec::new();
    let mut check = async |session: &str, kind: ReplyKind, orig: &Parts, reply: &Parts, e: R| {
        let got = authorize(&f, Some(&gw), session, kind, orig, reply).await;
        assert_eq!(got.err(), Some(e.clone()));
        if orig.0 == original.0 {
            trail.push(format!("kind={} error={}", kind.as_str(), e.code()));
        }
    };
    let reply = ReplyKind::Reply;

    // The session.
    check("sps_nonsense", reply, &original, &good, R::NotSignedIn).await;

    // The original: its license, its key, its tenant.
    let mut flipped = original.clone();
    flipped.1[70] ^= 1;
    check(&bob, reply, &flipped, &good, R::MalformedLicense).await;
    let junk = (b"junk".to_vec(), original.1.clone());
    check(&bob, reply, &junk, &good, R::MalformedLicense).await;
    let stranger = LicenseSecretKey::generate(&mut ChaCha20Rng::from_seed([11; 32]));
    let encrypt_only = Template::encrypt_only();
    let unknown = f.seal_as(
        "example.com",
        &stranger,
        &encrypt_only,
        &["bob@gmail.com"],
        42,
    );
    check(&bob, reply, &parts(&unknown), &good, R::UnknownKey).await;
    let other_key = f.other_tenant().await;
    let foreign = f.seal_as(
        "other.example",
        &other_key,
        &encrypt_only,
        &["bob@gmail.com"],
        43,
    );
    check(&bob, reply, &parts(&foreign), &good, R::UnknownKey).await;

    // The submitter and the right.
    let other = f.seal(&encrypt_only, &["dave@example.org"], 44);
    let dave = sign_in(&f, &other, "dave@example.org").await;
    check(&dave, reply, &original, &good, R::NotARecipient).await;
    let dnf = f.seal(&Template::do_not_forward(), &["bob@gmail.com"], 45);
    let fwd = f.reply_policy(&dnf, "bob@gmail.com", &["dave@example.org"]);
    let fwd = parts(&f.seal_reply(&fwd, None, 46));
    let forward = ReplyKind::Forward;
    check(
        &bob,
        forward,
        &parts(&dnf),
        &fwd,
        R::RightNotGranted("forward"),
    )
    .await;
    let view = Template::custom("View only", Rights::of(&[Right::View]), None).unwrap();
    let view_only = parts(&f.seal(&view, &["bob@gmail.com"], 47));
    let back = parts(&f.seal_reply(&to_alice, None, 48));
    check(&bob, reply, &view_only, &back, R::RightNotGranted("reply")).await;
    let all = ReplyKind::ReplyAll;
    check(
        &bob,
        all,
        &view_only,
        &back,
        R::RightNotGranted("reply_all"),
    )
    .await;

    // The reply's license: altered, moved from another reply, sealed to an unknown key.
    let mut flipped = good.clone();
    flipped.1[70] ^= 1;
    check(&bob, reply, &original, &flipped, R::MalformedLicense).await;
    let second = parts(&f.seal_reply(&to_alice, None, 49));
    let moved = (good.0.clone(), second.1);
    check(&bob, reply, &original, &moved, R::MalformedLicense).await;
    let lost = f.seal_reply_as("example.com", &stranger.public_key(), &to_alice, None, 50);
    check(&bob, reply, &original, &parts(&lost), R::MalformedLicense).await;

    // The reply's policy: tenant, message id, template, rights, expiry, subject.
    let invalid = R::ReplyPolicyInvalid;
    let other_pk = other_key.public_key();
    let elsewhere = f.seal_reply_as("other.example", &other_pk, &to_alice, None, 51);
    let e = invalid("it is not sealed for this tenant");
    check(&bob, reply, &original, &parts(&elsewhere), e).await;
    // Never opened with the other tenant's key: a damaged license answers the same.
    let mut damaged = parts(&elsewhere);
    damaged.1[70] ^= 1;
    let e = invalid("it is not sealed for this tenant");
    check(&bob, reply, &original, &damaged, e).await;
    // Sealed by the portal under another key-service URL than the original's header names.
    let sealer = sealpost_core::SubmissionSealer {
        tenant_id: "example.com",
        key_service_url: "https://keys.attacker.example",
        license_key: &f.license.public_key(),
        signing_key_id: f.signing.verifying_key().key_id(),
    };
    let moved_away = sealpost_core::seal_submission(
        &sealer,
        &to_alice,
        None,
        T0 as u64,
        b"Subject: Re: hi\r\n\r\nx\r\n",
        &mut ChaCha20Rng::from_seed([54; 32]),
    )
    .unwrap();
    let e = invalid("it names another key service than the original");
    check(&bob, reply, &original, &parts(&moved_away), e).await;
    // The original was sealed with seed 40: the same seed gives the same message id.
    let same_id = f.seal_reply(&to_alice, None, 40);
    assert_eq!(message_id(&same_id), message_id(&env));
    let e = invalid("it has the original's message id");
    check(&bob, reply, &original, &parts(&same_id), e).await;
    let mut renamed = to_alice.clone();
    renamed.template = "Do-Not-Forward".into();
    let renamed = parts(&f.seal_reply(&renamed, None, 52));
    let e = invalid("its template is not the original's");
    check(&bob, reply, &original, &renamed, e).await;
    let mut fewer = to_alice.clone();
    fewer.rights = Rights::of(&[Right::View, Right::Reply]);
    let fewer = parts(&f.seal_reply(&fewer, None, 53));
    let e = invalid("its rights are not the original's");
    check(&bob, reply, &original, &fewer, e).await;
    let mut expiring = to_alice.clone();
    expiring.expires = Some(T0 as u64 + 3600);
    let expiring = parts(&f.seal_reply(&expiring, None, 54));
    let e = invalid("it expires but the original does not");
    check(&bob, reply, &original, &expiring, e).await;
    let subject = parts(&f.seal_reply(&to_alice, Some("Re: hi"), 55));
    let e = invalid("it shows a subject where the original shows none");
    check(&bob, reply, &original, &subject, e).await;

    // The sender.
    let as_carol = f.reply_policy(&env, "carol@yahoo.com", &["alice@example.com"]);
    let as_carol = parts(&f.seal_reply(&as_carol, None, 56));
    check(&bob, reply, &original, &as_carol, R::SenderMismatch).await;

    // The recipients.
    let only_sender = R::RecipientsNotAllowed("a reply goes to the original sender only");
    let all_rule = R::RecipientsNotAllowed(
        "a reply to all goes only to the original sender and recipients (and the organization's own addresses), other than yourself",
    );
    let many: Vec<String> = (0..101).map(|i| format!("r{i}@example.org")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: [(ReplyKind, &[&str], R); 6] = [
        (reply, &["carol@yahoo.com"], only_sender.clone()),
        (
            reply,
            &["alice@example.com", "carol@yahoo.com"],
            only_sender,
        ),
        (
            all,
            &["alice@example.com", "bob@gmail.com"],
            all_rule.clone(),
        ),
        (all, &["carol@yahoo.com", "mallory@evil.example"], all_rule),
        (
            forward,
            &many,
            R::RecipientsNotAllowed("a forward goes to 1 to 100 addresses"),
        ),
        (
            forward,
            &["nobody"],
            R::RecipientsNotAllowed("a forward recipient is not an e-mail address"),
        ),
    ];
    for (i, (kind, to, e)) in cases.into_iter().enumerate() {
        let policy = f.reply_policy(&env, "bob@gmail.com", to);
        let sealed = parts(&f.seal_reply(&policy, None, 60 + i as u8));
        check(&bob, kind, &original, &sealed, e).await;
    }
    // A hundred is the limit, not over it.
    let hundred = f.reply_policy(&env, "bob@gmail.com", &many[..100]);
    let hundred = parts(&f.seal_reply(&hundred, None, 70));
    let ok = authorize(&f, Some(&gw), &bob, forward, &original, &hundred).await;
    assert_eq!(ok.unwrap().recipients.len(), 100);

    // Revoked: refused, whatever else is right.
    let admin = f.admin_token().await;
    f.svc
        .revoke(Some(&admin), &message_id(&env), None)
        .await
        .unwrap();
    check(&bob, reply, &original, &good, R::Revoked).await;

    let records = audit(&f, &env, "reply_").await;
    let refusals: Vec<&AuditRow> = records
        .iter()
        .filter(|a| a.event == "reply_refused")
        .collect();
    let details: Vec<&str> = refusals.iter().map(|a| a.detail.as_str()).collect();
    assert_eq!(details, trail);
    assert_eq!(details.len(), 22);
    assert_eq!(
        refusals[0].email.as_deref(),
        Some(""),
        "no session: no address"
    );
    assert!(
        refusals[1..]
            .iter()
            .all(|a| a.email.as_deref() == Some("bob@gmail.com")
                || a.detail.ends_with("not_a_recipient"))
    );
    assert!(
        refusals
            .iter()
            .all(|a| a.client_ip.as_deref() == Some(BROWSER))
    );
    let authorized = records.iter().filter(|a| a.event == "reply_authorized");
    assert_eq!(authorized.count(), 1, "the forward to a hundred");
    // The other originals' refusals are in their own trails.
    let dnf_trail = audit(&f, &dnf, "reply_refused").await;
    assert_eq!(dnf_trail[0].detail, "kind=forward error=right_not_granted");
    let foreign_trail = audit(&f, &foreign, "reply_refused").await;
    assert_eq!(foreign_trail[0].detail, "kind=reply error=unknown_key");
}

async fn reply_expiry_sessions_and_moved_time(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let gw = f.gateway_token().await;
    let week = Template::custom("Week", Rights::ALL, Some(7 * 86400)).unwrap();
    let env = f.seal(&week, &["bob@gmail.com"], 70);
    let original = parts(&env);
    let ask = |session: &str, reply: Parts| {
        let (f, gw, original, session) = (&f, gw.clone(), original.clone(), session.to_string());
        async move { authorize(f, Some(&gw), &session, ReplyKind::Reply, &original, &reply).await }
    };

    // Two days later the reply's lifetime is still seven days, counted from now.
    f.clock.set(T0 + 2 * 86400);
    let bob = sign_in(&f, &env, "bob@gmail.com").await;
    let policy = f.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    let wanted = (T0 + 9 * 86400) as u64;
    assert_eq!(policy.expires, Some(wanted));
    let ok = ask(&bob, parts(&f.seal_reply(&policy, None, 71))).await;
    assert!(ok.is_ok(), "{ok:?}");
    let lifetime =
        R::ReplyPolicyInvalid("its expiry is not the original's lifetime counted from now");
    for (expires, allowed) in [
        (Some(wanted + 300), true),
        (Some(wanted - 300), true),
        (Some(wanted + 301), false),
        (Some(wanted - 301), false),
        (Some((T0 + 7 * 86400) as u64), false),
    ] {
        let mut p = policy.clone();
        p.expires = expires;
        let got = ask(&bob, parts(&f.seal_reply(&p, None, 72))).await;
        match allowed {
            true => assert!(got.is_ok(), "{expires:?}: {got:?}"),
            false => assert_eq!(got.err(), Some(lifetime.clone()), "{expires:?}"),
        }
    }
    let mut never = policy.clone();
    never.expires = None;
    let got = ask(&bob, parts(&f.seal_reply(&never, None, 73))).await;
    assert_eq!(
        got.err(),
        Some(R::ReplyPolicyInvalid(
            "it does not expire but the original does"
        ))
    );

    // The session ends after 30 idle minutes.
    let sealed = parts(&f.seal_reply(&policy, None, 74));
    f.clock.advance(1801);
    assert_eq!(ask(&bob, sealed.clone()).await.err(), Some(R::NotSignedIn));

    // The original expires after its seven days.
    f.clock.set(T0 + 7 * 86400);
    let bob = sign_in(&f, &env, "bob@gmail.com").await;
    let policy = f.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    let got = ask(&bob, parts(&f.seal_reply(&policy, None, 75))).await;
    assert_eq!(got.err(), Some(R::Expired));

    let details: Vec<String> = audit(&f, &env, "reply_refused")
        .await
        .into_iter()
        .map(|a| a.detail)
        .collect();
    assert_eq!(details.len(), 6);
    assert_eq!(details[4], "kind=reply error=not_signed_in");
    assert_eq!(details[5], "kind=reply error=expired");
}

/// A tenant's gateway sees the session tokens of the people who reply through it; one
/// opened for another tenant's message is no session for this tenant's replies (and this
/// tenant's sessions are none for the other's).
async fn a_session_of_another_tenant_authorizes_no_reply(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let other_key = f.other_tenant().await;
    let gw = f.gateway_token().await;
    let env = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 60);
    let theirs = f.seal_as(
        "other.example",
        &other_key,
        &Template::encrypt_only(),
        &["bob@gmail.com"],
        61,
    );
    let original = parts(&env);
    let to_alice = f.reply_policy(&env, "bob@gmail.com", &["alice@example.com"]);
    let reply = parts(&f.seal_reply(&to_alice, None, 62));

    let elsewhere = sign_in(&f, &theirs, "bob@gmail.com").await;
    let got = authorize(
        &f,
        Some(&gw),
        &elsewhere,
        ReplyKind::Reply,
        &original,
        &reply,
    )
    .await;
    assert_eq!(got.err(), Some(R::NotSignedIn));

    let here = sign_in(&f, &env, "bob@gmail.com").await;
    let got = authorize(&f, Some(&gw), &here, ReplyKind::Reply, &original, &reply).await;
    assert_eq!(got.unwrap().submitter, "bob@gmail.com");
}
