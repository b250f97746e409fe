//! A fresh, empty database per test on either backend, and the `backends!` macro that runs a
//! test once on each. Shared by the `store`, `service` and `http` test targets (each includes
//! this file with `#[path]`).
//!
//! - SQLite: a new database in a temporary directory, deleted afterwards.
//! - PostgreSQL: a new database (`sealpost_t_PID_N`) on the server named by
//!   `SEALPOST_TEST_POSTGRES_URL` (e.g. `export SEALPOST_TEST_POSTGRES_URL=$(scripts/postgres.sh)`),
//!   dropped afterwards, so tests stay independent and may run in parallel. Without the
//!   variable the PostgreSQL variants print a skip line and pass, unless `CI` is set: CI must
//!   never skip them silently, so there they fail.
//!
//! It deliberately knows nothing of the key service beyond `Store`.

// Each test target that includes this file uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use sealpost_keyservice::store::{Backend, Store};
use sqlx::migrate::MigrateDatabase;

pub const POSTGRES_ENV: &str = "SEALPOST_TEST_POSTGRES_URL";

/// Runs each named `async fn NAME(db: Db)` of the calling module once per backend, as the
/// tests `MODULE::sqlite::NAME` and `MODULE::postgres::NAME`.
macro_rules! backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::db::Db::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::db::Db::postgres().await else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
}

/// The PostgreSQL server to test against, if any. Panics when `CI` is set but the server is
/// not: a CI run must not pass by skipping the PostgreSQL half of the suite.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty()) {
        Some(url) => Some(url),
        None if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            panic!("CI is set but {POSTGRES_ENV} is not: the PostgreSQL tests must run in CI")
        }
        None => {
            eprintln!("{POSTGRES_ENV} is not set: PostgreSQL test skipped");
            None
        }
    }
}

/// A fresh, empty database for one test; deleted (SQLite) or dropped (PostgreSQL) afterwards.
pub struct Db {
    pub backend: Backend,
    pub url: String,
    dir: Option<tempfile::TempDir>,
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/sealpost.db?mode=rwc", dir.path().display());
        Db {
            backend: Backend::Sqlite,
            url,
            dir: Some(dir),
        }
    }

    /// A new database on the test server, or `None` (after a skip line) without one.
    pub async fn postgres() -> Option<Db> {
        let base = postgres_url()?;
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

    /// Another fresh database on the same backend.
    pub async fn another(&self) -> Db {
        match self.backend {
            Backend::Postgres => Db::postgres().await.expect("the server is still named"),
            Backend::Sqlite => Db::sqlite(),
        }
    }

    /// A new `Store` on this database (several may be open at once).
    pub async fn open(&self) -> Store {
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
