//! Persistence: one set of queries for SQLite (the embedded default) and PostgreSQL (several
//! instances on one database), through sqlx's `Any` driver.
//!
//! - **Schema.** Two migration directories, `migrations/sqlite` and `migrations/postgres`, with
//!   the same tables and columns; the DDL differs only in types (`BLOB`/`BYTEA`,
//!   `INTEGER PRIMARY KEY AUTOINCREMENT`/`BIGSERIAL`). [`Store::connect`] applies the set that
//!   matches the URL scheme. Flags (`sent`, `used`, `decoy`) are integers 0/1 on both, because
//!   the `Any` driver cannot read SQLite booleans.
//! - **Queries** use `$1, $2, …` placeholders, valid on both backends, and only the types the
//!   `Any` driver maps on both: `i64`, `String`, `Vec<u8>`. Every write that must be atomic is
//!   one statement (`UPDATE … WHERE used = 0`, `INSERT … ON CONFLICT … RETURNING`), so it is
//!   race-safe across connections and across service instances without explicit locking.
//!   The one transaction writes a passcode challenge together with its outbox mail
//!   ([`Store::insert_challenge_with_mail`]); the outbox is in `outbox.rs`.
//! - **Durability.** SQLite runs in WAL mode with `synchronous=FULL` on every connection, so
//!   a write is on disk when the call returns; PostgreSQL connections set
//!   `synchronous_commit = on` whatever the server default is.
//! - **Time** is always a parameter (Unix seconds); the store never reads the clock.
//! - **Errors** are [`StoreError`]; nothing read from the database can make the store panic.

mod auth;
mod lookup;
mod oidc;
mod outbox;
mod records;
mod rows;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, AssertSqlSafe, Executor};

pub use lookup::RewrapLookup;
pub use oidc::{OidcFlowRow, TakenFlow};
pub use outbox::{ClaimedMail, DeliveryState, OutboxEntry};
pub use rows::{
    AdminTokenRow, AuditRow, ChallengeRow, KeyRow, NewAuditEvent, OutboxRow, SessionRow, TenantRow,
};

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "sealpost.db";

/// How long an expired challenge is kept before [`Store::delete_expired`] removes it, counted
/// from its creation. Challenges are the record of codes sent, so they must outlive the
/// per-address rate-limit window that [`Store::codes_sent_since`] counts over; any window up
/// to this length is counted exactly.
pub const CHALLENGE_RETENTION_SECS: i64 = 24 * 60 * 60;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database could not be reached or did not answer in time (connection lost, pool
    /// exhausted, lock timeout, server shutting down): retrying later may succeed.
    #[error("the database is unavailable")]
    Unavailable,
    /// A row with the same unique key exists already.
    #[error("a record with the same key exists already")]
    Conflict,
    /// The database holds data the store cannot read back.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// Any other database error (bad configuration, failed migration, constraint violation).
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether the same call may succeed if retried later (HTTP 503 rather than 500).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable)
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a connection URL names, from its scheme (`sqlite:`, `postgres:` or
    /// `postgresql:`).
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => Err(StoreError::Other(
                "unsupported database URL: expected sqlite://PATH or postgres://…".into(),
            )),
        }
    }
}

/// A pooled connection idle this long is pinged before it is used again.
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// Connections the audit pool holds, besides [`StoreOptions::max_connections`].
const AUDIT_CONNECTIONS: u32 = 1;

