//! The rows the store reads and writes, and their decoding from database rows.
//!
//! Decoding never panics: a value of the wrong type or out of range becomes
//! [`StoreError::Corrupt`].

use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::StoreError;

/// A tenant: an organization whose mail the service protects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// The tenant id as it appears in envelope headers.
    pub tenant_id: String,
    /// Name shown to recipients.
    pub display_name: String,
    /// Tenant settings (branding, portal origins, …) as JSON, opaque to the store.
    pub settings_json: String,
    /// When the tenant was first added (Unix seconds); kept by [`Store::upsert_tenant`](super::Store::upsert_tenant).
    pub created: i64,
}

/// One key of a tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// The key id, unique within the tenant.
    pub key_id: String,
    /// `"license"` or `"signing"`.
    pub kind: String,
    /// The public key, encoded by the core.
    pub public_key: Vec<u8>,
    /// The private key encrypted under the key-encryption key, if the service holds it.
    pub wrapped_private: Option<Vec<u8>>,
    /// `"active"` or `"retired"`.
    pub status: String,
    /// When the key was added (Unix seconds).
    pub created: i64,
}

impl fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRow")
            .field("tenant_id", &self.tenant_id)
            .field("key_id", &self.key_id)
            .field("kind", &self.kind)
            .field(
                "public_key",
                &format_args!("<{} bytes>", self.public_key.len()),
            )
            .field(
                "wrapped_private",
                &self.wrapped_private.as_ref().map(|w| Redacted(w.len())),
            )
            .field("status", &self.status)
            .field("created", &self.created)
            .finish()
    }
}

/// A one-time-passcode challenge. Its `Debug` output leaves out the code hash.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeRow {
    /// Random challenge id handed to the client.
    pub id: String,
    /// The tenant of the message the code was asked for.
    pub tenant_id: String,
    /// The address the code is bound to.
    pub email: String,
    /// The message the code was asked for.
    pub message_id: String,
    /// Keyed hash of the code.
    pub code_hash: Vec<u8>,
    /// Whether a real code was mailed (false for the decoy of a non-recipient).
    pub sent: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Expiry time (Unix seconds).
    pub expires: i64,
    /// Failed verification attempts so far.
    pub attempts: i64,
    /// Whether the code has been used.
    pub used: bool,
}

impl fmt::Debug for ChallengeRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeRow")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("email", &self.email)
            .field("message_id", &self.message_id)
            .field("code_hash", &Redacted(self.code_hash.len()))
            .field("sent", &self.sent)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("attempts", &self.attempts)
            .field("used", &self.used)
            .finish()
    }
}

/// A recipient session. Its `Debug` output leaves out the token hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the session token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    /// The address the session is bound to.
    pub email: String,
    /// The tenant it was opened for (the only tenant whose messages it opens).
    pub tenant_id: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Last use (Unix seconds), for the idle timeout.
    pub last_seen: i64,
    /// Absolute expiry (Unix seconds).
    pub expires: i64,
}

impl fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRow")
            .field("token_hash", &Redacted(self.token_hash.len()))
            .field("email", &self.email)
            .field("tenant_id", &self.tenant_id)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .field("expires", &self.expires)
            .finish()
    }
}

/// An audit event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened (Unix seconds).
    pub time: i64,
    /// The tenant concerned (may be an unknown tenant id, for refusals).
    pub tenant_id: String,
    /// What happened, e.g. `"rewrap.granted"`.
    pub event: String,
    /// The recipient address, if any.
    pub email: Option<String>,
    /// The message id, if any.
    pub message_id: Option<String>,
    /// The client IP address, if known.
    pub client_ip: Option<String>,
    /// Free-form detail (a reason, JSON, …).
    pub detail: String,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Increasing id assigned by the database.
    pub id: i64,
    /// When it happened (Unix seconds).
    pub time: i64,
    /// The tenant concerned.
    pub tenant_id: String,
    /// What happened.
    pub event: String,
    /// The recipient address, if any.
    pub email: Option<String>,
    /// The message id, if any.
    pub message_id: Option<String>,
    /// The client IP address, if known.
    pub client_ip: Option<String>,
    /// Free-form detail.
    pub detail: String,
}

/// A tenant's administration or gateway token (`role`). Its `Debug` output leaves out the
/// token hash.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminTokenRow {
    /// SHA-256 of the token; the token itself is never stored.
    pub token_hash: Vec<u8>,
    /// The tenant the token administers.
    pub tenant_id: String,
    /// A human label ("ci", "alice's laptop").
    pub label: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// What the token may call: `admin` (the /v1/admin/* endpoints) or `gateway` (the
    /// /v1/gateway/* endpoints).
    pub role: String,
}

impl fmt::Debug for AdminTokenRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminTokenRow")
            .field("token_hash", &Redacted(self.token_hash.len()))
            .field("tenant_id", &self.tenant_id)
            .field("label", &self.label)
            .field("created", &self.created)
            .field("role", &self.role)
            .finish()
    }
}

