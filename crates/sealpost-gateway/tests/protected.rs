//! Already-protected mail in `Processor::process`, without a network: a wrapper is passed on
//! and never sealed twice, what merely looks like one is protected as usual, and transport
//! decryption is planned only for our own verified wrappers, only when on, only for internal
//! recipients whom the rules give the original.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sealpost_core::mail::{WrapperSettings, wrap};
use sealpost_core::policy::Template;
use sealpost_core::{Envelope, LicenseSecretKey, Sealer, SigningKey, seal};
use sealpost_gateway::process::{BrokenMime, Processed, Processor, Protector};
use sealpost_rules::RuleSet;

const NOW: u64 = 1_800_000_000;

const RULES: &str = r#"
[organization]
domains = ["acme.example"]

[[rules]]
name = "Protect outside"
conditions = { recipient_scope = "outside" }
actions = { encrypt = "Encrypt-Only" }
"#;

const PLAIN: &[u8] =
    b"From: alice@acme.example\r\nTo: bob@other.example\r\nSubject: Plans\r\n\r\nThe plans.\r\n";

struct Keys {
    license: LicenseSecretKey,
    signing: SigningKey,
}

fn keys(seed: u64) -> Keys {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Keys {
        license: LicenseSecretKey::generate(&mut rng),
        signing: SigningKey::generate(&mut rng),
    }
}

fn settings() -> WrapperSettings {
    WrapperSettings {
        organization: "Acme".into(),
        portal_url: "https://portal.acme.example/".into(),
        show_subject: true,
        replacement_subject: "Protected message".into(),
    }
}

fn processor(k: &Keys, transport: bool) -> Processor {
    Processor {
        rules: RuleSet::load(RULES).unwrap(),
        protector: Protector {
            tenant_id: "acme.example".into(),
            key_service_url: "https://keys.acme.example".into(),
            license_key: k.license.public_key(),
            signing_key: k.signing.clone(),
            verifying_keys: vec![k.signing.verifying_key()],
            wrapper: settings(),
        },
        broken_mime: BrokenMime::Protect,
        transport_decryption: transport,
    }
}

/// A wrapper of `tenant`, signed by `signer`, for `to`.
fn wrapper(tenant: &str, k: &Keys, signer: &SigningKey, to: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let pk = k.license.public_key();
    let sealer = Sealer {
        tenant_id: tenant,
        key_service_url: "https://keys.acme.example",
        license_key: &pk,
        signing_key: signer,
    };
    let to: Vec<String> = to.iter().map(|s| s.to_string()).collect();
    let policy = Template::encrypt_only().policy("alice@acme.example", &to, NOW);
    let env = seal(
        &sealer,
        &policy,
        None,
        NOW,
        PLAIN,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let header = Envelope::parse(&env).unwrap().header().clone();
    let w = wrap(PLAIN, &env, &header, &settings());
    (env, w)
}

fn run(p: &Processor, rcpts: &[&str], raw: &[u8]) -> Processed {
    let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
    p.process(
        "alice@acme.example",
        &rcpts,
        raw,
        NOW,
        &mut ChaCha20Rng::seed_from_u64(2),
    )
    .unwrap()
}

#[test]
fn our_wrapper_passes_unchanged_and_decryption_is_planned_for_inside_only() {
    let k = keys(1);
    let (env, w) = wrapper(
        "acme.example",
        &k,
        &k.signing,
        &["bob@other.example", "carol@acme.example"],
    );
    let Processed::Deliver {
        copies,
        decryptable,
        ..
    } = run(
        &processor(&k, true),
        &["bob@other.example", "carol@acme.example"],
        &w,
    )
    else {
        panic!("delivered")
    };
    assert_eq!(copies.len(), 2);
    assert!(
        copies.iter().all(|c| c.data == w && !c.encrypted),
        "never sealed twice"
    );
    assert_eq!(copies[0].label, "original (already protected)");
    let d = decryptable.expect("planned");
    assert_eq!(d.envelope, env);
    assert_eq!(d.candidates.len(), 1);
    assert_eq!(d.candidates[0].copy, 1);
    assert_eq!(
        d.candidates[0].recipients,
        [(
            "carol@acme.example".to_string(),
            "carol@acme.example".to_string()
        )]
    );
    let out = d.decrypted_copy(&d.candidates[0], PLAIN);
    assert_eq!(
        out,
        [
            format!("X-Sealpost-Decrypted: {}\r\n", d.message_id).as_bytes(),
            PLAIN
        ]
        .concat()
    );

    // Off: the same copies, nothing planned.
    let Processed::Deliver {
        copies: off,
        decryptable,
        ..
    } = run(
        &processor(&k, false),
        &["bob@other.example", "carol@acme.example"],
        &w,
    )
    else {
        panic!("delivered")
    };
    assert_eq!(off, copies);
    assert!(decryptable.is_none());
}

#[test]
fn someone_elses_wrapper_is_not_sealed_again_nor_decrypted() {
    let (ours, theirs) = (keys(1), keys(2));
    let (_, w) = wrapper(
        "other.example",
        &theirs,
        &theirs.signing,
        &["bob@other.example"],
    );
    let Processed::Deliver {
        copies,
        decryptable,
        ..
    } = run(
        &processor(&ours, true),
        &["bob@other.example", "carol@acme.example"],
        &w,
    )
    else {
        panic!("delivered")
    };
    assert!(copies.iter().all(|c| c.data == w && !c.encrypted));
    assert!(decryptable.is_none());
}

#[test]
fn what_only_looks_protected_is_protected_as_usual() {
    let k = keys(1);
    let forger = keys(3);
    // Our tenant's name, another signature: not ours, so sealed like any other mail.
    let (_, forged) = wrapper("acme.example", &k, &forger.signing, &["bob@other.example"]);
    // A marker field on plain mail, and a wrapper forwarded as an attachment.
    let marker = [
        b"X-Sealpost-Envelope: v1; id=00000000000000000000000000000000; tenant=acme.example\r\n"
            .as_slice(),
        PLAIN,
    ]
    .concat();
    let (real_env, real) = wrapper("acme.example", &k, &k.signing, &["bob@other.example"]);
    // A wrapper forwarded as an attachment, with a marker naming its id on the outer mail.
    let id = Envelope::parse(&real_env)
        .unwrap()
        .header()
        .message_id
        .to_hex();
    let mut forwarded =
        format!("X-Sealpost-Envelope: v1; id={id}; tenant=acme.example\r\n").into_bytes();
    forwarded.extend_from_slice(b"From: alice@acme.example\r\nTo: bob@other.example\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSecret plaintext next to it.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n");
    forwarded.extend_from_slice(&real);
    forwarded.extend_from_slice(b"\r\n--b--\r\n");
    for (what, raw) in [
        ("forged", forged),
        ("marker only", marker),
        ("forwarded", forwarded),
    ] {
        let Processed::Deliver {
            copies,
            decryptable,
            ..
        } = run(&processor(&k, true), &["bob@other.example"], &raw)
        else {
            panic!("{what}: delivered")
        };
        assert_eq!(copies.len(), 1, "{what}");
        assert!(copies[0].encrypted, "{what}: protected by the rule");
        assert_ne!(copies[0].data, raw, "{what}");
        assert!(decryptable.is_none(), "{what}");
    }
}
