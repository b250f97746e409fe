//! What only the SQLite backend has: its durability settings, the file and its mode, and
//! reading data it did not write; and bad URLs for either backend.

use std::time::Duration;

use sealpost_keyservice::store::{Store, StoreError, StoreOptions};

use crate::tenant_row;

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
