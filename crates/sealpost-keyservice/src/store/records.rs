//! Tenants and keys, revocation, audit and server secrets (the outbox is in `outbox.rs`).

use sqlx::query;

use super::{AuditRow, KeyRow, NewAuditEvent, Store, StoreError, TenantRow, rows};

impl Store {
    // --- tenants and keys ---------------------------------------------------------------

    /// Adds a tenant, or updates its display name and settings; `created` of an existing
    /// tenant is kept.
    pub async fn upsert_tenant(&self, t: &TenantRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO tenants (tenant_id, display_name, settings_json, created) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id) DO UPDATE \
             SET display_name = excluded.display_name, settings_json = excluded.settings_json",
        )
        .bind(t.tenant_id.as_str())
        .bind(t.display_name.as_str())
        .bind(t.settings_json.as_str())
        .bind(t.created)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// One tenant.
    pub async fn tenant(&self, tenant_id: &str) -> Result<Option<TenantRow>, StoreError> {
        query(
            "SELECT tenant_id, display_name, settings_json, created FROM tenants \
             WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .as_ref()
        .map(rows::tenant)
        .transpose()
    }

    /// All tenants, by tenant id.
    pub async fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        query(
            "SELECT tenant_id, display_name, settings_json, created FROM tenants \
             ORDER BY tenant_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(rows::tenant)
        .collect()
    }

    /// Adds a key. [`StoreError::Conflict`] if the tenant has a key with that id already;
    /// [`StoreError::Other`] if the tenant does not exist.
    pub async fn add_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        query(
            "INSERT INTO tenant_keys \
             (tenant_id, key_id, kind, public_key, wrapped_private, status, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(k.tenant_id.as_str())
        .bind(k.key_id.as_str())
        .bind(k.kind.as_str())
        .bind(k.public_key.as_slice())
        .bind(k.wrapped_private.as_deref())
        .bind(k.status.as_str())
        .bind(k.created)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A tenant's keys, oldest first.
    pub async fn keys(&self, tenant_id: &str) -> Result<Vec<KeyRow>, StoreError> {
        query(
            "SELECT tenant_id, key_id, kind, public_key, wrapped_private, status, created \
             FROM tenant_keys WHERE tenant_id = $1 ORDER BY created, key_id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(rows::key)
        .collect()
    }

    /// Sets a key's status; false if there is no such key.
    pub async fn set_key_status(
        &self,
        tenant_id: &str,
        key_id: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let done = query("UPDATE tenant_keys SET status = $1 WHERE tenant_id = $2 AND key_id = $3")
            .bind(status)
            .bind(tenant_id)
            .bind(key_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() > 0)
    }

    // --- revocation ---------------------------------------------------------------------

    /// Revokes a message for good. True if this call revoked it, false if it was revoked
    /// already (the first revocation's time and author are kept).
    pub async fn revoke(
        &self,
        tenant_id: &str,
        message_id: &str,
        now: i64,
        by: &str,
    ) -> Result<bool, StoreError> {
        let done = query(
            "INSERT INTO revocations (tenant_id, message_id, revoked_at, revoked_by) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id, message_id) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(message_id)
        .bind(now)
        .bind(by)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a message is revoked.
    pub async fn is_revoked(&self, tenant_id: &str, message_id: &str) -> Result<bool, StoreError> {
        let row = query("SELECT 1 FROM revocations WHERE tenant_id = $1 AND message_id = $2")
            .bind(tenant_id)
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.is_some())
    }

    // --- audit --------------------------------------------------------------------------

    /// Appends an audit event and returns its id. When this returns `Ok` the event is
    /// committed durably (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`).
    pub async fn append_audit(&self, e: &NewAuditEvent) -> Result<i64, StoreError> {
        let row = bind_audit(query(INSERT_AUDIT), e)
            .fetch_one(&self.pool)
            .await
            .map_err(|err| self.err(err))?;
        rows::get(&row, "id")
    }

    /// Appends several audit events in one statement, so in one transaction and one disk
    /// sync (group commit) and one round trip to the database. Returns their ids in order;
    /// all or none are stored.
    pub async fn append_audit_batch(
        &self,
        events: &[NewAuditEvent],
    ) -> Result<Vec<i64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // The rows travel as one JSON array of arrays, so the statement text is the same for
        // every batch size (one prepared statement per connection). On SQLite a single write
        // statement takes the write lock before it reads anything (as BEGIN IMMEDIATE did for
        // the old multi-statement transaction), so it never has to upgrade a stale snapshot.
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                serde_json::json!([
                    e.time,
                    e.tenant_id,
                    e.event,
                    e.email,
                    e.message_id,
                    e.client_ip,
                    e.detail
                ])
            })
            .collect();
        let json = serde_json::Value::Array(rows).to_string();
        let sql = match self.backend {
            super::Backend::Sqlite => INSERT_AUDIT_BATCH_SQLITE,
            super::Backend::Postgres => INSERT_AUDIT_BATCH_POSTGRES,
        };
        let rows = query(sql)
            .bind(json)
            .fetch_all(&self.audit_pool)
            .await
            .map_err(|e| self.err(e))?;
        let mut ids = rows
            .iter()
            .map(|r| rows::get::<i64>(r, "id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() != events.len() {
            return Err(StoreError::Corrupt(format!(
                "{} audit records inserted but {} ids came back",
                events.len(),
                ids.len()
            )));
        }
        // The rows are inserted in array order, so their ids ascend in that order; RETURNING
        // itself promises no order.
        ids.sort_unstable();
        Ok(ids)
    }

    /// A message's audit events in time order (then id), at most `limit`.
    pub async fn audit_for_message(
        &self,
        tenant_id: &str,
        message_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        query(
            "SELECT id, event_time, tenant_id, event, email, message_id, client_ip, detail \
             FROM audit_events \
             WHERE tenant_id = $1 AND message_id = $2 ORDER BY event_time, id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(message_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(rows::audit)
        .collect()
    }

    /// A tenant's audit events at or after `since`, in time order (then id), at most `limit`.
    pub async fn audit_for_tenant(
        &self,
        tenant_id: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        query(
            "SELECT id, event_time, tenant_id, event, email, message_id, client_ip, detail \
             FROM audit_events \
             WHERE tenant_id = $1 AND event_time >= $2 ORDER BY event_time, id LIMIT $3",
        )
        .bind(tenant_id)
        .bind(since)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .iter()
        .map(rows::audit)
        .collect()
    }

    // --- server secrets -----------------------------------------------------------------

    /// Stores `value` under `name` unless a value is stored already, then returns the stored
    /// value. Instances racing on a fresh database all get the same value.
    pub async fn get_or_insert_secret(
        &self,
        name: &str,
        value: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        query("INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        let row = query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::Corrupt(format!("secret `{name}` vanished after insert")))?;
        rows::get(&row, "value")
    }
}

const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (event_time, tenant_id, event, email, message_id, client_ip, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

/// [`Store::append_audit_batch`] on SQLite: `?1` is a JSON array of
/// `[time, tenant, event, email, message id, client ip, detail]` arrays.
const INSERT_AUDIT_BATCH_SQLITE: &str = "INSERT INTO audit_events \
     (event_time, tenant_id, event, email, message_id, client_ip, detail) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
            value ->> 6 \
     FROM json_each($1) ORDER BY key RETURNING id";

/// [`Store::append_audit_batch`] on PostgreSQL, with the same parameter.
const INSERT_AUDIT_BATCH_POSTGRES: &str = "INSERT INTO audit_events \
     (event_time, tenant_id, event, email, message_id, client_ip, detail) \
     SELECT (e ->> 0)::BIGINT, e ->> 1, e ->> 2, e ->> 3, e ->> 4, e ->> 5, e ->> 6 \
     FROM json_array_elements($1::JSON) WITH ORDINALITY AS t(e, ord) ORDER BY ord \
     RETURNING id";

fn bind_audit<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    e: &'q NewAuditEvent,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(e.time)
        .bind(e.tenant_id.as_str())
        .bind(e.event.as_str())
        .bind(e.email.as_deref())
        .bind(e.message_id.as_deref())
        .bind(e.client_ip.as_deref())
        .bind(e.detail.as_str())
}
