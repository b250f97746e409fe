//! One-time-passcode challenges, per-address failure counts, sessions, and admin and gateway
//! tokens.

use sqlx::query;

use super::{
    AdminTokenRow, CHALLENGE_RETENTION_SECS, ChallengeRow, SessionRow, Store, StoreError, rows,
};

impl Store {
    // --- one-time passcodes -------------------------------------------------------------

    /// Stores a new challenge. [`StoreError::Conflict`] if the id is taken.
    pub async fn insert_challenge(&self, c: &ChallengeRow) -> Result<(), StoreError> {
        insert_challenge_query(c)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// One challenge, whatever its state (the caller checks expiry, attempts and use).
    pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>, StoreError> {
        query(
            "SELECT id, tenant_id, email, message_id, code_hash, sent, created, expires, \
             attempts, used FROM challenges WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .as_ref()
        .map(rows::challenge)
        .transpose()
    }

    /// Counts one more failed attempt, atomically, and returns the new count; 0 if there is
    /// no such challenge.
    pub async fn record_failed_attempt(&self, id: &str) -> Result<i64, StoreError> {
        let row =
            query("UPDATE challenges SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        match row {
            Some(row) => rows::get(&row, "attempts"),
            None => Ok(0),
        }
    }

    /// Marks a challenge used if it was not. True only for the one call that did it, however
    /// many connections or service instances race.
    pub async fn consume_challenge(&self, id: &str) -> Result<bool, StoreError> {
        let done = query("UPDATE challenges SET used = 1 WHERE id = $1 AND used = 0")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// How many real codes (`sent`) were issued for `email` at or after `since`. Exact for
    /// windows up to [`CHALLENGE_RETENTION_SECS`].
    pub async fn codes_sent_since(&self, email: &str, since: i64) -> Result<i64, StoreError> {
        let row = query(
            "SELECT COUNT(*) AS n FROM challenges WHERE email = $1 AND created >= $2 AND sent = 1",
        )
        .bind(email)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows::get(&row, "n")
    }

    /// How many challenges (real codes and decoys alike) were issued for `email` at or after
    /// `since`. The per-address hourly limit counts these, so it treats recipients and
    /// non-recipients the same.
    pub async fn challenges_since(&self, email: &str, since: i64) -> Result<i64, StoreError> {
        let row = query("SELECT COUNT(*) AS n FROM challenges WHERE email = $1 AND created >= $2")
            .bind(email)
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        rows::get(&row, "n")
    }

    /// The consecutive failures for `email` if the last one was at or after `since`, else 0
    /// (a lockout ends when failures stop for the window).
    pub async fn address_failures_since(&self, email: &str, since: i64) -> Result<i64, StoreError> {
        let row = query("SELECT failures FROM address_failures WHERE email = $1 AND updated >= $2")
            .bind(email)
            .bind(since)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(row) => rows::get(&row, "failures"),
            None => Ok(0),
        }
    }

    /// The number of consecutive failed verifications for `email` (0 if none).
    pub async fn address_failures(&self, email: &str) -> Result<i64, StoreError> {
        let row = query("SELECT failures FROM address_failures WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        match row {
            Some(row) => rows::get(&row, "failures"),
            None => Ok(0),
        }
    }

    /// Counts one more failed verification for `email`, atomically; returns the new count.
    pub async fn add_address_failure(&self, email: &str, now: i64) -> Result<i64, StoreError> {
        let row = query(
            "INSERT INTO address_failures (email, failures, updated) VALUES ($1, 1, $2) \
             ON CONFLICT (email) DO UPDATE \
             SET failures = address_failures.failures + 1, updated = excluded.updated \
             RETURNING failures",
        )
        .bind(email)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        rows::get(&row, "failures")
    }

    /// Clears the failure count for `email` (after a successful verification).
    pub async fn reset_address_failures(&self, email: &str) -> Result<(), StoreError> {
        query("DELETE FROM address_failures WHERE email = $1")
            .bind(email)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    // --- sessions -----------------------------------------------------------------------

    /// Stores a new session. [`StoreError::Conflict`] if the token hash exists.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO sessions (token_hash, email, tenant_id, created, last_seen, expires) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.token_hash.as_slice())
        .bind(s.email.as_str())
        .bind(s.tenant_id.as_str())
        .bind(s.created)
        .bind(s.last_seen)
        .bind(s.expires)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The session with this token hash, whatever its age (the caller checks the timeouts).
    pub async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRow>, StoreError> {
        query(
            "SELECT token_hash, email, tenant_id, created, last_seen, expires FROM sessions \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .as_ref()
        .map(rows::session)
        .transpose()
    }

    /// Records use of a session at `now`. `last_seen` only moves forward, and a touch within
    /// the same second writes nothing.
    pub async fn touch_session(&self, token_hash: &[u8], now: i64) -> Result<(), StoreError> {
        query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2 AND last_seen < $1")
            .bind(now)
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Ends a session (sign-out). Deleting an unknown session is not an error.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Deletes sessions whose absolute expiry is before `now`, and challenges that expired
    /// and were created more than [`CHALLENGE_RETENTION_SECS`] before `now`. Returns the
    /// number of rows deleted. Idle sessions are the caller's to judge (and delete).
    pub async fn delete_expired(&self, now: i64) -> Result<u64, StoreError> {
        let sessions = query("DELETE FROM sessions WHERE expires < $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let challenges = query("DELETE FROM challenges WHERE expires < $1 AND created < $2")
            .bind(now)
            .bind(now.saturating_sub(CHALLENGE_RETENTION_SECS))
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(sessions.rows_affected() + challenges.rows_affected())
    }

    // --- admin and gateway tokens -------------------------------------------------------

    /// Stores an admin or gateway token. [`StoreError::Conflict`] if the hash exists;
    /// [`StoreError::Other`] if the tenant does not exist or the role is neither `admin` nor
    /// `gateway`.
    pub async fn insert_admin_token(&self, t: &AdminTokenRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO admin_tokens (token_hash, tenant_id, label, created, role) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(t.token_hash.as_slice())
        .bind(t.tenant_id.as_str())
        .bind(t.label.as_str())
        .bind(t.created)
        .bind(t.role.as_str())
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The token (of either role) with this hash.
    pub async fn admin_token(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<AdminTokenRow>, StoreError> {
        query(
            "SELECT token_hash, tenant_id, label, created, role FROM admin_tokens \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .as_ref()
        .map(rows::admin_token)
        .transpose()
    }
}

/// The `INSERT` of a challenge, bound, for [`Store::insert_challenge`] and the transaction
/// that also queues its passcode mail.
pub(super) fn insert_challenge_query(
    c: &ChallengeRow,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    query(
        "INSERT INTO challenges \
         (id, tenant_id, email, message_id, code_hash, sent, created, expires, attempts, used) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(c.id.as_str())
    .bind(c.tenant_id.as_str())
    .bind(c.email.as_str())
    .bind(c.message_id.as_str())
    .bind(c.code_hash.as_slice())
    .bind(i64::from(c.sent))
    .bind(c.created)
    .bind(c.expires)
    .bind(c.attempts)
    .bind(i64::from(c.used))
}
