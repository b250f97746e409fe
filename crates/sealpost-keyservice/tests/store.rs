//! The store's test suite, written once and run on each backend:
//!
//! - `sqlite::*` on a fresh database in a temporary directory per test;
//! - `postgres::*` on a fresh database per test on the server named by
//!   `SEALPOST_TEST_POSTGRES_URL` (e.g. `export SEALPOST_TEST_POSTGRES_URL=$(scripts/postgres.sh)`);
//!   without it these tests print a note and pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sealpost_keyservice::store::{
    AdminTokenRow, AuditRow, Backend, CHALLENGE_RETENTION_SECS, ChallengeRow, KeyRow,
    NewAuditEvent, OutboxRow, SessionRow, Store, StoreError, StoreOptions, TenantRow,
};
use sqlx::migrate::MigrateDatabase;
use tokio::sync::Barrier;

const POSTGRES_ENV: &str = "SEALPOST_TEST_POSTGRES_URL";
const T0: i64 = 1_800_000_000;

// --- fixtures ------------------------------------------------------------------------------

/// A fresh, empty database for one test; dropped (PostgreSQL) or deleted (SQLite) afterwards.
struct Db {
    backend: Backend,
    url: String,
    dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/sealpost.db?mode=rwc", dir.path().display());
        Db {
            backend: Backend::Sqlite,
            url,
            dir: Some(dir),
        }
    }

    async fn postgres() -> Option<Db> {
        let base = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty())?;
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sealpost_t_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let url = with_database(&base, &name);
        sqlx::any::install_default_drivers();
        // A leftover from an earlier run with the same pid would hold stale data.
        let _ = sqlx::Any::force_drop_database(&url).await;
        sqlx::Any::create_database(&url)
            .await
            .expect("create the test database");
        Some(Db {
            backend: Backend::Postgres,
            url,
            dir: None,
        })
    }

    /// A new `Store` on this database (several may be open at once).
    async fn open(&self) -> Store {
        match &self.dir {
            Some(dir) => Store::sqlite_in_dir(dir.path(), 8)
                .await
                .expect("open sqlite"),
            None => Store::connect(&self.url, 8).await.expect("open postgres"),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let url = self.url.clone();
        // Drop runs outside any async context we could await in: use a runtime of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(sqlx::Any::force_drop_database(&url));
            }
        })
        .join();
    }
}

/// `base` with its database name replaced by `name`.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let authority_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = head[authority_end..]
        .find('/')
        .map(|i| authority_end + i)
        .unwrap_or(head.len());
    let mut url = format!("{}/{}", &head[..path_start], name);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::Db::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::Db::postgres().await else {
                        eprintln!("{} is not set: PostgreSQL test skipped", super::POSTGRES_ENV);
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

suite!(
    connects_and_pings,
    reopening_keeps_data_and_migrations_are_idempotent,
    opening_a_fresh_database_twice_at_once,
    tenants,
    keys,
    challenges,
    challenge_consumed_once_under_concurrency,
    challenge_consumed_once_across_instances,
    failed_attempts_are_counted_atomically,
    codes_sent_since_counts_real_codes_in_the_window,
    address_failures,
    sessions,
    delete_expired,
    revocation_is_idempotent,
    audit_round_trip_and_ordering,
    audit_batch,
    admin_tokens,
    outbox,
    secrets,
    secret_race_across_instances,
    binary_and_unicode_round_trip,
    closed_store_is_unavailable,
);

// --- row builders --------------------------------------------------------------------------

fn tenant_row(id: &str) -> TenantRow {
    TenantRow {
        tenant_id: id.into(),
        display_name: format!("{id} Inc."),
        settings_json: r#"{"portal_origins":["https://portal.example"]}"#.into(),
        created: T0,
    }
}

fn key_row(tenant: &str, key_id: &str, created: i64) -> KeyRow {
    KeyRow {
        tenant_id: tenant.into(),
        key_id: key_id.into(),
        kind: "license".into(),
        public_key: vec![4, 1, 2, 3],
        wrapped_private: Some(vec![9; 48]),
        status: "active".into(),
        created,
    }
}

fn challenge_row(id: &str, email: &str, created: i64, sent: bool) -> ChallengeRow {
    ChallengeRow {
        id: id.into(),
        tenant_id: "acme".into(),
        email: email.into(),
        message_id: "m-1".into(),
        code_hash: vec![0x5a; 32],
        sent,
        created,
        expires: created + 600,
        attempts: 0,
        used: false,
    }
}

fn session_row(hash_byte: u8, created: i64, expires: i64) -> SessionRow {
    SessionRow {
        token_hash: vec![hash_byte; 32],
        email: "bob@example.net".into(),
        created,
        last_seen: created,
        expires,
    }
}

fn audit_event(time: i64, message_id: Option<&str>, event: &str) -> NewAuditEvent {
    NewAuditEvent {
        time,
        tenant_id: "acme".into(),
        event: event.into(),
        email: Some("bob@example.net".into()),
        message_id: message_id.map(Into::into),
        client_ip: Some("192.0.2.7".into()),
        detail: format!("{event} detail"),
    }
}

// --- the suite -----------------------------------------------------------------------------

async fn connects_and_pings(db: &Db) {
    let store = db.open().await;
    assert_eq!(store.backend(), db.backend);
    store.ping().await.unwrap();
    // The same database through a URL, as `--database-url` gives it.
    let again = Store::connect(&db.url, 2).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.backend(), db.backend);
}

