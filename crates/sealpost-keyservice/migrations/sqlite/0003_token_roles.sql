-- Sealpost key service: token roles (SQLite).
-- Keep in step with ../postgres/0003_token_roles.sql: same columns and constraints.
--
-- A token in `admin_tokens` is either an administrator's (`admin`: revocation and audit, the
-- /v1/admin/* endpoints) or a mail gateway's (`gateway`: the /v1/gateway/* endpoints, which
-- authorize encrypted replies and release share B for transport decryption). Each role is
-- accepted only by its own endpoints. Tokens made before this migration are admin tokens.

ALTER TABLE admin_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'gateway'));
