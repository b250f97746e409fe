//! Sign-in by passcode through the logic layer: the happy path to a decrypted message, the
//! identical answer for non-recipients, the passcode limits, the lockout, unknown tenants and
//! the per-IP limit.

use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::Envelope;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_core::rewrap::open_share;
use sealpost_keyservice::clock::ManualClock;
use sealpost_keyservice::service::{
    AdminError, Entropy, KeyService, Limits, OtpStartError, OtpVerifyError,
};

use crate::db::Db;
use crate::fixture::{BODY, PORTAL, T0, client, fixture, loose_limits};
use crate::sign_in;

backends!(
    recipient_signs_in_and_decrypts,
    start_answers_alike_for_non_recipients,
    passcode_limits,
    lockout_after_100_consecutive_failures,
    unknown_tenant_and_per_ip_limit,
);

async fn recipient_signs_in_and_decrypts(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(&Template::do_not_forward(), &["bob@gmail.com"], 1);
    let session = sign_in(&f, &env, "Bob@Gmail.com").await;
    let e = Envelope::parse(&env).unwrap();
    let c = client();
    let released = f
        .svc
        .rewrap(
            Some(&session),
            e.header_bytes(),
            e.license(),
            &c.public_key().to_bytes(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        released.rights,
        Rights::of(&[Right::View, Right::Reply, Right::ReplyAll])
    );
    assert_eq!(released.sender, "alice@example.com");
    let share = open_share(&c, e.header_bytes(), &released.sealed_share).unwrap();
    e.verify(&f.signing.verifying_key()).unwrap();
    assert_eq!(&e.decrypt(&share).unwrap()[..], BODY);
    let mail = &f.svc.store().outbox(10).await.unwrap()[0];
    assert!(
        mail.body.contains(&e.header().message_id.reference()),
        "the mail names the reference"
    );
    let token = f
        .svc
        .create_admin_token("example.com", "test")
        .await
        .unwrap();
    let events: Vec<String> = f
        .svc
        .message_audit(Some(&token), &e.header().message_id.to_hex())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.event)
        .collect();
    assert_eq!(events, ["otp_sent", "otp_verified", "share_released"]);
}

async fn start_answers_alike_for_non_recipients(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 2);
    let e = Envelope::parse(&env).unwrap();
    let a = f
        .svc
        .start_otp(e.header_bytes(), e.license(), "bob@gmail.com", None)
        .await
        .unwrap();
    let b = f
        .svc
        .start_otp(e.header_bytes(), e.license(), "eve@gmail.com", None)
        .await
        .unwrap();
    assert_eq!((a.expires_in, &a.reference), (b.expires_in, &b.reference));
    assert_eq!(a.challenge.len(), b.challenge.len());
    assert!(
        f.mailed_code("eve@gmail.com").await.is_none(),
        "nothing is mailed to a non-recipient"
    );
    for guess in ["00000000", "12345678"] {
        assert!(matches!(
            f.svc.verify_otp(&b.challenge, guess, None).await,
            Err(OtpVerifyError::WrongCode { .. })
        ));
    }
}

