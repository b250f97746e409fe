-- Sealpost key service: initial schema (PostgreSQL).
-- Keep in step with ../sqlite/0001_initial.sql: same tables, columns and indexes.
-- Times are Unix seconds; flags are 0/1 integers (the Any driver cannot read SQLite booleans,
-- so both backends use integers).

CREATE TABLE tenants (
    tenant_id     TEXT   NOT NULL PRIMARY KEY,
    display_name  TEXT   NOT NULL,
    settings_json TEXT   NOT NULL,
    created       BIGINT NOT NULL
);

CREATE TABLE tenant_keys (
    tenant_id       TEXT   NOT NULL REFERENCES tenants (tenant_id),
    key_id          TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    public_key      BYTEA  NOT NULL,
    wrapped_private BYTEA,
    status          TEXT   NOT NULL,
    created         BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_id)
);

-- One-time-passcode challenges. Rows outlive their expiry (see CHALLENGE_RETENTION_SECS):
-- they are the record of codes sent, counted by the per-address rate limit.
CREATE TABLE challenges (
    id         TEXT     NOT NULL PRIMARY KEY,
    tenant_id  TEXT     NOT NULL,
    email      TEXT     NOT NULL,
    message_id TEXT     NOT NULL,
    code_hash  BYTEA    NOT NULL,
    sent       SMALLINT NOT NULL CHECK (sent IN (0, 1)),
    created    BIGINT   NOT NULL,
    expires    BIGINT   NOT NULL,
    attempts   BIGINT   NOT NULL DEFAULT 0,
    used       SMALLINT NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
);
CREATE INDEX challenges_email_created ON challenges (email, created);
CREATE INDEX challenges_expires ON challenges (expires);

-- Consecutive failed passcode verifications per address (lockout).
CREATE TABLE address_failures (
    email    TEXT   NOT NULL PRIMARY KEY,
    failures BIGINT NOT NULL,
    updated  BIGINT NOT NULL
);

-- Recipient sessions; only the SHA-256 of the token is stored.
CREATE TABLE sessions (
    token_hash BYTEA  NOT NULL PRIMARY KEY,
    email      TEXT   NOT NULL,
    created    BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    expires    BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE revocations (
    tenant_id  TEXT   NOT NULL,
    message_id TEXT   NOT NULL,
    revoked_at BIGINT NOT NULL,
    revoked_by TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);

-- Append-only.
CREATE TABLE audit_events (
    id         BIGSERIAL NOT NULL PRIMARY KEY,
    event_time BIGINT    NOT NULL,
    tenant_id  TEXT      NOT NULL,
    event      TEXT      NOT NULL,
    email      TEXT,
    message_id TEXT,
    client_ip  TEXT,
    detail     TEXT      NOT NULL
);
CREATE INDEX audit_events_message ON audit_events (tenant_id, message_id, event_time);
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, event_time);

-- Tenant administration tokens; only the SHA-256 of the token is stored.
CREATE TABLE admin_tokens (
    token_hash BYTEA  NOT NULL PRIMARY KEY,
    tenant_id  TEXT   NOT NULL REFERENCES tenants (tenant_id),
    label      TEXT   NOT NULL,
    created    BIGINT NOT NULL
);

-- Passcode mail kept locally when no SMTP server is configured.
CREATE TABLE outbox (
    id      BIGSERIAL NOT NULL PRIMARY KEY,
    created BIGINT    NOT NULL,
    to_addr TEXT      NOT NULL,
    subject TEXT      NOT NULL,
    body    TEXT      NOT NULL
);

-- Server-wide secrets shared by all instances (e.g. the passcode-hash key).
CREATE TABLE server_secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);