/// Connection-pool settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Most connections open at once.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// How long a call waits for a free connection before failing with
    /// [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// SQLite: how long a write waits for the database lock.
    pub busy_timeout: Duration,
    /// PostgreSQL: the longest a statement may run (`statement_timeout`); `None` keeps the
    /// server's setting.
    pub statement_timeout: Option<Duration>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// The key service's database. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Connections for audit batches only ([`Store::append_audit_batch`]).
    audit_pool: AnyPool,
    backend: Backend,
    /// Raised when mail is queued, for the delivery worker in this process.
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`) with up to
    /// `max_connections` connections and applies the pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let options = StoreOptions {
            max_connections,
            ..StoreOptions::default()
        };
        Store::connect_with(url, &options).await
    }

    /// Opens (creating it if needed) the SQLite database `DIR/sealpost.db`. A new database
    /// file is created readable by its owner only.
    pub async fn sqlite_in_dir(dir: &Path, max_connections: u32) -> Result<Store, StoreError> {
        let options = StoreOptions {
            max_connections,
            ..StoreOptions::default()
        };
        Store::sqlite_in_dir_with(dir, &options).await
    }

    /// [`Store::sqlite_in_dir`] with all pool settings.
    pub async fn sqlite_in_dir_with(
        dir: &Path,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let url = sqlite_url_in_dir(dir)?;
        Store::connect_with(&url, options).await
    }

    /// [`Store::connect`] with all pool settings.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url)?;
        sqlx::any::install_default_drivers();

        let busy_ms = options.busy_timeout.as_millis();
        let statement_ms = options.statement_timeout.map(|d| d.as_millis().max(1));
        let max_connections = options.max_connections.max(1);
        let pool_options = |max: u32, min: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .min_connections(min)
                .acquire_timeout(options.acquire_timeout)
                // A connection in steady use is not pinged before each use (that would double
                // the round trips of every query); one idle for PING_IDLE_AFTER or more is,
                // so a connection the server dropped while it sat idle fails no request.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_IDLE_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        match backend {
                            Backend::Sqlite => prepare_sqlite(conn, busy_ms).await,
                            Backend::Postgres => prepare_postgres(conn, statement_ms).await,
                        }
                    })
                })
        };
        let pool = pool_options(
            max_connections,
            options.min_connections.min(max_connections),
        )
        .connect(url)
        .await
        .map_err(|e| map_err(backend, e))?;
        // The audit writer's own connection: a batch never waits behind the reads of the
        // requests it answers. Opened on first use.
        let audit_pool = pool_options(AUDIT_CONNECTIONS, 0)
            .connect_lazy(url)
            .map_err(|e| map_err(backend, e))?;
        let store = Store {
            pool,
            audit_pool,
            backend,
            outbox_signal: outbox::new_signal(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // PostgreSQL serializes concurrent migrators with an advisory lock. SQLite has no such
        // lock: two processes opening a new file at once can collide, and the loser simply
        // finds the migrations applied when it tries again.
        let mut attempt = 0;
        loop {
            let e = match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let database_error = match e {
                sqlx::migrate::MigrateError::Execute(e)
                | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => e,
                other => return Err(StoreError::Other(format!("migration failed: {other}"))),
            };
            if self.backend == Backend::Sqlite && attempt < 5 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                continue;
            }
            return Err(match self.err(database_error) {
                StoreError::Other(m) => StoreError::Other(format!("migration failed: {m}")),
                other => other,
            });
        }
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The connection pool, for diagnostics and metrics (`size()`, `num_idle()`). All data
    /// access should go through the methods of [`Store`].
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned (graceful shutdown).
    /// Calls made afterwards fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        self.pool.close().await;
        self.audit_pool.close().await;
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        map_err(self.backend, e)
    }
}

/// Per-connection SQLite settings: WAL, `synchronous=FULL`, foreign keys, busy timeout.
async fn prepare_sqlite(conn: &mut AnyConnection, busy_ms: u128) -> Result<(), sqlx::Error> {
    conn.execute(AssertSqlSafe(format!("PRAGMA busy_timeout = {busy_ms}")))
        .await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    conn.execute("PRAGMA synchronous = FULL").await?;
    // WAL is a property of the file, set once; switching needs an exclusive lock that the busy
    // timeout does not wait for, hence the retries when several connections open a new file.
    let mut attempt = 0u64;
    loop {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) if attempt >= 20 => {
                return Err(sqlx::Error::Configuration(
                    format!("SQLite refused WAL mode (journal_mode is {mode})").into(),
                ));
            }
            Err(e) if attempt >= 20 => return Err(e),
            _ => {}
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
    }
}

/// Per-connection PostgreSQL settings: durable commits and a statement timeout.
async fn prepare_postgres(
    conn: &mut AnyConnection,
    statement_ms: Option<u128>,
) -> Result<(), sqlx::Error> {
    let mut sql = String::from("SET synchronous_commit = on;");
    if let Some(ms) = statement_ms {
        let _ = write!(sql, " SET statement_timeout = {ms};");
    }
    conn.execute(AssertSqlSafe(sql)).await?;
    Ok(())
}

/// `sqlite://DIR/sealpost.db?mode=rwc`, creating DIR and an owner-only database file.
fn sqlite_url_in_dir(dir: &Path) -> Result<String, StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Other(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })?;
    let dir = dir.canonicalize().map_err(|e| {
        StoreError::Other(format!(
            "cannot resolve the data directory {}: {e}",
            dir.display()
        ))
    })?;
    let file = dir.join(SQLITE_FILE_NAME);
    create_private_file(&file)?;
    let path = file.to_str().ok_or_else(|| {
        StoreError::Other(format!(
            "the data directory path {} is not UTF-8",
            dir.display()
        ))
    })?;
    let mut url = String::from("sqlite://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url.push_str("?mode=rwc");
    Ok(url)
}