async fn reopening_keeps_data_and_migrations_are_idempotent(db: &Db) {
    let store = db.open().await;
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    assert!(store.revoke("acme", "m-1", T0, "admin").await.unwrap());
    store.close().await;

    let store = db.open().await;
    assert_eq!(
        store.tenant("acme").await.unwrap(),
        Some(tenant_row("acme"))
    );
    assert!(store.is_revoked("acme", "m-1").await.unwrap());
}

async fn opening_a_fresh_database_twice_at_once(db: &Db) {
    let (a, b) = tokio::join!(db.open(), db.open());
    a.upsert_tenant(&tenant_row("acme")).await.unwrap();
    assert!(b.tenant("acme").await.unwrap().is_some());
}

async fn tenants(db: &Db) {
    let store = db.open().await;
    assert_eq!(store.tenant("acme").await.unwrap(), None);
    assert!(store.tenants().await.unwrap().is_empty());

    store.upsert_tenant(&tenant_row("zeta")).await.unwrap();
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    assert_eq!(
        store.tenant("acme").await.unwrap(),
        Some(tenant_row("acme"))
    );

    // An update changes name and settings but keeps the creation time.
    let mut changed = tenant_row("acme");
    changed.display_name = "ACME Corporation".into();
    changed.settings_json = "{}".into();
    changed.created = T0 + 999;
    store.upsert_tenant(&changed).await.unwrap();
    let got = store.tenant("acme").await.unwrap().unwrap();
    assert_eq!(got.display_name, "ACME Corporation");
    assert_eq!(got.settings_json, "{}");
    assert_eq!(got.created, T0);

    let all = store.tenants().await.unwrap();
    let ids: Vec<&str> = all.iter().map(|t| t.tenant_id.as_str()).collect();
    assert_eq!(ids, ["acme", "zeta"]);
}

