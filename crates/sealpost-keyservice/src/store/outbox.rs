//! The passcode outbox: queueing mail (with its challenge, in one transaction), the delivery
//! worker's claim / delivered / retry / give-up transitions, listing, and pruning.
//!
//! A row is *pending* until `delivered_at` or `failed_at` is set. Claiming is one conditional
//! `UPDATE` per candidate (`claimed_until` moved into the future only if it had lapsed), so
//! several instances on one database never claim the same mail at once. A *decoy* row is
//! written for a non-recipient so that `/v1/otp/start` does the same durable work either way;
//! decoys are never claimed, never listed and pruned at the next purge. The body (code in
//! clear) is blanked as soon as a mail is delivered or given up.
//!
//! Sending mail is not done here (see [`crate::delivery`]); the store never reads the clock.

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::query;
use tokio::sync::Notify;

use super::{ChallengeRow, OutboxRow, Store, StoreError, auth, rows};

/// How many due mails one claim call looks at before giving up for this round.
const CLAIM_CANDIDATES: i64 = 16;

/// The longest `last_error` kept, in bytes.
const MAX_ERROR_LEN: usize = 500;

/// Pending real mail: not a decoy, neither delivered nor given up (a macro, for `concat!`).
macro_rules! pending {
    () => {
        "decoy = 0 AND delivered_at IS NULL AND failed_at IS NULL"
    };
}

/// A mail of the outbox with its delivery state (for `sealpost outbox list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The mail. The body is empty once the mail was delivered or given up.
    pub mail: OutboxRow,
    /// Delivery attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds), for a pending mail.
    pub next_attempt_at: i64,
    /// When the relay accepted it, if it did.
    pub delivered_at: Option<i64>,
    /// When delivery was given up, if it was.
    pub failed_at: Option<i64>,
    /// The last delivery error (never contains the body).
    pub last_error: Option<String>,
}

/// Where a mail stands, derived from an [`OutboxEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt (or for an SMTP server to be configured).
    Queued,
    /// At least one attempt failed; another is scheduled.
    Retrying,
    /// The relay accepted it.
    Delivered,
    /// Delivery was given up.
    Failed,
}

impl DeliveryState {
    /// The word `sealpost outbox list` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

impl OutboxEntry {
    /// The mail's state.
    pub fn state(&self) -> DeliveryState {
        if self.delivered_at.is_some() {
            DeliveryState::Delivered
        } else if self.failed_at.is_some() {
            DeliveryState::Failed
        } else if self.attempts > 0 {
            DeliveryState::Retrying
        } else {
            DeliveryState::Queued
        }
    }
}

/// A mail the caller has claimed for sending until the lease it asked for ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    /// The mail, body included.
    pub mail: OutboxRow,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// The wake-up signal shared by every clone of a [`Store`]: raised after mail is queued.
pub(super) fn new_signal() -> Arc<Notify> {
    Arc::new(Notify::new())
}

const INSERT_OUTBOX: &str = "INSERT INTO outbox \
     (created, to_addr, subject, body, decoy, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, $1) RETURNING id";

impl Store {
    /// Waits until mail is queued through this store (or a clone of it) after the call began,
    /// or was queued since the last wait returned. Other instances' mail is not signalled:
    /// the delivery worker also polls.
    pub async fn outbox_queued(&self) {
        self.outbox_signal.notified().await;
    }

    /// Queues a real mail, due at once; returns its id (`m.id` is ignored).
    pub async fn push_outbox(&self, m: &OutboxRow) -> Result<i64, StoreError> {
        let row = query(INSERT_OUTBOX)
            .bind(m.created)
            .bind(m.to_addr.as_str())
            .bind(m.subject.as_str())
            .bind(m.body.as_str())
            .bind(0_i64)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        self.outbox_signal.notify_one();
        rows::get(&row, "id")
    }

    /// Stores a challenge and its passcode mail in one transaction: both or neither. A
    /// `decoy` mail (for a non-recipient) costs the same writes but is never sent or listed.
    /// Returns the mail's id. [`StoreError::Conflict`] if the challenge id is taken.
    pub async fn insert_challenge_with_mail(
        &self,
        c: &ChallengeRow,
        m: &OutboxRow,
        decoy: bool,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        auth::insert_challenge_query(c)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        let row = query(INSERT_OUTBOX)
            .bind(m.created)
            .bind(m.to_addr.as_str())
            .bind(m.subject.as_str())
            .bind(m.body.as_str())
            .bind(i64::from(decoy))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        // Raised for decoys too, so that both answers do the same work here as well.
        self.outbox_signal.notify_one();
        rows::get(&row, "id")
    }

