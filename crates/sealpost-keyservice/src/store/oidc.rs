//! OpenID Connect sign-in flows: the state of a started sign-in, kept in the database so that
//! any instance can finish it, and taken exactly once.
//!
//! Only the SHA-256 of the `state` is stored. Taking a flow is one conditional `UPDATE`
//! (`used = 0` and not expired), so two requests with the same state, on any instances, get
//! it at most once. What it deliberately does not do: judge the provider's answer (the
//! service does).

use std::fmt;

use sqlx::any::AnyRow;
use sqlx::query;

use super::{Store, StoreError, rows};

/// A started OpenID Connect sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcFlowRow {
    /// SHA-256 of the `state` handed to the browser.
    pub state_hash: Vec<u8>,
    /// The provider's configured id.
    pub provider: String,
    /// The tenant whose portal started it (for the audit log).
    pub tenant_id: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier for the token exchange.
    pub pkce_verifier: String,
    /// When it started (Unix seconds).
    pub created: i64,
    /// When it stops being accepted (Unix seconds).
    pub expires: i64,
    /// Whether it has been taken.
    pub used: bool,
}

impl fmt::Debug for OidcFlowRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcFlowRow")
            .field("provider", &self.provider)
            .field("tenant_id", &self.tenant_id)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

/// What [`Store::take_oidc_flow`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakenFlow {
    /// The flow, now marked used: this call owns it.
    Taken(OidcFlowRow),
    /// No flow with this state.
    Unknown,
    /// The flow was taken before (a replay).
    Used(OidcFlowRow),
    /// The flow is past its expiry.
    Expired(OidcFlowRow),
}

/// The columns [`flow`] reads, as a literal for `concat!`.
macro_rules! columns {
    () => {
        "state_hash, provider, tenant_id, nonce, pkce_verifier, created, expires, used"
    };
}

impl Store {
    /// Stores a new flow. [`StoreError::Conflict`] if the state hash exists.
    pub async fn insert_oidc_flow(&self, f: &OidcFlowRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO oidc_flows \
             (state_hash, provider, tenant_id, nonce, pkce_verifier, created, expires, used) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(f.state_hash.as_slice())
        .bind(f.provider.as_str())
        .bind(f.tenant_id.as_str())
        .bind(f.nonce.as_str())
        .bind(f.pkce_verifier.as_str())
        .bind(f.created)
        .bind(f.expires)
        .bind(i64::from(f.used))
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks the flow with this state hash used, if it is unused and `now` is before its
    /// expiry, and returns it. Only one call ever gets [`TakenFlow::Taken`] for a flow, however
    /// many connections or instances race; the others learn why not.
    pub async fn take_oidc_flow(
        &self,
        state_hash: &[u8],
        now: i64,
    ) -> Result<TakenFlow, StoreError> {
        let taken = query(concat!(
            "UPDATE oidc_flows SET used = 1 WHERE state_hash = $1 AND used = 0 AND expires > $2 \
             RETURNING ",
            columns!()
        ))
        .bind(state_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        if let Some(row) = taken {
            return Ok(TakenFlow::Taken(flow(&row)?));
        }
        let row = query(concat!(
            "SELECT ",
            columns!(),
            " FROM oidc_flows WHERE state_hash = $1"
        ))
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(match row.as_ref().map(flow).transpose()? {
            None => TakenFlow::Unknown,
            Some(f) if f.used => TakenFlow::Used(f),
            Some(f) => TakenFlow::Expired(f),
        })
    }

    /// Deletes flows that expired more than a day before `now` (kept that long so a late
    /// replay is still recognised as one in the log). Returns the number deleted.
    pub async fn delete_expired_oidc_flows(&self, now: i64) -> Result<u64, StoreError> {
        let done = query("DELETE FROM oidc_flows WHERE expires < $1")
            .bind(now.saturating_sub(24 * 3600))
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }
}

fn flow(row: &AnyRow) -> Result<OidcFlowRow, StoreError> {
    Ok(OidcFlowRow {
        state_hash: rows::get(row, "state_hash")?,
        provider: rows::get(row, "provider")?,
        tenant_id: rows::get(row, "tenant_id")?,
        nonce: rows::get(row, "nonce")?,
        pkce_verifier: rows::get(row, "pkce_verifier")?,
        created: rows::get(row, "created")?,
        expires: rows::get(row, "expires")?,
        used: rows::flag(row, "used")?,
    })
}