async fn keys(db: &Db) {
    let store = db.open().await;
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    store.upsert_tenant(&tenant_row("other")).await.unwrap();
    assert!(store.keys("acme").await.unwrap().is_empty());

    let k2 = key_row("acme", "k2", T0 + 10);
    let mut k1 = key_row("acme", "k1", T0);
    k1.kind = "signing".into();
    k1.wrapped_private = None;
    store.add_key(&k2).await.unwrap();
    store.add_key(&k1).await.unwrap();
    store.add_key(&key_row("other", "k1", T0)).await.unwrap();

    assert!(matches!(
        store.add_key(&k1).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store.add_key(&key_row("nobody", "k1", T0)).await.is_err(),
        "a key needs its tenant"
    );

    assert_eq!(
        store.keys("acme").await.unwrap(),
        vec![k1.clone(), k2.clone()]
    );

    assert!(store.set_key_status("acme", "k1", "retired").await.unwrap());
    assert!(
        !store
            .set_key_status("acme", "missing", "retired")
            .await
            .unwrap()
    );
    let keys = store.keys("acme").await.unwrap();
    assert_eq!(keys[0].status, "retired");
    assert_eq!(keys[1].status, "active");
    assert_eq!(store.keys("other").await.unwrap()[0].status, "active");
}

async fn challenges(db: &Db) {
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

async fn challenge_consumed_once_under_concurrency(db: &Db) {
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

async fn challenge_consumed_once_across_instances(db: &Db) {
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

async fn failed_attempts_are_counted_atomically(db: &Db) {
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

async fn codes_sent_since_counts_real_codes_in_the_window(db: &Db) {
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

async fn address_failures(db: &Db) {
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

async fn sessions(db: &Db) {
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
}

async fn delete_expired(db: &Db) {
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

async fn revocation_is_idempotent(db: &Db) {
    let a = db.open().await;
    let b = db.open().await;
    assert!(!a.is_revoked("acme", "m-1").await.unwrap());
    assert!(a.revoke("acme", "m-1", T0, "admin:alice").await.unwrap());
    assert!(!a.revoke("acme", "m-1", T0 + 5, "admin:bob").await.unwrap());
    // seen at once through another instance
    assert!(b.is_revoked("acme", "m-1").await.unwrap());
    assert!(
        !b.revoke("acme", "m-1", T0 + 9, "admin:carol")
            .await
            .unwrap()
    );
    assert!(!b.is_revoked("acme", "m-2").await.unwrap());
    assert!(!b.is_revoked("other", "m-1").await.unwrap());

    // Racing revocations: exactly one reports the revocation as new.
    let wins = race(8, |i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { store.revoke("acme", "m-3", T0, "race").await.unwrap() }
    })
    .await;
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
}

async fn audit_round_trip_and_ordering(db: &Db) {
    let store = db.open().await;
    assert!(
        store
            .audit_for_message("acme", "m-1", 10)
            .await
            .unwrap()
            .is_empty()
    );

    let events = [
        audit_event(T0 + 20, Some("m-1"), "rewrap.granted"),
        audit_event(T0, Some("m-1"), "otp.sent"),
        audit_event(T0 + 10, Some("m-2"), "otp.sent"),
        audit_event(T0 + 10, Some("m-1"), "otp.verified"),
        audit_event(T0 + 20, Some("m-1"), "rewrap.granted"),
        audit_event(T0 + 30, None, "revoke"),
    ];
    let mut ids = Vec::new();
    for e in &events {
        ids.push(store.append_audit(e).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let mut other = audit_event(T0, Some("m-1"), "otp.sent");
    other.tenant_id = "other".into();
    other.email = None;
    other.client_ip = None;
    let other_id = store.append_audit(&other).await.unwrap();

    let row = |i: usize| -> AuditRow {
        let e = &events[i];
        AuditRow {
            id: ids[i],
            time: e.time,
            tenant_id: e.tenant_id.clone(),
            event: e.event.clone(),
            email: e.email.clone(),
            message_id: e.message_id.clone(),
            client_ip: e.client_ip.clone(),
            detail: e.detail.clone(),
        }
    };

    // time order, then id for equal times
    let m1 = store.audit_for_message("acme", "m-1", 100).await.unwrap();
    assert_eq!(m1, vec![row(1), row(3), row(0), row(4)]);
    assert_eq!(
        store.audit_for_message("acme", "m-1", 2).await.unwrap(),
        vec![row(1), row(3)]
    );
    assert!(
        store
            .audit_for_message("acme", "m-1", 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .audit_for_message("acme", "m-1", -1)
            .await
            .unwrap()
            .is_empty()
    );

    let all = store.audit_for_tenant("acme", 0, 100).await.unwrap();
    assert_eq!(all, vec![row(1), row(2), row(3), row(0), row(4), row(5)]);
    let since = store.audit_for_tenant("acme", T0 + 10, 3).await.unwrap();
    assert_eq!(since, vec![row(2), row(3), row(0)]);

    let theirs = store.audit_for_tenant("other", 0, 100).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].id, other_id);
    assert_eq!(theirs[0].email, None);
    assert_eq!(theirs[0].client_ip, None);
    assert_eq!(theirs[0].message_id.as_deref(), Some("m-1"));
}

async fn audit_batch(db: &Db) {
    let store = db.open().await;
    assert!(store.append_audit_batch(&[]).await.unwrap().is_empty());
    let batch: Vec<NewAuditEvent> = (0..5)
        .map(|i| audit_event(T0 + i, Some("m-1"), "rewrap.granted"))
        .collect();
    let ids = store.append_audit_batch(&batch).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let single = store
        .append_audit(&audit_event(T0 + 9, Some("m-1"), "x"))
        .await
        .unwrap();
    assert!(single > ids[4]);
    let got = store.audit_for_message("acme", "m-1", 100).await.unwrap();
    assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>()[..5], ids[..]);
}

async fn admin_tokens(db: &Db) {
    let store = db.open().await;
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    let t = AdminTokenRow {
        token_hash: vec![0xee; 32],
        tenant_id: "acme".into(),
        label: "ci".into(),
        created: T0,
    };
    assert_eq!(store.admin_token(&t.token_hash).await.unwrap(), None);
    store.insert_admin_token(&t).await.unwrap();
    assert_eq!(
        store.admin_token(&t.token_hash).await.unwrap(),
        Some(t.clone())
    );
    assert!(matches!(
        store.insert_admin_token(&t).await,
        Err(StoreError::Conflict)
    ));

    let orphan = AdminTokenRow {
        token_hash: vec![1; 32],
        tenant_id: "nobody".into(),
        ..t.clone()
    };
    assert!(
        store.insert_admin_token(&orphan).await.is_err(),
        "a token needs its tenant"
    );
    assert!(!format!("{t:?}").contains("238"), "Debug hides the hash");
}

async fn outbox(db: &Db) {
    let store = db.open().await;
    assert!(store.outbox(10).await.unwrap().is_empty());
    let mut ids = Vec::new();
    for i in 0..3 {
        let m = OutboxRow {
            id: 0,
            created: T0 + i,
            to_addr: format!("r{i}@example.net"),
            subject: format!("Your code for message {i}"),
            body: format!("Code: 12345{i}\r\n"),
        };
        ids.push(store.push_outbox(&m).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let got = store.outbox(10).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
    assert_eq!(got[0].to_addr, "r2@example.net");
    assert_eq!(got[0].subject, "Your code for message 2");
    assert_eq!(got[0].body, "Code: 123452\r\n");
    assert_eq!(got[0].created, T0 + 2);
    assert_eq!(store.outbox(2).await.unwrap().len(), 2);
    assert!(store.outbox(0).await.unwrap().is_empty());
}

async fn secrets(db: &Db) {
    let store = db.open().await;
    assert_eq!(
        store
            .get_or_insert_secret("otp-key", &[1; 32])
            .await
            .unwrap(),
        vec![1; 32]
    );
    assert_eq!(
        store
            .get_or_insert_secret("otp-key", &[2; 32])
            .await
            .unwrap(),
        vec![1; 32]
    );
    assert_eq!(
        store.get_or_insert_secret("other", &[3; 16]).await.unwrap(),
        vec![3; 16]
    );
}

async fn secret_race_across_instances(db: &Db) {
    let a = db.open().await;
    let b = db.open().await;
    for round in 0..5u8 {
        let name = format!("secret-{round}");
        let got = race(8, |i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let name = name.clone();
            let mine = vec![u8::try_from(i).unwrap_or(0); 32];
            async move { store.get_or_insert_secret(&name, &mine).await.unwrap() }
        })
        .await;
        assert!(got.iter().all(|v| *v == got[0]), "round {round}: {got:?}");
        assert_eq!(
            a.get_or_insert_secret(&name, &[0xff; 32]).await.unwrap(),
            got[0]
        );
    }
}

async fn binary_and_unicode_round_trip(db: &Db) {
    let store = db.open().await;
    let mut t = tenant_row("ünïcødé-✉");
    t.display_name = "Zoë's \"quoted\" 'name'; DROP TABLE tenants; --".into();
    t.settings_json = "x".repeat(100_000);
    t.created = i64::MAX;
    store.upsert_tenant(&t).await.unwrap();
    assert_eq!(store.tenant(&t.tenant_id).await.unwrap(), Some(t.clone()));

    let mut k = key_row(&t.tenant_id, "k", i64::MIN);
    k.public_key = (0..=255).collect();
    k.wrapped_private = Some(vec![0; 1000]);
    store.add_key(&k).await.unwrap();
    assert_eq!(store.keys(&t.tenant_id).await.unwrap(), vec![k]);

    let mut c = challenge_row("c", "ü@例え.jp", -5, true);
    c.code_hash = vec![0, 0, 0, 255];
    store.insert_challenge(&c).await.unwrap();
    assert_eq!(store.challenge("c").await.unwrap(), Some(c));
    assert_eq!(
        store.get_or_insert_secret("empty", &[]).await.unwrap(),
        Vec::<u8>::new()
    );
}

async fn closed_store_is_unavailable(db: &Db) {
    let store = db.open().await;
    store.close().await;
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable)));
    let err = store.tenant("acme").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

/// Runs `n` copies of a task released at the same instant; returns their results.
async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let task = make(i);
            tokio::spawn(async move {
                barrier.wait().await;
                task.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task panicked"));
    }
    out
}

// --- SQLite specifics ----------------------------------------------------------------------

/// WAL, synchronous=FULL, foreign keys and the busy timeout hold on every pooled connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_durability_settings_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        max_connections: 4,
        busy_timeout: Duration::from_millis(2500),
        ..StoreOptions::default()
    };
    let store = Store::sqlite_in_dir_with(dir.path(), &options)
        .await
        .unwrap();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(store.pool().acquire().await.unwrap());
    }
    for conn in &mut conns {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(mode.to_ascii_lowercase(), "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(busy, 2500);
    }
    drop(conns);
    assert!(
        dir.path().join("sealpost.db-wal").exists(),
        "WAL file present"
    );
}

/// The database file lands in the data directory, readable by its owner only.
#[tokio::test]
async fn sqlite_file_is_private_and_in_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested dir").join("data");
    let store = Store::sqlite_in_dir(&data, 2).await.unwrap();
    store.ping().await.unwrap();
    let file = data.join("sealpost.db");
    assert!(file.is_file());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
}

/// Bad URLs and unreachable servers give errors, not panics; a dead server is retryable.
#[tokio::test]
async fn bad_urls_and_unreachable_servers() {
    assert!(matches!(
        Store::connect("mysql://x/y", 1).await,
        Err(StoreError::Other(_))
    ));
    assert!(
        Store::connect("sqlite:///nonexistent-dir/x/y.db", 1)
            .await
            .is_err()
    );
    let options = StoreOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(1),
        ..StoreOptions::default()
    };
    // Port 9 (discard) on loopback: nothing listens there.
    let err = Store::connect_with("postgres://postgres@127.0.0.1:9/none", &options)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

/// Data the store did not write is reported as corrupt, not a panic.
#[tokio::test]
async fn sqlite_unreadable_data_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::sqlite_in_dir(dir.path(), 2).await.unwrap();
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    // STRICT tables refuse wrongly typed values, so break the table's declared type instead.
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("DROP TABLE tenants")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE tenants (tenant_id TEXT, display_name TEXT, settings_json TEXT, created TEXT)")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO tenants VALUES ('acme', 'A', '{}', 'yesterday')")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let err = store.tenant("acme").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}
