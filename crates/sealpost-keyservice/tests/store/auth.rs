//! Passcode challenges, attempt and failure counters, sessions and their expiry: the
//! single-statement updates that must hold under concurrency and across instances.

use sealpost_keyservice::store::{CHALLENGE_RETENTION_SECS, StoreError};

use crate::db::Db;
use crate::{T0, challenge_row, older_schema, race, session_row};

backends!(
    challenges,
    challenge_consumed_once_under_concurrency,
    challenge_consumed_once_across_instances,
    failed_attempts_are_counted_atomically,
    codes_sent_since_counts_real_codes_in_the_window,
    address_failures,
    sessions,
    sessions_from_before_tenant_binding_are_ended,
    delete_expired,
);

async fn challenges(db: Db) {
    let store = db.open().await;
    assert_eq!(store.challenge("c1").await.unwrap(), None);

    let c = challenge_row("c1", "bob@example.net", T0, true);
    store.insert_challenge(&c).await.unwrap();
    assert_eq!(store.challenge("c1").await.unwrap(), Some(c.clone()));
    assert!(matches!(
        store.insert_challenge(&c).await,
        Err(StoreError::Conflict)
    ));

    assert_eq!(store.record_failed_attempt("c1").await.unwrap(), 1);
    assert_eq!(store.record_failed_attempt("c1").await.unwrap(), 2);
    assert_eq!(store.record_failed_attempt("missing").await.unwrap(), 0);

    assert!(store.consume_challenge("c1").await.unwrap());
    assert!(!store.consume_challenge("c1").await.unwrap());
    assert!(!store.consume_challenge("missing").await.unwrap());

    let got = store.challenge("c1").await.unwrap().unwrap();
    assert_eq!(got.attempts, 2);
    assert!(got.used);
    assert!(got.sent);

    // A decoy challenge (no code mailed) round-trips its flag too.
    let decoy = challenge_row("c2", "eve@example.net", T0, false);
    store.insert_challenge(&decoy).await.unwrap();
    assert!(!store.challenge("c2").await.unwrap().unwrap().sent);
}

async fn challenge_consumed_once_under_concurrency(db: Db) {
    let store = db.open().await;
    for round in 0..5 {
        let id = format!("race-{round}");
        store
            .insert_challenge(&challenge_row(&id, "bob@example.net", T0, true))
            .await
            .unwrap();
        let wins = race(8, |_| {
            let store = store.clone();
            let id = id.clone();
            async move { store.consume_challenge(&id).await.unwrap() }
        })
        .await;
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "round {round}: {wins:?}"
        );
    }
}

async fn challenge_consumed_once_across_instances(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    for round in 0..5 {
        let id = format!("race-{round}");
        a.insert_challenge(&challenge_row(&id, "bob@example.net", T0, true))
            .await
            .unwrap();
        let wins = race(8, |i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let id = id.clone();
            async move { store.consume_challenge(&id).await.unwrap() }
        })
        .await;
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "round {round}: {wins:?}"
        );
    }
}

async fn failed_attempts_are_counted_atomically(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    a.insert_challenge(&challenge_row("c1", "bob@example.net", T0, true))
        .await
        .unwrap();
    let mut counts = race(12, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { store.record_failed_attempt("c1").await.unwrap() }
    })
    .await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=12).collect::<Vec<i64>>());
    assert_eq!(a.challenge("c1").await.unwrap().unwrap().attempts, 12);

    let mut failures = race(12, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            store
                .add_address_failure("bob@example.net", T0)
                .await
                .unwrap()
        }
    })
    .await;
    failures.sort_unstable();
    assert_eq!(failures, (1..=12).collect::<Vec<i64>>());
}