/// Creates an empty file (a valid empty SQLite database) with mode 0600 if none exists, so
/// the database, its WAL and shared-memory files are private to the service's user.
fn create_private_file(file: &Path) -> Result<(), StoreError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    match open.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Other(format!(
            "cannot create the database file {}: {e}",
            file.display()
        ))),
    }
}

/// Classifies a sqlx error.
fn map_err(backend: Backend, e: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match e {
        E::Database(db) => {
            if db.is_unique_violation() {
                return StoreError::Conflict;
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient = match backend {
                Backend::Sqlite => sqlite_transient(&code),
                Backend::Postgres => postgres_transient(&code),
            };
            let corrupt = backend == Backend::Sqlite && sqlite_corrupt(&code);
            if transient {
                StoreError::Unavailable
            } else if corrupt {
                StoreError::Corrupt(db.message().to_owned())
            } else {
                StoreError::Other(format!("{} (code {code})", db.message()))
            }
        }
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed => {
            StoreError::Unavailable
        }
        E::Protocol(_) => StoreError::Unavailable,
        E::RowNotFound
        | E::TypeNotFound { .. }
        | E::ColumnIndexOutOfBounds { .. }
        | E::ColumnNotFound(_)
        | E::ColumnDecode { .. }
        | E::Decode(_) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Other(other.to_string()),
    }
}

/// SQLite result codes (primary code = extended code & 0xff) worth retrying: BUSY, LOCKED,
/// IOERR, FULL, CANTOPEN, PROTOCOL.
fn sqlite_transient(code: &str) -> bool {
    match code.parse::<i64>() {
        Ok(c) => matches!(c & 0xff, 5 | 6 | 10 | 13 | 14 | 15),
        Err(_) => false,
    }
}

/// SQLite CORRUPT and NOTADB.
fn sqlite_corrupt(code: &str) -> bool {
    matches!(code.parse::<i64>().map(|c| c & 0xff), Ok(11 | 26))
}

/// PostgreSQL SQLSTATE classes worth retrying: connection exceptions (08), serialization
/// failures and deadlocks (40), insufficient resources (53), operator intervention such as
/// shutdown or statement timeout (57), system errors (58), lock not available (55P03).
fn postgres_transient(code: &str) -> bool {
    matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58")) || code == "55P03"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite:///x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(Backend::from_url("sqlite:x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(
            Backend::from_url("postgres://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("PostgreSQL://h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
        assert!(Backend::from_url("nothing").is_err());
    }

    #[test]
    fn error_codes() {
        assert!(sqlite_transient("5"));
        assert!(sqlite_transient("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_transient("2067")); // SQLITE_CONSTRAINT_UNIQUE
        assert!(sqlite_corrupt("11"));
        assert!(postgres_transient("40001"));
        assert!(postgres_transient("57014"));
        assert!(postgres_transient("08006"));
        assert!(!postgres_transient("23505"));
        assert!(!postgres_transient("42P01"));
    }

    #[test]
    fn url_escapes_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a b?c#d%e");
        let url = sqlite_url_in_dir(&odd).unwrap();
        assert!(url.starts_with("sqlite:///"), "{url}");
        assert!(
            url.ends_with("/a%20b%3Fc%23d%25e/sealpost.db?mode=rwc"),
            "{url}"
        );
    }
}
