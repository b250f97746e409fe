-- Sealpost key service: OpenID Connect sign-in flows (SQLite).
-- Keep in step with ../postgres/0004_oidc.sql: same columns and indexes.
-- Times are Unix seconds; flags are 0/1 integers.
--
-- One row per started sign-in (POST /v1/oidc/start), so that any instance can finish it.
-- Only the SHA-256 of the `state` is stored. `used` is set by the one conditional UPDATE
-- that finishes the flow, so a state is good once, on one instance, before `expires`.
-- The nonce and PKCE verifier are useless without the authorization code, which only the
-- browser receives.

CREATE TABLE oidc_flows (
    state_hash    BLOB    NOT NULL PRIMARY KEY,
    provider      TEXT    NOT NULL,
    tenant_id     TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    pkce_verifier TEXT    NOT NULL,
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    used          INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE INDEX oidc_flows_expires ON oidc_flows (expires);
