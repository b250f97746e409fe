//! The store's test suite, written once and run on each backend (see `support/db.rs`):
//! `THEME::sqlite::*` on a fresh SQLite database per test, `THEME::postgres::*` on a fresh
//! database per test on the server named by `SEALPOST_TEST_POSTGRES_URL`.
//!
//! Themes: `basics` (opening, tenants, keys), `auth` (challenges, counters, sessions),
//! `records` (revocations, audit, tokens, outbox, secrets), `sqlite_specifics`. The row
//! builders and the `race` helper are here.

use std::sync::Arc;

use sealpost_keyservice::store::{
    Backend, ChallengeRow, KeyRow, NewAuditEvent, SessionRow, TenantRow,
};
use tokio::sync::Barrier;

#[macro_use]
#[path = "../support/db.rs"]
mod db;

mod auth;
mod basics;
mod records;
mod sqlite_specifics;

const T0: i64 = 1_800_000_000;

/// A pool on `db` with only the migrations named applied (the schema of an older release), for
/// tests of what a later migration does to existing rows; `db.open()` then applies the rest.
async fn older_schema(db: &db::Db, names: &[&str]) -> sqlx::AnyPool {
    let backend = match db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let before = tempfile::tempdir().unwrap();
    for name in names {
        std::fs::copy(all.join(name), before.path().join(name)).unwrap();
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(before.path()).await.unwrap();
    migrator.run(&pool).await.unwrap();
    pool
}

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
        tenant_id: "acme".into(),
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