/// A passcode mail in the outbox, as queued (with its delivery state it is an
/// [`OutboxEntry`](super::OutboxEntry)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Id assigned by the database ([`Store::push_outbox`](super::Store::push_outbox) ignores the given one).
    pub id: i64,
    /// When it was queued (Unix seconds).
    pub created: i64,
    /// Recipient address.
    pub to_addr: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Prints `<redacted, N bytes>` in place of a secret-derived value.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

// --- decoding ------------------------------------------------------------------------------

/// Reads a column, turning any decoding failure into [`StoreError::Corrupt`].
pub(crate) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get::<T, _>(column)
        .map_err(|e| StoreError::Corrupt(format!("column `{column}`: {e}")))
}

/// Flags are stored as integers 0/1 on both backends (the `Any` driver cannot read SQLite
/// booleans).
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    flag_from_int(get::<i64>(row, column)?, column)
}

/// 0 is false, 1 is true, anything else is corrupt.
pub(crate) fn flag_from_int(value: i64, column: &str) -> Result<bool, StoreError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(StoreError::Corrupt(format!(
            "column `{column}` holds {other}, expected 0 or 1"
        ))),
    }
}

pub(crate) fn tenant(row: &AnyRow) -> Result<TenantRow, StoreError> {
    Ok(TenantRow {
        tenant_id: get(row, "tenant_id")?,
        display_name: get(row, "display_name")?,
        settings_json: get(row, "settings_json")?,
        created: get(row, "created")?,
    })
}

pub(crate) fn key(row: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        tenant_id: get(row, "tenant_id")?,
        key_id: get(row, "key_id")?,
        kind: get(row, "kind")?,
        public_key: get(row, "public_key")?,
        wrapped_private: get(row, "wrapped_private")?,
        status: get(row, "status")?,
        created: get(row, "created")?,
    })
}

pub(crate) fn challenge(row: &AnyRow) -> Result<ChallengeRow, StoreError> {
    Ok(ChallengeRow {
        id: get(row, "id")?,
        tenant_id: get(row, "tenant_id")?,
        email: get(row, "email")?,
        message_id: get(row, "message_id")?,
        code_hash: get(row, "code_hash")?,
        sent: flag(row, "sent")?,
        created: get(row, "created")?,
        expires: get(row, "expires")?,
        attempts: get(row, "attempts")?,
        used: flag(row, "used")?,
    })
}

pub(crate) fn session(row: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        token_hash: get(row, "token_hash")?,
        email: get(row, "email")?,
        tenant_id: get(row, "tenant_id")?,
        created: get(row, "created")?,
        last_seen: get(row, "last_seen")?,
        expires: get(row, "expires")?,
    })
}

pub(crate) fn audit(row: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: get(row, "id")?,
        time: get(row, "event_time")?,
        tenant_id: get(row, "tenant_id")?,
        event: get(row, "event")?,
        email: get(row, "email")?,
        message_id: get(row, "message_id")?,
        client_ip: get(row, "client_ip")?,
        detail: get(row, "detail")?,
    })
}

pub(crate) fn admin_token(row: &AnyRow) -> Result<AdminTokenRow, StoreError> {
    Ok(AdminTokenRow {
        token_hash: get(row, "token_hash")?,
        tenant_id: get(row, "tenant_id")?,
        label: get(row, "label")?,
        created: get(row, "created")?,
        role: get(row, "role")?,
    })
}

pub(crate) fn outbox(row: &AnyRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: get(row, "id")?,
        created: get(row, "created")?,
        to_addr: get(row, "to_addr")?,
        subject: get(row, "subject")?,
        body: get(row, "body")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_outside_zero_one_are_corrupt() {
        assert_eq!(flag_from_int(0, "used").ok(), Some(false));
        assert_eq!(flag_from_int(1, "used").ok(), Some(true));
        assert!(matches!(
            flag_from_int(7, "used"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            flag_from_int(-1, "sent"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn debug_leaves_hashes_out() {
        let s = SessionRow {
            token_hash: vec![0xab; 32],
            email: "a@example.org".into(),
            tenant_id: "t".into(),
            created: 1,
            last_seen: 2,
            expires: 3,
        };
        let text = format!("{s:?}");
        assert!(text.contains("redacted, 32 bytes"), "{text}");
        assert!(!text.contains("171") && !text.contains("ab, ab"), "{text}");

        let c = ChallengeRow {
            id: "c1".into(),
            tenant_id: "t".into(),
            email: "a@example.org".into(),
            message_id: "m".into(),
            code_hash: vec![0xcd; 32],
            sent: true,
            created: 1,
            expires: 2,
            attempts: 0,
            used: false,
        };
        let text = format!("{c:?}");
        assert!(text.contains("redacted, 32 bytes"), "{text}");
        assert!(!text.contains("205"), "{text}");
    }
}
