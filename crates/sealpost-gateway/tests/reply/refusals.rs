//! Every refusal of the reply endpoint, checked for its status, its code and that nothing was
//! spooled or sent; with the originals forged three ways that the gateway must not relay
//! replies to.

use super::*;

/// How a forged original is made.
enum Forgery {
    /// Our tenant and license key, signed by another key.
    OtherKey,
    /// Our tenant, license key and signing key id, but unsigned (a submission).
    Unsigned,
    /// Another tenant's message, signed by that tenant.
    OtherTenant,
}

/// An "original" from Alice to `to` with every right, made without the tenant's signing key:
/// anyone can seal a license to the tenant's public license key.
fn forged(ks: &Ks, how: Forgery, to: &str) -> Vec<u8> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let policy = Template::encrypt_only().policy(ALICE, &[to.to_string()], T0);
    let forger = SigningKey::generate(&mut rng);
    let (tenant, license) = match how {
        Forgery::OtherTenant => ("other.example", LicenseSecretKey::generate(&mut rng)),
        _ => (TENANT, ks.license.clone()),
    };
    let pk = license.public_key();
    match how {
        Forgery::Unsigned => seal_submission(
            &SubmissionSealer {
                tenant_id: tenant,
                key_service_url: KS_URL_IN_HEADERS,
                license_key: &pk,
                signing_key_id: ks.signing.verifying_key().key_id(),
            },
            &policy,
            None,
            T0,
            ORIGINAL,
            &mut rng,
        ),
        _ => seal(
            &Sealer {
                tenant_id: tenant,
                key_service_url: KS_URL_IN_HEADERS,
                license_key: &pk,
                signing_key: &forger,
            },
            &policy,
            None,
            T0,
            ORIGINAL,
            &mut rng,
        ),
    }
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_nothing_is_spooled() {
    let Some(sink) = start_sink_with(&[]) else {
        return;
    };
    let ks = Ks::start(false).await;
    let gw = Gw::start(&ks, sink.port, false, "reply_max_bytes = \"64KB\"").await;
    let original = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &[BOB],
        Some("Q3 figures"),
        ORIGINAL,
        5,
    );
    let dnf = ks.seal(
        &Template::do_not_forward(),
        ALICE,
        &[BOB],
        None,
        ORIGINAL,
        6,
    );
    let elsewhere = ks.seal(
        &Template::encrypt_only(),
        ALICE,
        &["mallory@evil.example"],
        None,
        ORIGINAL,
        7,
    );
    let bob = ks.session(&original, BOB).await;
    let mallory = ks.session(&elsewhere, "mallory@evil.example").await;
    let good = ks.submission(&original, BOB, &[ALICE], Some("Re: Q3 figures"), REPLY, 8);
    let body = request("reply", &original, &good, &[ALICE], &[]);

    let expect = |what: &str, got: (u16, Value), status: u16, code: &str| {
        assert_eq!(got.0, status, "{what}: {}", got.1);
        assert_eq!(got.1["error"], code, "{what}: {}", got.1);
        assert!(
            got.1["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    };

    expect(
        "no session",
        post(&gw, None, &body).await,
        401,
        "not_signed_in",
    );
    expect(
        "unknown session",
        post(&gw, Some("sps_nonsense"), &body).await,
        401,
        "not_signed_in",
    );
    expect(
        "someone else's session",
        post(&gw, Some(&mallory), &body).await,
        403,
        "not_a_recipient",
    );
    let to_dave = ks.submission(
        &original,
        BOB,
        &["dave@evil.example"],
        Some("Re: Q3 figures"),
        REPLY,
        9,
    );
    expect(
        "reply to someone else",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &to_dave, &["dave@evil.example"], &[]),
        )
        .await,
        403,
        "recipients_not_allowed",
    );
    let fwd = ks.submission(&dnf, BOB, &["dave@evil.example"], None, REPLY, 10);
    expect(
        "forward without the right",
        post(
            &gw,
            Some(&bob),
            &request("forward", &dnf, &fwd, &["dave@evil.example"], &[]),
        )
        .await,
        403,
        "right_not_granted",
    );
    expect(
        "To/Cc not the sealed recipients",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &good, &[ALICE], &["eve@evil.example"]),
        )
        .await,
        400,
        "recipients_mismatch",
    );
    let as_alice = ks.submission(
        &original,
        ALICE,
        &[ALICE],
        Some("Re: Q3 figures"),
        REPLY,
        11,
    );
    expect(
        "sender is not the submitter",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &as_alice, &[ALICE], &[]),
        )
        .await,
        403,
        "sender_mismatch",
    );
    expect(
        "not an envelope",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, b"SEALPOST junk", &[ALICE], &[]),
        )
        .await,
        400,
        "bad_envelope",
    );
    let signed = ks.seal(
        &Template::encrypt_only(),
        BOB,
        &[ALICE],
        Some("Re: Q3 figures"),
        REPLY,
        12,
    );
    expect(
        "an envelope signed already",
        post(
            &gw,
            Some(&bob),
            &request("reply", &original, &signed, &[ALICE], &[]),
        )
        .await,
        400,
        "bad_envelope",
    );
    // Forged originals: the key service would accept the license (sealed to the tenant's
    // public key) and Mallory can sign in as its recipient, but the tenant never signed it.
    // Refused before the key service is asked.
    for (what, how) in [
        ("an original signed by another key", Forgery::OtherKey),
        ("an unsigned original", Forgery::Unsigned),
        ("another tenant's original", Forgery::OtherTenant),
    ] {
        let ours = !matches!(how, Forgery::OtherTenant);
        let fake = forged(&ks, how, "mallory@evil.example");
        // Mallory signs in with the forged original's license (its key service is ours).
        let (session, base) = if ours {
            (ks.session(&fake, "mallory@evil.example").await, &fake)
        } else {
            (mallory.clone(), &elsewhere)
        };
        let fwd = ks.submission(
            base,
            "mallory@evil.example",
            &["dave@evil.example"],
            None,
            REPLY,
            13,
        );
        expect(
            what,
            post(
                &gw,
                Some(&session),
                &request("forward", &fake, &fwd, &["dave@evil.example"], &[]),
            )
            .await,
            400,
            "bad_original",
        );
        let audit = ks.audit(&message_id(&fake)).await;
        assert!(
            !audit.iter().any(|(e, _, _)| e.starts_with("reply_")),
            "{what}: the key service was asked: {audit:?}"
        );
    }
    let mut not_an_original = body.clone();
    not_an_original["original"]["envelope"] = json!(B64.encode(b"SEALPOST junk"));
    expect(
        "an original that is not an envelope",
        post(&gw, Some(&bob), &not_an_original).await,
        400,
        "bad_original",
    );
    let mut old_shape = body.clone();
    old_shape["original"] = json!({ "header": "AA==", "license": "AA==" });
    expect(
        "the original's header and license only",
        post(&gw, Some(&bob), &old_shape).await,
        400,
        "bad_request",
    );

    let mut bad_threading = body.clone();
    bad_threading["threading"]["message_id"] = json!("<r1@x>\r\nBcc: eve@evil.example");
    expect(
        "a forged header in threading",
        post(&gw, Some(&bob), &bad_threading).await,
        400,
        "bad_request",
    );
    let mut bad_kind = body.clone();
    bad_kind["kind"] = json!("reply_to_everyone");
    expect(
        "unknown kind",
        post(&gw, Some(&bob), &bad_kind).await,
        400,
        "bad_request",
    );

    let raw = body.to_string().into_bytes();
    let (s, _, v) = post_raw(&gw, Some(&bob), raw.clone(), false, "application/json").await;
    expect("no X-Sealpost-Client", (s, v), 400, "missing_client_header");
    let (s, _, v) = post_raw(&gw, Some(&bob), raw.clone(), true, "text/plain").await;
    expect("not JSON", (s, v), 415, "unsupported_media_type");
    let (s, _, v) = post_raw(
        &gw,
        Some(&bob),
        b"{\"kind\":".to_vec(),
        true,
        "application/json",
    )
    .await;
    expect("broken JSON", (s, v), 400, "bad_request");
    let mut big = body.clone();
    big["envelope"] = json!(B64.encode(vec![0u8; 100 * 1024]));
    let (s, _, v) = post_raw(
        &gw,
        Some(&bob),
        big.to_string().into_bytes(),
        true,
        "application/json",
    )
    .await;
    expect("over reply_max_bytes", (s, v), 413, "too_large");

    // The key service down: 503 with Retry-After, nothing spooled.
    ks.stop().await;
    let (s, headers, v) = post_raw(&gw, Some(&bob), raw, true, "application/json").await;
    assert_eq!(
        headers.get("retry-after").map(|h| h.to_str().unwrap()),
        Some("5"),
        "{s} {v}"
    );
    expect("key service down", (s, v), 503, "key_service_unavailable");

    assert_eq!(gw.queued(), 0, "nothing was spooled");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.received().is_empty(), "nothing was sent");
    for (code, n) in [
        ("not_signed_in", 2),
        ("not_a_recipient", 1),
        ("recipients_not_allowed", 1),
        ("right_not_granted", 1),
        ("recipients_mismatch", 1),
        ("sender_mismatch", 1),
        ("bad_envelope", 2),
        ("bad_original", 4),
        ("bad_request", 4),
        ("missing_client_header", 1),
        ("unsupported_media_type", 1),
        ("too_large", 1),
        ("key_service_unavailable", 1),
    ] {
        let series =
            format!("sealpost_gateway_replies_total{{result=\"refused\",code=\"{code}\"}}");
        assert_eq!(gw.metric(&series).await, n, "{series}");
    }
    assert_eq!(
        gw.metric("sealpost_gateway_replies_total{result=\"accepted\"}")
            .await,
        0
    );
    // Refusals by the key service are audited under the original.
    let audit = ks.audit(&message_id(&original)).await;
    assert!(
        audit
            .iter()
            .any(|(e, _, d)| e == "reply_refused" && d.contains("not_a_recipient")),
        "{audit:?}"
    );
    gw.stop().await;
}