async fn passcode_limits(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 3);
    let e = Envelope::parse(&env).unwrap();
    let start = || {
        f.svc
            .start_otp(e.header_bytes(), e.license(), "bob@gmail.com", None)
    };

    // Five wrong tries kill a code, even for the right code afterwards.
    let c = start().await.unwrap();
    let code = f.mailed_code("bob@gmail.com").await.unwrap();
    let wrong = if code == "11111111" {
        "22222222"
    } else {
        "11111111"
    };
    for remaining in [4, 3, 2, 1] {
        assert_eq!(
            f.svc.verify_otp(&c.challenge, wrong, None).await,
            Err(OtpVerifyError::WrongCode { remaining })
        );
    }
    assert_eq!(
        f.svc.verify_otp(&c.challenge, wrong, None).await,
        Err(OtpVerifyError::TooManyAttempts)
    );
    assert_eq!(
        f.svc.verify_otp(&c.challenge, &code, None).await.err(),
        Some(OtpVerifyError::TooManyAttempts)
    );

    // A code is valid for 10 minutes and works once.
    let c = start().await.unwrap();
    let code = f.mailed_code("bob@gmail.com").await.unwrap();
    f.clock.advance(600);
    assert_eq!(
        f.svc.verify_otp(&c.challenge, &code, None).await.err(),
        Some(OtpVerifyError::Expired)
    );
    let c = start().await.unwrap();
    let code = f.mailed_code("bob@gmail.com").await.unwrap();
    f.clock.advance(599);
    assert!(f.svc.verify_otp(&c.challenge, &code, None).await.is_ok());
    assert!(matches!(
        f.svc.verify_otp(&c.challenge, &code, None).await,
        Err(OtpVerifyError::WrongCode { .. })
    ));

    // At most 10 codes per address per hour.
    f.clock.advance(3600);
    for _ in 0..10 {
        start().await.unwrap();
    }
    assert_eq!(start().await.err(), Some(OtpStartError::TooManyCodes(3600)));
    f.clock.advance(3601);
    assert!(start().await.is_ok());
}

async fn lockout_after_100_consecutive_failures(db: Db) {
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 4);
    let e = Envelope::parse(&env).unwrap();
    let mut failures = 0;
    'outer: loop {
        f.clock.advance(3601);
        for _ in 0..10 {
            let c = f
                .svc
                .start_otp(e.header_bytes(), e.license(), "bob@gmail.com", None)
                .await
                .unwrap();
            for _ in 0..5 {
                failures += 1;
                let r = f.svc.verify_otp(&c.challenge, "99999999x", None).await;
                if failures == 100 {
                    assert_eq!(r.err(), Some(OtpVerifyError::Locked));
                    break 'outer;
                }
            }
        }
    }
    f.clock.advance(3601);
    assert_eq!(
        f.svc
            .start_otp(e.header_bytes(), e.license(), "bob@gmail.com", None)
            .await
            .err(),
        Some(OtpStartError::Locked)
    );
}

async fn unknown_tenant_and_per_ip_limit(db: Db) {
    // A service on a database of its own, with no tenant loaded.
    let empty = db.another().await;
    let store = empty.open().await;
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let limits = Limits {
        per_ip_per_minute: 2,
        ..Limits::default()
    };
    let svc = KeyService::new(
        store,
        Arc::new(ManualClock::new(T0)),
        Entropy::seeded(2),
        KeyEncryptionKey::generate(&mut rng),
        limits,
    )
    .await
    .unwrap();
    let f = fixture(db, loose_limits()).await;
    let env = f.seal(&Template::encrypt_only(), &["bob@gmail.com"], 7);
    let e = Envelope::parse(&env).unwrap();
    let ip = Some("198.51.100.7".parse().unwrap());
    assert_eq!(
        svc.start_otp(e.header_bytes(), e.license(), "bob@gmail.com", ip)
            .await
            .err(),
        Some(OtpStartError::UnknownTenant)
    );
    assert_eq!(
        svc.start_otp(e.header_bytes(), e.license(), "not an address", ip)
            .await
            .err(),
        Some(OtpStartError::BadAddress)
    );
    assert_eq!(
        svc.start_otp(e.header_bytes(), e.license(), "bob@gmail.com", ip)
            .await
            .err(),
        Some(OtpStartError::RateLimited(60))
    );
    assert_eq!(
        svc.tenant_info("nope").await.err(),
        Some(AdminError::UnknownTenant)
    );
    let info = f.svc.tenant_info("example.com").await.unwrap();
    assert_eq!(
        info.signing_keys[0].id,
        f.signing.verifying_key().key_id().to_string()
    );
    assert_eq!(info.allowed_origins, [PORTAL]);
}
