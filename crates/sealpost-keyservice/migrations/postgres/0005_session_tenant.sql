-- Sealpost key service: a session belongs to one tenant (PostgreSQL).
-- Keep in step with ../sqlite/0005_session_tenant.sql.
--
-- A session opened by signing in for one tenant's message (the passcode's license, or the
-- OpenID sign-in's tenant) works only for that tenant's messages and replies: a tenant's
-- gateway, which sees the session tokens of the people who reply through it, cannot use one
-- for another tenant's mail. Sessions opened before this migration name no tenant; they are
-- ended here (their holders sign in again, as after a timeout).

DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN tenant_id TEXT NOT NULL DEFAULT '';
