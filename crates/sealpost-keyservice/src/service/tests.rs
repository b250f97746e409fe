//! The key service's rules, end to end through the logic layer on a real SQLite database,
//! with time moved by a manual clock.

use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::keys::KeyEncryptionKey;
use sealpost_core::policy::{Right, Rights, Template};
use sealpost_core::rewrap::{ClientSecretKey, open_share};
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey};

use super::*;
use crate::clock::ManualClock;

const T0: i64 = 1_800_000_000;

struct Fixture {
    svc: KeyService,
    clock: ManualClock,
    license: LicenseSecretKey,
    signing: SigningKey,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(dir.path(), 4).await.unwrap();
    let clock = ManualClock::new(T0);
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let license = LicenseSecretKey::generate(&mut rng);
    let signing = SigningKey::generate(&mut rng);
    let limits = Limits {
        per_ip_per_minute: 1000,
        ..Limits::default()
    };
    let svc = KeyService::new(
        store,
        Arc::new(clock.clone()),
        Entropy::seeded(1),
        KeyEncryptionKey::generate(&mut rng),
        limits,
    )
    .await
    .unwrap();
    svc.import_tenant(TenantImport {
        tenant_id: "example.com".into(),
        display_name: "Example Corp".into(),
        settings: TenantSettings {
            domains: vec!["example.com".into()],
            allowed_origins: vec!["https://portal.example.com".into()],
            branding: Branding::default(),
        },
        license_keys: vec![(license.clone(), "active".into())],
        signing_keys: vec![(signing.verifying_key(), "active".into())],
    })
    .await
    .unwrap();
    Fixture {
        svc,
        clock,
        license,
        signing,
        _dir: dir,
    }
}

impl Fixture {
    fn seal(&self, template: &Template, recipients: &[&str], seed: u8) -> Vec<u8> {
        let pk = self.license.public_key();
        let sealer = Sealer {
            tenant_id: "example.com",
            key_service_url: "https://keys.example.com",
            license_key: &pk,
            signing_key: &self.signing,
        };
        let r: Vec<String> = recipients.iter().map(|s| s.to_string()).collect();
        let policy = template.policy("alice@example.com", &r, self.clock.now() as u64);
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        sealpost_core::seal(
            &sealer,
            &policy,
            None,
            self.clock.now() as u64,
            b"Subject: hi\r\n\r\nsecret body\r\n",
            &mut rng,
        )
        .unwrap()
    }

    /// The newest passcode mailed to `to`.
    async fn mailed_code(&self, to: &str) -> Option<String> {
        let mails = self.svc.store().outbox(100).await.unwrap();
        let to = to.to_ascii_lowercase();
        let mail = mails.into_iter().find(|m| m.to_addr == to)?;
        mail.body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .map(String::from)
    }

    async fn sign_in(&self, env: &[u8], email: &str) -> String {
        let e = Envelope::parse(env).unwrap();
        let started = self
            .svc
            .start_otp(e.header_bytes(), e.license(), email, None)
            .await
            .unwrap();
        let code = self.mailed_code(email).await.expect("a code was mailed");
        self.svc
            .verify_otp(&started.challenge, &code, None)
            .await
            .unwrap()
            .session
    }
}

fn client() -> ClientSecretKey {
    ClientSecretKey::generate(&mut ChaCha20Rng::from_seed([77; 32]))
}

#[tokio::test]
async fn recipient_signs_in_and_decrypts() {
    let f = fixture().await;
    let env = f.seal(&Template::do_not_forward(), &["bob@gmail.com"], 1);
    let session = f.sign_in(&env, "Bob@Gmail.com").await;
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
    assert_eq!(
        &e.decrypt(&share).unwrap()[..],
        b"Subject: hi\r\n\r\nsecret body\r\n"
    );
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

#[tokio::test]
async fn start_answers_alike_for_non_recipients() {
    let f = fixture().await;
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

#[tokio::test]
async fn passcode_limits() {
    let f = fixture().await;
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

#[tokio::test]
async fn lockout_after_100_consecutive_failures() {
    let f = fixture().await;
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

#[tokio::test]
async fn rewrap_refusals() {
    let f = fixture().await;
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

    let dave = f.sign_in(&other, "dave@example.org").await;
    assert_eq!(
        rewrap(Some(dave), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::NotARecipient)
    );

    let bob = f.sign_in(&env, "bob@gmail.com").await;
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
    let carol = f.sign_in(&env, "carol@yahoo.com").await;
    f.clock.set(T0 + 7 * 86400);
    let carol2 = f.sign_in(&env, "carol@yahoo.com").await;
    assert_eq!(
        rewrap(Some(carol2.clone()), h.clone(), l.clone(), key.clone())
            .await
            .err(),
        Some(RewrapError::Expired)
    );
    let _ = carol;

    // Revocation, effective at once.
    f.clock.set(T0 + 86400);
    let carol3 = f.sign_in(&env, "carol@yahoo.com").await;
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

#[tokio::test]
async fn unknown_tenant_and_per_ip_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(dir.path(), 2).await.unwrap();
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
    let f = fixture().await;
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
    assert_eq!(info.allowed_origins, ["https://portal.example.com"]);
}
