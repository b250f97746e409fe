//! Revocations, the audit trail, admin tokens, the outbox and the service secrets.

use sealpost_keyservice::store::{AdminTokenRow, AuditRow, NewAuditEvent, OutboxRow, StoreError};

use crate::db::Db;
use crate::{T0, audit_event, key_row, older_schema, race, session_row, tenant_row};

backends!(
    revocation_is_idempotent,
    rewrap_lookup_reads_what_the_separate_queries_read,
    audit_round_trip_and_ordering,
    audit_batch,
    admin_tokens,
    tokens_made_before_roles_are_admin_tokens,
    outbox,
    secrets,
    secret_race_across_instances,
);

async fn revocation_is_idempotent(db: Db) {
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

async fn rewrap_lookup_reads_what_the_separate_queries_read(db: Db) {
    let store = db.open().await;
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    store.upsert_tenant(&tenant_row("other")).await.unwrap();
    let active = key_row("acme", "k1", T0);
    store.add_key(&active).await.unwrap();
    store.add_key(&key_row("acme", "k2", T0)).await.unwrap();
    store.set_key_status("acme", "k2", "retired").await.unwrap();
    let mut signing = key_row("acme", "s1", T0);
    signing.kind = "signing".into();
    store.add_key(&signing).await.unwrap();
    store.add_key(&key_row("other", "k3", T0)).await.unwrap();
    let session = session_row(7, T0, T0 + 100);
    store.insert_session(&session).await.unwrap();
    store
        .revoke("acme", "m-revoked", T0, "admin")
        .await
        .unwrap();

    let hit = store
        .rewrap_lookup(&session.token_hash, "acme", "k1", "m-revoked")
        .await
        .unwrap();
    assert_eq!(hit.session, Some(session.clone()));
    assert_eq!(hit.license_key, active.wrapped_private);
    assert!(hit.revoked);

    // Each part on its own: no session, a retired key, a signing key, another tenant's key,
    // an unknown key, a message that is not revoked, a revocation of another tenant.
    // (token hash, tenant, key id, message id) → (session?, key?, revoked?)
    type Case<'a> = (&'a [u8], &'a str, &'a str, &'a str, bool, bool, bool);
    let cases: [Case; 6] = [
        (&[1; 32], "acme", "k1", "m-1", false, true, false),
        (&session.token_hash, "acme", "k2", "m-1", true, false, false),
        (&session.token_hash, "acme", "s1", "m-1", true, false, false),
        (&session.token_hash, "acme", "k3", "m-1", true, false, false),
        (
            &session.token_hash,
            "nobody",
            "k9",
            "m-revoked",
            true,
            false,
            false,
        ),
        (
            &session.token_hash,
            "other",
            "k3",
            "m-revoked",
            true,
            true,
            false,
        ),
    ];
    for (hash, tenant, key, message, has_session, has_key, revoked) in cases {
        let l = store
            .rewrap_lookup(hash, tenant, key, message)
            .await
            .unwrap();
        let what = format!("{tenant}/{key}/{message}");
        assert_eq!(l.session.is_some(), has_session, "{what}");
        assert_eq!(l.session, store.session(hash).await.unwrap(), "{what}");
        assert_eq!(l.license_key.is_some(), has_key, "{what}");
        assert_eq!(l.revoked, revoked, "{what}");
        assert_eq!(
            l.revoked,
            store.is_revoked(tenant, message).await.unwrap(),
            "{what}"
        );
    }
}

async fn audit_round_trip_and_ordering(db: Db) {
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

async fn audit_batch(db: Db) {
    let store = db.open().await;
    assert!(store.append_audit_batch(&[]).await.unwrap().is_empty());
    // 150 records (more than one of anything a chunked insert might use), each different,
    // some with absent fields and text that needs escaping in JSON or SQL.
    let batch: Vec<NewAuditEvent> = (0..150)
        .map(|i| {
            let mut e = audit_event(T0 + (i % 7), Some("m-1"), "rewrap.granted");
            e.detail = format!("#{i} \"quoted\" \\ back\u{1F512} é \n' -- ;");
            if i % 3 == 0 {
                e.email = None;
            }
            if i % 5 == 0 {
                e.client_ip = None;
            }
            e
        })
        .collect();
    let ids = store.append_audit_batch(&batch).await.unwrap();
    assert_eq!(ids.len(), batch.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let single = store
        .append_audit(&audit_event(T0 + 9, Some("m-1"), "x"))
        .await
        .unwrap();
    assert!(single > ids[149]);
    let got = store.audit_for_message("acme", "m-1", 1000).await.unwrap();
    assert_eq!(got.len(), 151);
    // Each id names the row of its own event.
    for (id, e) in ids.iter().zip(&batch) {
        let row = got
            .iter()
            .find(|r| r.id == *id)
            .expect("the returned id is stored");
        assert_eq!(row.time, e.time);
        assert_eq!(row.detail, e.detail);
        assert_eq!(row.email, e.email);
        assert_eq!(row.client_ip, e.client_ip);
        assert_eq!(row.message_id, e.message_id);
        assert_eq!(row.event, e.event);
        assert_eq!(row.tenant_id, e.tenant_id);
    }
}

async fn admin_tokens(db: Db) {
    let store = db.open().await;
    store.upsert_tenant(&tenant_row("acme")).await.unwrap();
    let t = AdminTokenRow {
        token_hash: vec![0xee; 32],
        tenant_id: "acme".into(),
        label: "ci".into(),
        created: T0,
        role: "admin".into(),
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
    let gateway = AdminTokenRow {
        token_hash: vec![2; 32],
        role: "gateway".into(),
        ..t.clone()
    };
    store.insert_admin_token(&gateway).await.unwrap();
    assert_eq!(
        store.admin_token(&gateway.token_hash).await.unwrap(),
        Some(gateway.clone())
    );
    let bad_role = AdminTokenRow {
        token_hash: vec![3; 32],
        role: "root".into(),
        ..t.clone()
    };
    assert!(
        store.insert_admin_token(&bad_role).await.is_err(),
        "the role is admin or gateway"
    );
    assert_eq!(store.admin_token(&bad_role.token_hash).await.unwrap(), None);
    assert!(!format!("{t:?}").contains("238"), "Debug hides the hash");
}

/// A database with only the migrations before token roles, and a token in it, gains the role
/// column with every existing token an admin token.
async fn tokens_made_before_roles_are_admin_tokens(db: Db) {
    let pool = older_schema(&db, &["0001_initial.sql", "0002_outbox_delivery.sql"]).await;
    sqlx::query(
        "INSERT INTO tenants (tenant_id, display_name, settings_json, created) \
         VALUES ('acme', 'Acme', '{}', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO admin_tokens (token_hash, tenant_id, label, created) \
         VALUES ($1, 'acme', 'old', 2)",
    )
    .bind(&[7u8; 32][..])
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = db.open().await;
    let old = store.admin_token(&[7u8; 32]).await.unwrap().unwrap();
    assert_eq!((old.label.as_str(), old.role.as_str()), ("old", "admin"));
}

async fn outbox(db: Db) {
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

async fn secrets(db: Db) {
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

async fn secret_race_across_instances(db: Db) {
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