    /// The newest `limit` real mails (decoys left out), newest first, in any state.
    pub async fn outbox(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(self
            .outbox_entries(limit)
            .await?
            .into_iter()
            .map(|e| e.mail)
            .collect())
    }

    /// The newest `limit` real mails with their delivery state, newest first.
    pub async fn outbox_entries(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
        query(
            "SELECT id, created, to_addr, subject, body, attempts, next_attempt_at, \
             delivered_at, failed_at, last_error FROM outbox WHERE decoy = 0 \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(entry)
        .collect()
    }

    /// Claims the oldest due pending mail (`next_attempt_at <= now` and no live claim) until
    /// `lease_until`. `None` when nothing is due, or when other instances took every
    /// candidate first. However many callers race, a mail is claimed by one at a time.
    pub async fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<ClaimedMail>, StoreError> {
        let candidates = query(concat!(
            "SELECT id FROM outbox WHERE ",
            pending!(),
            " AND next_attempt_at <= $1 \
             AND claimed_until <= $1 ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(now)
        .bind(CLAIM_CANDIDATES)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        for candidate in &candidates {
            let id: i64 = rows::get(candidate, "id")?;
            let claimed = query(concat!(
                "UPDATE outbox SET claimed_until = $1 WHERE id = $2 AND ",
                pending!(),
                " \
                 AND next_attempt_at <= $3 AND claimed_until <= $3 \
                 RETURNING id, created, to_addr, subject, body, attempts"
            ))
            .bind(lease_until)
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
            if let Some(row) = claimed {
                return Ok(Some(ClaimedMail {
                    mail: rows::outbox(&row)?,
                    attempts: rows::get(&row, "attempts")?,
                }));
            }
        }
        Ok(None)
    }

    /// Records that the relay accepted mail `id` at `now`: counts the attempt, blanks the
    /// body. False if the mail is no longer pending (delivered or given up meanwhile).
    pub async fn mark_outbox_delivered(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = query(concat!(
            "UPDATE outbox SET delivered_at = $1, attempts = attempts + 1, body = '', \
             claimed_until = 0, last_error = NULL WHERE id = $2 AND ",
            pending!()
        ))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt on mail `id` and releases the claim: with `retry_at`, the mail
    /// is due again then; without, delivery is given up (`failed_at = now`, body blanked).
    /// `error` must not contain the body. False if the mail is no longer pending.
    pub async fn record_outbox_failure(
        &self,
        id: i64,
        now: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let error = truncate(error);
        let done = match retry_at {
            Some(at) => query(concat!(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, \
                 claimed_until = 0, last_error = $2 WHERE id = $3 AND ",
                pending!()
            ))
            .bind(at)
            .bind(error)
            .bind(id),
            None => query(concat!(
                "UPDATE outbox SET attempts = attempts + 1, failed_at = $1, body = '', \
                 claimed_until = 0, last_error = $2 WHERE id = $3 AND ",
                pending!()
            ))
            .bind(now)
            .bind(error)
            .bind(id),
        }
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up mail `id` without another attempt (e.g. it is too old to be worth sending):
    /// `failed_at = now`, body blanked, `reason` kept as the last error.
    pub async fn give_up_outbox(
        &self,
        id: i64,
        now: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = query(concat!(
            "UPDATE outbox SET failed_at = $1, body = '', claimed_until = 0, last_error = $2 \
             WHERE id = $3 AND ",
            pending!()
        ))
        .bind(now)
        .bind(truncate(reason))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes decoys, delivered and given-up mail, and every mail created before
    /// `now - retention_secs` whatever its state. Returns the number of rows deleted.
    pub async fn purge_outbox(&self, now: i64, retention_secs: i64) -> Result<u64, StoreError> {
        let done = query(
            "DELETE FROM outbox WHERE decoy = 1 OR delivered_at IS NOT NULL \
             OR failed_at IS NOT NULL OR created < $1",
        )
        .bind(now.saturating_sub(retention_secs))
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_ERROR_LEN {
        return s;
    }
    let mut end = MAX_ERROR_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn entry(row: &AnyRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        mail: rows::outbox(row)?,
        attempts: rows::get(row, "attempts")?,
        next_attempt_at: rows::get(row, "next_attempt_at")?,
        delivered_at: rows::get(row, "delivered_at")?,
        failed_at: rows::get(row, "failed_at")?,
        last_error: rows::get(row, "last_error")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("short"), "short");
        let long = "é".repeat(400);
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_ERROR_LEN && cut.len() >= MAX_ERROR_LEN - 1);
        assert!(long.starts_with(cut));
    }
}