async fn codes_sent_since_counts_real_codes_in_the_window(db: Db) {
    let store = db.open().await;
    let bob = "bob@example.net";
    for (i, created) in [T0 - 3601, T0 - 3600, T0 - 10, T0].into_iter().enumerate() {
        store
            .insert_challenge(&challenge_row(&format!("b{i}"), bob, created, true))
            .await
            .unwrap();
    }
    store
        .insert_challenge(&challenge_row("decoy", bob, T0, false))
        .await
        .unwrap();
    store
        .insert_challenge(&challenge_row("carol", "carol@example.net", T0, true))
        .await
        .unwrap();

    assert_eq!(store.codes_sent_since(bob, T0 - 3600).await.unwrap(), 3);
    assert_eq!(store.codes_sent_since(bob, T0 - 7200).await.unwrap(), 4);
    assert_eq!(store.codes_sent_since(bob, T0 + 1).await.unwrap(), 0);
    assert_eq!(
        store
            .codes_sent_since("nobody@example.net", 0)
            .await
            .unwrap(),
        0
    );
    // Consuming a challenge does not uncount it.
    assert!(store.consume_challenge("b3").await.unwrap());
    assert_eq!(store.codes_sent_since(bob, T0 - 3600).await.unwrap(), 3);

    // challenges_since counts decoys too.
    assert_eq!(store.challenges_since(bob, T0 - 3600).await.unwrap(), 4);
    assert_eq!(store.challenges_since(bob, T0 - 7200).await.unwrap(), 5);
    assert_eq!(
        store
            .challenges_since("carol@example.net", T0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .challenges_since("nobody@example.net", 0)
            .await
            .unwrap(),
        0
    );
}

async fn address_failures(db: Db) {
    let store = db.open().await;
    let bob = "bob@example.net";
    assert_eq!(store.address_failures(bob).await.unwrap(), 0);
    assert_eq!(store.add_address_failure(bob, T0).await.unwrap(), 1);
    assert_eq!(store.add_address_failure(bob, T0 + 1).await.unwrap(), 2);
    assert_eq!(store.add_address_failure(bob, T0 + 2).await.unwrap(), 3);
    assert_eq!(
        store
            .add_address_failure("carol@example.net", T0)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.address_failures(bob).await.unwrap(), 3);

    store.reset_address_failures(bob).await.unwrap();
    store
        .reset_address_failures("never@example.net")
        .await
        .unwrap();
    assert_eq!(store.address_failures(bob).await.unwrap(), 0);
    assert_eq!(
        store.address_failures("carol@example.net").await.unwrap(),
        1
    );
    assert_eq!(store.add_address_failure(bob, T0 + 3).await.unwrap(), 1);

    // address_failures_since: the count only while the last failure is in the window.
    assert_eq!(store.add_address_failure(bob, T0 + 10).await.unwrap(), 2);
    assert_eq!(store.address_failures_since(bob, T0 + 10).await.unwrap(), 2);
    assert_eq!(store.address_failures_since(bob, T0 + 11).await.unwrap(), 0);
    assert_eq!(
        store
            .address_failures_since("never@example.net", 0)
            .await
            .unwrap(),
        0
    );
}

async fn sessions(db: Db) {
    let store = db.open().await;
    let s = session_row(1, T0, T0 + 3600);
    assert_eq!(store.session(&s.token_hash).await.unwrap(), None);
    store.insert_session(&s).await.unwrap();
    assert!(matches!(
        store.insert_session(&s).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.session(&s.token_hash).await.unwrap(), Some(s.clone()));

    store.touch_session(&s.token_hash, T0 + 60).await.unwrap();
    assert_eq!(
        store
            .session(&s.token_hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        T0 + 60
    );
    // last_seen never moves back (a slow request finishing late).
    store.touch_session(&s.token_hash, T0 + 30).await.unwrap();
    assert_eq!(
        store
            .session(&s.token_hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        T0 + 60
    );
    store.touch_session(&[7; 32], T0).await.unwrap();

    let other = session_row(2, T0, T0 + 3600);
    store.insert_session(&other).await.unwrap();
    store.delete_session(&s.token_hash).await.unwrap();
    store.delete_session(&s.token_hash).await.unwrap();
    assert_eq!(store.session(&s.token_hash).await.unwrap(), None);
    assert!(store.session(&other.token_hash).await.unwrap().is_some());

    // Debug output never shows the token hash.
    let text = format!("{other:?}");
    assert!(!text.contains("[2, 2"), "{text}");

    // The tenant is kept as given.
    let elsewhere = crate::SessionRow {
        tenant_id: "other.example".into(),
        ..session_row(3, T0, T0 + 3600)
    };
    store.insert_session(&elsewhere).await.unwrap();
    assert_eq!(
        store
            .session(&elsewhere.token_hash)
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        "other.example"
    );
}

/// A session stored before sessions named their tenant would work for no tenant's messages:
/// the migration that adds the tenant ends it (its holder signs in again), and new sessions
/// are stored with theirs.
async fn sessions_from_before_tenant_binding_are_ended(db: Db) {
    let pool = older_schema(
        &db,
        &[
            "0001_initial.sql",
            "0002_outbox_delivery.sql",
            "0003_token_roles.sql",
            "0004_oidc.sql",
        ],
    )
    .await;
    sqlx::query(
        "INSERT INTO sessions (token_hash, email, created, last_seen, expires) \
         VALUES ($1, 'bob@example.net', $2, $2, $3)",
    )
    .bind(&[7u8; 32][..])
    .bind(T0)
    .bind(T0 + 3600)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = db.open().await;
    assert_eq!(store.session(&[7u8; 32]).await.unwrap(), None);
    let s = session_row(8, T0, T0 + 3600);
    store.insert_session(&s).await.unwrap();
    assert_eq!(store.session(&s.token_hash).await.unwrap(), Some(s));
}

async fn delete_expired(db: Db) {
    let store = db.open().await;
    store
        .insert_session(&session_row(1, T0, T0 + 100))
        .await
        .unwrap();
    store
        .insert_session(&session_row(2, T0, T0 + 200))
        .await
        .unwrap();
    let day = CHALLENGE_RETENTION_SECS;
    // old and expired: goes; recently created but expired: stays for the rate limit.
    store
        .insert_challenge(&challenge_row(
            "old",
            "bob@example.net",
            T0 - day - 700,
            true,
        ))
        .await
        .unwrap();
    store
        .insert_challenge(&challenge_row("recent", "bob@example.net", T0 - 700, true))
        .await
        .unwrap();
    store
        .insert_challenge(&challenge_row("live", "bob@example.net", T0, true))
        .await
        .unwrap();

    assert_eq!(
        store.delete_expired(T0 + 100).await.unwrap(),
        1,
        "old challenge only"
    );
    assert_eq!(
        store.delete_expired(T0 + 101).await.unwrap(),
        1,
        "first session"
    );
    assert!(store.session(&[1; 32]).await.unwrap().is_none());
    assert!(store.session(&[2; 32]).await.unwrap().is_some());
    assert!(store.challenge("old").await.unwrap().is_none());
    assert!(store.challenge("recent").await.unwrap().is_some());
    assert_eq!(
        store
            .codes_sent_since("bob@example.net", T0 - 3600)
            .await
            .unwrap(),
        2
    );

    assert_eq!(store.delete_expired(T0 + day + 1000).await.unwrap(), 3);
    assert_eq!(store.delete_expired(T0 + day + 1000).await.unwrap(), 0);
}
