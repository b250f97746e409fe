-- Sealpost key service: OpenID Connect sign-in flows (PostgreSQL).
-- Keep in step with ../sqlite/0004_oidc.sql: same columns and indexes.
-- Times are Unix seconds; flags are 0/1 integers.
--
-- One row per started sign-in (POST /v1/oidc/start), so that any instance can finish it.
-- Only the SHA-256 of the `state` is stored. `used` is set by the one conditional UPDATE
-- that finishes the flow, so a state is good once, on one instance, before `expires`.
-- The nonce and PKCE verifier are useless without the authorization code, which only the
-- browser receives.

CREATE TABLE oidc_flows (
    state_hash    BYTEA  NOT NULL PRIMARY KEY,
    provider      TEXT   NOT NULL,
    tenant_id     TEXT   NOT NULL,
    nonce         TEXT   NOT NULL,
    pkce_verifier TEXT   NOT NULL,
    created       BIGINT NOT NULL,
    expires       BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
);
CREATE INDEX oidc_flows_expires ON oidc_flows (expires);
