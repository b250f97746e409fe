//! The rewrap's reads in one round trip: the session, the tenant's active license key named
//! by the header, and whether the message is revoked.
//!
//! `/v1/rewrap` is the key service's hot path; reading these three with one statement instead
//! of three saves two round trips to PostgreSQL (and two hops to SQLite's worker thread) per
//! release. It reads only: touching or deleting the session, and the decisions, stay with the
//! service. Each part is exactly what its separate query returns ([`Store::session`],
//! the matching row of [`Store::keys`], [`Store::is_revoked`]).

use sqlx::query;

use super::{SessionRow, Store, StoreError, rows};

/// What one rewrap needs from the database.
#[derive(Debug)]
pub struct RewrapLookup {
    /// The session with this token hash, if any (live or not: the service decides).
    pub session: Option<SessionRow>,
    /// The wrapped private half of the tenant's license key with this id, if that key exists
    /// and is active.
    pub license_key: Option<Vec<u8>>,
    /// Whether the message is revoked.
    pub revoked: bool,
}

impl Store {
    /// Reads the session `token_hash`, the active license key `key_id` of `tenant_id` and the
    /// revocation of `message_id`, in one statement.
    pub async fn rewrap_lookup(
        &self,
        token_hash: &[u8],
        tenant_id: &str,
        key_id: &str,
        message_id: &str,
    ) -> Result<RewrapLookup, StoreError> {
        let row = query(
            "SELECT s.token_hash, s.email, s.tenant_id, s.created, s.last_seen, s.expires, \
             (SELECT k.wrapped_private FROM tenant_keys k WHERE k.tenant_id = $2 \
              AND k.key_id = $3 AND k.kind = 'license' AND k.status = 'active') AS license_key, \
             (SELECT COUNT(*) FROM revocations r WHERE r.tenant_id = $2 \
              AND r.message_id = $4) AS revoked \
             FROM (SELECT 1 AS one) AS o LEFT JOIN sessions s ON s.token_hash = $1",
        )
        .bind(token_hash)
        .bind(tenant_id)
        .bind(key_id)
        .bind(message_id)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let session = match rows::get::<Option<Vec<u8>>>(&row, "token_hash")? {
            Some(_) => Some(rows::session(&row)?),
            None => None,
        };
        Ok(RewrapLookup {
            session,
            license_key: rows::get(&row, "license_key")?,
            revoked: rows::get::<i64>(&row, "revoked")? > 0,
        })
    }
}
