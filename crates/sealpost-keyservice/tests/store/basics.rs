//! Opening, reopening and closing a store; tenants and their keys; odd data round-trips.

use sealpost_keyservice::store::{Store, StoreError};

use crate::db::Db;
use crate::{T0, challenge_row, key_row, tenant_row};

backends!(
    connects_and_pings,
    reopening_keeps_data_and_migrations_are_idempotent,
    opening_a_fresh_database_twice_at_once,
    tenants,
    keys,
    binary_and_unicode_round_trip,
    closed_store_is_unavailable,
);

async fn connects_and_pings(db: Db) {
    let store = db.open().await;
    assert_eq!(store.backend(), db.backend);
    store.ping().await.unwrap();
    // The same database through a URL, as `--database-url` gives it.
    let again = Store::connect(&db.url, 2).await.unwrap();
    again.ping().await.unwrap();
    assert_eq!(again.backend(), db.backend);
}

async fn reopening_keeps_data_and_migrations_are_idempotent(db: Db) {
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

async fn opening_a_fresh_database_twice_at_once(db: Db) {
    let (a, b) = tokio::join!(db.open(), db.open());
    a.upsert_tenant(&tenant_row("acme")).await.unwrap();
    assert!(b.tenant("acme").await.unwrap().is_some());
}

async fn tenants(db: Db) {
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

async fn keys(db: Db) {
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

async fn binary_and_unicode_round_trip(db: Db) {
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

async fn closed_store_is_unavailable(db: Db) {
    let store = db.open().await;
    store.close().await;
    assert!(matches!(store.ping().await, Err(StoreError::Unavailable)));
    let err = store.tenant("acme").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}
